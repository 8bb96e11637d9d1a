"""Identity continuity rules (issue 12 item 5): each rule, their order, ambiguity, admin decisions."""

from __future__ import annotations

import pandas as pd
import pytest

from mis_sync.identity.keys import changed_fingerprints, fingerprints
from mis_sync.identity.matching import effective_decisions, match
from mis_sync.model import ENTITIES, Extract

SNAPSHOT = pd.Timestamp("2026-11-10T06:00:00", tz="UTC")
EST = "demo-academy"


def pupil(mis_id: str, **fields: object) -> dict[str, object]:
    return {
        "mis_id": mis_id,
        "legal_first_name": "Zoë",
        "legal_last_name": "O'Brien-Smith",
        "date_of_birth": "2013-10-02",
        "upn": None,
        "former_upn": None,
        "enrolment_status": "on_roll",
        **fields,
    }


def staff(mis_id: str, **fields: object) -> dict[str, object]:
    return {
        "mis_id": mis_id,
        "legal_first_name": "Jane",
        "legal_last_name": "Brown",
        "staff_code": None,
        "email": None,
        "teacher_number": None,
        "enrolment_status": "on_roll",
        **fields,
    }


def school(pupils: list[dict] | None = None, staff_rows: list[dict] | None = None) -> Extract:
    tables = {name: entity.empty_frame() for name, entity in ENTITIES.items()}
    if pupils:
        tables["pupils"] = ENTITIES["pupils"].coerce(pd.DataFrame(pupils))
    if staff_rows:
        tables["staff"] = ENTITIES["staff"].coerce(pd.DataFrame(staff_rows))
    return Extract(tables, SNAPSHOT, "test")


def prints(extract: Extract, ids: list[str]) -> pd.DataFrame:
    found = fingerprints(extract, EST)
    return found[found["mis_id"].isin(ids)].reset_index(drop=True)


def pairs(frame: pd.DataFrame) -> set[tuple[str, str, str]]:
    return set(zip(frame["old_mis_id"], frame["new_mis_id"], frame["rule"], strict=True))


def run(old: list[dict], new: list[dict], *, kind: str = "pupil", present: list[dict] = (), decisions=None):  # type: ignore[no-untyped-def]
    rows = [*old, *new, *present]
    extract = school(rows) if kind == "pupil" else school(staff_rows=rows)
    ids = lambda rs: [r["mis_id"] for r in rs]  # noqa: E731
    return match(
        prints(extract, ids(new)), prints(extract, ids(old)), prints(extract, ids(present)), decisions
    )


UPN_A, UPN_B = "B801200005001", "B380209325001"


def test_upn_exact_is_the_first_rule() -> None:
    found = run([pupil("OLD", upn=UPN_A)], [pupil("NEW", upn=UPN_A.lower(), legal_last_name="Other")])
    assert pairs(found.rekeys) == {("OLD", "NEW", "upn")}
    assert found.ambiguous.empty


def test_former_upn_matches_either_way_round() -> None:
    temporary = "A38020932501A"
    forward = run(
        [pupil("OLD", upn=temporary)], [pupil("NEW", upn=UPN_A, former_upn=temporary, date_of_birth=None)]
    )
    assert pairs(forward.rekeys) == {("OLD", "NEW", "former_upn")}
    backward = run(
        [pupil("OLD", upn=UPN_A, former_upn=temporary)], [pupil("NEW", upn=temporary, date_of_birth=None)]
    )
    assert pairs(backward.rekeys) == {("OLD", "NEW", "former_upn")}


def test_dob_and_normalised_legal_names_when_no_upn_agrees() -> None:
    found = run(
        [pupil("OLD", upn=UPN_A)],
        [pupil("NEW", upn=UPN_B, legal_first_name="Zoe", legal_last_name="OBrien Smith")],
    )
    assert pairs(found.rekeys) == {("OLD", "NEW", "dob_names")}


@pytest.mark.parametrize(
    "change", [{"date_of_birth": "2013-10-03"}, {"legal_first_name": "Zara"}, {"legal_last_name": "Smith"}]
)
def test_dob_names_needs_all_three(change: dict) -> None:
    found = run([pupil("OLD")], [pupil("NEW", **change)])
    assert found.rekeys.empty and found.ambiguous.empty


