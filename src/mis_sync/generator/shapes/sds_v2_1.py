"""Write a canonical ``Extract`` as a Microsoft SDS v2.1 CSV folder (``orgs``, ``users``, ``roles``,
``classes``, ``enrollments``, ``academicSessions``, ``courses``, ``demographics``, ``relationships``).

Why: the SDS v2.1 connector (``mis_sync.connectors.sds``) is then tested by a round trip at a real
school's size. Header names and code values (roles, sex, relationship roles) come from
``include/mis_schemas/sds_v2_1.yaml``; the full header rows and the dialect (comma, minimal quoting,
CRLF, UTF-8 without a BOM, ISO dates, ``TRUE`` for ``isPrimary``) are those of Microsoft's sample in
``tests/data/microsoft-sds-samples/sds-v2.1``. ``userFlags.csv`` is optional and not written.

Shape: one ``school`` org; every person is a ``users`` row with one ``roles`` row (pupils ``student``
with their NC year as ``grade``; teaching staff ``teacher``, other staff ``staff``; contacts
``parent`` / ``relative`` / ``guardian`` from their first relationship, as the OneRoster writers do);
pupils' and staff's birth dates (and pupils' sex) in ``demographics``; each teaching group a class
with its own course (carrying the class code and subject) and a ``schoolYear`` session per academic
year; ``relationships`` with each link's role (parent / relative / guardian).

What SDS v2.1 cannot carry (so the writer leaves it out or the connector reads it back differently):

- pre-admissions and leavers (the connector reads every user with a role as on roll);
- year and registration groups (every class is read as teaching) and so their memberships, a pupil's
  registration group and a class's year group;
- pupils' preferred names, UPN, former UPN, SCN, admission and leaving dates;
- staff titles, preferred names, staff codes, start and leaving dates;
- contacts' titles, preferred names and staff link;
- a relationship's own wording (only parent, relative or guardian), parental responsibility and priority.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from mis_sync.connectors.sds import load_format
from mis_sync.generator.shapes.oneroster_rest import contact_role, contact_roles
from mis_sync.generator.shapes.sds_uk import (
    iso_date,
    mapped,
    raw_code,
    stamp_files,
    term_dates,
    with_mapped,
    write_csv,
    year_label,
)
from mis_sync.model import Extract

SOURCE = "sds_v2_1"
SCHOOL_ID = "school"

HEADERS: dict[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "name", "type", "parentSourcedId"),
    "users": (
        "sourcedId",
        "username",
        "givenName",
        "familyName",
        "password",
        "activeDirectoryMatchId",
        "email",
        "phone",
        "sms",
    ),
    "roles": (
        "userSourcedId",
        "orgSourcedId",
        "role",
        "sessionSourcedId",
        "grade",
        "isPrimary",
        "roleStartDate",
        "roleEndDate",
    ),
    "classes": ("sourcedId", "orgSourcedId", "title", "sessionSourcedIds", "courseSourcedId"),
    "enrollments": ("classSourcedId", "userSourcedId", "role"),
    "academic_sessions": ("sourcedId", "title", "type", "schoolYear", "startDate", "endDate"),
    "courses": ("sourcedId", "orgSourcedId", "title", "code", "schoolYearSourcedId", "subject", "grade"),
    "demographics": (
        "userSourcedId",
        "sex",
        "birthDate",
        "birthCity",
        "birthState",
        "birthCountry",
        "ethnicityCodes",
        "raceCodes",
    ),
    "relationships": ("userSourcedId", "relationshipUserSourcedId", "relationshipRole"),
}
"""The header rows of Microsoft's ``sds-v2.1`` sample, by the connector's ``files`` key."""

COMPUTED = frozenset({"grade", "sex", "birthDate"})
"""Mapped ``users`` columns the connector joins in from roles.csv / demographics.csv, not users.csv."""


def _session_id(academic_year: pd.Series) -> pd.Series:
    return "AY" + academic_year.astype("string").str.slice(0, 4)


def write_sds_v2_1(extract: Extract, out_dir: Path) -> list[Path]:
    """Write the SDS v2.1 files into ``out_dir``; return their paths."""
    spec = load_format(SOURCE)
    codes = spec.mapping.codes
    c = spec.column
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = extract.tables
    file = {key: source.file for key, source in spec.files.items()}
    written: list[Path] = []

    def header(key: str, entity: str | None = None) -> list[str]:
        computed = COMPUTED if key == "users" else ()
        return with_mapped(HEADERS[key], spec, key, entity, computed)

    def write(key: str, cells: Mapping[str, pd.Series | str], rows: int, entity: str | None = None) -> None:
        written.append(write_csv(out_dir / file[key], header(key, entity), cells, rows))

    org = {c("orgs", "id"): SCHOOL_ID, "name": "Generated School", c("orgs", "type"): "school"}
    write("orgs", org, 1)

    pupils = t["pupils"][t["pupils"]["enrolment_status"] == "on_roll"].reset_index(drop=True)
    staff = t["staff"][t["staff"]["enrolment_status"] == "on_roll"].reset_index(drop=True)
    contacts = t["contacts"].reset_index(drop=True)
    users = pd.concat(
        [
            pd.DataFrame(mapped(frame, spec, entity, skip=("year_group", "gender", "date_of_birth")))
            for frame, entity in ((pupils, "pupils"), (staff, "staff"), (contacts, "contacts"))
        ],
        ignore_index=True,
    )
    users["username"] = users[spec.mapping.source_column("pupils", "email")]
    write("users", {k: users[k] for k in users.columns}, len(users), "pupils")

    person_kind, teaching = codes["person_kind"], codes["teaching_role"]
    teacher = raw_code(teaching, "true")
    other_staff = raw_code(
        {k: v for k, v in person_kind.items() if k not in teaching}, "staff", prefer="staff"
    )
    roles_of_contacts = pd.Series(contact_roles(extract)).reindex(contacts["mis_id"]).reset_index(drop=True)
    role_values = [
        pd.Series(raw_code(person_kind, "pupil"), index=pupils.index, dtype="string"),
        staff["is_teaching"].map({True: teacher, False: other_staff}).fillna(other_staff).astype("string"),
        roles_of_contacts.astype("string"),
    ]
    grades = [
        year_label(pupils["year_group"], codes["year_group"]),
        pd.Series("", index=staff.index, dtype="string"),
        pd.Series("", index=contacts.index, dtype="string"),
    ]
    roles = pd.DataFrame(
        {
            c("roles", "user"): pd.concat(
                [pupils["mis_id"], staff["mis_id"], contacts["mis_id"]], ignore_index=True
            ),
            c("roles", "role"): pd.concat(role_values, ignore_index=True),
            c("roles", "grade"): pd.concat(grades, ignore_index=True),
        }
    )
    check = roles[c("roles", "role")].str.lower().map(person_kind)
    if check.isna().any():
        raise ValueError("a written role is not in the sds_v2_1 person_kind code table")
    roles["orgSourcedId"] = SCHOOL_ID
    roles[c("roles", "is_primary")] = "TRUE"
    write("roles", {k: roles[k] for k in roles.columns}, len(roles))

    sex = {canonical: raw_code(codes["gender"], canonical) for canonical in ("M", "F")}
    people = pd.concat([pupils, staff], ignore_index=True)
    demographics = {
        c("demographics", "user"): people["mis_id"],
        spec.mapping.source_column("pupils", "gender"): people["gender"].map(sex),
        c("demographics", "birth_date"): iso_date(people["date_of_birth"]),
    }
    write("demographics", demographics, len(people))

    groups = t["groups"][t["groups"]["kind"] == "teaching"].reset_index(drop=True)
    years = pd.Series(sorted(set(groups["academic_year"].dropna())), dtype="string")
    start, end = term_dates(years)
    sessions = {
        c("academic_sessions", "id"): _session_id(years),
        "title": years,
        "type": "schoolYear",
        "schoolYear": (years.str.slice(0, 4).astype(int) + 1).astype("string"),
        c("academic_sessions", "start"): iso_date(start),
        c("academic_sessions", "end"): iso_date(end),
    }
    write("academic_sessions", sessions, len(years))

    course_ids = "C-" + groups["mis_id"]
    courses = {
        c("courses", "id"): course_ids,
        "orgSourcedId": SCHOOL_ID,
        "title": groups["name"],
        c("courses", "code"): groups["code"],
        c("courses", "school_year"): _session_id(groups["academic_year"]),
        c("courses", "subject"): groups["subject"],
    }
    write("courses", courses, len(groups))
    classes = {
        **mapped(groups, spec, "groups"),
        "orgSourcedId": SCHOOL_ID,
        c("classes", "sessions"): _session_id(groups["academic_year"]),
        c("classes", "course"): course_ids,
    }
    write("classes", classes, len(groups), "groups")

    members = t["memberships"]
    served = set(pupils["mis_id"]) | set(staff["mis_id"])
    members = members[members["group_id"].isin(set(groups["mis_id"])) & members["person_id"].isin(served)]
    member_role = {canonical: raw_code(codes["member_role"], canonical) for canonical in ("pupil", "teacher")}
    enrollments = {
        c("enrollments", "class"): members["group_id"],
        c("enrollments", "user"): members["person_id"],
        c("enrollments", "role"): members["role"].map(member_role),
    }
    write("enrollments", enrollments, len(members), "memberships")

    links = t["relationships"][t["relationships"]["pupil_id"].isin(set(pupils["mis_id"]))]
    relationships = {
        c("relationships", "pupil"): links["pupil_id"],
        c("relationships", "contact"): links["contact_id"],
        spec.mapping.source_column("relationships", "relationship"): links["relationship"]
        .fillna("")
        .map(contact_role),
    }
    write("relationships", relationships, len(links), "relationships")

    stamp_files(written, extract)
    return written
