"""Write a canonical ``Extract`` as a OneRoster 1.1 bulk CSV folder (``manifest``, ``orgs``,
``academicSessions``, ``courses``, ``classes``, ``users``, ``enrollments``, ``demographics``).

Why: the OneRoster CSV connector (``mis_sync.connectors.oneroster_csv``) is then tested by a round trip
at a real school's size, not only against the hand-written fixture. Header names and code values
(roles, class types, ``enabledUser``, sex) come from ``include/mis_schemas/oneroster_1_1.yaml``; the
full header rows and the dialect (comma, minimal quoting, LF line ends, UTF-8 without a BOM, ISO
dates, empty ``status`` / ``dateLastModified`` in a bulk file) are those of ``tests/fixtures/oneroster-1.1``.

Shape, as the OneRoster REST writer (``oneroster_rest``): pupils ``student`` with ``grades`` (NC year),
``agentSourcedIds`` (their contacts by priority) and their UPN in ``userIds`` as ``{UPN:…}``; staff
``teacher`` or ``administrator`` with their staff code as ``identifier``; contacts ``parent`` /
``relative`` / ``guardian`` (``contact_role``); leavers ``enabledUser=false``; registration groups as
``homeroom`` classes, teaching groups ``scheduled``, each with its own course and a ``schoolYear``
session per academic year; birth dates and sex in ``demographics``.

What OneRoster 1.1 CSV cannot carry: pre-admissions (a feed lists people on roll; leavers stay,
disabled), year groups (no class type for them) and their memberships, preferred names, titles, UPNs
(the connector does not read ``userIds``), former UPNs, SCNs, admission and leaving dates, staff start
dates, a contact's staff link, parental responsibility and priority; a relationship is the contact's
one role, not the link's own wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from mis_sync.connectors.sds import load_format
from mis_sync.generator.shapes.oneroster_rest import contact_roles
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

SOURCE = "oneroster_1_1"
SCHOOL_ID = "school"
LINE_END = "\n"

HEADERS: dict[str, tuple[str, ...]] = {
    "manifest": ("propertyName", "value"),
    "orgs": ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"),
    "academic_sessions": (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
        "schoolYear",
    ),
    "courses": (
        "sourcedId",
        "status",
        "dateLastModified",
        "schoolYearSourcedId",
        "title",
        "courseCode",
        "grades",
        "orgSourcedId",
        "subjects",
        "subjectCodes",
    ),
    "classes": (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
    ),
    "users": (
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ),
    "enrollments": (
        "sourcedId",
        "status",
        "dateLastModified",
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ),
    "demographics": (
        "sourcedId",
        "status",
        "dateLastModified",
        "birthDate",
        "sex",
        "americanIndianOrAlaskaNative",
        "asian",
        "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander",
        "white",
        "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity",
        "countryOfBirthCode",
        "stateOfBirthAbbreviation",
        "cityOfBirth",
        "publicSchoolResidenceStatus",
    ),
}
"""The header rows of ``tests/fixtures/oneroster-1.1``, by the connector's ``files`` key."""

COMPUTED = frozenset({"birthDate", "sex", "registration_group_id", "enrolment_status"})
"""Mapped ``users`` columns the connector joins in or computes, not headers of users.csv."""

BULK_FILES = ("academicSessions", "classes", "courses", "demographics", "enrollments", "orgs", "users")
ABSENT_FILES = ("categories", "classResources", "courseResources", "lineItems", "resources", "results")


