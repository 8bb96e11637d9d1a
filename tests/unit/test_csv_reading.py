"""Source CSV files are read with bounded time and memory: junk stops at once, naming file, line, column."""

from __future__ import annotations

from pathlib import Path

import pytest

from mis_sync.connectors import csv_reading
from mis_sync.connectors.csv_reading import MB, ReadLimits, read_csv_bounded
from mis_sync.errors import ExtractError

HEADER = "GroupId,PersonId,Role\n"


def _file(tmp_path: Path, body: str, name: str = "memberships.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _error(path: Path, limits: ReadLimits | None = None) -> str:
    with pytest.raises(ExtractError) as info:
        read_csv_bounded(path, path.name, limits)
    return str(info.value)


def test_a_good_file_reads_as_text_with_file_line_numbers(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(csv_reading, "CHUNK_ROWS", 2)
    rows = ["G1,P1,Pupil", "G1,NA,Pupil", "G2,Null,Teacher", "G2,P4,"]
    frame = read_csv_bounded(_file(tmp_path, HEADER + "\n".join(rows) + "\n"), "memberships.csv")
    assert list(frame.columns) == ["GroupId", "PersonId", "Role"]
    assert frame["PersonId"].tolist() == ["P1", "NA", "Null", "P4"], "never missing values"
    assert frame.index.tolist() == [0, 1, 2, 3], "row 0 is line 2 across chunks"
    assert frame.loc[3, "Role"] == ""


def test_header_only_is_an_empty_table(tmp_path: Path) -> None:
    frame = read_csv_bounded(_file(tmp_path, HEADER), "memberships.csv")
    assert frame.empty and list(frame.columns) == ["GroupId", "PersonId", "Role"]


def test_a_first_row_with_thousands_of_fields_stops_at_once(tmp_path: Path) -> None:
    junk = ",".join("abcd" for _ in range(400_000))  # 2 MB on one line: pandas made a 400k-level index
    assert _error(_file(tmp_path, HEADER + junk)).startswith("memberships.csv: line 2: longer than a row")
    wide = ",".join("abcd" for _ in range(1000))
    message = _error(_file(tmp_path, HEADER + wide + "\n" + "G1,P1,Pupil\n"))
    assert message.startswith("memberships.csv: line 2: 1000 fields, more than the header's 3")


def test_a_quoted_first_row_with_extra_fields_is_refused_too(tmp_path: Path) -> None:
    message = _error(_file(tmp_path, HEADER + '"G1",P1,Pupil,x,y\nG2,P2,Pupil\n'))
    assert message.startswith("memberships.csv: line 2: more fields than the header's 3")


def test_an_endless_second_line_stops_after_one_row_s_worth(tmp_path: Path) -> None:
    message = _error(_file(tmp_path, HEADER + "x" * 100_000))
    assert message.startswith("memberships.csv: line 2: longer than a row of 3 fields can be")


def test_a_later_row_with_extra_fields_names_its_line(tmp_path: Path) -> None:
    message = _error(_file(tmp_path, HEADER + "G1,P1,Pupil\nG1,P2,Pupil,x,y\n"))
    assert "memberships.csv" in message and "line 3" in message


def test_a_file_without_line_ends_stops_at_the_header(tmp_path: Path) -> None:
    message = _error(_file(tmp_path, "abc," * 500_000))
    assert message.startswith("memberships.csv: line 1: the header is longer than 64 KB")


def test_a_header_with_too_many_columns(tmp_path: Path) -> None:
    message = _error(_file(tmp_path, ",".join(f"c{i}" for i in range(600)) + "\n"))
    assert "line 1: 600 columns" in message


def test_a_cell_longer_than_any_mis_field_names_line_and_column(tmp_path: Path) -> None:
    body = HEADER + "G1,P1,Pupil\n" + f"G1,{'x' * 5000},Pupil\n"
    message = _error(_file(tmp_path, body))
    assert message.startswith("memberships.csv: line 3, column PersonId: a value longer than 2000")
    assert "xxxx" not in message, "never the value"


class _Unopenable:
    """A path whose size is known but which must not be opened."""

    def __init__(self, size: int) -> None:
        self.size = size

    def stat(self):  # type: ignore[no-untyped-def]
        return type("Stat", (), {"st_size": self.size})()

    def open(self, *_args: object) -> None:
        raise AssertionError("refused from its size alone, never opened")


def test_a_file_over_the_cap_is_refused_before_it_is_opened() -> None:
    limits = ReadLimits(max_bytes=200 * MB)
    with pytest.raises(ExtractError, match=r"^memberships.csv: 250.0 MB is over the 200 MB limit"):
        read_csv_bounded(_Unopenable(250 * MB), "memberships.csv", limits)
    assert limits.sizes == {"memberships.csv": 250 * MB}


def test_a_file_far_larger_than_the_last_good_extract_is_refused() -> None:
    limits = ReadLimits(growth_factor=5.0, baseline={"memberships.csv": 600_000})
    with pytest.raises(ExtractError, match=r"50.0 MB is 83x the last good extract's 0.60 MB \(limit 5x"):
        read_csv_bounded(_Unopenable(50 * MB), "memberships.csv", limits)


def test_growth_is_not_judged_on_small_files_or_without_a_baseline(tmp_path: Path) -> None:
    path = _file(tmp_path, HEADER + "G1,P1,Pupil\n" * 1000)
    small = ReadLimits(growth_factor=2.0, baseline={"memberships.csv": 20})
    assert len(read_csv_bounded(path, "memberships.csv", small)) == 1000, "under 1 MB: a growing school"
    ReadLimits(growth_factor=2.0).check_size("memberships.csv", 90 * MB)
    ReadLimits(max_bytes=None, growth_factor=None, baseline={"m.csv": 1}).check_size("m.csv", 900 * MB)
