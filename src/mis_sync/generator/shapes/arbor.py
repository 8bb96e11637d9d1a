"""A canonical ``Extract`` rendered as Arbor's REST API (``/rest-v2/{resource}``) serves it.

Why: the Arbor fake (``mis_sync.fakes.arbor``) serves these records, so the Arbor connector is tested by
a round trip at a real school's size. The shape follows mis-sources.md §3.1 and the Arbor PHP SDK, and
is written out here, not derived from ``include/mis_schemas/arbor.yaml``, so a typo in the mapping fails
the round trip instead of being mirrored:

- every record has ``entityType`` and ``href`` (``/rest-v2/{resource}/{id}``); related objects are stubs
  ``{"entityType": …, "href": …}`` and dates ``{"entityType": "date", "date": "2025-09-01 00:00:00"}``
  [V]. Ids are the canonical ids (Arbor's are integers; the connector treats them as opaque);
- a pupil is a Person + Student + AcademicYearEnrolment (start = admission, end = leaving) +
  UkDfe_UpnAssignment(s) (the former UPN as an ended one) + EmailAddress [V names];
- memberships are date-ranged [V]: on-roll pupils and staff have current ones from the academic year's
  start; a leaver keeps an ended AcademicLevelMembership (end = leaving date) and a pre-admission a
  future one (start = admission date), so the connector's "as of today" filter is exercised and every
  pupil's year group can be read back;
- a contact who is a staff member is a Guardian sharing the Staff's Person [V: both link a Person];
  emails are typed ``School`` (pupils), ``Work`` (staff), ``Personal`` (contacts) [U values];
- year, registration and teaching groups are AcademicLevels (``curriculumGrade`` ``Y7``/``R`` [U
  format]), RegistrationForms and AcademicUnits; their teachers AcademicLevelTutors,
  RegistrationFormTutors [S] and AcademicUnitLeads [V]; a unit links its year's AcademicLevel when the
  school has one; forms link none (the connector takes their pupils' year);
- ``qualifiedTeacherStatus`` carries ``is_teaching`` and ``isLegalGuardian`` parental responsibility
  [U]; gender is ``MALE`` / ``FEMALE`` [U]; a relationship type's name is
  ``guardianRelationshipTypeName`` [U].

``revisionId`` is the fake's business (the version in which a record last changed).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mis_sync.model import Extract

RESOURCES: dict[str, str] = {
    "academic-years": "AcademicYear",
    "subjects": "Subject",
    "guardian-relationship-types": "GuardianRelationshipType",
    "academic-levels": "AcademicLevel",
    "registration-forms": "RegistrationForm",
    "academic-units": "AcademicUnit",
    "students": "Student",
    "staff": "Staff",
    "guardians": "Guardian",
    "people": "Person",
    "uk-dfe_upn-assignments": "UkDfe_UpnAssignment",
    "academic-year-enrolments": "AcademicYearEnrolment",
    "email-addresses": "EmailAddress",
    "telephone-numbers": "TelephoneNumber",
    "staff-contracts": "StaffContract",
    "student-guardian-relationships": "StudentGuardianRelationship",
    "academic-level-memberships": "AcademicLevelMembership",
    "registration-form-memberships": "RegistrationFormMembership",
    "academic-unit-enrolments": "AcademicUnitEnrolment",
    "academic-level-tutors": "AcademicLevelTutor",
    "registration-form-tutors": "RegistrationFormTutor",
    "academic-unit-leads": "AcademicUnitLead",
}
"""Resource path → entity type, for every resource the fake serves."""
GROUPS = {"year": "academic-levels", "registration": "registration-forms", "teaching": "academic-units"}
MEMBERS = {
    ("year", "pupil"): ("academic-level-memberships", "student", "academicLevel"),
    ("registration", "pupil"): ("registration-form-memberships", "student", "registrationForm"),
    ("teaching", "pupil"): ("academic-unit-enrolments", "student", "academicUnit"),
    ("year", "teacher"): ("academic-level-tutors", "staff", "academicLevel"),
    ("registration", "teacher"): ("registration-form-tutors", "staff", "registrationForm"),
    ("teaching", "teacher"): ("academic-unit-leads", "staff", "academicUnit"),
}
GENDERS = {"M": "MALE", "F": "FEMALE"}


def stub(resource: str, key: str) -> dict[str, str]:
    return {"entityType": RESOURCES[resource], "href": f"/rest-v2/{resource}/{key}"}


def arbor_date(value: Any) -> dict[str, str] | None:
    if value is None or pd.isna(value):
        return None
    return {"entityType": "date", "date": f"{pd.Timestamp(value):%Y-%m-%d} 00:00:00"}


def grade(year: Any) -> str | None:
    if year is None or pd.isna(year):
        return None
    return f"Y{year}" if str(year).isdigit() else str(year)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[return-value]


class _Out:
    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}

    def add(self, resource: str, key: str, **properties: Any) -> None:
        self.tables[resource][key] = {**stub(resource, key), **properties}


def render_arbor(extract: Extract) -> dict[str, dict[str, dict[str, Any]]]:
    """Resource path → id → record, for every resource in ``RESOURCES``."""
    t, out = extract.tables, _Out()
    years = sorted(set(t["groups"]["academic_year"].dropna()))
    year_start = {}
    for label in years:
        first = int(str(label)[:4])
        year_start[label] = pd.Timestamp(first, 9, 1)
        out.add(
            "academic-years",
            str(first),
            code=label,
            startDate=arbor_date(year_start[label]),
            endDate=arbor_date(pd.Timestamp(first + 1, 8, 31)),
        )

    def year_of(label: Any) -> dict[str, str]:
        return stub("academic-years", str(label)[:4])

    subjects = {name: f"SUB{i + 1}" for i, name in enumerate(sorted(set(t["groups"]["subject"].dropna())))}
    for name, key in subjects.items():
        out.add("subjects", key, subjectName=name)
    kinds = {
        name: f"REL{i + 1}" for i, name in enumerate(sorted(set(t["relationships"]["relationship"].dropna())))
    }
    for name, key in kinds.items():
        out.add("guardian-relationship-types", key, guardianRelationshipTypeName=name)

    groups = _rows(t["groups"])
    level_of_year = {g["year_group"]: g["mis_id"] for g in groups if g["kind"] == "year"}
    kind_of = {g["mis_id"]: g["kind"] for g in groups}
    start_of = {g["mis_id"]: year_start[g["academic_year"]] for g in groups}
    for g in groups:
        common = {"academicYear": year_of(g["academic_year"])}
        if g["kind"] == "year":
            out.add(
                "academic-levels",
                g["mis_id"],
                academicLevelName=g["name"],
                shortName=g["code"],
                curriculumGrade=grade(g["year_group"]),
                **common,
            )
        elif g["kind"] == "registration":
            out.add(
                "registration-forms",
                g["mis_id"],
                registrationFormName=g["name"],
                code=g["code"],
                shortName=g["code"],
                **common,
            )
        else:
            level = level_of_year.get(g["year_group"])
            out.add(
                "academic-units",
                g["mis_id"],
                academicUnitName=g["name"],
                academicUnitCode=g["code"],
                shortName=g["code"],
                subject=stub("subjects", subjects[g["subject"]]) if g["subject"] else None,
                academicLevel=stub("academic-levels", level) if level else None,
                **common,
            )

    staff_person = {}
    for s in _rows(t["staff"]):
        key = s["mis_id"]
        staff_person[key] = key
        _person(out, key, s)
        out.add(
            "staff",
            key,
            person=stub("people", key),
            staffNumber=key,
            timetableAbbreviation=s["staff_code"],
            qualifiedTeacherStatus=s["is_teaching"],
        )
        out.add(
            "staff-contracts",
            f"K-{key}",
            staff=stub("staff", key),
            startDate=arbor_date(s["start_date"]),
            endDate=arbor_date(s["leaving_date"]),
            contractName="Main",
        )
        _email(out, key, s["email"], "Work")

    pupils = _rows(t["pupils"])
    for p in pupils:
        key = p["mis_id"]
        _person(out, key, p)
        out.add("students", key, person=stub("people", key), studentNumber=key)
        out.add(
            "academic-year-enrolments",
            f"Y-{key}",
            student=stub("students", key),
            startDate=arbor_date(p["admission_date"]),
            endDate=arbor_date(p["leaving_date"]),
        )
        start = arbor_date(p["admission_date"])
        if p["former_upn"]:
            out.add(
                "uk-dfe_upn-assignments",
                f"U0-{key}",
                student=stub("students", key),
                upn=p["former_upn"],
                isTemporary=False,
                startDatetime=None,
                endDatetime=start,
            )
        if p["upn"]:
            out.add(
                "uk-dfe_upn-assignments",
                f"U1-{key}",
                student=stub("students", key),
                upn=p["upn"],
                isTemporary=False,
                startDatetime=start,
                endDatetime=None,
            )
        _email(out, key, p["email"], "School")
        level = level_of_year.get(p["year_group"])
        if p["enrolment_status"] != "on_roll" and level is not None:  # an ended or a future membership
            leaver = p["enrolment_status"] == "leaver"
            out.add(
                "academic-level-memberships",
                f"M-{level}-{key}",
                student=stub("students", key),
                academicLevel=stub("academic-levels", level),
                startDate=arbor_date(p["admission_date"]),
                endDate=arbor_date(p["leaving_date"]) if leaver else None,
            )

    for c in _rows(t["contacts"]):
        key, staff_id = c["mis_id"], c["staff_mis_id"]
        person = staff_person.get(staff_id) if staff_id else None
        if person is None:
            person = key
            _person(out, key, c)
        out.add("guardians", key, person=stub("people", person))
        _email(out, person, c["email"], "Personal")
        if c["phone"]:
            out.add(
                "telephone-numbers",
                f"T-{person}",
                numberOwner=stub("people", person),
                telephoneNumberType="Mobile",
                number=c["phone"],
                telephoneNumberRanking=1,
            )

    for link in _rows(t["relationships"]):
        kind = kinds.get(link["relationship"])
        out.add(
            "student-guardian-relationships",
            f"L-{link['pupil_id']}-{link['contact_id']}",
            student=stub("students", link["pupil_id"]),
            guardian=stub("guardians", link["contact_id"]),
            guardianRelationshipType=stub("guardian-relationship-types", kind) if kind else None,
            isLegalGuardian=link["parental_responsibility"],
            emergencyContactPriority=link["priority"],
        )

    members = t["memberships"]
    for group_id, person_id, role in zip(
        members["group_id"], members["person_id"], members["role"], strict=True
    ):
        resource, person_key, group_key = MEMBERS[(kind_of[group_id], role)]
        out.add(
            resource,
            f"M-{group_id}-{person_id}",
            **{
                person_key: stub("students" if role == "pupil" else "staff", person_id),
                group_key: stub(GROUPS[kind_of[group_id]], group_id),
            },
            startDate=arbor_date(start_of[group_id]),
            endDate=None,
        )
    return out.tables


def _person(out: _Out, key: str, row: dict[str, Any]) -> None:
    out.add(
        "people",
        key,
        title=row.get("title"),
        legalFirstName=row["legal_first_name"],
        legalMiddleNames=None,
        legalLastName=row["legal_last_name"],
        preferredFirstName=row["preferred_first_name"],
        preferredLastName=row["preferred_last_name"],
        gender=GENDERS.get(row.get("gender") or "", row.get("gender")),
        dateOfBirth=arbor_date(row.get("date_of_birth")),
    )


def _email(out: _Out, person: str, email: Any, kind: str) -> None:
    if email:
        out.add(
            "email-addresses",
            f"E-{person}-{kind}",
            emailAddressOwner=stub("people", person),
            emailAddressType=kind,
            emailAddress=email,
            dataOrder=1,
        )
