"""Data quality end to end: a generated secondary school with faults injected by the test.

Every injected fault must be reported with the right rule, severity, field and MIS id; quarantined
records must not reach the directory while clean records (warnings included) still apply; breakers
stop empty, short and error-ridden extracts; findings persist as new / still open / fixed; reports and
logs carry no personal data.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect

from mis_sync.config import SafetyLimits
from mis_sync.directory.db import make_engine, migrate
from mis_sync.errors import ValidationStop
from mis_sync.generator import generate_school
from mis_sync.identifiers import UPN_ALPHABET, make_scn, make_upn, upn_check_letter
from mis_sync.model import ENTITIES, Extract
from mis_sync.quality import QualityStop, check_extract, check_extracts
from mis_sync.quality.history import update_history
from mis_sync.quality.report import CSV_NAME, HTML_NAME, findings_csv, render_html, write_report

AS_OF = dt.date(2026, 1, 15)
SEED = 11
Finding = tuple[str, str, str, str, str]
"""(entity, mis_id, field, rule, severity)"""


def _replace(extract: Extract, **tables: pd.DataFrame) -> Extract:
    merged = dict(extract.tables)
    merged.update({name: frame.reset_index(drop=True) for name, frame in tables.items()})
    return Extract(merged, extract.snapshot_at, extract.source)


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> None:
    frame.loc[row, column] = pd.NA if value is None else value


def _as_set(findings: pd.DataFrame) -> set[Finding]:
    columns = ["entity", "mis_id", "field", "rule", "severity"]
    return {tuple(str(v) for v in row) for row in findings[columns].itertuples(index=False)}  # type: ignore[misc]


@dataclass
class Faulted:
    extract: Extract
    expected: set[Finding]
    quarantined_pupils: set[str]
    flagged: dict[str, set[str]]
    """Entity -> MIS ids of records that have only warnings (they must still be applied)."""
    bad_membership: str
    bad_relationship: tuple[str, str]


@pytest.fixture(scope="module")
def school() -> Extract:
    return generate_school("secondary", SEED, AS_OF)


@pytest.fixture(scope="module")
def baseline(school: Extract) -> set[Finding]:
    return _as_set(check_extract(school).findings)


def _candidates(pupils: pd.DataFrame, count: int) -> list[int]:
    """On-roll pupils with a permanent UPN, a registration group and no finding of their own."""
    ok = (
        (pupils["enrolment_status"] == "on_roll")
        & pupils["upn"].notna()
        & pupils["upn"].str[-1].str.isdigit()
        & pupils["registration_group_id"].notna()
        & pupils["scn"].isna()
    )
    return [int(i) for i in np.flatnonzero(ok.fillna(False).to_numpy())[10 : 10 + 7 * count : 7][:count]]


@pytest.fixture(scope="module")
def faulted(school: Extract) -> Faulted:
    t = {name: frame.copy() for name, frame in school.tables.items()}
    pupils, staff, contacts, groups = t["pupils"], t["staff"], t["contacts"], t["groups"]
    memberships, relationships = t["memberships"], t["relationships"]
    a, b, c, d, e, f, g, h, i, j, k, q, r = _candidates(pupils, 13)
    pid = pupils["mis_id"]
    expected: set[Finding] = set()

    def expect(entity: str, mis_id: str, field: str, rule: str, severity: str) -> None:
        expected.add((entity, mis_id, field, rule, severity))

    # errors ---------------------------------------------------------------------------------------
    copy = pupils.loc[[a]].copy()
    copy["upn"] = pd.NA
    expect("pupils", pid[a], "mis_id", "mis_id_duplicate", "error")
    upn_b = pupils.loc[b, "upn"]
    wrong = next(letter for letter in UPN_ALPHABET if letter != upn_b[0])
    _set(pupils, b, "upn", wrong + upn_b[1:])
    expect("pupils", pid[b], "upn", "upn_check_letter", "error")
    body = "999" + pupils.loc[c, "upn"][4:]
    _set(pupils, c, "upn", upn_check_letter(body) + body)
    expect("pupils", pid[c], "upn", "upn_la_code", "error")
    _set(pupils, d, "upn", pupils.loc[d, "upn"][:-1])
    expect("pupils", pid[d], "upn", "upn_length", "error")
    _set(pupils, e, "upn", pupils.loc[f, "upn"])
    expect("pupils", pid[e], "upn", "upn_duplicate", "error")
    expect("pupils", pid[f], "upn", "upn_duplicate", "error")
    _set(pupils, g, "legal_last_name", None)
    expect("pupils", pid[g], "legal_last_name", "legal_name_missing", "error")

    teaching = groups.loc[groups["kind"] == "teaching", "mis_id"].tolist()
    bad_membership = f"{teaching[0]}/P999999/pupil"
    extra_membership = pd.DataFrame([{"group_id": teaching[0], "person_id": "P999999", "role": "pupil"}])
    expect("memberships", bad_membership, "person_id", "unknown_person", "error")
    bad_relationship = ("C999999", str(pid[h]))
    extra_relationship = ENTITIES["relationships"].coerce(
        pd.DataFrame([{"contact_id": "C999999", "pupil_id": pid[h], "relationship": "Aunt"}])
    )
    expect("relationships", "C999999/" + pid[h], "contact_id", "unknown_contact", "error")

    # warnings -------------------------------------------------------------------------------------
    la, estab = pupils.loc[h, "upn"][1:4], pupils.loc[h, "upn"][4:8]
    _set(pupils, h, "upn", make_upn(la, estab, 25, 2250, temporary=True))
    expect("pupils", pid[h], "upn", "upn_temporary", "warning")
    _set(pupils, i, "date_of_birth", pupils.loc[i, "date_of_birth"] - pd.DateOffset(years=2))
    expect("pupils", pid[i], "date_of_birth", "dob_out_of_range", "warning")
    _set(pupils, j, "year_group", "Y7A")
    expect("pupils", pid[j], "year_group", "year_group_unknown", "warning")
    _set(pupils, k, "registration_group_id", None)
    expect("pupils", pid[k], "registration_group_id", "registration_group_missing", "warning")
    _set(pupils, q, "legal_first_name", pupils.loc[q, "legal_first_name"] + "2")
    expect("pupils", pid[q], "legal_first_name", "name_characters", "warning")
    scn = make_scn(9, 12345)
    _set(pupils, r, "scn", scn[:-1] + str((int(scn[-1]) + 1) % 10))
    expect("pupils", pid[r], "scn", "scn_check_digit", "warning")

    coded = np.flatnonzero(
        ((staff["enrolment_status"] == "on_roll") & staff["staff_code"].notna()).to_numpy()
    )
    s = int(coded[3])
    _set(staff, s, "staff_code", None)
    expect("staff", staff.loc[s, "mis_id"], "staff_code", "staff_code_missing", "warning")

    taught = memberships.loc[memberships["role"] == "teacher", "group_id"]
    group = next(g_id for g_id in teaching[5:] if (taught == g_id).any())
    memberships = memberships[~((memberships["group_id"] == group) & (memberships["role"] == "teacher"))]
    expect("groups", group, "teacher", "teaching_group_without_teacher", "warning")

    with_email = np.flatnonzero(contacts["email"].notna().to_numpy())
    n, o = int(with_email[4]), int(with_email[9])
    _set(contacts, n, "email", None)
    expect("contacts", contacts.loc[n, "mis_id"], "email", "contact_email_missing", "warning")
    _set(contacts, o, "email", "no-at-sign.example.com")
    expect("contacts", contacts.loc[o, "mis_id"], "email", "email_invalid", "warning")

    extract = _replace(
        school,
        pupils=pd.concat([pupils, copy]),
        staff=staff,
        contacts=contacts,
        memberships=pd.concat([memberships, ENTITIES["memberships"].coerce(extra_membership)]),
        relationships=pd.concat([relationships, extra_relationship]),
    )
    return Faulted(
        extract=extract,
        expected=expected,
        quarantined_pupils={str(pid[x]) for x in (a, b, c, d, e, f, g)},
        flagged={
            "pupils": {str(pid[x]) for x in (h, i, j, k, q, r)},
            "staff": {str(staff.loc[s, "mis_id"])},
            "contacts": {str(contacts.loc[n, "mis_id"]), str(contacts.loc[o, "mis_id"])},
            "groups": {group},
        },
        bad_membership=bad_membership,
        bad_relationship=bad_relationship,
    )


@pytest.fixture(scope="module")
def result(faulted: Faulted):  # type: ignore[no-untyped-def]
    return check_extract(faulted.extract, country="england", last_counts={}, limits=SafetyLimits())


def personal_values(extract: Extract) -> set[str]:
    """Names, UPNs, SCNs, emails, phones and dates of birth in the extract (as text)."""
    values: set[str] = set()
    for name in ("pupils", "staff", "contacts"):
        frame = extract.tables[name]
        for column in ENTITIES[name].personal_columns:
            series = frame[column].dropna()
            if column == "date_of_birth":
                values |= {f"{d:%Y-%m-%d}" for d in series} | {f"{d:%d/%m/%Y}" for d in series}
            else:
                values |= {str(v) for v in series}
    return values


def words(text: str) -> set[str]:
    return set(re.findall(r"[\w@.'’/+-]+", text))


def leaks(text: str, values: set[str], template: str = "") -> set[str]:
    """Personal values found in ``text`` as whole words (names shorter than 4 characters ignored).
    Words of ``template`` (the same output without record ids: headings, hints) are not leaks: a
    surname such as Field or Hope can also be an English word of the page itself."""
    values = values - words(template)
    present = words(text)
    found = {v for v in values if len(v) >= 4 and v in present}
    return found | {v for v in values if (len(v) >= 9 and v in text)}


# --- the clean school --------------------------------------------------------------------------------


def test_generated_school_has_no_errors(baseline: set[Finding]) -> None:
    assert {f for f in baseline if f[4] == "error"} == set()
    expected_warnings = {"contact_email_missing", "teaching_group_without_teacher", "upn_temporary"}
    assert {f[3] for f in baseline} <= expected_warnings | {
        "staff_code_missing",
        "registration_group_missing",
    }


# --- faults ------------------------------------------------------------------------------------------


def test_every_injected_fault_is_reported_exactly(faulted: Faulted, result, baseline: set[Finding]) -> None:  # type: ignore[no-untyped-def]
    found = _as_set(result.findings)
    missing = faulted.expected - found
    assert not missing, f"not reported: {sorted(missing)}"
    assert found - baseline == faulted.expected
    assert list(result.findings.columns) == ["entity", "mis_id", "field", "rule", "severity", "hint", "row"]
    assert result.findings["hint"].str.len().min() > 40
    assert result.has_errors


def test_quarantined_records_leave_the_extract(faulted: Faulted, result) -> None:  # type: ignore[no-untyped-def]
    clean = result.clean_extract.tables
    original = faulted.extract.tables
    assert set(clean["pupils"]["mis_id"]) & faulted.quarantined_pupils == set()
    assert len(clean["pupils"]) == len(original["pupils"]) - 8  # the duplicate pair + six more
    members = clean["memberships"]
    assert not (members["person_id"].isin(faulted.quarantined_pupils) & (members["role"] == "pupil")).any()
    assert not members["person_id"].eq("P999999").any()
    assert not clean["relationships"]["pupil_id"].isin(faulted.quarantined_pupils).any()
    assert not clean["relationships"]["contact_id"].eq(faulted.bad_relationship[0]).any()
    for name, ids in faulted.flagged.items():
        assert ids <= set(clean[name]["mis_id"]), name
    # every other record is untouched
    assert len(clean["staff"]) == len(original["staff"])
    assert len(clean["contacts"]) == len(original["contacts"])
    assert len(clean["groups"]) == len(original["groups"])
    causes = result.quarantined.groupby(["entity", "cause"]).size().to_dict()
    assert causes[("pupils", "error")] == 8
    assert causes[("memberships", "follows pupils")] > 50
    assert causes[("relationships", "follows pupils")] >= 7
    assert causes[("memberships", "error")] == 1
    assert causes[("relationships", "error")] == 1
    for frame in clean.values():
        assert frame.index.tolist() == list(range(len(frame)))


def test_summary_is_counts_only(faulted: Faulted, result) -> None:  # type: ignore[no-untyped-def]
    summary = result.summary
    assert summary["findings"]["error"] == len([f for f in faulted.expected if f[4] == "error"]) + 1
    assert summary["quarantined"]["pupils.upn_duplicate"] == 2
    assert summary["quarantined"]["pupils.mis_id_duplicate"] == 2
    assert summary["removed"]["pupils"] == 8
    assert summary["counts"]["pupils"] == len(faulted.extract.tables["pupils"])
    assert not leaks(repr(summary), personal_values(faulted.extract))


def test_quarantined_records_do_not_reach_the_directory(faulted: Faulted, result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import demo_config, sync

    engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    migrate(engine)
    _plan, applied = sync(engine, demo_config(), result.clean_extract, "run-1")
    assert applied.applied
    users = pd.read_sql("select person_kind, mis_id from directory_users", engine)
    pupils = set(users.loc[users["person_kind"] == "pupil", "mis_id"])
    assert pupils & faulted.quarantined_pupils == set()
    assert faulted.flagged["pupils"] <= pupils
    assert faulted.flagged["staff"] <= set(users.loc[users["person_kind"] == "staff", "mis_id"])
    engine.dispose()


# --- circuit breakers ----------------------------------------------------------------------------------


def test_empty_extract_stops(school: Extract) -> None:
    empty = _replace(school, **{name: ENTITIES[name].empty_frame() for name in ENTITIES})
    with pytest.raises(ValidationStop, match=r"^empty extract: pupils_on_roll is 0; nothing will be planned"):
        check_extract(empty, last_counts={"pupils_on_roll": 994, "staff_current": 120})


def test_half_size_extract_stops(school: Extract) -> None:
    full = check_extract(school).counts
    pupils = school.tables["pupils"]
    half = _replace(school, pupils=pupils.iloc[: len(pupils) // 2])
    with pytest.raises(ValidationStop) as stop:
        check_extract(half, last_counts=full)
    message = str(stop.value)
    assert message.startswith("short extract: pupils_on_roll is ")
    assert f"below 80% of the {full['pupils_on_roll']} in the last applied extract" in message


def test_error_rate_stops_with_counts_only(school: Extract) -> None:
    pupils = school.tables["pupils"].copy()
    bad = pupils["upn"].notna() & (np.arange(len(pupils)) % 10 == 0)
    pupils.loc[bad, "upn"] = pupils.loc[bad, "upn"].str[:-1]
    with pytest.raises(QualityStop) as stop:
        check_extract(_replace(school, pupils=pupils))
    message = str(stop.value)
    count = int(bad.sum())
    assert f"error rate too high: {count} of {len(pupils)} pupils" in message
    assert "above the 5% limit" in message
    assert not leaks(message, personal_values(school))
    assert isinstance(stop.value, ValidationStop)
    assert (stop.value.findings["rule"] == "upn_length").sum() == count  # for the findings report
    assert stop.value.summary["quarantined"]["pupils.upn_length"] == count
    check_extract(_replace(school, pupils=pupils), limits=SafetyLimits(max_error_rate=0.2))


@pytest.mark.parametrize(
    ("entity", "column", "drop"),
    [("staff", "enrolment_status", True), ("groups", "kind", False), ("pupils", "mis_id", False)],
)
def test_schema_drift_stops(school: Extract, entity: str, column: str, drop: bool) -> None:
    frame = school.tables[entity].copy()
    frame = frame.drop(columns=column) if drop else frame.assign(**{column: pd.NA})
    with pytest.raises(ValidationStop, match=rf"^schema drift: {entity}: required column\(s\) "):
        check_extract(_replace(school, **{entity: frame}))


def test_missing_mis_id_is_quarantined_not_a_stop(school: Extract) -> None:
    staff = school.tables["staff"].copy()
    staff.loc[4, "mis_id"] = pd.NA
    checked = check_extract(_replace(school, staff=staff))
    row = checked.findings[checked.findings["rule"] == "mis_id_missing"]
    assert row[["entity", "mis_id", "severity"]].values.tolist() == [["staff", "(no MIS id: row 5)", "error"]]
    assert len(checked.clean_extract.tables["staff"]) == len(staff) - 1


# --- a trust at once -----------------------------------------------------------------------------------


def test_trust_batch_matches_one_by_one(faulted: Faulted, result, school: Extract) -> None:  # type: ignore[no-untyped-def]
    primary = generate_school("small-primary", 3, AS_OF)
    empty = _replace(school, pupils=ENTITIES["pupils"].empty_frame())
    batch = check_extracts({"faulted": faulted.extract, "primary": primary, "empty": empty})
    assert isinstance(batch["empty"], ValidationStop)
    pd.testing.assert_frame_equal(batch["faulted"].findings, result.findings)  # type: ignore[union-attr]
    pd.testing.assert_frame_equal(batch["primary"].findings, check_extract(primary).findings)  # type: ignore[union-attr]


# --- report and history --------------------------------------------------------------------------------


def test_report_files_hold_no_personal_data(faulted: Faulted, result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = write_report(
        tmp_path, result.findings, establishment_id="demo", run_id="run-1", summary=result.summary
    )
    assert out == {"csv": CSV_NAME, "html": HTML_NAME, "findings": len(result.findings)}
    csv_text = (tmp_path / CSV_NAME).read_text(encoding="utf-8")
    page = (tmp_path / HTML_NAME).read_text(encoding="utf-8")
    values = personal_values(faulted.extract)
    anonymous = result.findings.assign(mis_id="")
    template = findings_csv(anonymous) + render_html(anonymous, establishment_id="demo", run_id="run-1")
    assert not leaks(csv_text, values, template)
    assert not leaks(page, values, template)
    table = pd.read_csv(tmp_path / CSV_NAME, dtype=str, keep_default_na=False)
    assert list(table.columns) == ["entity", "mis_id", "field", "rule", "severity", "status", "hint"]
    assert len(table) == len(result.findings)
    assert "upn_check_letter" in page and "<script" not in page


def test_findings_history_new_open_fixed(result, directory_url: str) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(directory_url)
    migrate(engine)
    assert "directory_quality_findings" in inspect(engine).get_table_names()
    findings = result.findings
    t0 = dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC)

    first = update_history(engine, "demo", "run-1", findings, t0)
    assert len(first) == len(findings) and set(first["status"]) == {"new"}
    again = update_history(engine, "demo", "run-1", findings, t0)  # an Airflow retry of the same run
    assert set(again["status"]) == {"new"}

    second = update_history(engine, "demo", "run-2", findings, t0 + dt.timedelta(days=1))
    assert set(second["status"]) == {"still open"}
    assert (second["first_seen_at"] == pd.Timestamp(t0)).all()

    fixed_key = findings[findings["rule"] == "upn_check_letter"].iloc[0]
    remaining = findings[findings.index != fixed_key.name]
    third = update_history(engine, "demo", "run-3", remaining, t0 + dt.timedelta(days=2))
    fixed = third[third["status"] == "fixed"]
    assert fixed[["entity", "mis_id", "rule", "field"]].values.tolist() == [
        ["pupils", fixed_key["mis_id"], "upn_check_letter", "upn"]
    ]
    assert fixed["hint"].iloc[0] == fixed_key["hint"]
    assert set(third.loc[third["status"] != "fixed", "status"]) == {"still open"}

    back = update_history(engine, "demo", "run-4", findings, t0 + dt.timedelta(days=3))
    assert back.loc[back["rule"] == "upn_check_letter", "status"].tolist() == ["new"]
    assert (update_history(engine, "other-school", "run-1", findings, t0)["status"] == "new").all()
    engine.dispose()


def test_great_expectations_never_logs_values(
    faulted: Faulted, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from mis_sync.quality import runner

    runner._RUNNERS.clear()  # build a fresh GE context so its set-up is captured too
    caplog.set_level(logging.DEBUG)
    checked = check_extract(faulted.extract)
    assert checked.has_errors
    out, err = capfd.readouterr()
    text = "\n".join([out, err, caplog.text, *(str(r.args) for r in caplog.records)])
    assert not leaks(text, personal_values(faulted.extract))
    assert "partial_unexpected" not in text and "unexpected_list" not in text
