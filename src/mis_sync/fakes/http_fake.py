"""A small base for local fakes of JSON HTTP APIs (Wonde, Xporter, …): a LOCAL EMULATOR for tests and
demos, never a stand-in for validating behaviour against the real service.

What a fake built on it gets (house style of ``fakes.graph``): a ``ThreadingHTTPServer`` on 127.0.0.1
with an ephemeral port, a request log and counters, a fake clock served as the ``Date`` header, and
``Faults`` — seeded and scripted misbehaviour:

- ``unauthorized``: every API request answers 401; ``forbidden``: these endpoints answer 403;
- ``throttle_next`` / ``throttle_rate``: 429 with ``Retry-After: retry_after``;
- ``error_next`` / ``error_rate``: ``error_status`` (503 by default);
- ``malformed``: ``{(endpoint, page)}`` whose JSON body is cut off half-way;
- ``truncated``: ``{(endpoint, page)}`` that lose records while their paging metadata still claims them;
- ``drop_key``: ``{endpoint: key}`` removed from the first record of every page;
- ``delay``: seconds before every answer (client timeouts).

``VersionedStore`` keeps each endpoint's records with their change times and every published version,
so a fake can answer "changed since a time" (Wonde ``updated_after``) and "changed since a version"
(Xporter ``changedRows``), and list deletions.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from mis_sync.fakes.serving import Answer, LocalServer

Response = tuple[int, dict[str, str], bytes]


@dataclass
class Faults:
    unauthorized: bool = False
    forbidden: set[str] = field(default_factory=set)
    throttle_next: int = 0
    throttle_rate: float = 0.0
    retry_after: str = "1"
    error_next: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    malformed: set[tuple[str, int]] = field(default_factory=set)
    truncated: set[tuple[str, int]] = field(default_factory=set)
    drop_key: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes


def to_json(value: Any) -> bytes:
    """JSON with numpy/pandas scalars as plain numbers (``.item()``)."""
    return json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)).encode()


def fingerprint(record: Any) -> str:
    return hashlib.sha1(to_json(record), usedforsecurity=False).hexdigest()


class VersionedStore:
    """Endpoint → key → record, with each record's last change time and every published version."""

    def __init__(self, kinds: Mapping[str, str] | None = None) -> None:
        self.kinds = dict(kinds or {})
        """Endpoint → kind: a key is deleted when it leaves every endpoint of its kind."""
        self.versions: list[dict[str, dict[str, tuple[str, dict[str, Any]]]]] = []
        self.changed_at: dict[str, dict[str, datetime]] = {}
        self.deletions: list[tuple[str, str, datetime, dict[str, Any]]] = []
        """(kind, key, when, last record) for every key that disappeared."""

    @property
    def version(self) -> int:
        return len(self.versions)

    def _kind_keys(self, state: Mapping[str, Mapping[str, Any]], kind: str) -> set[str]:
        return {k for e, rows in state.items() if self.kinds.get(e, e) == kind for k in rows}

    def publish(self, tables: Mapping[str, Mapping[str, dict[str, Any]]], at: datetime) -> int:
        """Make ``tables`` current; records new or different from the last version change ``at``."""
        previous = self.versions[-1] if self.versions else {}
        state = {e: {k: (fingerprint(r), r) for k, r in rows.items()} for e, rows in tables.items()}
        for endpoint, rows in state.items():
            times = self.changed_at.setdefault(endpoint, {})
            before = previous.get(endpoint, {})
            for key, (digest, _) in rows.items():
                if key not in before or before[key][0] != digest:
                    times[key] = at
        for kind in {self.kinds.get(e, e) for e in (*previous, *state)}:
            for key in sorted(self._kind_keys(previous, kind) - self._kind_keys(state, kind)):
                last = next(
                    r
                    for e, rows in previous.items()
                    if self.kinds.get(e, e) == kind
                    for k, (_, r) in rows.items()
                    if k == key
                )
                self.deletions.append((kind, key, at, last))
        self.versions.append(state)
        return self.version

    def records(self, endpoint: str) -> list[dict[str, Any]]:
        return [r for _, r in self.versions[-1].get(endpoint, {}).values()] if self.versions else []

    def changed_since(self, endpoint: str, when: datetime) -> list[dict[str, Any]]:
        times = self.changed_at.get(endpoint, {})
        return [r for k, (_, r) in self.versions[-1].get(endpoint, {}).items() if times[k] > when]

    def changed_since_version(
        self, endpoint: str, version: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(records new or changed since ``version``, last records of keys removed since) for one endpoint."""
        before = self.versions[version - 1].get(endpoint, {}) if version >= 1 else {}
        now = self.versions[-1].get(endpoint, {})
        changed = [r for k, (d, r) in now.items() if k not in before or before[k][0] != d]
        removed = [r for k, (_, r) in before.items() if k not in now]
        return changed, removed


Server = TypeVar("Server", bound="FakeApiServer")


class FakeApiServer(LocalServer):
    """Base of the API fakes. Subclasses implement ``route`` (and ``endpoint_of`` for fault matching)."""

    thread_name = "fake-api"

    def __init__(
        self, *, seed: int = 0, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.faults = faults or Faults()
        self.now = datetime.now(UTC).replace(microsecond=0)
        """The fake's clock: served as ``Date``; ``publish`` moves it."""
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self.base_url = ""
        self.requests: list[tuple[str, str, int]] = []
        self.counters: dict[str, int] = {}
        self.reset_counters()

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = dict.fromkeys(
                ("requests", "throttles", "errors", "auth_failures", "forbidden", "pages", "records"), 0
            )
            self.requests.clear()

    # ---- for subclasses ---------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def endpoint_of(self, request: Request) -> str:
        """The endpoint name faults are keyed by (default: the last path segment)."""
        return request.path.rstrip("/").rsplit("/", 1)[-1]

    def json_response(self, payload: Any, *, endpoint: str, page: int, status: int = 200) -> Response:
        """A JSON answer for one page of an endpoint, cut off if ``faults.malformed`` says so."""
        body = to_json(payload)
        if (endpoint, page) in self.faults.malformed:
            body = body[: max(1, len(body) // 2)]
        return status, {"Content-Type": "application/json"}, body

    def page_records(self, endpoint: str, page: int, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One page's records after ``truncated`` and ``drop_key`` faults; counts what is served."""
        if (endpoint, page) in self.faults.truncated:
            records = records[: len(records) // 2]
        key = self.faults.drop_key.get(endpoint)
        if key and records:
            records = [{k: v for k, v in records[0].items() if k != key}, *records[1:]]
        self.counters["pages"] += 1
        self.counters["records"] += len(records)
        return records

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return status, {"Content-Type": "application/json", **(headers or {})}, to_json({"error": message})

    # ---- dispatch ---------------------------------------------------------------------------------
    def _inject(self, request: Request) -> Response | None:
        f = self.faults
        draw = self._rng.random() if f.throttle_rate or f.error_rate else 1.0
        if f.throttle_next > 0 or draw < f.throttle_rate:
            f.throttle_next = max(0, f.throttle_next - 1)
            self.counters["throttles"] += 1
            return self.error(429, "Too many requests (fake throttling).", {"Retry-After": f.retry_after})
        if f.error_next > 0 or draw < f.throttle_rate + f.error_rate:
            f.error_next = max(0, f.error_next - 1)
            self.counters["errors"] += 1
            return self.error(f.error_status, f"Injected fault {f.error_status}.")
        return None

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        split = urlsplit(raw_path)
        request = Request(
            method.upper(), split.path, dict(parse_qsl(split.query, keep_blank_values=True)), headers, body
        )
        if self.faults.delay:
            time.sleep(self.faults.delay)
        with self._lock:
            self.counters["requests"] += 1
            result = self._inject(request)
            if result is None:
                try:
                    result = self.route(request)
                except LookupError as exc:
                    result = self.error(404, f"Not found: {exc}")
                except ValueError as exc:
                    result = self.error(400, f"Bad request: {exc}")
            status, out_headers, payload = result
            out_headers = {**out_headers, "Date": email.utils.format_datetime(self.now, usegmt=True)}
            self.requests.append((request.method, raw_path, status))
        return status, out_headers, payload

    # ---- HTTP server (fakes.serving) ----------------------------------------------------------------
    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return self.handle(method, path, headers, body)

    def served_at(self, host: str, port: int) -> None:
        self.base_url = f"http://{host}:{port}"

    def http_date(self) -> str | None:
        return email.utils.format_datetime(self.now, usegmt=True)


@contextlib.contextmanager
def running(fake: Server) -> Iterator[Server]:
    """Start ``fake`` on 127.0.0.1 with an ephemeral port; stop it on exit."""
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
