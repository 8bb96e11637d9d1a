"""A junk memberships file (every row pointing nowhere) stops before the per-record GE checks."""

from __future__ import annotations

import pandas as pd
import pytest

from mis_sync.config import SafetyLimits
from mis_sync.errors import ValidationStop
from mis_sync.quality.breakers import check_junk_references


def _memberships(rows: int, broken: int) -> dict[str, pd.DataFrame]:
    flags = [True] * broken + [False] * (rows - broken)
    return {"memberships": pd.DataFrame({"unknown_group": flags, "unknown_person": [False] * rows})}


def test_most_links_pointing_nowhere_stops_naming_counts_only() -> None:
    with pytest.raises(
        ValidationStop, match=r"^most links point at records not in the export: 90 of 100 memb"
    ):
        check_junk_references(_memberships(100, 90), SafetyLimits())


def test_fewer_are_left_to_the_error_rate_breaker_with_its_findings_report() -> None:
    check_junk_references(_memberships(100, 50), SafetyLimits())  # half: the findings report decides
    check_junk_references(_memberships(6, 4), SafetyLimits())  # fewer than 5 records
    check_junk_references({}, SafetyLimits())


def test_check_extract_stops_a_junk_memberships_file_before_the_suites(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mis_sync.quality import check_extract, runner
    from tests.helpers import TINY, read_drop

    extract = read_drop(TINY)
    junk = pd.DataFrame({"group_id": [f"X{i}" for i in range(500)], "person_id": "Y", "role": "pupil"})
    tables = dict(
        extract.tables, memberships=junk.astype({"role": extract.tables["memberships"]["role"].dtype})
    )
    monkeypatch.setattr(runner, "run_suites", lambda *_: pytest.fail("the GE suites ran on a junk file"))
    with pytest.raises(ValidationStop, match="500 of 500 memberships"):
        check_extract(type(extract)(tables=tables, snapshot_at=extract.snapshot_at, source=extract.source))
