"""The service's paths under ``/ims/oneroster/rostering/v1p2/``, each a page or one object of a resource.

Nested collections (a school's classes, a class's students…) are the same collections narrowed by
their parent, which must itself be visible to the app (else 404, as if it did not exist).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from mis_sync.oneroster import BASE_PATH
from mis_sync.oneroster import resources as r
from mis_sync.oneroster.service import Caller, Service, paging_links
from mis_sync.oneroster.sqlquery import Narrowing, parse_sourced_id

ParentNarrowing = Callable[[Service, Caller, dict[str, str]], Narrowing | None]


def _base_url(request: Request) -> str:
    """Where hrefs point: this server as the app reached it, plus the rostering base path."""
    return str(request.base_url).rstrip("/") + BASE_PATH


def _json(body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> Response:
    """Serialised here with orjson: the objects are plain JSON already, and FastAPI's encoder (or the
    standard library's) walking 5,000 of them costs more than building them."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, media_type="application/json", headers=headers)


def _caller(service: Service, request: Request) -> Caller:
    caller = service.authorise(request.headers.get("authorization"))
    request.state.client_id = caller.client_id
    return caller


def _collection(
    router: APIRouter,
    service: Service,
    path: str,
    resource: r.Resource,
    narrow: ParentNarrowing | None = None,
) -> None:
    def handler(request: Request) -> Response:
        caller = _caller(service, request)
        params = dict(request.query_params)
        narrowing = narrow(service, caller, request.path_params) if narrow else None
        body, total, query, records = service.page(
            resource, caller, params, _base_url(request), narrowing, signature=request.url.path, encoded=True
        )
        request.state.records = records
        headers = {
            "X-Total-Count": str(total),
            "Link": paging_links(str(request.url).split("?")[0], params, query, total),
        }
        return _json(body, headers)

    handler.__name__ = "get_" + path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    router.add_api_route(path, handler, methods=["GET"], summary=f"{resource.plural} ({path})")


def _single(
    router: APIRouter, service: Service, path: str, resource: r.Resource, narrow: Narrowing | None = None
) -> None:
    def handler(request: Request, sourcedId: str) -> dict[str, Any]:
        caller = _caller(service, request)
        if narrow is None:
            body = service.one(
                resource, caller, sourcedId, _base_url(request), request.query_params.get("fields")
            )
        else:
            service.find(resource, caller, sourcedId, narrow)
            body = service.one(
                resource, caller, sourcedId, _base_url(request), request.query_params.get("fields")
            )
        request.state.records = 1
        return _json(body)

    handler.__name__ = "get_one_" + path.strip("/").split("/")[0]
    router.add_api_route(path, handler, methods=["GET"], summary=f"one {resource.singular}")


# ------------------------------------------------------------------------------ parents of nested paths


def _school(service: Service, caller: Caller, params: dict[str, str], key: str = "sourcedId") -> str:
    service.find(r.ORGS, caller, params[key])
    return params[key]


def _class_id(service: Service, caller: Caller, value: str, school: str | None = None) -> int:
    narrowing = r.in_school(school) if school else None
    service.find(r.CLASSES, caller, value, narrowing)
    number = parse_sourced_id(value, "cls-")
    assert number is not None  # found, so well formed
    return number


def _user_id(service: Service, caller: Caller, value: str, role: str | None) -> int:
    service.find(r.USERS, caller, value, r.with_role(role) if role else None)
    number = parse_sourced_id(value, "usr-")
    assert number is not None
    return number


