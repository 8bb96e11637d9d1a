"""Validation stop rules (empty, short) and record faults (missing values, unknown codes: quarantined)
through the data-quality stage.

Fault-by-fault quarantine is tested in tests/integration/test_quality.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mis_sync.config import SafetyLimits
from mis_sync.connections import ConnectionInfo
from mis_sync.connectors.file_drop import FileDropConnector
from mis_sync.errors import DataError, ValidationStop
from mis_sync.model import ENTITIES, Extract
from mis_sync.quality import check_extract
from mis_sync.validate import on_roll_counts

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-school"
LIMITS = SafetyLimits()
SNAPSHOT = pd.Timestamp("2026-11-27T06:00:00", tz="UTC")


def validate(extract: Extract, last_counts: dict[str, int], limits: SafetyLimits):  # type: ignore[no-untyped-def]
    return check_extract(extract, last_counts=last_counts, limits=limits)


@pytest.fixture(scope="module")
def tiny() -> Extract:
    return FileDropConnector(ConnectionInfo(conn_id="t", extra={"path": str(TINY)}), {}).extract()


def canonical(name: str, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows) if rows else pd.DataFrame({"_": []})
    return ENTITIES[name].coerce(frame)


def small_school(**overrides: list[dict]) -> Extract:
    """A minimal school built in code: two pupils, one teacher, one class, one parent."""
    rows: dict[str, list[dict]] = {
        "pupils": [
            {"mis_id": "P1", "legal_first_name": "Zoë", "legal_last_name": "Ødegaard",
             "registration_group_id": "G1", "enrolment_status": "on_roll", "year_group": "7"},
            {"mis_id": "P2", "legal_first_name": "Alex", "legal_last_name": "Smith",
             "registration_group_id": "G1", "enrolment_status": "on_roll", "year_group": "7"},
        ],
        "staff": [{"mis_id": "S1", "legal_first_name": "Jane", "legal_last_name": "Brown",
                   "is_teaching": "true", "enrolment_status": "on_roll"}],
        "contacts": [{"mis_id": "C1", "legal_first_name": "Ann", "legal_last_name": "O'Brien"}],
        "groups": [
            {"mis_id": "G1", "kind": "registration", "name": "7A", "academic_year": "2026/27"},
            {"mis_id": "G2", "kind": "teaching", "name": "7A/Ma1", "academic_year": "2026/27"},
        ],
        "memberships": [
            {"group_id": "G1", "person_id": "P1", "role": "pupil"},
            {"group_id": "G2", "person_id": "P2", "role": "pupil"},
            {"group_id": "G2", "person_id": "S1", "role": "teacher"},
        ],
        "relationships": [{"contact_id": "C1", "pupil_id": "P1", "parental_responsibility": "yes",
                           "priority": "1"}],
    }  # fmt: skip
    rows.update(overrides)
    return Extract({name: canonical(name, r) for name, r in rows.items()}, SNAPSHOT, "test")


def replace(extract: Extract, name: str, frame: pd.DataFrame) -> Extract:
    tables = dict(extract.tables)
    tables[name] = frame.reset_index(drop=True)
    return Extract(tables, extract.snapshot_at, extract.source)


def add_rows(extract: Extract, name: str, rows: list[dict]) -> Extract:
    frame = pd.concat([extract.tables[name], canonical(name, rows)], ignore_index=True)
    return replace(extract, name, frame)


def stop_message(extract: Extract, last_counts: dict[str, int] | None = None) -> str:
    with pytest.raises(ValidationStop) as info:
        validate(extract, last_counts or {}, LIMITS)
    assert isinstance(info.value, DataError)
    return str(info.value)


# --- clean extracts --------------------------------------------------------------------------------------


def test_clean_fixture_passes(tiny: Extract) -> None:
    result = validate(tiny, {}, LIMITS)
    assert not result.has_errors
    assert result.counts == {
        "pupils_on_roll": 4, "staff_current": 3,
        "groups_year": 1, "groups_registration": 1, "groups_teaching": 2,
        "pupils": 6, "staff": 3, "contacts": 4, "groups": 4, "memberships": 15, "relationships": 5,
    }  # fmt: skip
    for name in ENTITIES:
        pd.testing.assert_frame_equal(result.clean_extract.tables[name], tiny.tables[name])
    assert result.clean_extract.snapshot_at == tiny.snapshot_at
    assert result.clean_extract.source == "file_drop"
    assert result.summary["quarantined"] == {}


def test_clean_small_school_built_in_code_passes() -> None:
    result = validate(small_school(), {"pupils_on_roll": 2, "staff_current": 1}, LIMITS)
    assert not result.has_errors
    assert result.counts["pupils_on_roll"] == 2
    assert result.counts["staff_current"] == 1
    assert result.clean_extract.counts() == {
        "pupils": 2, "staff": 1, "contacts": 1, "groups": 2, "memberships": 3, "relationships": 1,
    }  # fmt: skip


def test_on_roll_counts_ignore_pre_admission_and_leavers(tiny: Extract) -> None:
    counts = on_roll_counts(tiny)
    assert counts["pupils_on_roll"] == 4
    assert counts["pupils"] == 6


# --- stops -----------------------------------------------------------------------------------------------


def test_zero_on_roll_pupils_is_an_empty_extract(tiny: Extract) -> None:
    pupils = tiny.tables["pupils"].copy()
    pupils["enrolment_status"] = "pre_admission"
    message = stop_message(replace(tiny, "pupils", pupils))
    assert message == "empty extract: pupils_on_roll is 0; nothing will be planned or applied"


def test_no_pupils_at_all_is_an_empty_extract(tiny: Extract) -> None:
    extract = replace(tiny, "pupils", ENTITIES["pupils"].empty_frame())
    extract = replace(extract, "relationships", ENTITIES["relationships"].empty_frame())
    extract = replace(extract, "memberships", tiny.tables["memberships"].iloc[0:0])
    assert stop_message(extract).startswith("empty extract: pupils_on_roll is 0")


def test_zero_staff_is_an_empty_extract(tiny: Extract) -> None:
    extract = replace(tiny, "staff", ENTITIES["staff"].empty_frame())
    assert stop_message(extract) == "empty extract: staff_current is 0; nothing will be planned or applied"


def test_short_extract_names_both_numbers(tiny: Extract) -> None:
    message = stop_message(tiny, {"pupils_on_roll": 6, "staff_current": 3})
    assert message.startswith("short extract: pupils_on_roll is 4, below 80% of the 6 in the last applied")


def test_short_staff_extract(tiny: Extract) -> None:
    message = stop_message(tiny, {"pupils_on_roll": 4, "staff_current": 10})
    assert message.startswith("short extract: staff_current is 3, below 80% of the 10 ")


def test_short_memberships_and_groups_per_kind_stop_with_every_count(tiny: Extract) -> None:
    """A memberships report cut short, or a timetable export missing classes, is as wrong as a short roll."""
    last = {"pupils_on_roll": 4, "staff_current": 3, "memberships": 50, "groups_teaching": 3}
    message = stop_message(tiny, last)
    assert message.startswith("short extract: groups_teaching is 2, below 80% of the 3 in the last applied")
    assert "memberships is 15, below 80% of the 50 in the last applied extract" in message
    assert "groups_registration" not in message, "only the short measures are named"


def test_a_measure_the_last_run_did_not_record_is_not_judged(tiny: Extract) -> None:
    assert not validate(tiny, {"pupils_on_roll": 4, "staff_current": 3, "groups_year": 0}, LIMITS).has_errors


def test_exactly_the_fraction_passes(tiny: Extract) -> None:
    result = validate(tiny, {"pupils_on_roll": 5, "staff_current": 3}, LIMITS)  # 4 == 0.8 * 5
    assert result.counts["pupils_on_roll"] == 4


def test_growth_passes(tiny: Extract) -> None:
    assert not validate(tiny, {"pupils_on_roll": 1, "staff_current": 1}, LIMITS).has_errors


def test_custom_fraction(tiny: Extract) -> None:
    limits = SafetyLimits(min_extract_fraction=0.5)
    assert validate(tiny, {"pupils_on_roll": 8, "staff_current": 3}, limits).counts["pupils_on_roll"] == 4
    with pytest.raises(ValidationStop, match=r"below 50% of the 9 "):
        validate(tiny, {"pupils_on_roll": 9, "staff_current": 3}, limits)


def quarantined(extract: Extract) -> set[tuple[str, str, str, str]]:
    """(entity, record key, field, rule) of every error finding; the run goes on."""
    result = validate(extract, {}, LIMITS)
    errors = result.findings[result.findings["severity"] == "error"]
    return set(zip(errors["entity"], errors["mis_id"], errors["field"], errors["rule"], strict=True))


@pytest.mark.parametrize(
    ("entity", "column"),
    [
        ("pupils", "enrolment_status"),
        ("groups", "academic_year"),
        ("memberships", "role"),
    ],
)
def test_missing_required_value_quarantines_the_record(tiny: Extract, entity: str, column: str) -> None:
    frame = tiny.tables[entity].copy()
    frame.loc[2, column] = pd.NA
    key = "/".join(str(frame.loc[2, k]) for k in ENTITIES[entity].key).replace("<NA>", "")
    assert (entity, key, column, "required_value_missing") in quarantined(replace(tiny, entity, frame))


@pytest.mark.parametrize(
    ("entity", "column", "code"),
    [
        ("staff", "enrolment_status", "Current"),
        ("groups", "kind", "house"),
        ("memberships", "role", "stoodent"),
    ],
)
def test_unknown_codes_quarantine_the_record_not_the_school(
    tiny: Extract, entity: str, column: str, code: str
) -> None:
    frame = tiny.tables[entity].copy()
    frame.loc[0, column] = code
    result = validate(replace(tiny, entity, frame), {}, LIMITS)
    errors = result.findings[result.findings["rule"] == "code_unknown"]
    assert errors[["entity", "field", "row"]].values.tolist() == [[entity, column, 0]]
    echoed = result.findings[["field", "rule", "hint"]].to_csv()
    assert code not in echoed, "a finding names the field, not the value (a membership's key has its role)"
    assert len(result.clean_extract.tables[entity]) < len(tiny.tables[entity]), "the record is held back"
    assert len(result.clean_extract.tables["pupils"]) >= 5, "the rest of the school goes on"


@pytest.mark.parametrize("year", ["2026-27", "2026/2027", "26/27", "2026"])
def test_bad_academic_year_quarantines_the_group(tiny: Extract, year: str) -> None:
    groups = tiny.tables["groups"].copy()
    groups.loc[3, "academic_year"] = year
    found = quarantined(replace(tiny, "groups", groups))
    assert found == {("groups", groups.loc[3, "mis_id"], "academic_year", "academic_year_format")}


def test_all_record_faults_reported_together(tiny: Extract) -> None:
    pupils = tiny.tables["pupils"].copy()
    pupils.loc[1, "mis_id"] = "P1"
    pupils.loc[0, "enrolment_status"] = "suspended"
    extract = replace(tiny, "pupils", pupils)
    groups = tiny.tables["groups"].copy()
    groups.loc[0, "academic_year"] = "2026"
    rules = {rule for *_, rule in quarantined(replace(extract, "groups", groups))}
    assert {"mis_id_duplicate", "code_unknown", "academic_year_format"} <= rules


def test_all_records_with_unknown_status_is_still_a_stop(tiny: Extract) -> None:
    pupils = tiny.tables["pupils"].copy()
    pupils["enrolment_status"] = "gone"
    assert stop_message(replace(tiny, "pupils", pupils)).startswith("empty extract: pupils_on_roll is 0")


# --- quarantine ------------------------------------------------------------------------------------------
