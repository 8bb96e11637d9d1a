"""Every CSV the project writes for people neutralises spreadsheet formulas through one helper."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from mis_sync.csv_cells import safe_cell, safe_frame
from mis_sync.quality.report import findings_csv

SRC = Path(__file__).resolve().parents[2] / "src" / "mis_sync"

MACHINE_READ = {
    "generator/writer.py": "synthetic MIS exports the connectors read back: an apostrophe would change data",
    "generator/shapes/sds_uk.py": "synthetic SDS/OneRoster exports the connectors read back",
    "linking/existing.py": "an in-memory CSV parsed straight back by the existing-users validator",
}


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_formula_start_gets_an_apostrophe(start: str) -> None:
    assert safe_cell(f"{start}HYPERLINK(1)") == f"'{start}HYPERLINK(1)"
    frame = safe_frame(pd.DataFrame({"a": [f"{start}cmd", "plain", None]}))
    assert frame["a"].tolist() == [f"'{start}cmd", "plain", ""]


def test_ordinary_cells_are_untouched() -> None:
    assert [safe_cell(v) for v in ("Zoë", "O'Brien", "a=b", None, 7)] == ["Zoë", "O'Brien", "a=b", "", "7"]


def test_findings_csv_neutralises_mis_values() -> None:
    findings = pd.DataFrame(
        {
            "entity": ["pupils"],
            "mis_id": ['=HYPERLINK("http://x","y")'],
            "field": ["@upn"],
            "rule": ["upn_check_letter"],
            "severity": ["error"],
            "hint": ["+fix it"],
        }
    )
    [row] = list(csv.DictReader(io.StringIO(findings_csv(findings))))
    assert row["mis_id"] == '\'=HYPERLINK("http://x","y")'
    assert row["field"] == "'@upn" and row["hint"] == "'+fix it" and row["rule"] == "upn_check_letter"


def test_every_csv_writer_in_src_uses_the_shared_helper() -> None:
    """A new ``to_csv``/``csv.writer`` must go through ``mis_sync.csv_cells`` or say here why not."""
    writers = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"\.to_csv\(|csv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8"))
    }
    unguarded = {
        name
        for name in writers - set(MACHINE_READ)
        if "mis_sync.csv_cells import" not in (SRC / name).read_text(encoding="utf-8")
    }
    assert writers, "the scan finds the writers"
    assert unguarded == set(), f"CSV written without mis_sync.csv_cells: {sorted(unguarded)}"
