"""Field mappings and the file-drop connector, on tests/fixtures/tiny-school and broken copies of it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import UnknownSourceError, connector_for
from mis_sync.connectors.file_drop import FileDropConnector
from mis_sync.connectors.mapping import load_mapping, normalise_codes, normalise_year_group
from mis_sync.errors import ExtractError
from mis_sync.model import ENTITIES, Extract

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-school"
SECRET = "Zoë-secret"


def read(folder: Path) -> Extract:
    return FileDropConnector(ConnectionInfo(conn_id="t", extra={"path": str(folder)}), {}).extract()


def read_error(folder: Path) -> str:
    with pytest.raises(ExtractError) as info:
        read(folder)
    return str(info.value)


@pytest.fixture(scope="module")
def tiny() -> Extract:
    return read(TINY)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """A writable copy of the tiny-school drop folder."""
    return Path(shutil.copytree(TINY, tmp_path / "drop"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- year groups and codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Year  7", "7"),
        ("Y7", "7"),
        ("Year Seven", "7"),
        ("year one", "1"),
        ("Yr 11", "11"),
        ("YEAR 10", "10"),
        (" y  12 ", "12"),
        ("Reception", "R"),
        ("rec", "R"),
        ("R", "R"),
        ("Year R", "R"),
        ("Nursery 1", "N1"),
        ("Nursery", "N2"),
        ("N1", "N1"),
        ("n2", "N2"),
        ("x", "X"),
        ("07", "7"),
        ("7", "7"),
        ("12", "12"),
        ("14", "14"),
        ("Tigers", "Tigers"),
        ("Year Thirty", "Year Thirty"),
        ("", ""),
    ],
)
def test_normalise_year_group(raw: str, expected: str) -> None:
    table = load_mapping("file_drop").codes["year_group"]
    out = normalise_year_group(pd.Series([raw], dtype="string"), table)
    assert out.tolist() == [expected]


def test_normalise_year_group_keeps_nulls_and_order() -> None:
    values = pd.Series(["Y7", None, "Tigers", "Reception"], dtype="string")
    out = normalise_year_group(values, {"reception": "R"})
    assert out.iloc[0] == "7"
    assert pd.isna(out.iloc[1])
    assert out.iloc[2:].tolist() == ["Tigers", "R"]


def test_normalise_year_group_table_wins() -> None:
    out = normalise_year_group(pd.Series(["Year 7", "Fledglings"], dtype="string"), {"Fledglings": "N1"})
    assert out.tolist() == ["7", "N1"]


def test_normalise_codes() -> None:
    table = load_mapping("file_drop").codes["enrolment_status"]
    raw = ["OnRoll", "On  Roll", " PreAdmission ", "Left", "CURRENT", "pre-admission", "on_roll"]
    out = normalise_codes(pd.Series(raw, dtype="string"), table)
    assert out.tolist() == [
        "on_roll",
        "on_roll",
        "pre_admission",
        "leaver",
        "on_roll",
        "pre_admission",
        "on_roll",
    ]


def test_normalise_codes_unknown_passes_through_folded_and_nulls_stay_null() -> None:
    out = normalise_codes(pd.Series(["Suspended", None, "LEAVER"], dtype="string"), {"Leaver": "leaver"})
    assert out.iloc[0] == "suspended"
    assert pd.isna(out.iloc[1])
    assert out.iloc[2] == "leaver"


def test_normalise_codes_table_keys_are_space_and_case_insensitive() -> None:
    out = normalise_codes(pd.Series(["reg   group"], dtype="string"), {"Reg  Group": "registration"})
    assert out.tolist() == ["registration"]


def test_file_drop_mapping_loads_and_covers_every_entity() -> None:
    mapping = load_mapping("file_drop")
    assert mapping.source == "file_drop"
    assert mapping.manifest == "manifest.json"
    assert set(mapping.entities) == set(ENTITIES)
    assert mapping.source_column("pupils", "date_of_birth") == "DateOfBirth"
    assert mapping.source_column("staff", "enrolment_status") == "EmploymentStatus"
    assert mapping.source_column("pupils", "not_mapped") == "not_mapped"


def test_unknown_source_mapping_is_an_extract_error() -> None:
    with pytest.raises(ExtractError, match=r"nope\.yaml: field mapping cannot be loaded"):
        load_mapping("nope")


def test_connector_for() -> None:
    connection = ConnectionInfo(conn_id="t", extra={"path": str(TINY)})
    assert isinstance(connector_for("file_drop", connection, {}), FileDropConnector)
    with pytest.raises(UnknownSourceError, match="no connector for MIS type 'sims'"):
        connector_for("sims", connection, {})


# --- the tiny-school fixture -----------------------------------------------------------------------------


def test_fixture_counts(tiny: Extract) -> None:
    assert tiny.counts() == {
        "pupils": 6,
        "staff": 3,
        "contacts": 4,
        "groups": 4,
        "memberships": 15,
        "relationships": 5,
    }
    assert tiny.source == "file_drop"


def test_fixture_tables_have_canonical_shape(tiny: Extract) -> None:
    for name, entity in ENTITIES.items():
        frame = tiny.tables[name]
        assert list(frame.columns) == entity.column_names
        assert frame.dtypes.equals(entity.empty_frame().dtypes), name


def test_fixture_enrolment_codes_canonicalised(tiny: Extract) -> None:
    pupils = tiny.tables["pupils"].set_index("mis_id")
    assert pupils["enrolment_status"].to_dict() == {
        "P1": "on_roll",
        "P2": "on_roll",
        "P3": "on_roll",
        "P4": "on_roll",
        "P5": "pre_admission",
        "P6": "leaver",
    }
    assert tiny.tables["staff"]["enrolment_status"].tolist() == ["on_roll"] * 3


def test_fixture_other_codes_canonicalised(tiny: Extract) -> None:
    assert tiny.tables["pupils"]["year_group"].tolist() == ["7"] * 6
    assert tiny.tables["groups"]["kind"].tolist() == ["year", "registration", "teaching", "teaching"]
    assert set(tiny.tables["memberships"]["role"]) == {"pupil", "teacher"}
    assert (tiny.tables["memberships"]["role"] == "teacher").sum() == 3


def test_fixture_values(tiny: Extract) -> None:
    pupils = tiny.tables["pupils"].set_index("mis_id")
    assert pupils.loc["P1", "legal_first_name"] == "Zoë"
    assert pupils.loc["P1", "legal_last_name"] == "O'Brien"
    assert pupils.loc["P1", "date_of_birth"] == pd.Timestamp("2013-10-02")
    assert pupils.loc["P2", "preferred_first_name"] == "Alex"
    assert pd.isna(pupils.loc["P1", "preferred_first_name"])
    assert pupils.loc["P6", "leaving_date"] == pd.Timestamp("2026-10-31")
    assert pd.isna(pupils.loc["P1", "leaving_date"])
    staff = tiny.tables["staff"].set_index("mis_id")
    assert staff["is_teaching"].tolist() == [True, True, False]
    assert pd.isna(staff.loc["S3", "staff_code"])
    relationships = tiny.tables["relationships"]
    assert relationships["parental_responsibility"].tolist() == [True, True, True, True, False]
    assert relationships["priority"].tolist() == [1, 1, 1, 2, 3]
    assert tiny.tables["contacts"].set_index("mis_id").loc["C3", "staff_mis_id"] == "S1"


def test_fixture_snapshot_from_manifest(tiny: Extract) -> None:
    assert tiny.snapshot_at == pd.Timestamp("2026-11-27T06:00:00", tz="UTC")
    assert str(tiny.snapshot_at.tz) == "UTC"


def test_options_path_wins_over_connection(drop: Path, tmp_path: Path) -> None:
    connection = ConnectionInfo(conn_id="t", extra={"path": str(tmp_path / "nowhere")})
    extract = FileDropConnector(connection, {"path": str(drop)}).extract()
    assert extract.counts()["pupils"] == 6


def test_host_is_a_fallback_folder(drop: Path) -> None:
    extract = FileDropConnector(ConnectionInfo(conn_id="t", host=str(drop)), {}).extract()
    assert extract.counts()["staff"] == 3


# --- broken drops ----------------------------------------------------------------------------------------


def test_no_folder_configured() -> None:
    with pytest.raises(ExtractError, match="connection 't': no folder given"):
        FileDropConnector(ConnectionInfo(conn_id="t"), {}).extract()


def test_folder_not_found(tmp_path: Path) -> None:
    message = read_error(tmp_path / "missing")
    assert message == f"file drop folder not found: {tmp_path / 'missing'} (connection 't')"


def test_missing_required_file(drop: Path) -> None:
    (drop / "staff.csv").unlink()
    assert read_error(drop) == "staff.csv: required file is missing from the drop folder"


def test_missing_required_column(drop: Path) -> None:
    edit(drop / "pupils.csv", "PupilId,", "Id,")
    assert read_error(drop) == "pupils.csv: required column(s) missing: PupilId"


def test_missing_optional_column_is_null(drop: Path) -> None:
    path = drop / "pupils.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["Email"])
    frame.to_csv(path, index=False)
    extract = read(drop)
    assert extract.tables["pupils"]["email"].isna().all()
    assert len(extract.tables["pupils"]) == 6


def test_non_utf8_file(drop: Path) -> None:
    path = drop / "pupils.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252", errors="replace"))
    message = read_error(drop)
    assert message.startswith("pupils.csv: not UTF-8")
    assert "save it as CSV UTF-8" in message


def test_utf8_bom_is_accepted(drop: Path) -> None:
    path = drop / "staff.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read(drop).tables["staff"]["mis_id"].tolist() == ["S1", "S2", "S3"]


def _unreadable(extract: Extract, entity: str) -> dict[str, str]:
    frame = extract.tables[entity]
    marked = frame[frame["unreadable_fields"].notna()]
    keys = marked["mis_id"] if "mis_id" in marked else marked.index.astype(str)
    return dict(zip(keys, marked["unreadable_fields"], strict=True))


def test_unparseable_date_marks_its_record_not_the_extract(drop: Path) -> None:
    edit(drop / "pupils.csv", "2014-01-15", SECRET)  # P2's date of birth
    extract = read(drop)
    assert _unreadable(extract, "pupils") == {"P2": "date_of_birth"}
    pupils = extract.tables["pupils"].set_index("mis_id")
    assert pd.isna(pupils.loc["P2", "date_of_birth"]) and SECRET not in extract.tables["pupils"].to_csv()
    assert extract.counts()["pupils"] == 6, "every other record is read as usual"


def test_bad_boolean_in_staff_marks_the_staff_record(drop: Path) -> None:
    edit(drop / "staff.csv", "JBR,true", "JBR,sometimes")
    assert _unreadable(read(drop), "staff") == {"S1": "is_teaching"}


def test_many_bad_values_each_mark_their_own_record(drop: Path) -> None:
    path = drop / "relationships.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [line.rsplit(",", 1)[0] + ",x" for line in lines[1:]]
    extra = [f"C1,P{i},Mother,true,x" for i in range(10, 13)]
    path.write_text("\n".join([lines[0], *rows, *extra]) + "\n", encoding="utf-8")
    relationships = read(drop).tables["relationships"]
    assert relationships["unreadable_fields"].tolist() == ["priority"] * 8


def test_header_only_pupils_gives_zero_pupils(drop: Path) -> None:
    path = drop / "pupils.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    extract = read(drop)
    assert extract.counts()["pupils"] == 0
    assert list(extract.tables["pupils"].columns) == ENTITIES["pupils"].column_names
    assert extract.counts()["staff"] == 3


def test_completely_empty_file_is_an_error(drop: Path) -> None:
    (drop / "groups.csv").write_text("", encoding="utf-8")
    assert read_error(drop) == "groups.csv: the file is empty (not even a header row)"


def test_optional_files_missing_give_empty_tables(drop: Path) -> None:
    (drop / "contacts.csv").unlink()
    (drop / "relationships.csv").unlink()
    extract = read(drop)
    assert extract.counts() == {
        "pupils": 6,
        "staff": 3,
        "contacts": 0,
        "groups": 4,
        "memberships": 15,
        "relationships": 0,
    }
    for name in ("contacts", "relationships"):
        assert extract.tables[name].dtypes.equals(ENTITIES[name].empty_frame().dtypes)


def test_names_like_null_are_not_missing(drop: Path) -> None:
    edit(drop / "contacts.csv", "C4,Mr,Old,Parent", "C4,Mr,Na,Null")
    contacts = read(drop).tables["contacts"].set_index("mis_id")
    assert contacts.loc["C4", "legal_first_name"] == "Na"
    assert contacts.loc["C4", "legal_last_name"] == "Null"


def test_manifest_without_timezone(drop: Path) -> None:
    (drop / "manifest.json").write_text(json.dumps({"snapshot_at": "2026-11-27T06:00:00"}))
    assert read_error(drop) == "manifest.json: snapshot_at must include a UTC offset"


@pytest.mark.parametrize("body", ['{"snapshot_at": "last tuesday"}', '{"version": 1}', "{not json", "[]"])
def test_manifest_unusable(drop: Path, body: str) -> None:
    (drop / "manifest.json").write_text(body)
    assert read_error(drop) == "manifest.json: snapshot_at is missing or not an ISO 8601 time"


def test_manifest_offset_is_converted_to_utc(drop: Path) -> None:
    (drop / "manifest.json").write_text(json.dumps({"snapshot_at": "2026-06-01T06:30:00+01:00"}))
    snapshot = read(drop).snapshot_at
    assert snapshot == pd.Timestamp("2026-06-01T05:30:00", tz="UTC")
    assert str(snapshot.tz) == "UTC"


def test_no_manifest_uses_newest_file_time(drop: Path) -> None:
    (drop / "manifest.json").unlink()
    for i, path in enumerate(sorted(drop.iterdir())):
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i + 0.75))
    newest = 1_700_000_000 + len(list(drop.iterdir())) - 1
    snapshot = read(drop).snapshot_at
    assert snapshot == pd.Timestamp(newest, unit="s", tz="UTC")
    assert snapshot == pd.Timestamp("2023-11-14T22:13:25", tz="UTC")


@pytest.mark.parametrize("raw", ["0", "00", "15", "Year 20", "Y0"])
def test_year_groups_outside_the_census_codes_are_kept_as_given(raw: str) -> None:
    from mis_sync.connectors.mapping import normalise_year_group

    out = normalise_year_group(pd.Series([raw], dtype="string"), {})
    assert out.tolist() == [raw]
