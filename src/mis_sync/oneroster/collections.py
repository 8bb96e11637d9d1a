"""Each OneRoster collection as one SQL select over the directory, restricted to what an app may see.

The mapping (docs/oneroster-api.md): establishments are ``school`` orgs; each academic year of an
establishment is a ``schoolYear`` session with one ``term`` spanning it (the directory keeps no term
dates); registration groups are ``homeroom`` classes and teaching groups ``scheduled`` classes (year
groups become ``grades``, not classes); a course is a subject in a year group (registration groups:
"Registration"); memberships are enrollments; pupils are students, teaching staff teachers,
non-teaching staff aides and parent accounts (contacts with parental responsibility) guardians.

sourcedIds are the directory's own ids, zero-padded so text order is id order (``usr-0000000042``),
or built from natural keys for the derived collections (sessions, courses); never row positions.
Removed records stay, with ``status: tobedeleted``: deleted users and archived groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, String, case, cast, func, literal, select, true, union_all

from mis_sync.directory.schema import Group, Membership, SyncState, User
from mis_sync.oneroster.sqlquery import FieldSpec, latest, padded_id

USER_PREFIX, CLASS_PREFIX, ENROLLMENT_PREFIX = "usr-", "cls-", "enr-"
CLASS_KINDS = ("registration", "teaching")
ROLE_OF_DIRECTORY_ROLE = {
    "pupil": "student",
    "teaching_staff": "teacher",
    "non_teaching_staff": "aide",
    "parent": "guardian",
}


@dataclass(frozen=True)
class Access:
    """What one app may read: its schools (None: every school of the trust) and its field groups."""

    schools: frozenset[str] | None
    field_groups: frozenset[str]

    def school_filter(self, column: Any) -> Any:
        return true() if self.schools is None else column.in_(sorted(self.schools))

    def sees(self, spec: FieldSpec) -> bool:
        return spec.group is None or spec.group in self.field_groups


def _common(**extra: FieldSpec) -> dict[str, FieldSpec]:
    return {
        "sourcedId": FieldSpec("sourcedId", sort_columns=("x_id",)),
        "status": FieldSpec("status"),
        "dateLastModified": FieldSpec("dateLastModified", "datetime"),
        **extra,
    }


def _academic_year_key(column: Any) -> Any:
    return func.replace(column, "/", "-")


# ----------------------------------------------------------------------------------------------- users

USER_FIELDS = _common(
    username=FieldSpec("username", group="username"),
    enabledUser=FieldSpec("enabledUser"),
    givenName=FieldSpec("givenName", group="names"),
    familyName=FieldSpec("familyName", group="names"),
    email=FieldSpec("email", group="email"),
    role=FieldSpec("role"),
    identifier=FieldSpec("identifier", group="identifiers"),
    **{
        "roles.role": FieldSpec("role"),
        "primaryOrg.sourcedId": FieldSpec("school"),
        "grades": FieldSpec("grade"),
    },
)


def users(access: Access) -> Select[Any]:
    role = case(
        *((User.role == directory, oneroster) for directory, oneroster in ROLE_OF_DIRECTORY_ROLE.items()),
        else_="aide",
    )
    query = select(
        User.id.label("x_id"),
        padded_id(literal(USER_PREFIX), User.id).label("sourcedId"),
        case((User.status == "deleted", "tobedeleted"), else_="active").label("status"),
        User.updated_at.label("dateLastModified"),
        User.username.label("username"),
        case((User.status == "active", "true"), else_="false").label("enabledUser"),
        User.first_name.label("givenName"),
        User.last_name.label("familyName"),
        User.email.label("email"),
        role.label("role"),
        User.mis_id.label("identifier"),
        User.person_kind.label("x_kind"),
        User.establishment_id.label("school"),
        User.year_group.label("grade"),
    ).where(access.school_filter(User.establishment_id))
    if "contacts" not in access.field_groups:
        query = query.where(User.role != "parent")
    return query


# --------------------------------------------------------------------------------------------- classes


def course_key(group: Any = Group) -> Any:
    """A course's sourcedId from its natural key: school, academic year, kind, year group, subject."""
    return (
        literal("crs:")
        + group.establishment_id
        + ":"
        + _academic_year_key(group.academic_year)
        + ":"
        + group.kind
        + ":"
        + func.coalesce(group.year_group, "")
        + ":"
        + func.replace(func.coalesce(group.subject, ""), "/", "-")
    )


