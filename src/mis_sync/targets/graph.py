"""The Microsoft 365 adapter: engine ops as Microsoft Graph JSON ``$batch`` requests (≤ 20 each).

Talks through the Airflow provider's ``KiotaRequestAdapterHook`` (connection type ``msgraph``): its
credentials, base URL override and transport; the hook's own retry handler covers the outer request,
the engine retries inner requests (each inner 429 carries its own ``Retry-After``).

``kind``: ``education_class`` (``/education/classes``; teachers via ``teachers/$ref``) or ``group``
(Microsoft 365 groups; teachers via ``owners/$ref``). Education classes are groups with the same id.

Answers that change nothing are ``ok`` with ``noop`` (counted apart from writes): an add answered 400
"One or more added object references already exist", a ``$ref`` removal answered 404
(``Request_ResourceNotFound``, "Resource '…' does not exist or one of its queried reference-property
objects are not present": the member is no longer there) or 400 "One or more removed object references
do not exist", a team answered 409. A 404 on an add, an update or an archive does not say which object
is missing (the class, or a user whose stored id is stale): it is ``absent``, and the sync reads the class
itself (``read_class``) before it decides the class is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cache
from typing import Any
from urllib.parse import quote

from mis_sync.connectors.http_api import retry_after_seconds
from mis_sync.errors import SetupError
from mis_sync.targets.engine import WRITE_ACTIONS, Op, Outcome, TransientError

GRAPH_ROOT = "https://graph.microsoft.com/v1.0"
MAX_BATCH = 20
ALREADY_THERE = "added object references already exist"
NOT_THERE = "removed object references do not exist"


def _odata_quote(value: str) -> str:
    return value.replace("'", "''")


class GraphTransport:
    """The provider hook on a private event loop, so the engine stays synchronous (and shared)."""

    def __init__(self, conn_id: str) -> None:
        from airflow.providers.microsoft.azure.hooks.msgraph import KiotaRequestAdapterHook

        self._hook = KiotaRequestAdapterHook(conn_id=conn_id)
        self._runner = asyncio.Runner()

    def call(self, url: str, *, method: str = "GET", data: Any = None) -> Any:
        """One request through the hook (its retry handler retries 429/503/504 while Retry-After is
        under 180 s). A failure it gives up on keeps its ``Retry-After`` for the engine to honour."""
        from airflow.exceptions import AirflowException
        from kiota_http.middleware.options import ResponseHandlerOption

        handler = _response_handler()
        info = self._hook.request_information(url=url, method=method, data=data)
        info.request_options[ResponseHandlerOption.get_key()] = ResponseHandlerOption(
            response_handler=handler
        )
        try:
            return self._runner.run(self._hook.send_request(request_info=info))
        except PermissionError as exc:
            raise SetupError(
                f"Microsoft Graph refused the app ({_code(exc)}): check its permissions"
            ) from None
        except AirflowException as exc:  # 429 after the hook's retries, 5xx, timeouts
            if type(exc).__name__ in ("AirflowBadRequest", "AirflowNotFoundException"):
                raise SetupError(f"Microsoft Graph rejected a {method} ({_code(exc)})") from None
            raise TransientError(
                f"Microsoft Graph {method} failed ({_code(exc)})",
                retry_after_seconds(handler.retry_after),
                throttled=handler.status == 429,
            ) from None
        except (TimeoutError, OSError) as exc:
            raise TransientError(f"Microsoft Graph {method} failed ({type(exc).__name__})") from None

    def close(self) -> None:
        try:
            self._runner.run(self._hook.close())
        finally:
            self._runner.close()


@cache
def _handler_class() -> type:
    from airflow.providers.microsoft.azure.hooks.msgraph import DefaultResponseHandler

    class KeepsRetryAfter(DefaultResponseHandler):
        """The provider's default response handler, keeping the status and ``Retry-After`` of the
        answer (the hook raises on an error with the body only)."""

        status: int | None = None
        retry_after: str | None = None

        async def handle_response_async(self, response: Any, error_map: Any) -> Any:
            self.status = int(response.status_code)
            self.retry_after = response.headers.get("retry-after")
            return await super().handle_response_async(response, error_map)

    return KeepsRetryAfter


def _response_handler() -> Any:
    return _handler_class()()


def _code(exc: BaseException) -> str:
    """The Graph error code only: messages can quote a principal name."""
    detail = exc.args[0] if exc.args else None
    if isinstance(detail, dict):
        error = detail.get("error", detail)
        return str(error.get("code", "error")) if isinstance(error, dict) else "error"
    return type(exc).__name__


class GraphAdapter:
    target = "microsoft365"
    max_batch = MAX_BATCH

    def __init__(
        self, transport: Any, *, kind: str = "education_class", user_attribute: str = "userPrincipalName"
    ) -> None:
        self.transport, self.kind, self.user_attribute = transport, kind, user_attribute
        self.counters = {"requests": 0, "write_requests": 0, "inner_requests": 0}
        self._collection = "education/classes" if kind == "education_class" else "groups"
        self._user_ref = (
            f"{GRAPH_ROOT}/education/users/"
            if kind == "education_class"
            else f"{GRAPH_ROOT}/directoryObjects/"
        )

    # ---- requests ------------------------------------------------------------------------------------
    def _relation(self, role: str | None) -> str:
        if role == "owner":
            return "teachers" if self.kind == "education_class" else "owners"
        return "members"

    def request(self, op: Op) -> dict[str, Any]:
        """The inner ``$batch`` request for one op (URLs relative to the version root)."""
        col, cid = self._collection, op.container_id
        if op.action == "read":
            url = f"/{col}/{cid}/{self._relation(op.role)}?$select=id&$top=999"
            return {"method": "GET", "url": url}
        if op.action == "create_user":
            return {"method": "POST", "url": "/users", "body": op.body}
        if op.action == "update_user":
            return {"method": "PATCH", "url": f"/users/{op.user_id}", "body": op.body}
        if op.action == "resolve" and self.user_attribute == "mail" and op.role != "account":
            flt = f"mail eq '{_odata_quote(op.user_key or '')}'"
            return {"method": "GET", "url": f"/users?$filter={quote(flt)}&$select=id"}
        if op.action == "resolve":  # by UPN (and always for provisioning, which sets the UPN)
            return {"method": "GET", "url": f"/users/{quote(op.user_key or '', safe='@')}?$select=id"}
        if op.action == "find":
            if self.kind == "education_class":
                flt = f"externalId eq '{_odata_quote(op.container_key or '')}'"
            else:
                flt = f"mailNickname eq '{_odata_quote(op.mail_nickname or '')}'"
            return {"method": "GET", "url": f"/{col}?$filter={quote(flt)}&$select=id"}
        if op.action == "create":
            return {"method": "POST", "url": f"/{col}", "body": self._create_body(op)}
        if op.action == "update":
            return {
                "method": "PATCH",
                "url": f"/{col}/{cid}",
                "body": {"displayName": op.display_name, "description": op.description},
            }
        if op.action == "archive":
            return {"method": "PATCH", "url": f"/{col}/{cid}", "body": {"displayName": op.display_name}}
        rel = self._relation(op.role)
        if op.action == "add":
            return {
                "method": "POST",
                "url": f"/{col}/{cid}/{rel}/$ref",
                "body": {"@odata.id": self._user_ref + str(op.user_id)},
            }
        if op.action == "remove":
            return {"method": "DELETE", "url": f"/{col}/{cid}/{rel}/{op.user_id}/$ref"}
        if op.action == "read_team":
            return {"method": "GET", "url": f"/teams/{cid}?$select=id"}
        if op.action == "read_class":  # is the class itself still there?
            return {"method": "GET", "url": f"/{col}/{cid}?$select=id"}
        if op.action == "create_team":  # a team from the class's group: name and members come from it
            template = "educationClass" if self.kind == "education_class" else "standard"
            body = {
                "template@odata.bind": f"{GRAPH_ROOT}/teamsTemplates('{template}')",
                "group@odata.bind": f"{GRAPH_ROOT}/groups('{cid}')",
            }
            return {"method": "POST", "url": "/teams", "body": body}
        raise ValueError(f"unknown op action {op.action!r}")

    def _create_body(self, op: Op) -> dict[str, Any]:
        common = {
            "displayName": op.display_name,
            "description": op.description,
            "mailNickname": op.mail_nickname,
        }
        if self.kind == "education_class":
            return {**common, "externalId": op.container_key, "externalSource": "sis"}
        return {
            **common,
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "visibility": "Private",
        }

    # ---- sending --------------------------------------------------------------------------------------
    def send(self, ops: Sequence[Op]) -> dict[str, Outcome]:
        requests = []
        for index, op in enumerate(ops):
            request = {"id": str(index + 1), **self.request(op)}
            if "body" in request:
                request["headers"] = {"Content-Type": "application/json"}
            requests.append(request)
        self.counters["requests"] += 1
        self.counters["inner_requests"] += len(requests)
        if any(op.action in WRITE_ACTIONS for op in ops):
            self.counters["write_requests"] += 1
        answer = self.transport.call("$batch", method="POST", data={"requests": requests})
        by_id = {str(r.get("id")): r for r in (answer or {}).get("responses", [])}
        return {op.id: self.outcome(op, by_id.get(str(index + 1))) for index, op in enumerate(ops)}

    def outcome(self, op: Op, response: dict[str, Any] | None) -> Outcome:
        if response is None:
            return Outcome("retry")
        status = int(response.get("status", 0))
        headers = {str(k).lower(): v for k, v in (response.get("headers") or {}).items()}
        body = response.get("body") or {}
        if 200 <= status < 300:
            return self._success(op, body)
        retry_after = retry_after_seconds(headers.get("retry-after"))
        if status == 429:
            return Outcome("retry", retry_after=retry_after, throttled=True)
        if status >= 500 or status in (408, 424):
            return Outcome("retry", retry_after=retry_after)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        error = error if isinstance(error, dict) else {}
        message, code = str(error.get("message", "")), str(error.get("code", status))
        if op.action == "add" and status == 400 and ALREADY_THERE in message:
            return Outcome("ok", noop=True)
        if op.action == "remove" and (status == 404 or (status == 400 and NOT_THERE in message)):
            return Outcome("ok", noop=True)  # no longer there; never a sign that the class is gone
        if op.action == "resolve" and status == 404:
            return Outcome("absent")
        if op.action == "create_team" and status == 409:
            return Outcome("ok", remote_id=op.container_id, noop=True)  # the group has its team already
        if op.action == "read_team" and status == 404:
            return Outcome("absent", error=code)  # deleted by hand, or Teams never finished building it
        if op.action == "create_team" and status == 404:
            return Outcome("absent", error=code)  # a group made minutes ago: not ready for a team yet
        if status == 404 and op.action in ("read", "read_class"):
            return Outcome("gone", error=code)  # a read of the class itself: it is not there
        if status == 404 and op.action in ("update", "archive", "add"):
            return Outcome("absent", error=code)  # the class, or the user: the sync reads the class
        if status == 400 and "do not exist" in message and op.action == "add":
            return Outcome("retry")  # replication delay just after a create
        return Outcome("failed", error=code)

    def _success(self, op: Op, body: Any) -> Outcome:
        if op.action == "find" or (op.action == "resolve" and isinstance(body, dict) and "value" in body):
            values = body.get("value", []) if isinstance(body, dict) else []
            return Outcome("ok", remote_id=values[0]["id"]) if values else Outcome("absent")
        if op.action == "read":
            return Outcome("ok", items=tuple(self._all_ids(body)))
        if op.action in ("resolve", "create", "create_user"):
            return Outcome("ok", remote_id=body.get("id") if isinstance(body, dict) else None)
        if op.action == "create_team":  # 202 Accepted, empty body; the team's id is the group's
            return Outcome("ok", remote_id=op.container_id)
        return Outcome("ok")

    def _all_ids(self, page: dict[str, Any]) -> list[str]:
        """Ids of a member list, following ``@odata.nextLink`` (the hook's retries cover those GETs)."""
        ids: list[str] = []
        while True:
            ids.extend(str(item["id"]) for item in page.get("value", []))
            link = page.get("@odata.nextLink")
            if not link:
                return ids
            self.counters["requests"] += 1
            page = self.transport.call(link)
