"""Local fake of the Microsoft Graph v1.0 endpoints used by the sync — a LOCAL EMULATOR for tests and
``make demo``, never a stand-in for validating behaviour against a real tenant.

Usage::

    with running_fake_graph(seed=1, throttle_rate=0.2, fault_rate=0.1) as fake:
        uid = fake.add_user("a.pupil@school.example")
        # point an msgraph connection at it: extra {"base_url": fake.base_url + "/", "tenant_id": <guid>,
        # "allowed_hosts": "graph.microsoft.com"}  (no token is requested for a host outside allowed_hosts)
        ...
        fake.state.classes, fake.state.members, fake.counters, fake.requests

Faults are drawn from one seeded RNG per server, once per outer request and once per inner ``$batch``
request, so a sequential client sees the same faults for the same seed.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from mis_sync.fakes.graph_store import GraphError, GraphState, GraphStore, Response, bad
from mis_sync.fakes.serving import Answer, LocalServer

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
VERSION = "v1.0"


class FakeGraph(LocalServer):
    """In-memory Graph emulator. ``handle()`` is usable without a socket; ``start()`` serves it over HTTP."""

    def __init__(
        self,
        *,
        seed: int = 0,
        throttle_rate: float = 0.0,
        fault_rate: float = 0.0,
        retry_after: int | str = "1",
        fault_statuses: tuple[int, ...] = (503, 504),
        fault_reads: bool = True,
        fail_after_writes: int | None = None,
        page_size: int = 100,
        auto_users_domain: str | None = None,
        max_batch: int = 20,
        shuffle_batch: bool = True,
        team_not_ready_attempts: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not 0.0 <= throttle_rate + fault_rate <= 1.0:
            raise ValueError("throttle_rate + fault_rate must be within [0, 1]")
        self.throttle_rate, self.fault_rate = throttle_rate, fault_rate
        self.retry_after = str(retry_after)
        self.fault_statuses = fault_statuses
        self.fault_reads = fault_reads
        self.fail_after_writes = fail_after_writes
        self.throttle_next = 0  # the next N requests (outer or inner) are answered 429, whatever the rates
        self.max_batch = max_batch
        self.shuffle_batch = shuffle_batch
        self.store = GraphStore(
            seed=seed, page_size=page_size, team_not_ready_attempts=team_not_ready_attempts
        )
        self.store.auto_users_domain = auto_users_domain.lower() if auto_users_domain else None
        self._faults_rng = random.Random(seed)
        self._shuffle_rng = random.Random(seed * 31 + 7)
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self.requests: list[tuple[str, str, int]] = []
        self.inner_requests: list[tuple[str, str, int]] = []
        self.counters: dict[str, int] = {}
        self.reset_counters()

    # ---- public helpers -------------------------------------------------------------------------------
    @property
    def state(self) -> GraphState:
        return self.store.state

    @property
    def base_url(self) -> str:
        return self.store.base_url

    @property
    def team_not_ready_attempts(self) -> int:
        """The first N ``POST /teams`` for each group answer 404 (a group made under ~15 minutes ago)."""
        return self.store.team_not_ready_attempts

    @team_not_ready_attempts.setter
    def team_not_ready_attempts(self, value: int) -> None:
        self.store.team_not_ready_attempts = value

    def add_user(self, upn: str, display_name: str | None = None, **attrs: Any) -> str:
        """Seed a user (Entra and education user share the id); returns the object id."""
        with self._lock:
            return self.store.add_user(upn, display_name, **attrs)

    def delete_user(self, uid: str) -> None:
        """Delete a user (it leaves every class); adding the same principal name again gives a new id."""
        with self._lock:
            self.store.delete_user(uid)

    def reset_counters(self) -> None:
        """Zero counters and request logs (state is kept)."""
        with self._lock:
            self.counters = dict.fromkeys(
                ("requests", "write_requests", "batches", "inner_requests", "writes", "write_attempts",
                 "throttles", "faults", "failed_dependencies"),
                0,
            )  # fmt: skip
            self.requests.clear()
            self.inner_requests.clear()

    # ---- fault injection ------------------------------------------------------------------------------
    def _inject(self, method: str, *, outer_batch: bool = False) -> Response | None:
        if method == "GET" and not self.fault_reads:
            return None
        draw = self._faults_rng.random() if self.throttle_rate or self.fault_rate else 1.0
        if self.throttle_next > 0 or draw < self.throttle_rate:
            self.throttle_next = max(0, self.throttle_next - 1)
            self.counters["throttles"] += 1
            err = GraphError(429, "TooManyRequests", "Too many requests (fake throttling).").body()
            return 429, {"Retry-After": self.retry_after}, err
        if draw < self.throttle_rate + self.fault_rate:
            self.counters["faults"] += 1
            status = self.fault_statuses[self._faults_rng.randrange(len(self.fault_statuses))]
            code = "serviceNotAvailable" if status == 503 else "gatewayTimeout"
            return status, {}, GraphError(status, code, f"Injected fault {status}.").body()
        limit = self.fail_after_writes
        if (
            not outer_batch
            and method in WRITE_METHODS
            and limit is not None
            and self.counters["writes"] >= limit
        ):
            self.counters["faults"] += 1
            msg = f"Injected outage: fail_after_writes={limit} reached."
            return 503, {}, GraphError(503, "serviceNotAvailable", msg).body()
        return None

    # ---- dispatch -------------------------------------------------------------------------------------
    def _one(self, method: str, url: str, body: Any) -> Response:
        """One (outer or inner) non-batch request; ``url`` relative to the version root."""
        injected = self._inject(method)
        if injected is not None:
            return injected
        split = urlsplit(url)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if method in WRITE_METHODS:
            self.counters["write_attempts"] += 1
        try:
            status, headers, out = self.store.handle(method, split.path, query, body)
        except GraphError as exc:
            return exc.status, {}, exc.body()
        if method in WRITE_METHODS and 200 <= status < 300:
            self.counters["writes"] += 1
        return status, headers, out

    def _batch(self, body: Any) -> Response:
        reqs = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(reqs, list) or not reqs:
            raise bad("Invalid batch payload: 'requests' must be a non-empty array.")
        if len(reqs) > self.max_batch:
            raise bad(f"Number of batch requests ({len(reqs)}) exceeds the limit of {self.max_batch}.")
        by_id: dict[str, dict[str, Any]] = {}
        for r in reqs:
            if not isinstance(r, dict) or not all(isinstance(r.get(k), str) for k in ("id", "method", "url")):
                raise bad("Each batch request needs string 'id', 'method' and 'url'.")
            if r["id"].lower() in {i.lower() for i in by_id}:
                raise bad(f"Batch request ids must be unique: '{r['id']}' is duplicated.")
            headers = r.get("headers")
            if "body" in r and not (
                isinstance(headers, dict) and any(k.lower() == "content-type" for k in headers)
            ):
                raise bad(f"Request '{r['id']}': a Content-Type header is required when a body is present.")
            if r["url"].lower().startswith(("http://", "https://")):
                raise bad(f"Request '{r['id']}': batch urls must be relative to the version root.")
            by_id[r["id"]] = r
        order: list[str] = []
        pending = list(by_id)
        while pending:
            ready = [i for i in pending if all(d in order for d in by_id[i].get("dependsOn") or [])]
            for i in pending:
                deps = by_id[i].get("dependsOn") or []
                if not isinstance(deps, list) or any(d not in by_id for d in deps):
                    raise bad(f"Request '{i}': dependsOn refers to an unknown request id.")
            if not ready:
                raise bad("Circular dependsOn in batch.")
            order.extend(ready)
            pending = [i for i in pending if i not in ready]
        results: dict[str, int] = {}
        responses = []
        for rid in order:
            r = by_id[rid]
            method = r["method"].upper()
            url = r["url"].lstrip("/")
            url = url[len(VERSION) + 1 :] if url.startswith(VERSION + "/") else url
            self.counters["inner_requests"] += 1
            if any(not 200 <= results[d] < 300 for d in r.get("dependsOn") or []):
                self.counters["failed_dependencies"] += 1
                err = GraphError(
                    424, "FailedDependency", "Failed dependency: a request this one depends on failed."
                )
                status, headers, out = 424, {}, err.body()
            elif url.split("?")[0].strip("/") == "$batch":
                status, headers, out = 400, {}, bad("Nested $batch is not supported.").body()
            else:
                status, headers, out = self._one(method, url, r.get("body"))
            results[rid] = status
            self.inner_requests.append((method, "/" + url.split("?")[0], status))
            item: dict[str, Any] = {"id": rid, "status": status, "headers": dict(headers)}
            if out is not None:
                item["headers"]["Content-Type"] = "application/json"
                item["body"] = out
            responses.append(item)
        if self.shuffle_batch:
            self._shuffle_rng.shuffle(responses)
        return 200, {}, {"responses": responses}

    def handle(self, method: str, raw_path: str, raw_body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Handle one HTTP request (path as sent, e.g. ``/v1.0/education/classes?$top=5``)."""
        method = method.upper()
        with self._lock:
            status, headers, out = self._handle(method, raw_path, raw_body)
            self.requests.append((method, unquote(urlsplit(raw_path).path), status))
        payload = b"" if out is None else json.dumps(out).encode()
        if out is not None:
            headers = {**headers, "Content-Type": "application/json"}
        return status, headers, payload

    def _handle(self, method: str, raw_path: str, raw_body: bytes) -> Response:
        self.counters["requests"] += 1
        split = urlsplit(raw_path)
        path = split.path
        if method == "POST" and path.rstrip("/").endswith("/oauth2/v2.0/token"):
            token = {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": "fake",
            }
            return 200, {}, token
        if not (path == f"/{VERSION}" or path.startswith(f"/{VERSION}/")):
            return 404, {}, GraphError(404, "NotFound", f"Unknown API version in '{path}'.").body()
        rel = path[len(VERSION) + 1 :].lstrip("/")
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            return 400, {}, bad("Request body is not valid JSON.").body()
        is_batch = rel.rstrip("/") == "$batch"
        if method in WRITE_METHODS and not is_batch:
            self.counters["write_requests"] += 1
        if is_batch and method == "POST":
            self.counters["batches"] += 1
            inner = body.get("requests") if isinstance(body, dict) else None
            if isinstance(inner, list) and any(
                isinstance(r, dict) and str(r.get("method", "")).upper() in WRITE_METHODS for r in inner
            ):
                self.counters["write_requests"] += 1
            injected = self._inject(method, outer_batch=True)
            if injected is not None:
                return injected
            try:
                return self._batch(body)
            except GraphError as exc:
                return exc.status, {}, exc.body()
        return self._one(method, rel + (f"?{split.query}" if split.query else ""), body)

    # ---- HTTP server (fakes.serving) ----------------------------------------------------------------
    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return self.handle(method, path, body)

    def served_at(self, host: str, port: int) -> None:
        self.store.base_url = f"http://{host}:{port}/{VERSION}"


@contextlib.contextmanager
def running_fake_graph(**options: Any) -> Iterator[FakeGraph]:
    """Start a :class:`FakeGraph` on 127.0.0.1 with an ephemeral port; stop it on exit."""
    fake = FakeGraph(**options)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
