"""Rows of the collections' selects (``collections``) as OneRoster 1.2 JSON objects.

Pure functions of one row: no database, no request. A user's personal fields are dropped here when
the app was not granted their field group, so no route can leak them by forgetting to.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import orjson

from mis_sync.oneroster.errors import bad_request

USER_FIELD_GROUPS = {
    "givenName": "names",
    "familyName": "names",
    "middleName": "names",
    "username": "username",
    "email": "email",
    "identifier": "identifiers",
    "userIds": "identifiers",
}


@lru_cache(maxsize=8192)
def timestamp(value: Any) -> str | None:
    """ISO 8601 in UTC with milliseconds, as the spec's examples write dateLastModified (cached: a
    sync stamps thousands of rows with the same time)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    # SQLite hands back the directory's UTC times without an offset.
    return value.isoformat(timespec="milliseconds") + "Z"


_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
"""Characters a path segment never escapes: the directory's own sourcedIds are made of them."""


def _quoted(sourced_id: str) -> str:
    return sourced_id if _URL_SAFE.fullmatch(sourced_id) else quote(sourced_id, safe="")


class Refs:
    """GUIDRefs (``href``, ``sourcedId``, ``type``) under the service's base URL."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self._schools: dict[str, dict[str, str]] = {}

    def __call__(self, collection: str, sourced_id: str | None, kind: str) -> dict[str, str] | None:
        if sourced_id is None:
            return None
        if collection == "schools":  # the same few schools on every row: build each once a page
            known = self._schools.get(sourced_id)
            if known is None:
                known = self._schools[sourced_id] = self._ref(collection, sourced_id, kind)
            return known
        return self._ref(collection, sourced_id, kind)

    def _ref(self, collection: str, sourced_id: str, kind: str) -> dict[str, str]:
        return {
            "href": f"{self.base}/{collection}/{quote(sourced_id, safe='')}",
            "sourcedId": sourced_id,
            "type": kind,
        }


def _base(row: Any) -> dict[str, Any]:
    return {
        "sourcedId": row.sourcedId,
        "status": row.status,
        "dateLastModified": timestamp(row.dateLastModified),
        "metadata": {},
    }


def _list(value: str | None) -> list[str]:
    return [] if value is None else [value]


def org(row: Any, refs: Refs) -> dict[str, Any]:
    return {**_base(row), "name": row.name, "type": row.type, "identifier": row.identifier, "children": []}


def session(row: Any, refs: Refs) -> dict[str, Any]:
    out = {
        **_base(row),
        "title": row.title,
        "startDate": row.startDate,
        "endDate": row.endDate,
        "type": row.type,
        "schoolYear": row.schoolYear,
        "org": refs("schools", row.school, "org"),
        "children": [],
    }
    if row.parent is not None:
        out["parent"] = refs("academicSessions", row.parent, "academicSession")
    return out


def course(row: Any, refs: Refs) -> dict[str, Any]:
    return {
        **_base(row),
        "title": row.title,
        "schoolYear": refs("academicSessions", row.schoolYear, "academicSession"),
        "grades": _list(row.grade),
        "subjects": _list(row.subject),
        "org": refs("schools", row.school, "org"),
    }


def class_(row: Any, refs: Refs) -> dict[str, Any]:
    out = {
        **_base(row),
        "title": row.title,
        "classType": row.classType,
        "grades": _list(row.grade),
        "subjects": _list(row.subject),
        "course": refs("courses", row.course, "course"),
        "school": refs("schools", row.school, "org"),
        "terms": [refs("terms", row.term, "academicSession")],
    }
    if row.classCode is not None:
        out["classCode"] = row.classCode
    return out


def user(row: Any, refs: Refs, field_groups: frozenset[str]) -> dict[str, Any]:
    school = refs("schools", row.school, "org")
    out: dict[str, Any] = {
        **_base(row),
        "username": row.username,
        "userIds": [{"type": "MIS", "identifier": row.identifier}],
        "enabledUser": row.enabledUser,
        "givenName": row.givenName or "",
        "familyName": row.familyName or "",
        "roles": [{"roleType": "primary", "role": row.role, "org": school}],
        "primaryOrg": school,
        "agents": [],
        "identifier": row.identifier,
        "email": row.email,
        "grades": _list(row.grade),
    }
    if out["email"] is None:
        del out["email"]
    for name, group in USER_FIELD_GROUPS.items():
        if group not in field_groups:
            out.pop(name, None)
    return out


def enrollment(row: Any, refs: Refs) -> dict[str, Any]:
    base = refs.base
    user_id, class_id = row.user, getattr(row, "class")
    return {
        "sourcedId": row.sourcedId,
        "status": row.status,
        "dateLastModified": timestamp(row.dateLastModified),
        "metadata": {},
        "user": {"href": f"{base}/users/{user_id}", "sourcedId": user_id, "type": "user"},
        "class": {"href": f"{base}/classes/{class_id}", "sourcedId": class_id, "type": "class"},
        "school": refs("schools", row.school, "org"),
        "role": row.role,
        "primary": row.primary,
    }


def encode_enrollments(rows: list[Any], refs: Refs) -> bytes:
    """A page of enrollments as the JSON body ``{"enrollments": [...]}``, written directly.

    Why: a trust's crawl returns ~460k enrollments, and building a dict per enrollment for the JSON
    encoder costs more than the database. Every value is either made by the directory's SQL from
    digits and fixed words (sourcedIds, role, status, the timestamp) or JSON-escaped here (the base URL
    and school ids), so the text is the same as ``orjson.dumps`` of ``enrollment(row)`` would give.
    """
    base = orjson.dumps(refs.base).decode()[1:-1]
    schools: dict[str, str] = {}
    parts = []
    for row in rows:
        school = schools.get(row.school)
        if school is None:
            school = schools[row.school] = orjson.dumps(refs("schools", row.school, "org")).decode()
        user_id, class_id = row.user, getattr(row, "class")
        parts.append(
            f'{{"sourcedId":"{row.sourcedId}","status":"{row.status}",'
            f'"dateLastModified":"{timestamp(row.dateLastModified)}","metadata":{{}},'
            f'"user":{{"href":"{base}/users/{user_id}","sourcedId":"{user_id}","type":"user"}},'
            f'"class":{{"href":"{base}/classes/{class_id}","sourcedId":"{class_id}","type":"class"}},'
            f'"school":{school},"role":"{row.role}","primary":"{row.primary}"}}'
        )
    return ('{"enrollments":[' + ",".join(parts) + "]}").encode()


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


def encode_users(rows: list[Any], refs: Refs, field_groups: frozenset[str]) -> bytes:
    """A page of users as the JSON body ``{"users": [...]}``, written directly (as enrollments, and
    tested equal to ``user(row)``): personal values are JSON-escaped one by one, and fields of groups
    the app was not granted are never written."""
    names, username = "names" in field_groups, "username" in field_groups
    identifiers, email = "identifiers" in field_groups, "email" in field_groups
    schools: dict[str, str] = {}
    parts = []
    for row in rows:
        school = schools.get(row.school)
        if school is None:
            school = schools[row.school] = _text(refs("schools", row.school, "org"))
        piece = [
            f'{{"sourcedId":"{row.sourcedId}","status":"{row.status}",'
            f'"dateLastModified":"{timestamp(row.dateLastModified)}","metadata":{{}}'
        ]
        if username:
            piece.append(f',"username":{_text(row.username)}')
        if identifiers:
            piece.append(f',"userIds":[{{"type":"MIS","identifier":{_text(row.identifier)}}}]')
        piece.append(f',"enabledUser":"{row.enabledUser}"')
        if names:
            piece.append(
                f',"givenName":{_text(row.givenName or "")},"familyName":{_text(row.familyName or "")}'
            )
        piece.append(
            f',"roles":[{{"roleType":"primary","role":"{row.role}","org":{school}}}],'
            f'"primaryOrg":{school},"agents":[]'
        )
        if identifiers:
            piece.append(f',"identifier":{_text(row.identifier)}')
        if email and row.email is not None:
            piece.append(f',"email":{_text(row.email)}')
        piece.append(f',"grades":{"[]" if row.grade is None else "[" + _text(row.grade) + "]"}}}')
        parts.append("".join(piece))
    return ('{"users":[' + ",".join(parts) + "]}").encode()


ENCODERS: dict[str, Callable[[list[Any], Refs, frozenset[str]], bytes]] = {
    "users": encode_users,
    "enrollments": lambda rows, refs, field_groups: encode_enrollments(rows, refs),
}
"""Collections whose pages are written as JSON text directly (the large ones an app crawls)."""

Builder = Callable[[Any, Refs], dict[str, Any]]


def select_fields(
    objects: list[dict[str, Any]], fields: tuple[str, ...] | None, known: set[str]
) -> list[dict]:
    """Keep only the named top-level fields (the ``fields`` parameter); unknown names are a 400."""
    if fields is None:
        return objects
    unknown = [name for name in fields if name not in known]
    if unknown:
        raise bad_request("invalid_selection_field", f"fields: {unknown[0]} is not a field this app can read")
    return [{k: v for k, v in obj.items() if k in fields} for obj in objects]
