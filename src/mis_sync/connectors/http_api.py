"""Shared plumbing for MIS sources reached over HTTP JSON APIs (Wonde, Groupcall Xporter, and later
Arbor, Bromcom, iSAMS REST, ScholarPack and OneRoster REST).

What a new API connector gets from here:

- ``HttpApiConnector``: base URL from the Airflow Connection (``extra.base_url``, else ``host``, else
  the source's public default), non-secret tuning from ``mis.options`` or ``extra`` (``timeout``,
  ``retry_attempts``, ``retry_backoff``, ``max_retry_after``, ``page_size``) and ``make_client()``.
- ``ApiClient``: an ``httpx.Client`` that retries 429 (honouring ``Retry-After``), 5xx, timeouts and
  dropped connections with backoff (tenacity), and turns everything else into a clear ``ExtractError``:
  ``ApiAuthError`` (401: credentials refused), ``ApiPermissionError`` (403: the school has not granted
  this data), bad status, malformed JSON. Retries exhausted raise ``SourceUnavailableError`` instead,
  which is not a data error, so the DAG task retries later. It never follows a link to another host
  (the token would go with it) and never speaks plain HTTP except to a loopback address (the fakes).
- In ``http_paging``: paging helpers that check what they are given (``follow_links``,
  ``numbered_pages``, ``offset_pages``: a short or missing page stops the run as truncated) and
  ``json_list`` / ``require_keys`` for the records themselves.
- ``load_api_spec``: the source's ``include/mis_schemas/<source>.yaml``: ``endpoints`` (path, params,
  required keys) plus the usual field ``entities`` and ``codes``.

Every error names the source, the endpoint, the page and, for a record, its position and id: never a
value, and never the response body (which may hold a child's name).
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pandas as pd
import tenacity
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mis_sync.connectors.base import Connector, ExtractError
from mis_sync.connectors.mapping import SourceMapping, check_mapping
from mis_sync.errors import SetupError, SourceUnavailableError
from mis_sync.paths import mis_schemas_dir

log = logging.getLogger(__name__)


class ApiAuthError(ExtractError):
    """HTTP 401: the source refused the credentials (wrong, expired or revoked token or secret)."""


class ApiPermissionError(ExtractError):
    """HTTP 403: the credentials are fine but the school has not granted this data to the app."""


# --- the source's endpoints as data ---------------------------------------------------------------


class EndpointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    params: dict[str, str] = {}
    required_keys: list[str] = ["id"]
    """Dotted keys every record must carry, non-null; a missing one is schema drift, not a blank."""
    delta: bool = True
    """False: fetched in full on every run, even a delta one (small tables other rows are linked by)."""
    records_key: str | None = None
    """Where the records sit in a page (dotted); None: the source's convention (``data``, the path…)."""


class ApiSpec(BaseModel):
    model_config = ConfigDict(frozen=True)
    endpoints: dict[str, EndpointSpec]
    mapping: SourceMapping
    digest: str
    """Hash of the YAML: a delta cursor taken under another version of the mapping is not reused."""


@cache
def load_api_spec(source: str) -> ApiSpec:
    """Read ``include/mis_schemas/<source>.yaml``: ``endpoints`` plus a checked ``SourceMapping``."""
    path = mis_schemas_dir() / f"{source}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        endpoints = {k: EndpointSpec.model_validate(v) for k, v in dict(data.pop("endpoints")).items()}
        mapping = SourceMapping.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError, KeyError, AttributeError, TypeError) as exc:
        raise ExtractError(f"{path}: field mapping cannot be loaded ({type(exc).__name__})") from None
    check_mapping(path, mapping)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return ApiSpec(endpoints=endpoints, mapping=mapping, digest=digest)


