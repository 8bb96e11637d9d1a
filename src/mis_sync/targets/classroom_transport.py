"""How the Classroom adapter reaches Google: credentials from an Airflow Connection, the client built
from its bundled (static) discovery document, and one multipart batch per call of :meth:`execute`.

Why not the Airflow Google provider: it has no Classroom hook and no domain-wide delegation
(``targets.md`` §3.9), so google-api-python-client + google-auth are used directly.

The Connection (type ``generic`` or ``google_cloud_platform``):

- the service-account key JSON in ``extra.keyfile_dict`` (a JSON object or string; the provider's
  ``extra__google_cloud_platform__keyfile_dict`` works too), or in the password field, or a key file
  named by ``extra.key_path``;
- ``extra.subject``: the Workspace admin the service account impersonates (domain-wide delegation
  with the scopes in :data:`SCOPES`). An admin is needed to create ``d:`` aliases;
- ``extra.api_endpoint`` (tests and the demo): send everything to that endpoint instead, WITHOUT
  credentials; meant for the local emulator (``mis_sync.fakes.classroom``), never for Google.

Errors never quote URLs or bodies: they can hold a pupil's email address.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import httplib2
from google.auth.exceptions import GoogleAuthError, RefreshError
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors.http_api import retry_after_seconds
from mis_sync.errors import SetupError
from mis_sync.targets.engine import TransientError

GOOGLE_ROOT = "https://classroom.googleapis.com/"
DIRECTORY_ROOT = "https://admin.googleapis.com/"
SCOPES = (
    "https://www.googleapis.com/auth/classroom.courses",
    "https://www.googleapis.com/auth/classroom.rosters",
    "https://www.googleapis.com/auth/classroom.profile.emails",
)
DIRECTORY_SCOPE = "https://www.googleapis.com/auth/admin.directory.user"
"""Asked for only when accounts are provisioned (``directory=True``): delegation must then grant it."""
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
TIMEOUT_S = 120
Answer = tuple[Any, HttpError | None]
_URL_LOGGER = "googleapiclient.discovery"
"""Logs every request URL at DEBUG; ``userProfiles/<email>`` URLs name pupils, so never below INFO."""


def error_facts(exc: HttpError) -> tuple[int, str, str, str]:
    """(HTTP status, Google status, first reason, ``@Name`` of a request error) — never the message."""
    status = int(getattr(exc, "status_code", None) or exc.resp.status)
    google, reason, name = "", "", ""
    try:
        error = json.loads(exc.content or b"{}").get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if isinstance(error, dict):
        google = str(error.get("status") or "")
        details = error.get("errors") or [{}]
        reason = str(details[0].get("reason") or "") if isinstance(details[0], dict) else ""
        message = str(error.get("message") or "")
        if message.startswith("@"):
            name = message[1:].split(" ", 1)[0][:64]
    return status, google, reason, name


def is_throttle(exc: HttpError) -> bool:
    status, google, reason, _ = error_facts(exc)
    return status == 429 or google == "RESOURCE_EXHAUSTED" or reason in RATE_REASONS


def retry_after(exc: HttpError) -> float | None:
    """The answer's ``Retry-After`` (seconds or an HTTP date), as every client here reads it."""
    return retry_after_seconds(exc.resp.get("retry-after") if exc.resp is not None else None)


def _key_info(conn: ConnectionInfo) -> dict[str, Any] | None:
    raw = (
        conn.extra.get("keyfile_dict")
        or conn.extra.get("extra__google_cloud_platform__keyfile_dict")
        or conn.password
    )
    if not raw:
        return None
    if isinstance(raw, dict):
        return raw
    try:
        info = json.loads(str(raw))
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise SetupError(
            f"connection {conn.conn_id!r}: the key is not a service-account key JSON "
            "(extra.keyfile_dict or the password field)"
        )
    return info


