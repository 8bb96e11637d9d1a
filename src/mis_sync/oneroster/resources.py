"""The OneRoster resources the service offers: for each, its select, fields, JSON builder and id lookup.

``routes`` turns these into paths; keeping them as data means every collection pages, filters, sorts
and restricts by app in exactly the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, false, select

from mis_sync.directory.schema import Membership
from mis_sync.oneroster import collections as c
from mis_sync.oneroster import mapping as m
from mis_sync.oneroster.sqlquery import FieldSpec, Narrowing, parse_sourced_id


@dataclass(frozen=True)
class Resource:
    plural: str
    """The key of a collection's JSON answer (``users``)."""
    singular: str
    """The key of one object's JSON answer (``user``)."""
    label: str
    """How errors name it (``user``)."""
    fields: dict[str, FieldSpec]
    select: Callable[[c.Access, list[c.School]], Select[Any]]
    build: Callable[[Any, m.Refs, c.Access], dict[str, Any]]
    by_id: Callable[[str], Narrowing]
    output_fields: frozenset[str]

    def visible_fields(self, access: c.Access) -> set[str]:
        return {name for name, spec in self.fields.items() if access.sees(spec)}

    def selectable_fields(self, access: c.Access) -> set[str]:
        hidden = {name for name, group in m.USER_FIELD_GROUPS.items() if group not in access.field_groups}
        return set(self.output_fields) - (hidden if self.plural == "users" else set())


def _by_text(value: str) -> Narrowing:
    return lambda columns: columns.sourcedId == value


def _by_number(prefix: str) -> Callable[[str], Narrowing]:
    def narrowing(value: str) -> Narrowing:
        number = parse_sourced_id(value, prefix)
        return (lambda columns: false()) if number is None else (lambda columns: columns.x_id == number)

    return narrowing


def _by_enrollment(value: str) -> Narrowing:
    parsed = c.parse_enrollment_id(value)
    if parsed is None:
        return lambda columns: false()
    group, user, role = parsed
    return lambda columns: and_(columns.x_group == group, columns.x_user == user, columns.x_role == role)


_COMMON = frozenset({"sourcedId", "status", "dateLastModified", "metadata"})

ORGS = Resource(
    "orgs",
    "org",
    "org",
    c.ORG_FIELDS,
    lambda access, schools: c.orgs(access, schools),
    lambda row, refs, access: m.org(row, refs),
    _by_text,
    _COMMON | {"name", "type", "identifier", "children"},
)
SESSIONS = Resource(
    "academicSessions",
    "academicSession",
    "academic session",
    c.SESSION_FIELDS,
    lambda access, schools: c.sessions(access),
    lambda row, refs, access: m.session(row, refs),
    _by_text,
    _COMMON | {"title", "startDate", "endDate", "type", "schoolYear", "org", "children", "parent"},
)
COURSES = Resource(
    "courses",
    "course",
    "course",
    c.COURSE_FIELDS,
    lambda access, schools: c.courses(access),
    lambda row, refs, access: m.course(row, refs),
    _by_text,
    _COMMON | {"title", "schoolYear", "grades", "subjects", "org"},
)
CLASSES = Resource(
    "classes",
    "class",
    "class",
    c.CLASS_FIELDS,
    lambda access, schools: c.classes(access),
    lambda row, refs, access: m.class_(row, refs),
    _by_number(c.CLASS_PREFIX),
    _COMMON | {"title", "classCode", "classType", "grades", "subjects", "course", "school", "terms"},
)
USERS = Resource(
    "users",
    "user",
    "user",
    c.USER_FIELDS,
    lambda access, schools: c.users(access),
    lambda row, refs, access: m.user(row, refs, access.field_groups),
    _by_number(c.USER_PREFIX),
    _COMMON
    | {
        "username",
        "userIds",
        "enabledUser",
        "givenName",
        "familyName",
        "roles",
        "primaryOrg",
        "agents",
        "identifier",
        "email",
        "grades",
    },
)
ENROLLMENTS = Resource(
    "enrollments",
    "enrollment",
    "enrollment",
    c.ENROLLMENT_FIELDS,
    lambda access, schools: c.enrollments(access),
    lambda row, refs, access: m.enrollment(row, refs),
    _by_enrollment,
    _COMMON | {"user", "class", "school", "role", "primary"},
)


# ------------------------------------------------------------------------------ narrowings for nested paths


def of_type(kind: str) -> Narrowing:
    return lambda columns: columns.type == kind


def with_role(role: str) -> Narrowing:
    return lambda columns: columns.role == role


def in_school(school: str) -> Narrowing:
    return lambda columns: columns.school == school


def equals(column: str, value: str) -> Narrowing:
    return lambda columns: columns[column] == value


def classes_of_user(user_id: int, role: str | None = None) -> Narrowing:
    """Classes the user is a member of (``role``: only as ``teacher`` or ``member``)."""
    groups = select(Membership.group_id).where(Membership.user_id == user_id)
    if role is not None:
        groups = groups.where(Membership.role == role)
    return lambda columns: columns.x_id.in_(groups)


def members_of_class(class_id: int, role: str) -> Narrowing:
    people = select(Membership.user_id).where(Membership.group_id == class_id, Membership.role == role)
    return lambda columns: columns.x_id.in_(people)


def enrollments_of_class(class_id: int) -> Narrowing:
    return lambda columns: columns.x_group == class_id


def all_of(*narrowings: Narrowing) -> Narrowing:
    return lambda columns: and_(*(n(columns) for n in narrowings))