# --- the client -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff: float = 1.0
    """First wait in seconds when the server gives no Retry-After; doubled per attempt, with jitter."""
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    """A Retry-After longer than this fails the run at once (the task retries later) instead of
    holding a worker slot for an hour."""
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ApiResponse:
    payload: Any
    headers: httpx.Headers
    url: httpx.URL
    where: str

    def server_time(self) -> pd.Timestamp | None:
        """The server's clock (``Date`` header) in UTC: the time the source served this data."""
        try:
            when = email.utils.parsedate_to_datetime(self.headers.get("date", ""))
        except (TypeError, ValueError, IndexError):
            return None
        return pd.Timestamp(when).tz_convert("UTC") if when.tzinfo else pd.Timestamp(when, tz="UTC")


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


def retry_after_seconds(value: Any) -> float | None:
    """``Retry-After`` as seconds: delta-seconds (fractions accepted) or an HTTP date (RFC 9110; one
    without a zone is UTC); None if absent or unreadable. Every client here (MIS APIs, Graph,
    Classroom) waits at least this long."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ApiClient:
    """One source's HTTP client: retries, status and JSON handling, same-host guard.

    ``where`` strings passed to ``get`` name the endpoint and page in errors and logs.
    """

    def __init__(
        self,
        base_url: str,
        *,
        source: str,
        conn_id: str,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source, self.conn_id = source, conn_id
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.base = httpx.URL(base_url.rstrip("/") + "/")
        if self.base.scheme != "https" and not (self.base.scheme == "http" and is_loopback(self.base.host)):
            raise SetupError(
                f"connection {conn_id!r}: {self.base.scheme}://{self.base.host} is not HTTPS "
                "(plain HTTP is allowed only to a loopback address, for the local fakes)"
            )
        self._client = httpx.Client(
            base_url=self.base,
            auth=auth,
            headers={"Accept": "application/json", "User-Agent": "mis-sync", **(headers or {})},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None, *, where: str) -> ApiResponse:
        return self.request("GET", path_or_url, params=params, where=where)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        where: str,
    ) -> ApiResponse:
        """Send with retries; return the parsed JSON or raise an ``ExtractError`` naming ``where``.

        ``form`` is sent as ``application/x-www-form-urlencoded`` (OAuth 2 token requests need it)."""
        url = httpx.URL(path_or_url) if "://" in path_or_url else self.base.join(path_or_url.lstrip("/"))
        if (url.scheme, url.host, url.port) != (self.base.scheme, self.base.host, self.base.port):
            raise ExtractError(f"{self.source} {where}: refusing to follow a link to another host")
        label = f"{self.source} {where}"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda state: log.warning(
                "%s: %s; retrying (attempt %d of %d)",
                label,
                state.outcome.exception() if state.outcome else "?",
                state.attempt_number + 1,
                self.retry.attempts,
            ),
        )
        try:
            response = retrying(self._send, method, url, params, json_body, label, form)
        except _Transient as exc:
            raise SourceUnavailableError(
                f"{label}: {exc.reason}, {self.retry.attempts} attempts made"
            ) from None
        return ApiResponse(self._json(response, label), response.headers, response.url, where)

    def _send(
        self,
        method: str,
        url: httpx.URL,
        params: Mapping[str, Any] | None,
        body: Any,
        label: str,
        form: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._client.request(method, url, params=params, json=body, data=form)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Transient(f"connection failed ({type(exc).__name__})") from None
        status = response.status_code
        if status in self.retry.statuses:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            if wait is not None and wait > self.retry.max_retry_after:
                raise SourceUnavailableError(
                    f"{label}: HTTP {status}; the server asks to wait {wait:.0f} s, longer than "
                    f"max_retry_after ({self.retry.max_retry_after:.0f} s)"
                )
            raise _Transient("rate limited (HTTP 429)" if status == 429 else f"HTTP {status}", wait)
        if status == 401:
            raise ApiAuthError(
                f"{label}: authentication failed (HTTP 401): the credentials in connection "
                f"{self.conn_id!r} were refused (wrong, expired or revoked)"
            )
        if status == 403:
            raise ApiPermissionError(
                f"{label}: permission missing (HTTP 403): the credentials work but this data has not "
                "been granted to the app; ask the school to approve it"
            )
        if status >= 300:
            raise ExtractError(f"{label}: unexpected HTTP {status}")
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        backoff = tenacity.wait_exponential_jitter(
            initial=self.retry.backoff, max=self.retry.max_backoff, jitter=self.retry.backoff
        )
        return float(backoff(state))

    @staticmethod
    def _json(response: httpx.Response, label: str) -> Any:
        try:
            return json.loads(response.content)
        except json.JSONDecodeError as exc:  # the message holds positions only, never content
            raise ExtractError(
                f"{label}: malformed JSON (line {exc.lineno} column {exc.colno}, "
                f"{len(response.content)} bytes received)"
            ) from None
        except UnicodeDecodeError:
            raise ExtractError(f"{label}: response is not UTF-8 JSON") from None


# --- the connector base ---------------------------------------------------------------------------


class HttpApiConnector(Connector):
    """Base of API connectors: where the API is, how patient to be, and a configured client.

    Secrets come only from the Airflow Connection (``password``, or ``extra`` keys the subclass
    names); tuning may also come from the establishment's ``mis.options``. A missing or wrong setting
    is a ``SetupError`` (an admin fixes the connection), never an ``ExtractError``.
    """

    default_base_url: ClassVar[str]
    default_path: ClassVar[str] = ""
    """Appended to ``host`` when the connection gives a bare host (``api.wonde.com`` → ``/v1.0``)."""
    title: ClassVar[str] = "API"
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    """How retries wait; tests replace it to record the waits instead of sleeping."""

    def setting(self, name: str, default: Any = None) -> Any:
        """Non-secret tuning: ``mis.options`` first, then the connection's ``extra``."""
        if name in self.options:
            return self.options[name]
        return self.connection.extra.get(name, default)

    def api_root(self) -> str:
        extra_url = self.connection.extra.get("base_url")
        if extra_url:
            return str(extra_url).rstrip("/")
        host = self.connection.host
        if not host:
            return self.default_base_url
        root = host if "://" in host else f"https://{host}"
        parts = urlsplit(root)
        if self.connection.port and not parts.port:
            root = root.replace(parts.netloc, f"{parts.netloc}:{self.connection.port}", 1)
        if parts.path in ("", "/"):
            root = root.rstrip("/") + self.default_path
        return root.rstrip("/")

    def retry_policy(self) -> RetryPolicy:
        try:
            return RetryPolicy(
                attempts=int(self.setting("retry_attempts", 5)),
                backoff=float(self.setting("retry_backoff", 1.0)),
                max_retry_after=float(self.setting("max_retry_after", 300.0)),
            )
        except (TypeError, ValueError):
            raise SetupError(
                f"connection {self.connection.conn_id!r}: retry_attempts, retry_backoff and "
                "max_retry_after must be numbers"
            ) from None

    def make_client(
        self,
        *,
        base_url: str | None = None,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiClient:
        try:
            timeout = float(self.setting("timeout", 60.0))
        except (TypeError, ValueError):
            raise SetupError(f"connection {self.connection.conn_id!r}: timeout must be seconds") from None
        return ApiClient(
            base_url or self.api_root(),
            source=self.title,
            conn_id=self.connection.conn_id,
            auth=auth,
            headers=headers,
            timeout=timeout,
            retry=self.retry_policy(),
            sleep=lambda seconds: self.sleep(seconds),
        )

    def secret(self, *extra_keys: str, label: str) -> str:
        """The connection's password, else the first of ``extra_keys`` set; an error names the
        connection and the fields, never a value."""
        value = self.connection.password or next(
            (self.connection.extra[k] for k in extra_keys if self.connection.extra.get(k)), None
        )
        if not value:
            fields = " or ".join(["password", *(f"extra.{k}" for k in extra_keys)])
            raise SetupError(f"connection {self.connection.conn_id!r}: no {label} (set {fields})")
        return str(value)

    def page_size(self, default: int) -> int:
        try:
            return int(self.setting("page_size", default))
        except (TypeError, ValueError):
            raise SetupError(f"connection {self.connection.conn_id!r}: page_size must be a number") from None
