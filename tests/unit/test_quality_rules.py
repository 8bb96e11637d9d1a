"""Data-quality rules: derived check columns, suites, breakers, quarantine and the HTML report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mis_sync.config import SafetyLimits
from mis_sync.errors import ValidationStop
from mis_sync.identifiers import UPN_ALPHABET, VALID_LA_CODES, make_upn
from mis_sync.model import ENTITIES, Extract
from mis_sync.quality.breakers import check_error_rate, check_schema
from mis_sync.quality.quarantine import quarantine
from mis_sync.quality.record_faults import record_faults
from mis_sync.quality.report import render_html
from mis_sync.quality.rules import (
    derive_checks,
    derive_keys,
    email_is_valid,
    invalid_emails,
    name_has_bad_characters,
    name_problems,
)
from mis_sync.quality.suites import SuiteError, build_suite, load_specs, rule_table
from mis_sync.quality.years import academic_year_start, dob_out_of_range, known_year_groups

AS_OF = dt.date(2026, 1, 15)  # academic year 2025/26, the year of the reference tables
SNAPSHOT = pd.Timestamp("2026-01-15T06:00:00", tz="UTC")

# The issue's list, exactly: rule -> severity.
SEVERITIES = {
    "mis_id_missing": "error",
    "mis_id_duplicate": "error",
    "legal_name_missing": "error",
    "upn_length": "error",
    "upn_characters": "error",
    "upn_check_letter": "error",
    "upn_la_code": "error",
    "upn_duplicate": "error",
    "unknown_group": "error",
    "unknown_person": "error",
    "unknown_pupil": "error",
    "unknown_contact": "error",
    "duplicate_row": "error",
    "upn_temporary": "warning",
    "former_upn_invalid": "warning",
    "dob_out_of_range": "warning",
    "year_group_unknown": "warning",
    "registration_group_missing": "warning",
    "registration_group_unknown": "warning",
    "staff_code_missing": "warning",
    "teaching_group_without_teacher": "warning",
    "contact_email_missing": "warning",
    "email_invalid": "warning",
    "name_characters": "warning",
    "scn_check_digit": "warning",
    "scn_format": "warning",
}


# --- names and emails ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Zoë", "Ødegaard", "Łukasz", "D’Souza", "O'Brien", "Smith-Jones", "St. John", "Ó Súilleabháin",
     "ʻOhana", "Zoe\u0308", "Nguyễn", "-", "Llŷr", "İlkay", "Straße", "李", "Алексей"],
)  # fmt: skip
def test_names_uk_data_allows(name: str) -> None:
    assert not name_has_bad_characters(name)


@pytest.mark.parametrize(
    "name", ["J0hn", "Anne (twin)", "Tom/Jerry", "Sam@", "Ann_", "DO NOT USE!", "Bo\tb", "½"]
)
def test_names_with_other_characters(name: str) -> None:
    assert name_has_bad_characters(name)


@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=30))
@settings(max_examples=60, deadline=None)
def test_vectorised_name_check_matches_the_scalar_one(values: list[str | None]) -> None:
    series = pd.Series(values, dtype="string")
    expected = [v is not None and name_has_bad_characters(v) for v in values]
    assert name_problems(series).tolist() == expected


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("a.b@example.com", True),
        ("o'brien@example.co.uk", True),
        ("x+y@sub.example.org", True),
        ("22asmith2@pupils.example.sch.uk", True),
        ("no-at.example.com", False),
        ("a@b", False),
        ("a b@example.com", False),
        ("a..b@example.com", False),
        (".a@example.com", False),
        ("a.@example.com", False),
        ("a@example..com", False),
        ("a@-example.com", False),
        ("zoë@example.com", False),
        ("a@example.c0m", False),
        ("a@@example.com", False),
        ("x" * 65 + "@example.com", False),
    ],
)
def test_email_validity(email: str, valid: bool) -> None:
    assert email_is_valid(email) is valid
    assert invalid_emails(pd.Series([email, None], dtype="string")).tolist() == [not valid, False]


# --- dates of birth ------------------------------------------------------------------------------------


def _dob(values: list[tuple[str, str]], country: str = "england", as_of: dt.date = AS_OF) -> list[bool]:
    dob = pd.Series(pd.to_datetime([d for d, _ in values]), dtype="datetime64[s]")
    years = pd.Series([y for _, y in values], dtype="string")
    return dob_out_of_range(dob, years, country=country, as_of=as_of).tolist()  # type: ignore[arg-type]


def test_england_dob_table_boundaries() -> None:
    # Year 7 in 2025/26: born 2013-09-01 .. 2014-08-31 (uk-data-rules 4.3)
    cases = [
        (("2013-09-01", "7"), False),
        (("2014-08-31", "7"), False),
        (("2012-09-01", "7"), False),  # one year older: retained / taught out of year group
        (("2014-09-01", "7"), False),  # one year younger
        (("2012-08-31", "7"), True),  # two years older
        (("2015-09-01", "7"), True),  # two years younger
        (("2022-09-01", "N1"), False),
        (("2021-08-31", "N1"), True),
        (("2020-09-01", "R"), False),
        (("2007-09-01", "13"), False),
        (("2005-08-31", "13"), True),
        (("2026-03-01", "R"), True),  # in the future
        (("2024-06-01", "N1"), False),  # under two, but in N1
        (("1999-01-01", "X"), True),  # over 25, whatever the year group
        (("2010-01-01", "X"), False),  # X has no cohort
        (("2010-01-01", "Y7"), False),  # unknown code: flagged by year_group_unknown instead
    ]
    assert _dob([c for c, _ in cases]) == [flagged for _, flagged in cases]


def test_scotland_dob_and_session_start() -> None:
    # P1 in 2025/26: born 2020-03-01 .. 2021-02-28; S1: 2013-03-01 .. 2014-02-28 (uk-data-rules 5)
    cases = [
        (("2020-03-01", "P1"), False),
        (("2021-02-28", "P1"), False),
        (("2019-10-01", "P1"), False),  # deferred entry: one stage lower
        (("2019-02-28", "P1"), True),
        (("2013-03-01", "S1"), False),
        (("2011-02-28", "S1"), True),
        (("2013-03-01", "7"), False),  # English code in Scotland: no cohort, flagged as unknown
    ]
    assert _dob([c for c, _ in cases], "scotland") == [flagged for _, flagged in cases]
    assert academic_year_start(dt.date(2025, 8, 20), "scotland") == 2025
    assert academic_year_start(dt.date(2025, 8, 20), "england") == 2024
    assert academic_year_start(dt.date(2025, 9, 1), "wales") == 2025


def test_known_year_groups_per_country() -> None:
    england = known_year_groups("england")
    assert {"N1", "N2", "R", "1", "13", "14", "X"} <= england
    assert {"P1", "S1", "Y7", "0"}.isdisjoint(england)
    assert known_year_groups("scotland") == {f"P{k}" for k in range(1, 8)} | {f"S{k}" for k in range(1, 7)}


# --- derived columns on a small extract ----------------------------------------------------------------


def canonical(name: str, rows: list[dict]) -> pd.DataFrame:
    return ENTITIES[name].coerce(pd.DataFrame(rows) if rows else pd.DataFrame({"_": []}))


UPN_1 = make_upn("380", "4001", 22, 1)
UPN_2 = make_upn("380", "4001", 22, 2)
TEMP = make_upn("380", "4001", 25, 1, temporary=True)


def small(**overrides: list[dict]) -> Extract:
    pupil = {
        "legal_first_name": "Zoë",
        "legal_last_name": "Ødegaard",
        "date_of_birth": "2013-10-01",
        "year_group": "7",
        "registration_group_id": "G1",
        "enrolment_status": "on_roll",
    }
    rows: dict[str, list[dict]] = {
        "pupils": [
            {**pupil, "mis_id": "P1", "upn": UPN_1, "email": "zo@pupils.example.sch.uk", "former_upn": TEMP},
            {**pupil, "mis_id": "P2", "upn": UPN_1[:-1], "former_upn": "A" + UPN_1[1:]},
            {**pupil, "mis_id": "P3", "upn": UPN_2, "registration_group_id": None},
            {**pupil, "mis_id": "P4", "upn": UPN_2, "enrolment_status": "leaver",
             "registration_group_id": None},
            {**pupil, "mis_id": "P5", "upn": TEMP, "legal_last_name": None, "registration_group_id": "G9"},
            {**pupil, "mis_id": None, "upn": None, "email": "bad@", "scn": "123456780"},
        ],
        "staff": [
            {"mis_id": "S1", "legal_first_name": "Jane", "staff_code": "JBR", "enrolment_status": "on_roll"},
            {"mis_id": "S2", "legal_first_name": "J4ne", "enrolment_status": "on_roll"},
            {"mis_id": "S3", "legal_first_name": "Old", "enrolment_status": "leaver"},
        ],
        "contacts": [{"mis_id": "C1", "email": "ann@example.com"}, {"mis_id": "C1"}],
        "groups": [
            {"mis_id": "G1", "kind": "registration", "name": "7A", "academic_year": "2025/26"},
            {"mis_id": "G2", "kind": "teaching", "name": "7A/Ma1", "academic_year": "2025/26"},
            {"mis_id": "G3", "kind": "teaching", "name": "7A/En1", "academic_year": "2025/26"},
        ],
        "memberships": [
            {"group_id": "G2", "person_id": "P1", "role": "pupil"},
            {"group_id": "G2", "person_id": "S1", "role": "teacher"},
            {"group_id": "G2", "person_id": "S1", "role": "teacher"},
            {"group_id": "G3", "person_id": "S9", "role": "teacher"},
            {"group_id": "G9", "person_id": "P1", "role": "pupil"},
            {"group_id": "G3", "person_id": "S1", "role": "pupil"},
        ],
        "relationships": [{"contact_id": "C1", "pupil_id": "P1"}, {"contact_id": "C2", "pupil_id": "P8"}],
    }  # fmt: skip
    rows.update(overrides)
    return Extract({name: canonical(name, r) for name, r in rows.items()}, SNAPSHOT, "test")


def flagged(frame: pd.DataFrame, column: str) -> list[int]:
    values = frame[column]
    hit = values.notna() if values.dtype != bool else values
    return [int(i) for i in np.flatnonzero(hit.to_numpy())]


def codes(series: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in series]


def test_derived_pupil_columns() -> None:
    pupils = derive_checks(small(), as_of=AS_OF)["pupils"]
    assert codes(pupils["upn_problem"]) == [None, "length", None, None, None, None]
    assert flagged(pupils, "upn_duplicate") == [2, 3]
    assert flagged(pupils, "upn_temporary") == [4]
    # P1's temporary former UPN is fine; P2's has a wrong check letter
    assert codes(pupils["former_upn_problem"]) == [None, "check_letter", None, None, None, None]
    assert flagged(pupils, "legal_last_name_missing") == [4]
    assert flagged(pupils, "registration_group_missing") == [2]  # the leaver P4 needs none
    assert flagged(pupils, "registration_group_unknown") == [4]
    assert flagged(pupils, "email_invalid") == [5]
    assert codes(pupils["scn_problem"]) == [None] * 5 + ["check_digit"]
    assert flagged(pupils, "mis_id_duplicate") == []
    assert codes(pupils["mis_id"]) == ["P1", "P2", "P3", "P4", "P5", None]


def test_new_authority_upns_pass_and_former_upns_are_checked() -> None:
    """Issue 13 item 14: UPNs from Dorset, BCP, the Northamptonshires, Cumberland and Westmorland &
    Furness were "upn_la_code" errors (the pupils quarantined); a former UPN was never checked."""
    new_la = [make_upn(la, "2001", 24, 5) for la in ("838", "839", "940", "941", "942", "943")]
    body = "999200005001"  # check letter right, LA 999 on no list (uk-data-rules 1.4)
    rows = [{"mis_id": f"P{i}", "upn": upn, "enrolment_status": "on_roll", "former_upn": upn}
            for i, upn in enumerate(new_la)]  # fmt: skip
    rows.append({"mis_id": "PX", "upn": UPN_1, "enrolment_status": "on_roll", "former_upn": "T" + body})
    pupils = derive_checks(small(pupils=rows), as_of=AS_OF)["pupils"]
    assert codes(pupils["upn_problem"]) == [None] * 7
    assert codes(pupils["former_upn_problem"]) == [None] * 6 + ["la_code"]


def test_derived_frames_hold_no_personal_columns() -> None:
    frames = derive_checks(small(), as_of=AS_OF)
    for name, frame in frames.items():
        assert set(frame.columns).isdisjoint(ENTITIES[name].personal_columns), name
        assert frame["_row"].tolist() == list(range(len(small().tables[name])))


def test_derived_references_and_duplicates() -> None:
    frames = derive_checks(small(), as_of=AS_OF)
    assert flagged(frames["staff"], "staff_code_missing") == [1]  # not the leaver
    assert flagged(frames["staff"], "legal_first_name_characters") == [1]
    assert flagged(frames["contacts"], "mis_id_duplicate") == [0, 1]
    assert flagged(frames["contacts"], "email_missing") == [1]
    assert flagged(frames["groups"], "teaching_group_without_teacher") == [2]  # its teacher is unknown
    members = frames["memberships"]
    assert flagged(members, "duplicate_row") == [2]  # the first of a pair is kept
    assert flagged(members, "unknown_group") == [4]
    assert flagged(members, "unknown_person") == [3, 5]  # unknown staff; a staff id as a pupil
    assert flagged(frames["relationships"], "unknown_pupil") == [1]
    assert flagged(frames["relationships"], "unknown_contact") == [1]


def test_record_keys() -> None:
    extract = small()
    assert derive_keys("pupils", extract.tables["pupils"], np.array([0, 5])).tolist() == [
        "P1",
        "(no MIS id: row 6)",
    ]
    assert derive_keys("memberships", extract.tables["memberships"])[0] == "G2/P1/pupil"
    assert derive_keys("relationships", extract.tables["relationships"]).tolist() == ["C1/P1", "C2/P8"]


_changes = st.tuples(
    st.sampled_from(sorted(VALID_LA_CODES)),
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 999),
    st.integers(0, 12),
    st.sampled_from(list(UPN_ALPHABET) + list("0123456789")),
)


@given(st.lists(_changes, min_size=1, max_size=25))
@settings(max_examples=25, deadline=None)
def test_any_single_character_change_is_caught(changes: list[tuple[str, int, int, int, int, str]]) -> None:
    """Through ``derive_checks``: a generated UPN is clean; one changed character is a UPN error, except
    a last digit swapped for the letter of the same value (0/A … 9/K), which makes a valid temporary
    UPN and is flagged as one (uk-data-rules 1.2; see test_identifiers)."""
    rows, changed = [], []
    for number, (la, estab, year, serial, position, replacement) in enumerate(changes):
        upn = make_upn(la, f"{estab:04d}", year, serial)
        other = upn[:position] + replacement + upn[position + 1 :]
        rows += [{"mis_id": f"A{number}", "upn": upn, "enrolment_status": "on_roll"},
                 {"mis_id": f"B{number}", "upn": other, "enrolment_status": "on_roll"}]  # fmt: skip
        changed.append(other != upn)
    pupils = derive_checks(small(pupils=rows), as_of=AS_OF)["pupils"]
    problems, temporary = codes(pupils["upn_problem"]), pupils["upn_temporary"].tolist()
    for number, differs in enumerate(changed):
        assert problems[2 * number] is None and not temporary[2 * number]
        caught = problems[2 * number + 1] is not None or temporary[2 * number + 1]
        assert caught == differs


# --- suites --------------------------------------------------------------------------------------------


def test_suites_load_and_match_the_issue_severities() -> None:
    table = rule_table()
    assert set(table["entity"]) == set(ENTITIES)
    assert dict(zip(table["rule"], table["severity"], strict=True)) == SEVERITIES
    assert (table["hint"].str.len() > 60).all()
    frames = derive_checks(small(), as_of=AS_OF)
    for entity, column in table[["entity", "column"]].itertuples(index=False):
        assert column in frames[entity].columns, (entity, column)
    fields = set(table["field"]) - {"teacher", "group_id+person_id+role", "contact_id+pupil_id"}
    canonical_fields = {c for e in ENTITIES.values() for c in e.column_names}
    assert fields <= canonical_fields


def test_suites_build_in_great_expectations() -> None:
    for spec in load_specs().values():
        assert len(build_suite(spec).expectations) == len(spec.expectations)


def _write_suites(folder: Path, broken: dict) -> None:
    for name, spec in load_specs().items():
        (folder / f"{name}.json").write_text(json.dumps(spec.document), encoding="utf-8")
    (folder / "staff.json").write_text(json.dumps(broken), encoding="utf-8")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"name": "staff"}, "expected an object with an 'expectations' list"),
        ({"name": "staff", "expectations": [{"type": "expect_column_values_to_not_be_null",
          "kwargs": {"column": "mis_id"}, "meta": {"rule": "x", "severity": "error", "field": "f"}}]},
         "meta needs non-empty rule, severity, field, hint"),
        ({"name": "staff", "expectations": [{"type": "expect_column_values_to_not_be_null",
          "kwargs": {"column": "mis_id"},
          "meta": {"rule": "x", "severity": "info", "field": "f", "hint": "h"}}]},
         "severity must be one of error, warning"),
    ],
)  # fmt: skip
def test_malformed_suites_are_rejected(tmp_path: Path, broken: dict, message: str) -> None:
    _write_suites(tmp_path, broken)
    with pytest.raises(SuiteError, match=message):
        load_specs(tmp_path)


def test_suite_ge_cannot_build_is_rejected(tmp_path: Path) -> None:
    meta = {"rule": "x", "severity": "error", "field": "f", "hint": "h"}
    expectation = {"type": "expect_no_such_thing", "kwargs": {"column": "mis_id"}, "meta": meta}
    _write_suites(tmp_path, {"name": "staff", "expectations": [expectation]})
    with pytest.raises(SuiteError, match=r"staff\.json"):
        build_suite(load_specs(tmp_path)["staff"])


# --- breakers ------------------------------------------------------------------------------------------


def test_schema_drift_names_table_and_column() -> None:
    extract = small()
    tables = dict(extract.tables)
    tables["memberships"] = tables["memberships"].drop(columns=["role"])
    with pytest.raises(ValidationStop, match=r"memberships: required column\(s\) missing: role"):
        check_schema(Extract(tables, SNAPSHOT, "test"))
    tables = dict(extract.tables)
    tables["groups"] = tables["groups"].assign(academic_year=pd.NA)
    with pytest.raises(
        ValidationStop, match=r"groups: required column\(s\) empty in all 3 rows: academic_year"
    ):
        check_schema(Extract(tables, SNAPSHOT, "test"))
    check_schema(small(relationships=[]))  # an empty table is not drift


def test_record_faults_name_record_and_field_never_the_value() -> None:
    assert record_faults(small()).empty  # P6 without an MIS id is the GE rule mis_id_missing, not here
    extract = small(staff=[{"mis_id": "S1", "enrolment_status": "current"}, {"mis_id": "S2"}])
    found = record_faults(extract)
    assert set(zip(found["field"], found["rule"], found["row"], strict=True)) == {
        ("enrolment_status", "code_unknown", 0),
        ("enrolment_status", "required_value_missing", 1),
    }
    assert set(found["severity"]) == {"error"} and set(found["entity"]) == {"staff"}
    assert "current" not in found.to_csv(), "the code itself is not echoed"


def test_unreadable_values_are_record_faults_one_finding_per_field() -> None:
    pupils = ENTITIES["pupils"].coerce(
        pd.DataFrame(
            {
                "mis_id": ["P1", "P2", "P3"],
                "date_of_birth": ["2013-01-02", "31/02/2013", "not known"],
                "admission_date": ["2024-09-01", "2024-09-01", "someday"],
                "enrolment_status": ["on_roll"] * 3,
            }
        )
    )
    assert pupils["unreadable_fields"].tolist()[1:] == ["date_of_birth", "date_of_birth,admission_date"]
    assert pupils["date_of_birth"].isna().tolist() == [False, True, True], "the unreadable value is dropped"
    extract = small()
    extract = Extract({**extract.tables, "pupils": pupils}, extract.snapshot_at, extract.source)
    found = record_faults(extract)
    found = found[found["rule"] == "value_unreadable"]
    assert sorted(zip(found["row"], found["field"], strict=True)) == [
        (1, "date_of_birth"),
        (2, "admission_date"),
        (2, "date_of_birth"),
    ]


def _errors(entity: str, rows: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"entity": entity, "severity": "error", "row": rows, "rule": "r"})


def test_error_rate_threshold() -> None:
    extract = small(relationships=[{"contact_id": "C1", "pupil_id": "P1"}] * 100)
    limits = SafetyLimits(max_error_rate=0.05)
    check_error_rate(_errors("relationships", [1, 2, 3, 4, 5]), extract, limits)  # 5 %: not above
    check_error_rate(_errors("pupils", [0, 1, 2, 3]), extract, limits)  # 4 of 6, fewer than 5 records
    with pytest.raises(
        ValidationStop, match=r"^error rate too high: 6 of 100 relationships \(6.0%\) have errors"
    ):
        check_error_rate(_errors("relationships", [1, 2, 3, 4, 5, 6, 6]), extract, limits)
    assert SafetyLimits().max_error_rate == 0.05
    with pytest.raises(ValueError, match="max_error_rate"):
        SafetyLimits(max_error_rate=1.5)


# --- quarantine ----------------------------------------------------------------------------------------


def test_quarantine_cascades_and_keeps_warnings() -> None:
    extract = small()
    findings = pd.DataFrame(
        [
            ("pupils", "P1", "upn", "upn_check_letter", "error", 0),
            ("pupils", "P3", "registration_group_id", "registration_group_missing", "warning", 2),
            ("pupils", "P5", "registration_group_id", "registration_group_unknown", "warning", 4),
            ("groups", "G3", "mis_id", "mis_id_duplicate", "error", 2),
            ("contacts", "C1", "mis_id", "mis_id_duplicate", "error", 0),
            ("contacts", "C1", "mis_id", "mis_id_duplicate", "error", 1),
        ],
        columns=["entity", "mis_id", "field", "rule", "severity", "row"],
    )
    clean, removed = quarantine(extract, findings)
    assert clean.tables["pupils"]["mis_id"].tolist()[:4] == ["P2", "P3", "P4", "P5"]
    assert pd.isna(clean.tables["pupils"].loc[3, "registration_group_id"])  # P5's unknown group cleared
    members = clean.tables["memberships"]
    assert members[["group_id", "person_id"]].values.tolist() == [["G2", "S1"], ["G2", "S1"]]
    assert clean.tables["relationships"]["contact_id"].tolist() == ["C2"]
    assert clean.tables["contacts"].empty
    assert removed.groupby(["entity", "cause"]).size().to_dict() == {
        ("contacts", "error"): 2,
        ("groups", "error"): 1,
        ("memberships", "follows groups"): 2,
        ("memberships", "follows pupils"): 2,
        ("pupils", "error"): 1,
        ("relationships", "follows pupils"): 1,
    }
    assert extract.tables["pupils"].loc[4, "registration_group_id"] == "G9"  # input untouched


# --- report --------------------------------------------------------------------------------------------


def test_html_escapes_everything() -> None:
    findings = pd.DataFrame(
        [
            (
                "pupils",
                "<script>alert(1)</script>",
                "upn",
                "upn_check_letter",
                "error",
                "Fix <b>it</b> & go",
                0,
                "new",
            )
        ],
        columns=["entity", "mis_id", "field", "rule", "severity", "hint", "row", "status"],
    )
    page = render_html(findings, establishment_id="a&b", run_id='run"1')
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Fix &lt;b&gt;it&lt;/b&gt; &amp; go" in page
    assert "a&amp;b" in page and "run&quot;1" in page
    assert "1 new, 0 still open, 0 fixed" in page
    empty = render_html(findings.iloc[0:0], establishment_id="x", run_id="r")
    assert "No findings" in empty


def test_great_expectations_import_does_not_flood_info_logs() -> None:
    """GE's docs registry logs ~214 lines at INFO on import: never into task logs or the CLI's stdout."""
    import subprocess
    import sys

    script = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout);"
        "from mis_sync.quality.runner import SuiteRunner; import great_expectations"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "Skipping registering" not in result.stdout + result.stderr
