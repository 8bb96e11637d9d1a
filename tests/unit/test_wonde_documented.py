"""The Wonde connector against answers in Wonde's documented shapes (issue 24), each varied where the
documentation leaves it open: the ``/counts`` truncation check, year groups from the ``year`` include,
staff whose employment details Wonde withholds (null), and class memberships that change without the
class's ``updated_at`` moving. Each test fails on the connector before issue 24."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from mis_sync import storage
from mis_sync.config import SafetyLimits
from mis_sync.connectors import connector_for
from mis_sync.connectors.delta import DeltaConnector
from mis_sync.connectors.http_api import ApiPermissionError
from mis_sync.connectors.http_paging import TruncatedError
from mis_sync.fakes.wonde import FakeWonde, running_fake_wonde
from mis_sync.generator import generate_school
from mis_sync.model import Extract
from mis_sync.quality import check_extract
from tests.unit.test_delta import assert_same
from tests.unit.test_wonde_xporter import failure, wonde_connection

AS_OF = dt.date(2026, 1, 15)
LENIENT = SafetyLimits(max_error_rate=0.5)
"""So that a few quarantined staff in a small school do not trip the error-rate breaker here."""


@pytest.fixture(scope="module")
def small() -> Extract:
    return generate_school("small-primary", 2, AS_OF)


@contextlib.contextmanager
def wonde(
    school: Extract, options: dict[str, Any] | None = None, **fake_options: Any
) -> Iterator[tuple[FakeWonde, DeltaConnector]]:
    with running_fake_wonde(school, **fake_options) as fake:
        connector = connector_for("wonde", wonde_connection(fake), options or {})
        assert isinstance(connector, DeltaConnector)
        connector.sleep = lambda seconds: None
        yield fake, connector


def on_roll(school: Extract, table: str) -> pd.DataFrame:
    frame = school.tables[table]
    return frame[frame["enrolment_status"] == "on_roll"]


# --- 1. the truncation check ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["data", "counts", "string"])
def test_a_short_last_page_is_caught_whatever_the_counts_shape(shape: str, small: Extract) -> None:
    """The documented reply is ``data.students.data.count``; the old reading (``counts.…``) found
    nothing there and let the lost half of the only page through without a word."""
    with wonde(small, {"page_size": 500}, counts_shape=shape) as (fake, connector):
        fake.faults.truncated = {("students", 1)}  # one page only: its shortfall looks like an end
        message = failure(connector, small, TruncatedError)
    total = len(on_roll(small, "pupils"))
    assert total - total // 2 > 0
    assert f"Wonde students: truncated: {total // 2} records received but /counts reports {total}" in message


def test_a_count_the_reply_leaves_out_is_a_finding_not_a_silent_skip(small: Extract) -> None:
    with wonde(small, counts_omit=frozenset({"students", "classes"})) as (_, connector):
        extract = connector.extract()
    found = extract.source_findings
    assert sorted(found["field"]) == ["classes count", "students count"]
    assert set(found["rule"]) == {"source_count_missing"} and set(found["severity"]) == {"warning"}
    findings = check_extract(extract).findings
    missing = findings[findings["rule"] == "source_count_missing"]
    assert sorted(missing["entity"]) == ["groups", "pupils"] and set(missing["row"]) == {-1}


def test_a_delta_checks_what_it_reads_in_full_against_counts(small: Extract) -> None:
    with wonde(small, {"page_size": 500}) as (fake, connector):
        first = connector.extract_delta(None)
        fake.faults.truncated = {("classes", 1)}
        with pytest.raises(TruncatedError, match=r"Wonde classes: truncated: \d+ records received"):
            connector.extract_delta(first.state)


# --- 2. year groups ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("withheld", "year_codes"),
    [
        ((), "labelled"),  # "Year 7", "Year R": normalised to the canonical codes
        (("education_details.data.current_nc_year",), "plain"),  # only the year include has it
        (("year.data.code", "education_details.data.current_nc_year"), "labelled"),  # year.data.name
        (("year.data",), "plain"),  # the year include withheld: education details are the fallback
        (("year",), "plain"),
    ],
)
def test_year_groups_come_from_the_year_include_then_education_details(
    withheld: tuple[str, ...], year_codes: str, small: Extract
) -> None:
    with wonde(small, withhold={"students": withheld}, year_codes=year_codes) as (_, connector):
        extract = connector.extract()
    assert_same(extract, small)
    assert not len(extract.source_findings)


def test_a_pupil_without_a_year_group_is_applied_and_flagged(small: Extract) -> None:
    ids = set(on_roll(small, "pupils")["mis_id"][:3])
    withhold = {"students": ("year.data", "education_details.data.current_nc_year")}
    with wonde(small, withhold=withhold, withhold_ids=ids) as (_, connector):
        extract = connector.extract()
    pupils = extract.tables["pupils"].set_index("mis_id")
    assert pupils.loc[sorted(ids), "year_group"].isna().all()
    result = check_extract(extract)
    flagged = result.findings[result.findings["rule"] == "year_group_missing"]
    assert set(flagged["mis_id"]) == ids and set(flagged["severity"]) == {"warning"}
    assert ids <= set(result.clean_extract.tables["pupils"]["mis_id"])  # applied, not quarantined


def test_year_groups_withheld_school_wide_stop_the_run_naming_the_permission(small: Extract) -> None:
    withhold = {"students": ("year", "education_details")}
    with wonde(small, withhold=withhold) as (_, connector):
        message = failure(connector, small, ApiPermissionError)
    assert "Wonde students: year group" in message and "grant this app" in message
    assert "max_withheld_fraction" in message


# --- 3. staff status --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["employment_details", "employment_details.data", "employment_details.data.current"]
)
def test_withheld_employment_details_never_make_a_leaver(path: str, small: Extract) -> None:
    """Wonde sends null for what the app may not read: the old connector made these staff leavers
    (their accounts would be suspended). Now they are quarantined: held as they are."""
    ids = set(on_roll(small, "staff")["mis_id"][:2])
    with wonde(small, withhold={"employees": (path,)}, withhold_ids=ids) as (_, connector):
        extract = connector.extract()
    staff = extract.tables["staff"].set_index("mis_id")
    assert not (staff.loc[sorted(ids), "enrolment_status"] == "leaver").any()
    found = extract.source_findings
    assert set(found.loc[found["rule"] == "status_withheld", "mis_id"]) == ids
    result = check_extract(extract, limits=LENIENT)
    held = result.quarantined[result.quarantined["entity"] == "staff"]
    assert set(held["mis_id"]) == ids
    assert not ids & set(result.clean_extract.tables["staff"]["mis_id"])
    others = result.clean_extract.tables["staff"].set_index("mis_id")["enrolment_status"]
    want = small.tables["staff"].set_index("mis_id")["enrolment_status"]
    want = want.drop(sorted(ids)).sort_index()
    pd.testing.assert_series_equal(others.sort_index(), want, check_dtype=False)


@pytest.mark.parametrize("path", ["employment_details", "employment_details.data.current"])
def test_employment_details_withheld_school_wide_stop_the_run_naming_the_permission(
    path: str, small: Extract
) -> None:
    with wonde(small, withhold={"employees": (path,)}) as (_, connector):
        message = failure(connector, small, ApiPermissionError)
    staff = len(small.tables["staff"])
    assert f"withheld (null) for {staff} of {staff} records (100%, above the 50% limit" in message
    assert "employment details, including 'current'" in message and "Nothing was changed" in message


def test_the_withheld_limit_is_an_option(small: Extract) -> None:
    staff = small.tables["staff"]
    ids = set(staff["mis_id"][: len(staff) // 3])  # a third: under the default 50 %, over 25 %
    fake_options: dict[str, Any] = {"withhold": {"employees": ("employment_details",)}, "withhold_ids": ids}
    with wonde(small, **fake_options) as (_, connector):
        assert len(connector.extract().source_findings) == len(ids)
    with wonde(small, {"max_withheld_fraction": 0.25}, **fake_options) as (_, connector):
        failure(connector, small, ApiPermissionError)


# --- 4. class membership deltas ---------------------------------------------------------------------------


def moved_class_member(school: Extract) -> Extract:
    """A day later, one pupil has left a teaching group; nothing else changed."""
    members, groups = school.tables["memberships"], school.tables["groups"]
    teaching = set(groups.loc[groups["kind"] == "teaching", "mis_id"])
    pupil_rows = members[(members["role"] == "pupil") & members["group_id"].isin(teaching)]
    tables = {**school.tables, "memberships": members.drop(index=pupil_rows.index[0])}
    return dataclasses.replace(school, tables=tables, snapshot_at=school.snapshot_at + pd.Timedelta(days=1))


@pytest.mark.parametrize("members_touch_updated_at", [False, True])
def test_class_membership_changes_reach_a_delta_whether_or_not_updated_at_moves(
    members_touch_updated_at: bool, small: Extract
) -> None:
    later = moved_class_member(small)
    with wonde(small, members_touch_updated_at=members_touch_updated_at) as (fake, connector):
        first = connector.extract_delta(None)
        fake.publish(later)
        delta = connector.extract_delta(first.state)
    assert delta.mode == "delta", delta.reason
    assert_same(delta.extract, later)


# --- the findings travel from the extract task to the validate task ---------------------------------------


def test_source_findings_survive_the_run_folder(tmp_path: Any, small: Extract) -> None:
    ids = set(on_roll(small, "staff")["mis_id"][:1])
    with wonde(small, withhold={"employees": ("employment_details",)}, withhold_ids=ids) as (_, connector):
        extract = connector.extract()
    storage.write_extract(tmp_path, extract)
    back = storage.read_extract(tmp_path)
    pd.testing.assert_frame_equal(back.source_findings, extract.source_findings.astype("string"))
    assert set(check_extract(back, limits=LENIENT).quarantined["mis_id"]) >= ids


def test_source_findings_reach_the_history_and_the_report(tmp_path: Any, small: Extract) -> None:
    from mis_sync.directory.db import make_engine, migrate
    from mis_sync.quality.history import update_history
    from mis_sync.quality.report import CSV_NAME, write_report

    ids = set(on_roll(small, "staff")["mis_id"][:1])
    fake_options: dict[str, Any] = {
        "withhold": {"employees": ("employment_details.data.current",)},
        "withhold_ids": ids,
        "counts_omit": frozenset({"contacts"}),
    }
    with wonde(small, **fake_options) as (_, connector):
        findings = check_extract(connector.extract(), limits=LENIENT).findings
    engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    migrate(engine)
    now = dt.datetime(2026, 1, 16, tzinfo=dt.UTC)
    tracked = update_history(engine, "demo", "run-1", findings, now)
    engine.dispose()
    ours = tracked[tracked["rule"].isin(["status_withheld", "source_count_missing"])]
    assert sorted(zip(ours["rule"], ours["mis_id"], ours["status"], strict=True)) == [
        ("source_count_missing", "", "new"),
        ("status_withheld", next(iter(ids)), "new"),
    ]
    write_report(tmp_path, tracked, establishment_id="demo", run_id="run-1")
    text = (tmp_path / CSV_NAME).read_text()
    assert "status_withheld" in text and "source_count_missing" in text


def test_staff_whose_status_wonde_withholds_keep_their_accounts(tmp_path: Any, small: Extract) -> None:
    """Through plan: held means untouched. The old connector planned these staff as leavers."""
    from mis_sync.directory.db import make_engine, migrate
    from mis_sync.directory.state import load_state
    from mis_sync.plan import make_plan
    from tests.helpers import demo_config, sync

    engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    migrate(engine)
    config = demo_config()
    with wonde(small) as (_, connector):
        sync(engine, config, check_extract(connector.extract()).clean_extract, "run-1")
    ids = set(on_roll(small, "staff")["mis_id"][:2])
    later = dataclasses.replace(small, snapshot_at=small.snapshot_at + pd.Timedelta(days=1))
    with wonde(later, withhold={"employees": ("employment_details",)}, withhold_ids=ids) as (_, connector):
        result = check_extract(connector.extract(), limits=LENIENT)
    plan = make_plan(
        result.clean_extract, load_state(engine, config.id), config, quarantined=result.quarantined
    )
    touched = plan.users[plan.users["mis_id"].isin(ids)]
    assert touched.empty, touched[["mis_id", "action"]].to_dict("records")
    engine.dispose()


def test_the_log_names_endpoints_and_counts_only(caplog: pytest.LogCaptureFixture, small: Extract) -> None:
    from tests.unit.test_wonde_xporter import personal_values

    ids = set(on_roll(small, "staff")["mis_id"][:1]) | set(on_roll(small, "pupils")["mis_id"][:1])
    fake_options: dict[str, Any] = {
        "withhold": {
            "employees": ("employment_details",),
            "students": ("year", "education_details.data.current_nc_year"),
        },
        "withhold_ids": ids,
        "counts_omit": frozenset({"students"}),
    }
    with caplog.at_level(logging.WARNING), wonde(small, **fake_options) as (_, connector):
        connector.extract()
    text = caplog.text
    assert "status withheld (null) for 1 of" in text and "1 current pupil(s) without a year group" in text
    assert "['students']" in text
    leaked = [v for v in personal_values(small) if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text)]
    assert not leaked, f"personal data in the log: {len(leaked)} value(s)"


def test_counts_shapes_and_the_withheld_limit_setting() -> None:
    from mis_sync.connectors.wonde_checks import declared_count, max_withheld
    from mis_sync.errors import ExtractError, SetupError

    assert declared_count({"data": {"students": {"data": {"count": 7}}}}, "students") == 7
    assert declared_count({"counts": {"students": {"data": {"count": "7"}}}}, "students") == 7
    assert declared_count({"data": {"contacts": {"data": {"count": 3}}}}, "students") is None
    with pytest.raises(ExtractError, match="Wonde counts students: count is missing or not a number"):
        declared_count({"data": {"students": {"data": {"count": "many"}}}}, "students")
    assert max_withheld(None) == 0.5 and max_withheld("0.2") == 0.2
    for bad in ("half", 2, -0.1):
        with pytest.raises(SetupError, match="max_withheld_fraction must be a number from 0 to 1"):
            max_withheld(bad)


def test_a_source_finding_for_no_record_is_never_an_error(small: Extract) -> None:
    from mis_sync.quality.check import source_findings

    staff_id = str(on_roll(small, "staff")["mis_id"].iloc[0])
    found = pd.DataFrame(
        {
            "entity": ["staff", "staff", "pupils"],
            "mis_id": [staff_id, "NOT-THERE", ""],
            "field": ["enrolment_status", "enrolment_status", "students count"],
            "rule": ["status_withheld", "status_withheld", "source_count_missing"],
            "severity": ["error", "error", "warning"],
            "hint": ["h", "h", "h"],
        },
        dtype="string",
    )
    extract = dataclasses.replace(small, source_findings=found)
    out = source_findings(extract)
    staff_row = int(small.tables["staff"]["mis_id"].tolist().index(staff_id))
    assert out["row"].tolist() == [staff_row, -1, -1]
    assert out["severity"].tolist() == ["error", "warning", "warning"]
    result = check_extract(extract, limits=LENIENT)
    assert result.quarantined.loc[result.quarantined["entity"] == "staff", "mis_id"].tolist() == [staff_id]