def build_router(service: Service) -> APIRouter:
    router = APIRouter()
    for path, resource, narrowing in (
        ("/orgs", r.ORGS, None),
        ("/schools", r.ORGS, r.of_type("school")),
        ("/academicSessions", r.SESSIONS, None),
        ("/terms", r.SESSIONS, r.of_type("term")),
        ("/gradingPeriods", r.SESSIONS, r.of_type("gradingPeriod")),
        ("/courses", r.COURSES, None),
        ("/classes", r.CLASSES, None),
        ("/users", r.USERS, None),
        ("/students", r.USERS, r.with_role("student")),
        ("/teachers", r.USERS, r.with_role("teacher")),
        ("/enrollments", r.ENROLLMENTS, None),
    ):
        fixed = narrowing
        _collection(router, service, path, resource, (lambda s, c, p, n=fixed: n) if fixed else None)
        _single(router, service, path + "/{sourcedId}", resource, fixed)

    def school_narrowing(extra: Narrowing | None = None) -> ParentNarrowing:
        def narrow(service: Service, caller: Caller, params: dict[str, str]) -> Narrowing:
            school = r.in_school(_school(service, caller, params))
            return r.all_of(school, extra) if extra else school

        return narrow

    _collection(router, service, "/schools/{sourcedId}/classes", r.CLASSES, school_narrowing())
    _collection(router, service, "/schools/{sourcedId}/courses", r.COURSES, school_narrowing())
    _collection(router, service, "/schools/{sourcedId}/enrollments", r.ENROLLMENTS, school_narrowing())
    _collection(
        router, service, "/schools/{sourcedId}/students", r.USERS, school_narrowing(r.with_role("student"))
    )
    _collection(
        router, service, "/schools/{sourcedId}/teachers", r.USERS, school_narrowing(r.with_role("teacher"))
    )
    _collection(
        router, service, "/schools/{sourcedId}/terms", r.SESSIONS, school_narrowing(r.of_type("term"))
    )

    def school_class(kind: str) -> ParentNarrowing:
        def narrow(service: Service, caller: Caller, params: dict[str, str]) -> Narrowing:
            school = _school(service, caller, params, "schoolSourcedId")
            class_id = _class_id(service, caller, params["classSourcedId"], school)
            if kind == "enrollments":
                return r.enrollments_of_class(class_id)
            return r.all_of(r.members_of_class(class_id, "member" if kind == "students" else "teacher"))

        return narrow

    for kind, resource in (("enrollments", r.ENROLLMENTS), ("students", r.USERS), ("teachers", r.USERS)):
        path = f"/schools/{{schoolSourcedId}}/classes/{{classSourcedId}}/{kind}"
        _collection(router, service, path, resource, school_class(kind))

    def class_members(role: str) -> ParentNarrowing:
        return lambda service, caller, params: r.members_of_class(
            _class_id(service, caller, params["sourcedId"]), role
        )

    _collection(router, service, "/classes/{sourcedId}/students", r.USERS, class_members("member"))
    _collection(router, service, "/classes/{sourcedId}/teachers", r.USERS, class_members("teacher"))

    def user_classes(role: str | None, member_role: str | None) -> ParentNarrowing:
        return lambda service, caller, params: r.classes_of_user(
            _user_id(service, caller, params["sourcedId"], role), member_role
        )

    _collection(router, service, "/users/{sourcedId}/classes", r.CLASSES, user_classes(None, None))
    _collection(
        router, service, "/students/{sourcedId}/classes", r.CLASSES, user_classes("student", "member")
    )
    _collection(
        router, service, "/teachers/{sourcedId}/classes", r.CLASSES, user_classes("teacher", "teacher")
    )

    def course_classes(service: Service, caller: Caller, params: dict[str, str]) -> Narrowing:
        service.find(r.COURSES, caller, params["sourcedId"])
        return r.equals("course", params["sourcedId"])

    def term_of(kind: str) -> ParentNarrowing:
        def narrow(service: Service, caller: Caller, params: dict[str, str]) -> Narrowing:
            service.find(r.SESSIONS, caller, params["sourcedId"], r.of_type("term"))
            if kind == "classes":
                return r.equals("term", params["sourcedId"])
            return r.all_of(r.equals("parent", params["sourcedId"]), r.of_type("gradingPeriod"))

        return narrow

    _collection(router, service, "/courses/{sourcedId}/classes", r.CLASSES, course_classes)
    _collection(router, service, "/terms/{sourcedId}/classes", r.CLASSES, term_of("classes"))
    _collection(router, service, "/terms/{sourcedId}/gradingPeriods", r.SESSIONS, term_of("gradingPeriods"))
    return router
