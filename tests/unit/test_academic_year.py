"""One academic-year rule per country (issue 13 item 15), and every module using it.

Rules (uk-data-rules §4.3, §5): England, Wales and Northern Ireland start the school year on 1 September;
Scotland's session starts in August (taken as 1 August, the holiday before any council's term).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mis_sync.academic_year import (
    COUNTRIES,
    academic_year,
    academic_year_label,
    academic_year_start,
    academic_year_starts,
    academic_year_starts_np,
    academic_years_of_terms,
)
from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.api_support import fill_group_context
from mis_sync.model import ENTITIES, Extract
from mis_sync.usernames import year_of_entry, years_of_entry

SRC = Path(__file__).resolve().parents[2] / "src" / "mis_sync"
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "microsoft-sds-samples"

# day -> expected start year per country
CASES = [
    (dt.date(2025, 7, 31), {"england": 2024, "wales": 2024, "northern_ireland": 2024, "scotland": 2024}),
    (dt.date(2025, 8, 1), {"england": 2024, "wales": 2024, "northern_ireland": 2024, "scotland": 2025}),
    (dt.date(2025, 8, 31), {"england": 2024, "wales": 2024, "northern_ireland": 2024, "scotland": 2025}),
    (dt.date(2025, 9, 1), {"england": 2025, "wales": 2025, "northern_ireland": 2025, "scotland": 2025}),
    (dt.date(2026, 1, 15), {"england": 2025, "wales": 2025, "northern_ireland": 2025, "scotland": 2025}),
]


@pytest.mark.parametrize("country", COUNTRIES)
@pytest.mark.parametrize(("day", "expected"), CASES)
def test_start_year_per_country(country: str, day: dt.date, expected: dict[str, int]) -> None:
    assert academic_year_start(day, country) == expected[country]
    assert academic_year(day, country) == academic_year_label(expected[country])
    vectorised = academic_year_starts(pd.Series([pd.Timestamp(day), pd.NaT]), country)
    assert vectorised.iloc[0] == expected[country] and pd.isna(vectorised.iloc[1])
    assert academic_year_starts_np(np.array([day], dtype="datetime64[D]"), country)[0] == expected[country]


def test_labels_and_unknown_country() -> None:
    assert academic_year_label(2025) == "2025/26"
    assert academic_year_label(2099) == "2099/00"
    with pytest.raises(ValueError, match="unknown country"):
        academic_year_start(dt.date(2025, 9, 1), "france")


def test_a_snapshot_is_taken_on_its_uk_date() -> None:
    # 23:30 UTC on 31 August is 00:30 on 1 September in London (BST)
    assert academic_year(pd.Timestamp("2025-08-31T23:30:00Z"), "england") == "2025/26"
    assert academic_year(pd.Timestamp("2025-08-31T22:30:00Z"), "england") == "2024/25"


def test_terms_are_labelled_by_their_middle() -> None:
    start = pd.Series(["2025-09-03", "2026-04-20", None, "2025-08-18"])
    end = pd.Series(["2026-07-22", "2026-07-22", "2026-02-13", "2025-12-19"])
    assert academic_years_of_terms(start, end, "england").tolist() == ["2025/26"] * 4
    assert academic_years_of_terms(start, end, "scotland").tolist() == ["2025/26"] * 4


def test_no_other_module_computes_an_academic_year() -> None:
    """The copies the issue found (quality/years, usernames, generator, SDS/OneRoster/iSAMS/SIMS and
    Wonde/API connectors) are gone: nothing in src/ compares a month with 8 or 9 but this module."""
    pattern = re.compile(
        r"months?\s*(>=|<|>|<=)\s*\(?\s*[89]\b|ACADEMIC_YEAR_START_MONTH|def current_academic_year"
    )
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "academic_year.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_year_of_entry_follows_the_country() -> None:
    admitted = dt.date(2025, 8, 18)  # a Scottish P1 starting the August term
    assert year_of_entry(admitted, "on_roll", country="scotland") == 2025
    assert year_of_entry(admitted, "on_roll", country="england") == 2024
    people = pd.DataFrame({"admission_date": [pd.Timestamp(admitted)], "enrolment_status": ["on_roll"]})
    assert years_of_entry(people, dt.date(2026, 1, 5), "scotland").tolist() == [2025]


def _sds_in_august(tmp_path: Path) -> Path:
    folder = tmp_path / "sds"
    shutil.copytree(SAMPLES / "sds-uk-min-required", folder)
    august = pd.Timestamp("2026-08-20T06:00:00Z").timestamp()
    for path in folder.iterdir():
        os.utime(path, (august, august))
    return folder


@pytest.mark.parametrize(("country", "expected"), [("england", "2025/26"), ("scotland", "2026/27")])
def test_sds_without_term_dates_uses_the_country_rule(tmp_path: Path, country: str, expected: str) -> None:
    """SDS labelled August from 1 August for every country (an English class made in August joined
    the next year); Wonde and the API sources from 1 September for every country."""
    connection = ConnectionInfo(conn_id="t", extra={"path": str(_sds_in_august(tmp_path))})
    groups = connector_for("sds_uk", connection, {}, country=country).extract().tables["groups"]
    assert set(groups["academic_year"]) == {expected}


@pytest.mark.parametrize(("country", "expected"), [("england", "2025/26"), ("scotland", "2026/27")])
def test_api_sources_use_the_country_rule(country: str, expected: str) -> None:
    groups = pd.DataFrame({"mis_id": ["G1"], "kind": ["teaching"], "name": ["7A/Ma1"]})
    tables = {name: ENTITIES[name].coerce(pd.DataFrame()) for name in ENTITIES}
    tables["groups"] = ENTITIES["groups"].coerce(groups)
    extract = Extract(tables=tables, snapshot_at=pd.Timestamp("2026-08-20T06:00:00Z"), source="t")
    assert fill_group_context(extract, country).tables["groups"]["academic_year"].tolist() == [expected]