def school_year_key(group: Any = Group) -> Any:
    return group.establishment_id + ":" + _academic_year_key(group.academic_year)


def term_key(group: Any = Group) -> Any:
    return school_year_key(group) + ":term"


CLASS_FIELDS = _common(
    title=FieldSpec("title"),
    classCode=FieldSpec("classCode"),
    classType=FieldSpec("classType"),
    **{
        "school.sourcedId": FieldSpec("school"),
        "course.sourcedId": FieldSpec("course"),
        "terms.sourcedId": FieldSpec("term"),
        "grades": FieldSpec("grade"),
        "subjects": FieldSpec("subject"),
    },
)


def classes(access: Access) -> Select[Any]:
    return select(
        Group.id.label("x_id"),
        padded_id(literal(CLASS_PREFIX), Group.id).label("sourcedId"),
        case((Group.status == "archived", "tobedeleted"), else_="active").label("status"),
        Group.updated_at.label("dateLastModified"),
        Group.name.label("title"),
        Group.code.label("classCode"),
        case((Group.kind == "registration", "homeroom"), else_="scheduled").label("classType"),
        Group.establishment_id.label("school"),
        Group.year_group.label("grade"),
        Group.subject.label("subject"),
        course_key().label("course"),
        term_key().label("term"),
    ).where(Group.kind.in_(CLASS_KINDS), access.school_filter(Group.establishment_id))


# --------------------------------------------------------------------------------------------- courses

COURSE_FIELDS = {
    "sourcedId": FieldSpec("sourcedId"),
    "status": FieldSpec("status"),
    "dateLastModified": FieldSpec("dateLastModified", "datetime"),
    "title": FieldSpec("title"),
    "org.sourcedId": FieldSpec("school"),
    "schoolYear.sourcedId": FieldSpec("schoolYear"),
    "grades": FieldSpec("grade"),
    "subjects": FieldSpec("subject"),
}


def courses(access: Access) -> Select[Any]:
    """One course per school, academic year, kind, year group and subject of its classes."""
    subject_title = case(
        (Group.kind == "registration", literal("Registration")),
        else_=func.coalesce(Group.subject, "Teaching group"),
    )
    title = subject_title + case(
        (Group.year_group.is_(None), literal("")), else_=literal(", Year ") + Group.year_group
    )
    key = course_key()
    return (
        select(
            key.label("sourcedId"),
            case(
                (func.max(case((Group.status == "active", 1), else_=0)) == 1, "active"), else_="tobedeleted"
            ).label("status"),
            func.max(Group.updated_at).label("dateLastModified"),
            func.min(title).label("title"),
            Group.establishment_id.label("school"),
            func.min(school_year_key()).label("schoolYear"),
            func.min(Group.year_group).label("grade"),
            func.min(Group.subject).label("subject"),
        )
        .where(Group.kind.in_(CLASS_KINDS), access.school_filter(Group.establishment_id))
        .group_by(key, Group.establishment_id)
    )


# ------------------------------------------------------------------------------------ academic sessions

SESSION_FIELDS = {
    "sourcedId": FieldSpec("sourcedId"),
    "status": FieldSpec("status"),
    "dateLastModified": FieldSpec("dateLastModified", "datetime"),
    "title": FieldSpec("title"),
    "type": FieldSpec("type"),
    "startDate": FieldSpec("startDate", "date"),
    "endDate": FieldSpec("endDate", "date"),
    "schoolYear": FieldSpec("schoolYear"),
    "parent.sourcedId": FieldSpec("parent"),
    "org.sourcedId": FieldSpec("school"),
}


def sessions(access: Access) -> Select[Any]:
    """Per school and academic year (1 September to 31 August): a schoolYear and one whole-year term."""
    start_year = cast(func.substr(Group.academic_year, 1, 4), Integer)
    parts = []
    for kind in ("schoolYear", "term"):
        key = school_year_key() if kind == "schoolYear" else term_key()
        title = (
            literal("Academic year ") + Group.academic_year
            if kind == "schoolYear"
            else Group.academic_year + literal(" (whole year)")
        )
        parts.append(
            select(
                key.label("sourcedId"),
                literal("active").label("status"),
                func.max(Group.updated_at).label("dateLastModified"),
                title.label("title"),
                literal(kind).label("type"),
                (func.substr(Group.academic_year, 1, 4) + "-09-01").label("startDate"),
                (cast(start_year + 1, String) + "-08-31").label("endDate"),
                cast(start_year + 1, String).label("schoolYear"),
                (school_year_key() if kind == "term" else literal(None, String)).label("parent"),
                Group.establishment_id.label("school"),
            )
            .where(Group.kind.in_(CLASS_KINDS), access.school_filter(Group.establishment_id))
            .group_by(Group.establishment_id, Group.academic_year)
        )
    combined = union_all(*parts).subquery("sessions")
    return select(*combined.c)