def credentials(conn: ConnectionInfo, scopes: Sequence[str] = SCOPES) -> Any:
    """Service-account credentials impersonating ``extra.subject`` (domain-wide delegation)."""
    from google.oauth2 import service_account

    subject = str(conn.extra.get("subject") or "")
    if not subject:
        raise SetupError(
            f"connection {conn.conn_id!r}: set extra.subject to the Workspace admin the service "
            "account impersonates (domain-wide delegation)"
        )
    info = _key_info(conn)
    path = conn.extra.get("key_path") or conn.extra.get("extra__google_cloud_platform__key_path")
    try:
        if info is not None:
            return service_account.Credentials.from_service_account_info(info, scopes=scopes, subject=subject)
        if path:
            return service_account.Credentials.from_service_account_file(
                str(path), scopes=scopes, subject=subject
            )
    except (ValueError, OSError, GoogleAuthError) as exc:
        raise SetupError(
            f"connection {conn.conn_id!r}: the service-account key cannot be used ({type(exc).__name__})"
        ) from None
    raise SetupError(
        f"connection {conn.conn_id!r}: no service-account key; put its JSON in extra.keyfile_dict "
        "(or the password field, or a file in extra.key_path)"
    )


class ClassroomTransport:
    """The Classroom service and a batch sender, built inside the task (never at DAG parse time).

    With ``directory=True`` also the Admin SDK Directory service (``self.directory``) for account
    provisioning; a batch targets one API, so :meth:`execute` takes ``api="directory"`` for its calls.
    """

    def __init__(self, conn: ConnectionInfo, *, timeout: float = TIMEOUT_S, directory: bool = False) -> None:
        endpoint = str(conn.extra.get("api_endpoint") or "")
        self.conn_id = conn.conn_id
        url_logger = logging.getLogger(_URL_LOGGER)
        if url_logger.getEffectiveLevel() < logging.INFO:
            url_logger.setLevel(logging.INFO)
        self._raw = httplib2.Http(timeout=timeout)
        if endpoint:  # the local emulator: no credentials at all
            root = endpoint if endpoint.endswith("/") else endpoint + "/"
            http: Any = self._raw
            options: dict[str, str] | None = {"api_endpoint": root}
        else:
            from google_auth_httplib2 import AuthorizedHttp

            root, options = GOOGLE_ROOT, None
            scopes = (*SCOPES, DIRECTORY_SCOPE) if directory else SCOPES
            http = AuthorizedHttp(credentials(conn, scopes), http=self._raw)
        self.service = build(
            "classroom", "v1", http=http, static_discovery=True, client_options=options, cache_discovery=False
        )
        # new_batch_http_request() would post to the discovery rootUrl whatever api_endpoint says
        # (targets.md §3.6): name the batch URI ourselves
        self.batch_uri = root + "batch"
        self.directory: Any = None
        self.directory_batch_uri = (root if endpoint else DIRECTORY_ROOT) + "batch"
        if directory:
            self.directory = build(
                "admin", "directory_v1", http=http, static_discovery=True, client_options=options,
                cache_discovery=False,
            )  # fmt: skip

    def execute(self, calls: Sequence[tuple[str, Any]], *, api: str = "classroom") -> dict[str, Answer]:
        """Send ``calls`` (request id, HttpRequest) as one batch; (response, error) per id answered.
        ``api``: ``classroom`` or ``directory`` (every call of a batch must be for that API)."""
        answers: dict[str, Answer] = {}

        def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
            answers[request_id] = (response, exception)

        uri = self.directory_batch_uri if api == "directory" else self.batch_uri
        label = "Google Directory" if api == "directory" else "Google Classroom"
        batch = BatchHttpRequest(callback=collect, batch_uri=uri)
        for request_id, request in calls:
            batch.add(request, request_id=request_id)
        try:
            batch.execute()
        except HttpError as exc:
            status, google, _reason, _ = error_facts(exc)
            if is_throttle(exc) or status >= 500 or status == 408:
                raise TransientError(
                    f"{label} batch answered {status}", retry_after(exc), throttled=is_throttle(exc)
                ) from None
            if status in (401, 403):
                raise SetupError(
                    f"{label} refused the service account ({status} {google}): check "
                    "domain-wide delegation (client id, scopes) and extra.subject"
                ) from None
            raise SetupError(f"{label} rejected a batch ({status} {google})") from None
        except RefreshError:
            raise SetupError(
                f"connection {self.conn_id!r}: Google refused the service account's token; check "
                "domain-wide delegation (client id and scopes) and that extra.subject is an admin"
            ) from None
        except (BatchError, httplib2.HttpLib2Error, OSError, TimeoutError) as exc:
            raise TransientError(f"{label} batch failed ({type(exc).__name__})") from None
        return answers

    def close(self) -> None:
        self._raw.close()