def test_a_stronger_rule_wins_over_a_weaker_one() -> None:
    """NEW1 is OLD1 by UPN; NEW2 shares OLD1's names and DOB but OLD1 is taken: NEW2 is left alone."""
    found = run(
        [pupil("OLD1", upn=UPN_A)],
        [pupil("NEW1", upn=UPN_A, legal_first_name="Different"), pupil("NEW2", upn=UPN_B)],
    )
    assert pairs(found.rekeys) == {("OLD1", "NEW1", "upn")}
    assert found.ambiguous.empty


def test_one_old_account_and_two_new_records_is_ambiguous() -> None:
    found = run([pupil("OLD")], [pupil("NEW1"), pupil("NEW2")])
    assert found.rekeys.empty
    assert pairs(found.ambiguous) == {("OLD", "NEW1", "dob_names"), ("OLD", "NEW2", "dob_names")}
    assert set(found.ambiguous["reason"]) == {"several_candidates"}


def test_two_old_accounts_and_one_new_record_is_ambiguous() -> None:
    found = run([pupil("OLD1"), pupil("OLD2")], [pupil("NEW")])
    assert found.rekeys.empty and len(found.ambiguous) == 2


def test_a_new_record_of_someone_whose_record_is_still_there_waits_for_an_admin() -> None:
    """Never a second account for a person who has one: a duplicate record in the MIS is held."""
    found = run([], [pupil("NEW", upn=UPN_A)], present=[pupil("STILL", upn=UPN_A)])
    assert found.rekeys.empty
    assert pairs(found.ambiguous) == {("STILL", "NEW", "upn")}
    assert set(found.ambiguous["reason"]) == {"account_still_in_mis"}


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ({"teacher_number": "1234567"}, {"teacher_number": " 1234567 "}, "teacher_number"),
        ({"email": "J.Brown@School.example"}, {"email": "j.brown@school.example"}, "email"),
        ({"staff_code": "JBR"}, {"staff_code": "jbr"}, "staff_code"),
    ],
)
def test_staff_rules(old: dict, new: dict, rule: str) -> None:
    found = run([staff("S-OLD", **old)], [staff("S-NEW", **new)], kind="staff")
    assert pairs(found.rekeys) == {("S-OLD", "S-NEW", rule)}


def test_a_reused_staff_code_with_another_surname_is_not_the_same_person() -> None:
    found = run(
        [staff("S-OLD", staff_code="JBR")],
        [staff("S-NEW", staff_code="JBR", legal_last_name="Bright")],
        kind="staff",
    )
    assert found.rekeys.empty and found.ambiguous.empty


def test_admin_decisions_settle_ambiguity() -> None:
    history = pd.DataFrame(
        {
            "id": [1, 2],
            "person_kind": ["pupil", "pupil"],
            "old_mis_id": ["OLD", "OLD"],
            "new_mis_id": ["NEW2", "NEW1"],
            "decision": ["distinct", "same"],
            "decided_at": pd.to_datetime(["2026-11-11", "2026-11-11"], utc=True),
        }
    )
    decisions = effective_decisions(history)
    found = run([pupil("OLD")], [pupil("NEW1"), pupil("NEW2")], decisions=decisions)
    assert pairs(found.rekeys) == {("OLD", "NEW1", "admin")}
    assert found.ambiguous.empty

    only_distinct = effective_decisions(history.iloc[:1])
    found = run([pupil("OLD")], [pupil("NEW1"), pupil("NEW2")], decisions=only_distinct)
    assert pairs(found.rekeys) == {("OLD", "NEW1", "dob_names")}, "NEW2 ruled out: the pair is unique"

    cleared = pd.concat(
        [
            history,
            history.iloc[[1]].assign(id=3, decision="clear", decided_at=pd.Timestamp("2026-11-12", tz="UTC")),
        ]
    )
    assert list(effective_decisions(cleared)["decision"]) == ["distinct"]


def test_fingerprints_hold_no_values_and_change_only_when_the_person_does() -> None:
    extract = school([pupil("P1", upn=UPN_A)])
    found = fingerprints(extract, EST)
    assert set(found["rule"]) == {"upn", "dob_names"}
    text = found.to_csv()
    assert UPN_A not in text and "2013-10-02" not in text and "brien" not in text.lower()
    assert changed_fingerprints(found, found).empty
    other = fingerprints(school([pupil("P1", upn=UPN_B)]), EST)
    assert set(changed_fingerprints(other, found)["mis_id"]) == {"P1"}
    assert (fingerprints(extract, "another-school")["fingerprint"] != found["fingerprint"]).all()