def write_oneroster_csv(extract: Extract, out_dir: Path) -> list[Path]:
    """Write the OneRoster 1.1 bulk files into ``out_dir``; return their paths."""
    spec = load_format(SOURCE)
    codes = spec.mapping.codes
    c = spec.column
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = extract.tables
    file = {key: source.file for key, source in spec.files.items()}
    written: list[Path] = []

    def write(key: str, cells: Mapping[str, pd.Series | str], rows: int, entity: str | None = None) -> None:
        computed = COMPUTED if key == "users" else ()
        header = with_mapped(HEADERS[key], spec, key, entity, computed)
        written.append(write_csv(out_dir / file[key], header, cells, rows, line_end=LINE_END))

    properties = [("manifest.version", "1.0"), ("oneroster.version", "1.1")]
    properties += [(f"file.{name}", "bulk") for name in sorted(BULK_FILES)]
    properties += [(f"file.{name}", "absent") for name in ABSENT_FILES]
    properties += [("source.systemName", "MIS Sync generator"), ("source.systemCode", "misync")]
    manifest = {
        c("manifest", "property"): pd.Series([p for p, _ in properties]),
        c("manifest", "value"): pd.Series([v for _, v in properties]),
    }
    write("manifest", manifest, len(properties))
    org = {c("orgs", "id"): SCHOOL_ID, "name": "Generated School", "type": "school"}
    write("orgs", org, 1)

    # Users: pupils and staff not pre-admitted, and every contact.
    pupils = t["pupils"][t["pupils"]["enrolment_status"] != "pre_admission"].reset_index(drop=True)
    staff = t["staff"][t["staff"]["enrolment_status"] != "pre_admission"].reset_index(drop=True)
    contacts = t["contacts"].reset_index(drop=True)
    kind, enabled = codes["person_kind"], codes["enabled_status"]
    enabled_user = {status: raw_code(enabled, status) for status in ("on_roll", "leaver")}
    teacher = raw_code(codes["teaching_role"], "true")
    other_staff = raw_code({k: v for k, v in kind.items() if k != teacher}, "staff", prefer="administrator")
    links = t["relationships"].sort_values(["pupil_id", "priority"])
    agents = links.groupby("pupil_id", sort=False)["contact_id"].agg(",".join)
    skip = ("year_group", "gender", "date_of_birth", "registration_group_id", "enrolment_status")
    frames = []
    for frame, entity in ((pupils, "pupils"), (staff, "staff"), (contacts, "contacts")):
        cells = pd.DataFrame(mapped(frame, spec, entity, skip=skip))
        if entity == "pupils":
            cells[c("users", "role")] = raw_code(kind, "pupil")
            cells[c("users", "grades")] = year_label(frame["year_group"], codes["year_group"])
            cells[c("users", "agents")] = frame["mis_id"].map(agents)
            cells["userIds"] = ("{UPN:" + frame["upn"] + "}").astype("string")
        elif entity == "staff":
            cells[c("users", "role")] = frame["is_teaching"].map({True: teacher, False: other_staff})
        else:
            cells[c("users", "role")] = frame["mis_id"].map(contact_roles(extract))
        if entity != "contacts":
            cells[c("users", "enabled")] = frame["enrolment_status"].map(enabled_user)
        else:
            cells[c("users", "enabled")] = enabled_user["on_roll"]
        frames.append(cells)
    users = pd.concat(frames, ignore_index=True)
    if users[c("users", "role")].str.lower().map(kind).isna().any():
        raise ValueError("a written role is not in the oneroster_1_1 person_kind code table")
    users["orgSourcedIds"] = SCHOOL_ID
    users["username"] = users[spec.mapping.source_column("pupils", "email")]
    write("users", {k: users[k] for k in users.columns}, len(users), "pupils")

    sex = {canonical: raw_code(codes["gender"], canonical) for canonical in ("M", "F")}
    people = pd.concat([pupils, staff], ignore_index=True)
    demographics = {
        c("demographics", "id"): people["mis_id"],
        c("demographics", "birth_date"): iso_date(people["date_of_birth"]),
        c("demographics", "sex"): people["gender"].map(sex),
    }
    write("demographics", demographics, len(people))

    # Classes: registration groups as homerooms, teaching groups scheduled; year groups have no type.
    class_type = {
        "registration": raw_code(codes["class_kind"], "registration"),
        "teaching": raw_code(codes["class_kind"], "teaching"),
    }
    groups = t["groups"][t["groups"]["kind"].isin(class_type)].reset_index(drop=True)
    years = pd.Series(sorted(set(groups["academic_year"].dropna())), dtype="string")
    start, end = term_dates(years)
    session_ids = "AY" + years.str.slice(0, 4)
    sessions = {
        c("academic_sessions", "id"): session_ids,
        "title": years,
        "type": "schoolYear",
        c("academic_sessions", "start"): iso_date(start),
        c("academic_sessions", "end"): iso_date(end),
        "schoolYear": (years.str.slice(0, 4).astype(int) + 1).astype("string"),
    }
    write("academic_sessions", sessions, len(years))

    session_of = "AY" + groups["academic_year"].str.slice(0, 4)
    grades = year_label(groups["year_group"], codes["year_group"])
    course_ids = "C-" + groups["mis_id"]
    courses = {
        c("courses", "id"): course_ids,
        "schoolYearSourcedId": session_of,
        "title": groups["name"],
        "courseCode": groups["code"],
        "grades": grades,
        "orgSourcedId": SCHOOL_ID,
        "subjects": groups["subject"],
    }
    write("courses", courses, len(groups))
    classes = {
        **mapped(groups, spec, "groups", skip=("year_group",)),
        c("classes", "grades"): grades,
        "courseSourcedId": course_ids,
        c("classes", "type"): groups["kind"].map(class_type),
        "schoolSourcedId": SCHOOL_ID,
        c("classes", "terms"): session_of,
    }
    write("classes", classes, len(groups), "groups")

    members = t["memberships"]
    served = set(users[c("users", "id")])
    members = members[members["group_id"].isin(set(groups["mis_id"])) & members["person_id"].isin(served)]
    member_role = {canonical: raw_code(codes["member_role"], canonical) for canonical in ("pupil", "teacher")}
    enrollments = {
        "sourcedId": "E-" + members["group_id"] + "-" + members["person_id"] + "-" + members["role"],
        c("enrollments", "class"): members["group_id"],
        "schoolSourcedId": SCHOOL_ID,
        c("enrollments", "user"): members["person_id"],
        c("enrollments", "role"): members["role"].map(member_role),
        "primary": "false",
    }
    write("enrollments", enrollments, len(members), "memberships")

    stamp_files(written, extract)
    return written
