"""Local fake of Google Classroom v1 and the Admin SDK Directory v1 ``users`` API — a LOCAL EMULATOR for
tests and ``make demo``, never a stand-in for validating behaviour against a real Google Workspace.

Usage with the real client library (a bare ``httplib2.Http()`` sends no credentials)::

    with running_fake_classroom(seed=1, throttle_rate=0.1) as fake:
        admin = fake.add_user("admin@school.example", "Site", "Admin", is_admin=True)
        classroom = build("classroom", "v1", http=httplib2.Http(), static_discovery=True,
                          client_options=fake.client_options)
        directory = build("admin", "directory_v1", http=httplib2.Http(), static_discovery=True,
                          client_options=fake.client_options)
        # new_batch_http_request() would post to the real rootUrl (targets.md §3.6): name the URI instead
        batch = BatchHttpRequest(callback=cb, batch_uri=fake.batch_uri)
        ...
        fake.state.courses, fake.state.students, fake.counters, fake.requests

``auto_users_domain`` (the demo, ``python -m mis_sync.fakes.serve classroom``) makes any looked-up address
of that domain exist, as the accounts a real Workspace already holds; tests seed their users instead.

Faults come from one seeded RNG per server, drawn once per outer request and once per inner batch part, so a
sequential client sees the same faults for the same seed. Classroom throttling is ``429 RESOURCE_EXHAUSTED``;
Directory throttling is ``429`` with reason ``rateLimitExceeded`` (or, with ``directory_throttle_status=403``,
``403 userRateLimitExceeded`` — both documented in the Directory limits page and both retried by
googleapiclient's ``num_retries``). With ``quota=ClassroomQuota(...)`` (:mod:`mis_sync.fakes.classroom_quota`)
every Classroom call also counts against Google's documented per-user and per-project per-minute quotas
on a moving window, and a call over them is answered 429 as Google does. The request logs hold method,
path and status only, never bodies.
"""

from __future__ import annotations

import contextlib
import http
import json
import random
import re
import threading
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesParser, Parser
from email.policy import compat32
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mis_sync.fakes.classroom_quota import ClassroomQuota
from mis_sync.fakes.classroom_schema import GoogleError, Response, error_response, invalid, not_found
from mis_sync.fakes.classroom_state import ClassroomState
from mis_sync.fakes.classroom_store import ClassroomStore
from mis_sync.fakes.directory_store import DirectoryStore
from mis_sync.fakes.serving import Answer, LocalServer

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
CLASSROOM_PREFIX, DIRECTORY_PREFIX = "/v1/", "/admin/directory/v1/"
JSON_TYPE = "application/json; charset=UTF-8"
_COUNTERS = (
    "requests", "write_requests", "batches", "inner_requests", "writes", "write_attempts", "throttles",
    "faults", "quota_refusals",
)  # fmt: skip


def _api(path: str) -> str | None:
    if path.startswith(CLASSROOM_PREFIX):
        return "classroom"
    if path.startswith(DIRECTORY_PREFIX):
        return "directory"
    return None