# ----------------------------------------------------------------------------------------- enrollments

ENROLLMENT_FIELDS = {
    "sourcedId": FieldSpec("sourcedId", sort_columns=("x_group", "x_user", "x_role")),
    "status": FieldSpec("status"),
    "dateLastModified": FieldSpec("dateLastModified", "datetime"),
    "role": FieldSpec("role"),
    "primary": FieldSpec("primary"),
    "user.sourcedId": FieldSpec("user"),
    "class.sourcedId": FieldSpec("class"),
    "school.sourcedId": FieldSpec("school"),
}


def enrollments(access: Access) -> Select[Any]:
    role_letter = case((Membership.role == "teacher", "t"), else_="s")
    return (
        select(
            Membership.group_id.label("x_group"),
            Membership.user_id.label("x_user"),
            Membership.role.label("x_role"),
            (
                padded_id(literal(ENROLLMENT_PREFIX), Membership.group_id)
                + "-"
                + padded_id(literal(""), Membership.user_id)
                + "-"
                + role_letter
            ).label("sourcedId"),
            case(
                ((Group.status == "archived") | (User.status == "deleted"), "tobedeleted"), else_="active"
            ).label("status"),
            latest(Membership.added_at, Group.updated_at, User.updated_at).label("dateLastModified"),
            case((Membership.role == "teacher", "teacher"), else_="student").label("role"),
            literal("false").label("primary"),
            padded_id(literal(USER_PREFIX), Membership.user_id).label("user"),
            padded_id(literal(CLASS_PREFIX), Membership.group_id).label("class"),
            Group.establishment_id.label("school"),
        )
        .join(Group, Group.id == Membership.group_id)
        .join(User, User.id == Membership.user_id)
        .where(Group.kind.in_(CLASS_KINDS), access.school_filter(Group.establishment_id))
    )


def parse_enrollment_id(value: str) -> tuple[int, int, str] | None:
    """(group id, user id, directory role) of an enrollment sourcedId, or None if it is not one."""
    if not value.startswith(ENROLLMENT_PREFIX):
        return None
    parts = value[len(ENROLLMENT_PREFIX) :].split("-")
    if len(parts) != 3 or parts[2] not in ("s", "t"):
        return None
    group, user, letter = parts
    if not (len(group) == len(user) == 10 and group.isdigit() and user.isdigit()):
        return None
    return int(group), int(user), "teacher" if letter == "t" else "member"


# ------------------------------------------------------------------------------------------------ orgs


@dataclass(frozen=True)
class School:
    """An establishment as an org: its id, name and LAESTAB from its YAML file."""

    id: str
    name: str
    laestab: str | None
    modified_at: Any


ORG_FIELDS = {
    "sourcedId": FieldSpec("sourcedId"),
    "status": FieldSpec("status"),
    "dateLastModified": FieldSpec("dateLastModified", "datetime"),
    "name": FieldSpec("name"),
    "type": FieldSpec("type"),
    "identifier": FieldSpec("identifier"),
}


def orgs(access: Access, schools: list[School]) -> Select[Any]:
    """The establishments in the directory that the app may see, as ``school`` orgs; names,
    LAESTABs and modification times come from their YAML files (a CASE per field: no table holds them)."""
    from sqlalchemy import DateTime

    establishment = SyncState.establishment_id

    def by_school(attribute: str, type_: Any, default: Any) -> Any:
        known = {s.id: getattr(s, attribute) for s in schools if getattr(s, attribute) is not None}
        if not known:
            return default
        return case(
            *((establishment == key, literal(value, type_)) for key, value in known.items()), else_=default
        )

    return select(
        establishment.label("sourcedId"),
        literal("active").label("status"),
        by_school("modified_at", DateTime(timezone=True), SyncState.last_success_at).label(
            "dateLastModified"
        ),
        by_school("name", String(), establishment).label("name"),
        literal("school").label("type"),
        by_school("laestab", String(), literal(None, String())).label("identifier"),
    ).where(access.school_filter(establishment))
