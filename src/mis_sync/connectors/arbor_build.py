"""Arbor's normalised records → canonical rows (the connector, ``connectors/arbor.py``, does transport).

Why apart: the same builder serves a full read (every pupil, staff member, contact and group) and a
delta (only the owners whose records changed, with all of *their* records re-read), so a delta row is
built exactly as a full read builds it. The builder "hydrates" each Student / Staff / Guardian with the
objects its stubs point at (``person``, ``enrolment``…) and computes the ``_`` keys the mapping in
``include/mis_schemas/arbor.yaml`` names; everything date-ranged is judged as of ``today``:

- a membership, contract or enrolment is in force when it has started (or has no start) and has no end
  or ends after today [V: "filter startDate before today and endDate after today or NULL"];
- a pupil's admission date is their earliest AcademicYearEnrolment start, their leaving date the latest
  enrolment's end, their status pre-admission (admission after today), leaver (leaving on or before
  today) or on roll; staff likewise from StaffContracts [V: current = started, no end];
- a pupil's year group is the curriculumGrade of the AcademicLevel of their current membership, else of
  the latest ended one (leavers), else of the earliest future one (pre-admissions);
- the UPN is the assignment without an end (the latest started), the former UPN the latest ended one;
- an email is the lowest ``dataOrder`` address of a type ``codes.email_use`` gives the entity [U types].

Group ids are ``<resource>/<id>`` (``academic-units/12``): Arbor numbers each resource separately.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

from mis_sync.academic_year import academic_years_of_terms
from mis_sync.connectors.api_support import records_frame
from mis_sync.connectors.mapping import SourceMapping, apply_mapping
from mis_sync.connectors.wonde import frame
from mis_sync.errors import ExtractError

Record = dict[str, Any]

GROUPS = {
    "levels": ("year", "academic-levels"),
    "forms": ("registration", "registration-forms"),
    "units": ("teaching", "academic-units"),
}
MEMBERS: dict[str, tuple[str, str, str, str]] = {
    "level_members": ("academicLevel", "academic-levels", "student", "pupil"),
    "form_members": ("registrationForm", "registration-forms", "student", "pupil"),
    "unit_members": ("academicUnit", "academic-units", "student", "pupil"),
    "level_tutors": ("academicLevel", "academic-levels", "staff", "teacher"),
    "form_tutors": ("registrationForm", "registration-forms", "staff", "teacher"),
    "unit_leads": ("academicUnit", "academic-units", "staff", "teacher"),
}
"""Membership endpoint → (group property, group resource, person property, canonical role)."""
GROUP_NAMES = {
    "levels": ("academicLevelName", "shortName"),
    "forms": ("registrationFormName", "code"),
    "units": ("academicUnitName", "academicUnitCode"),
}
RELATIONSHIP_TYPE_NAME = "guardianRelationshipTypeName"
"""The GuardianRelationshipType property holding its name [U]."""


def href_id(value: Any) -> str | None:
    """``{"href": "/rest-v2/people/12"}`` or ``"/rest-v2/people/12"`` → ``"12"``."""
    href = value.get("href") if isinstance(value, dict) else value
    return str(href).rstrip("/").rsplit("/", 1)[-1] if href else None


def day(value: Any) -> str | None:
    """An Arbor date object (or a date string) → ``YYYY-MM-DD``; None when absent."""
    text = value.get("date") if isinstance(value, dict) else value
    return str(text)[:10] if text else None


def in_force(record: Record, today: str, start: str = "startDate", end: str = "endDate") -> bool:
    began, ends = day(record.get(start)), day(record.get(end))
    return (began is None or began <= today) and (ends is None or ends > today)


def by_owner(records: Iterable[Record], prop: str) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        owner = href_id(record.get(prop))
        if owner is not None:
            out[owner].append(record)
    return out


def status(start: str | None, end: str | None, today: str) -> str:
    if end is not None and end <= today:
        return "leaver"
    if start is not None and start > today:
        return "pre_admission"
    return "on_roll"


class ArborBuilder:
    """Canonical tables from one read's records (``raw``: endpoint name → records)."""

    def __init__(
        self,
        raw: dict[str, list[Record]],
        mapping: SourceMapping,
        today: pd.Timestamp,
        country: str = "england",
    ) -> None:
        self.country = country
        self.raw, self.mapping, self.today = raw, mapping, f"{today:%Y-%m-%d}"
        self.people = {href_id(p): p for p in raw.get("people", [])}
        self.emails = by_owner(raw.get("emails", []), "emailAddressOwner")
        uses = mapping.codes.get("email_use", {})
        self.email_use = {k.strip().lower(): v for k, v in uses.items()}
        levels = raw.get("levels", [])
        self.level_grade = {href_id(r): r.get("curriculumGrade") for r in levels}

    def person(self, record: Record, where: str) -> Record:
        key = href_id(record.get("person"))
        found = self.people.get(key)
        if found is None:
            raise ExtractError(
                f"Arbor {where}: record {href_id(record)}: its person ({key}) was not returned by people"
            )
        return found

    def email(self, person: str | None, entity: str) -> Any:
        mine = [
            e
            for e in self.emails.get(person or "", [])
            if self.email_use.get(str(e.get("emailAddressType") or "").strip().lower()) == entity
        ]
        mine.sort(key=lambda e: (e.get("dataOrder") is None, e.get("dataOrder") or 0))
        return mine[0].get("emailAddress") if mine else None

    # ---- people -------------------------------------------------------------------------------------
    def pupils(self, students: list[Record]) -> list[Record]:
        enrolments = by_owner(self.raw.get("enrolments", []), "student")
        upns = by_owner(self.raw.get("upns", []), "student")
        levels = by_owner(self.raw.get("level_members", []), "student")
        forms = by_owner(self.raw.get("form_members", []), "student")
        out = []
        for s in students:
            sid = href_id(s) or ""
            person = self.person(s, "students")
            spans = sorted(enrolments.get(sid, []), key=lambda e: day(e.get("startDate")) or "")
            admitted = min((d for e in spans if (d := day(e.get("startDate")))), default=None)
            leaving = day(spans[-1].get("endDate")) if spans else None
            current = [u for u in upns.get(sid, []) if not day(u.get("endDatetime"))]
            ended = [u for u in upns.get(sid, []) if day(u.get("endDatetime"))]
            current.sort(key=lambda u: day(u.get("startDatetime")) or "")
            ended.sort(key=lambda u: day(u.get("endDatetime")) or "")
            form = next((m for m in forms.get(sid, []) if in_force(m, self.today)), None)
            out.append(
                {
                    **s,
                    "_id": sid,
                    "person": person,
                    "_upn": current[-1].get("upn") if current else None,
                    "_former_upn": ended[-1].get("upn") if ended else None,
                    "_year_group": self.level_grade.get(self.year_level(levels.get(sid, []))),
                    "_registration_group_id": None
                    if form is None
                    else f"registration-forms/{href_id(form.get('registrationForm'))}",
                    "_admission_date": admitted,
                    "_leaving_date": leaving,
                    "_enrolment_status": status(admitted, leaving, self.today),
                    "_email": self.email(href_id(person), "pupils"),
                }
            )
        return out

    def year_level(self, memberships: list[Record]) -> str | None:
        current = [m for m in memberships if in_force(m, self.today)]
        ended = sorted(
            (m for m in memberships if (day(m.get("endDate")) or "9") <= self.today),
            key=lambda m: day(m.get("endDate")) or "",
        )
        future = sorted(
            (m for m in memberships if (day(m.get("startDate")) or "") > self.today),
            key=lambda m: day(m.get("startDate")) or "",
        )
        chosen = current[:1] or ended[-1:] or future[:1]
        return href_id(chosen[0].get("academicLevel")) if chosen else None

    def staff(self, staff: list[Record]) -> list[Record]:
        contracts = by_owner(self.raw.get("contracts", []), "staff")
        out = []
        for s in staff:
            sid = href_id(s) or ""
            person = self.person(s, "staff")
            spans = sorted(contracts.get(sid, []), key=lambda c: day(c.get("startDate")) or "")
            started = min((d for c in spans if (d := day(c.get("startDate")))), default=None)
            leaving = day(spans[-1].get("endDate")) if spans else None
            out.append(
                {
                    **s,
                    "_id": sid,
                    "person": person,
                    "_start_date": started,
                    "_leaving_date": leaving,
                    "_enrolment_status": status(started, leaving, self.today),
                    "_email": self.email(href_id(person), "staff"),
                }
            )
        return out

    def contacts(self, guardians: list[Record], staff_index: list[Record]) -> list[Record]:
        phones = by_owner(self.raw.get("phones", []), "numberOwner")
        staff_of_person = {href_id(s.get("person")): href_id(s) for s in staff_index}
        out = []
        for g in guardians:
            person = self.person(g, "guardians")
            key = href_id(person)
            numbers = sorted(phones.get(key or "", []), key=lambda n: n.get("telephoneNumberRanking") or 0)
            out.append(
                {
                    **g,
                    "_id": href_id(g),
                    "person": person,
                    "_email": self.email(key, "contacts"),
                    "_phone": numbers[0].get("number") if numbers else None,
                    "_staff_mis_id": staff_of_person.get(key),
                }
            )
        return out

    # ---- groups -------------------------------------------------------------------------------------
    def groups(self) -> list[Record]:
        years = self.raw.get("academic_years", [])
        frame = records_frame(years, ["href", "startDate.date", "endDate.date"])
        start, end = (frame[f"{k}.date"].astype("string").str.slice(0, 10) for k in ("startDate", "endDate"))
        labels = academic_years_of_terms(start, end, self.country)
        label_of = dict(zip((href_id(h) for h in frame["href"]), labels, strict=True))
        subjects = {href_id(r): r.get("subjectName") for r in self.raw.get("subjects", [])}
        out = []
        for name, (kind, resource) in GROUPS.items():
            name_key, code_key = GROUP_NAMES[name]
            for r in self.raw.get(name, []):
                level = href_id(r.get("academicLevel")) if name == "units" else href_id(r)
                out.append(
                    {
                        "_id": f"{resource}/{href_id(r)}",
                        "_kind": kind,
                        "_name": r.get(name_key),
                        "_code": r.get(code_key) or r.get("shortName"),
                        "_subject": subjects.get(href_id(r.get("subject"))) if name == "units" else None,
                        "_year_group": self.level_grade.get(level) if name != "forms" else None,
                        "_academic_year": label_of.get(href_id(r.get("academicYear"))),
                    }
                )
        return out

    def memberships(self, members: dict[str, list[Record]]) -> list[Record]:
        out = []
        for name, records in members.items():
            group_prop, resource, person_prop, role = MEMBERS[name]
            for m in records:
                if in_force(m, self.today):
                    out.append(
                        {
                            "_group_id": f"{resource}/{href_id(m.get(group_prop))}",
                            "_person_id": href_id(m.get(person_prop)),
                            "_role": role,
                        }
                    )
        return out

    def relationships(self, pupils: set[str]) -> list[Record]:
        names = {href_id(r): r.get(RELATIONSHIP_TYPE_NAME) for r in self.raw.get("relationship_types", [])}
        return [
            {
                **r,
                "_contact_id": href_id(r.get("guardian")),
                "_pupil_id": href_id(r.get("student")),
                "_relationship": names.get(href_id(r.get("guardianRelationshipType"))),
            }
            for r in self.raw.get("links", [])
            if href_id(r.get("student")) in pupils
        ]

    # ---- all together -------------------------------------------------------------------------------
    def tables(
        self,
        students: list[Record],
        staff: list[Record],
        guardians: list[Record],
        staff_index: list[Record],
        members: dict[str, list[Record]],
    ) -> dict[str, pd.DataFrame]:
        """Canonical tables for these people (their relationships too), every group, and the current
        memberships among ``members`` (membership endpoint → records)."""
        m = self.mapping
        pupil_ids = {href_id(s) or "" for s in students}
        frames = {
            "pupils": frame(self.pupils(students), m, "pupils"),
            "staff": frame(self.staff(staff), m, "staff"),
            "contacts": frame(self.contacts(guardians, staff_index), m, "contacts"),
            "groups": frame(self.groups(), m, "groups"),
            "memberships": frame(self.memberships(members), m, "memberships"),
            "relationships": frame(self.relationships(pupil_ids), m, "relationships"),
        }
        where = {
            "pupils": "Arbor students (people, enrolments, UPNs, memberships)",
            "staff": "Arbor staff (people, staff-contracts)",
            "contacts": "Arbor guardians (people, email-addresses, telephone-numbers)",
            "groups": "Arbor academic-levels / registration-forms / academic-units",
            "memberships": "Arbor memberships, tutors and leads",
            "relationships": "Arbor student-guardian-relationships",
        }
        return apply_mapping(frames, m, where)