class FakeClassroom(LocalServer):
    """In-memory Classroom + Directory emulator: ``handle()`` needs no socket, ``start()`` serves HTTP."""

    def __init__(
        self,
        *,
        seed: int = 0,
        throttle_rate: float = 0.0,
        fault_rate: float = 0.0,
        fault_statuses: tuple[int, ...] = (500, 503),
        fault_reads: bool = True,
        fail_after_writes: int | None = None,
        page_size: int = 100,
        max_batch: int = 50,
        shuffle_batch: bool = True,
        member_limit: int = 1000,
        teacher_limit: int = 20,
        directory_throttle_status: int = 429,
        auto_users_domain: str | None = None,
        quota: ClassroomQuota | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not 0.0 <= throttle_rate + fault_rate <= 1.0:
            raise ValueError("throttle_rate + fault_rate must be within [0, 1]")
        if directory_throttle_status not in (403, 429):
            raise ValueError("directory_throttle_status must be 403 or 429")
        self.throttle_rate, self.fault_rate = throttle_rate, fault_rate
        self.fault_statuses, self.fault_reads = fault_statuses, fault_reads
        self.fail_after_writes = fail_after_writes
        self.throttle_next = 0  # the next N requests (outer or inner) are throttled, whatever the rates
        self.max_batch, self.shuffle_batch = max_batch, shuffle_batch
        self.directory_throttle_status = directory_throttle_status
        self.quota = quota
        """Google's per-user / per-project per-minute quotas on Classroom calls (off by default)."""
        state = ClassroomState()
        self.classroom = ClassroomStore(
            state, seed=seed, page_size=page_size, member_limit=member_limit, teacher_limit=teacher_limit
        )
        self.directory = DirectoryStore(state, seed=seed, auto_users_domain=auto_users_domain)
        self.classroom.missing_user = self.directory.auto_user
        self._faults_rng = random.Random(seed)
        self._batch_rng = random.Random(seed * 31 + 7)
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self.base_url = f"http://{host}:{port or 80}/"
        self.requests: list[tuple[str, str, int]] = []
        self.inner_requests: list[tuple[str, str, int]] = []
        self.counters: dict[str, int] = {}
        self.reset_counters()

    # ---- public helpers -----------------------------------------------------------------------------
    @property
    def state(self) -> ClassroomState:
        return self.classroom.state

    @property
    def client_options(self) -> dict[str, str]:
        """``client_options`` for ``googleapiclient.discovery.build``."""
        return {"api_endpoint": self.base_url}

    @property
    def batch_uri(self) -> str:
        return self.base_url + "batch"

    def add_user(self, email: str, given: str, family: str, **attrs: Any) -> str:
        """Seed a Workspace user (``suspended``, ``org_unit_path``, ``is_admin``, ``id``, other User fields);
        returns its numeric id. The first ``is_admin=True`` user is what ``"me"`` means."""
        with self._lock:
            return self.directory.add_user(email, given, family, **attrs)

    def add_org_unit(self, path: str) -> None:
        """Declare an org unit; once any is declared, users may only be placed in declared ones (or ``/``)."""
        with self._lock:
            self.state.org_units = (self.state.org_units or set()) | {path}

    def add_course(self, name: str, owner: str, *, alias: str | None = None, state: str = "ACTIVE") -> str:
        """Seed a course through the real create semantics; returns its id."""
        body = {"name": name, "ownerId": owner, "courseState": state, **({"id": alias} if alias else {})}
        with self._lock:
            try:
                return str(self.classroom.create_course(body)["id"])
            except GoogleError as exc:
                raise ValueError(f"cannot seed course: {exc.message}") from None

    def reset_counters(self) -> None:
        """Zero counters and request logs (state is kept)."""
        with self._lock:
            self.counters = dict.fromkeys(_COUNTERS, 0)
            self.requests.clear()
            self.inner_requests.clear()

    # ---- fault injection ----------------------------------------------------------------------------
    def _throttled(self, api: str) -> Response:
        self.counters["throttles"] += 1
        msg, domain = "Quota exceeded (fake throttling).", "usageLimits"
        if api == "directory" and self.directory_throttle_status == 403:
            exc = GoogleError(403, "PERMISSION_DENIED", msg, reason="userRateLimitExceeded", domain=domain)
        else:
            reason = "rateLimitExceeded" if api == "directory" else None
            exc = GoogleError(429, "RESOURCE_EXHAUSTED", msg, reason=reason, domain=domain)
        return error_response(exc)

    def _inject(self, method: str, api: str, *, outer_batch: bool = False) -> Response | None:
        if method == "GET" and not self.fault_reads:
            return None
        draw = self._faults_rng.random() if self.throttle_rate or self.fault_rate else 1.0
        if self.throttle_next > 0 or draw < self.throttle_rate:
            self.throttle_next = max(0, self.throttle_next - 1)
            return self._throttled(api)
        if draw < self.throttle_rate + self.fault_rate:
            self.counters["faults"] += 1
            status = self.fault_statuses[self._faults_rng.randrange(len(self.fault_statuses))]
            code = {500: "INTERNAL", 504: "DEADLINE_EXCEEDED"}.get(status, "UNAVAILABLE")
            return error_response(GoogleError(status, code, f"Injected fault {status}."))
        limit = self.fail_after_writes
        writing = not outer_batch and method in WRITE_METHODS
        if writing and limit is not None and self.counters["writes"] >= limit:
            self.counters["faults"] += 1
            msg = f"Injected outage: fail_after_writes={limit} reached."
            return error_response(GoogleError(503, "UNAVAILABLE", msg))
        return None

    # ---- dispatch -----------------------------------------------------------------------------------
    def _one(self, method: str, target: str, raw_body: bytes) -> Response:
        """One (outer or inner) API call; ``target`` is the path and query as sent."""
        split = urlsplit(target)
        api = _api(split.path)
        if api is None:
            return error_response(not_found("Method not found."))
        refused = self.quota.admit() if self.quota is not None and api == "classroom" else None
        if refused is not None:  # every Classroom call counts, batched or not
            self.counters["throttles"] += 1
            self.counters["quota_refusals"] += 1
            return error_response(refused)
        injected = self._inject(method, api)
        if injected is not None:
            return injected
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            return error_response(invalid("Invalid JSON payload received."))
        prefix = CLASSROOM_PREFIX if api == "classroom" else DIRECTORY_PREFIX
        parts = [unquote(p) for p in split.path[len(prefix) :].strip("/").split("/") if p]
        query = parse_qs(split.query, keep_blank_values=True)
        if method in WRITE_METHODS:
            self.counters["write_attempts"] += 1
        store = self.classroom if api == "classroom" else self.directory
        try:
            status, headers, out = store.handle(method, parts, query, body)
        except GoogleError as exc:
            return error_response(exc)
        if method in WRITE_METHODS and 200 <= status < 300:
            self.counters["writes"] += 1
        return status, headers, out

    def handle(
        self, method: str, raw_path: str, raw_body: bytes = b"", content_type: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        """Handle one HTTP request (path as sent, e.g. ``/v1/courses/d%3AT1?alt=json``)."""
        method = method.upper()
        with self._lock:
            self.counters["requests"] += 1
            path = urlsplit(raw_path).path
            if path.rstrip("/") == "/batch" or path.startswith("/batch/"):
                status, headers, payload = self._batch(method, raw_body, content_type)
            else:
                if method in WRITE_METHODS:
                    self.counters["write_requests"] += 1
                status, headers, out = self._one(method, raw_path, raw_body)
                payload = b"" if out is None else json.dumps(out).encode()
                if out is not None:
                    headers = {**headers, "Content-Type": JSON_TYPE}
            self.requests.append((method, unquote(path), status))
        return status, headers, payload

    # ---- multipart batch ----------------------------------------------------------------------------
    def _batch(self, method: str, raw: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
        def fail(exc: GoogleError) -> tuple[int, dict[str, str], bytes]:
            return exc.code, {"Content-Type": JSON_TYPE}, json.dumps(exc.body()).encode()

        if method != "POST":
            return fail(not_found("Method not found."))
        self.counters["batches"] += 1
        try:
            parts = _parse_batch(content_type, raw)
        except GoogleError as exc:
            return fail(exc)
        if any(m in WRITE_METHODS for _, m, _, _ in parts):
            self.counters["write_requests"] += 1
        apis = {_api(urlsplit(t).path) for _, _, t, _ in parts}
        injected = self._inject(method, next((a for a in apis if a), "classroom"), outer_batch=True)
        if injected is not None:
            return injected[0], {"Content-Type": JSON_TYPE}, json.dumps(injected[2]).encode()
        if not parts:
            return fail(invalid("A batch request must contain at least one part."))
        if len(parts) > self.max_batch:
            return fail(invalid(f"A batch request cannot contain more than {self.max_batch} requests."))
        if len(apis) > 1 or None in apis:
            return fail(invalid("All requests in a batch must be for the same API."))
        answers = []
        for content_id, inner_method, target, body in parts:
            self.counters["inner_requests"] += 1
            status, _, out = self._one(inner_method, target, body)
            self.inner_requests.append((inner_method, unquote(urlsplit(target).path), status))
            answers.append((content_id, status, b"" if out is None else json.dumps(out).encode()))
        if self.shuffle_batch:  # clients must match parts by Content-ID, not by position
            self._batch_rng.shuffle(answers)
        boundary = f"batch_{self._batch_rng.getrandbits(64):016x}"
        chunks = []
        for content_id, status, payload in answers:
            response_id = f"<response-{content_id[1:]}" if content_id.startswith("<") else content_id
            head = (
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {response_id}\r\n\r\n"
                f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\nContent-Type: {JSON_TYPE}\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            )
            chunks.append(head.encode() + payload + b"\r\n")
        body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
        return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, body

    # ---- HTTP server (fakes.serving) ----------------------------------------------------------------
    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        try:
            return self.handle(method, path, body, ctype)
        except Exception as exc:  # a fake bug: answer 500 (type only, no data) instead of hanging up
            err = GoogleError(500, "INTERNAL", f"Fake server error: {type(exc).__name__}.")
            return 500, {"Content-Type": JSON_TYPE}, json.dumps(err.body()).encode()

    def served_at(self, host: str, port: int) -> None:
        self.base_url = f"http://{host}:{port}/"


def _parse_batch(content_type: str, raw: bytes) -> list[tuple[str, str, str, bytes]]:
    """Parts of a ``multipart/mixed`` batch as googleapiclient's BatchHttpRequest writes them:
    ``(Content-ID, method, path?query, body)``."""
    if not content_type.lower().startswith("multipart/mixed") or "boundary=" not in content_type:
        raise invalid("A batch request must be multipart/mixed with a boundary.")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    msg = BytesParser(policy=compat32).parsebytes(head + raw)
    if not msg.is_multipart():
        raise invalid("A batch request must be multipart/mixed with a boundary.")
    parts = []
    for part in msg.get_payload():
        assert isinstance(part, Message)
        if part.get_content_type() != "application/http":
            raise invalid("Each batch part must have Content-Type application/http.")
        content_id = " ".join((part.get("Content-ID") or "").split())
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        text = payload.decode("utf-8")
        line, _, rest = text.replace("\r\n", "\n").partition("\n")
        m = re.match(r"^([A-Z]+) (\S+) HTTP/1\.[01]$", line.strip())
        if not m:
            raise invalid("Each batch part must hold one HTTP request.")
        inner = Parser(policy=compat32).parsestr(rest)
        body = inner.get_payload()
        parts.append((content_id, m[1], m[2], body.encode() if isinstance(body, str) else b""))
    return parts


@contextlib.contextmanager
def running_fake_classroom(**options: Any) -> Iterator[FakeClassroom]:
    """Start a :class:`FakeClassroom` on 127.0.0.1 with an ephemeral port; stop it on exit."""
    fake = FakeClassroom(**options)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
