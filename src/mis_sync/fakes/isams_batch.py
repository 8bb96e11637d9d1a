"""Local fake of the iSAMS Batch API endpoint — a LOCAL EMULATOR for tests and demos, never a stand-in
for validating behaviour against a real iSAMS instance.

Usage::

    from mis_sync.generator.shapes.isams_batch import render_isams_batch

    with running_fake_isams_batch(document=render_isams_batch(extract), fail_next=2) as fake:
        # point an isams_batch connection at it: password = fake.api_key,
        # extra {"base_url": fake.base_url}; mis.options {"backoff_seconds": 0} keeps tests fast
        ...
        fake.counters, fake.requests

What it emulates (``mis-sources.md`` §3.4 and an open-source client's recorded responses [S]):
``GET``/``POST /api/batch/1.0/xml.ashx?apiKey=…`` answers the whole document (an optional ``<Filters>``
POST body is recorded, not applied); a wrong key is ``401`` with an ``InvalidApiKey`` ``<Message>``;
``forbid_methods`` gives ``403 MethodsNotAllocatedToKeyException``; a ``500`` carries the SQL deadlock
``UnhandledException`` message iSAMS sends under load. Error bodies declare ``encoding="utf-16"`` but
are UTF-8, as the real ones are reported to be [S]. ``Last-Modified`` is ``last_modified`` if given.

Seeded faults: ``fail_next`` (the next N requests fail with a status from ``fault_statuses``, drawn
from one seeded RNG), ``fault_rate`` (each request fails with that probability), ``truncate_next``
(the next N answers are the first half of the document, with a matching Content-Length) and
``malformed_next`` (the next N answers have a mismatched end tag). Request logs keep the path only:
the key is never recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import threading
from collections.abc import Iterator
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from mis_sync.fakes.serving import Answer, LocalServer

ENDPOINT = "/api/batch/1.0/xml.ashx"
MESSAGES = {
    "InvalidApiKey": ("Invalid API Key", "The API key is invalid.\nPlease contact your iSAMS administrator."),
    "MethodsNotAllocatedToKeyException": (
        "Methods Not Allocated To Key",
        "The following methods specified in the MethodsToRun filter are not allocated to the requested key.",
    ),
    "UnhandledException": (
        "Unknown Error",
        "Transaction (Process ID 118) was deadlocked on lock resources with another process and has been "
        "chosen as the deadlock victim. Rerun the transaction.",
    ),
}

Reply = tuple[int, dict[str, str], bytes]


def message_document(message_id: str) -> bytes:
    """An iSAMS error document, mislabelled UTF-16 as the real service sends it."""
    title, description = MESSAGES[message_id]
    return (
        '<?xml version="1.0" encoding="utf-16"?>\n<Message>\n'
        f"  <MessageId>{message_id}</MessageId>\n  <MessageName>{message_id}</MessageName>\n"
        f"  <Title>{escape(title)}</Title>\n  <Description>{escape(description)}</Description>\n</Message>"
    ).encode()


class FakeIsamsBatch(LocalServer):
    """In-memory Batch API. ``handle()`` works without a socket; ``start()`` serves it over HTTP."""

    def __init__(
        self,
        document: bytes = b"<iSAMS />",
        *,
        api_key: str = "fake-batch-api-key",
        seed: int = 0,
        fault_rate: float = 0.0,
        fault_statuses: tuple[int, ...] = (500, 502, 503, 504),
        fail_next: int = 0,
        truncate_next: int = 0,
        malformed_next: int = 0,
        forbid_methods: bool = False,
        last_modified: dt.datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be within [0, 1]")
        self.document, self.api_key = document, api_key
        self.fault_rate, self.fault_statuses = fault_rate, fault_statuses
        self.fail_next, self.truncate_next, self.malformed_next = fail_next, truncate_next, malformed_next
        self.forbid_methods = forbid_methods
        self.last_modified = last_modified
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self.base_url = ""
        self.requests: list[tuple[str, str, int]] = []
        self.bodies: list[bytes] = []
        self.counters: dict[str, int] = {}
        self.reset_counters()

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = dict.fromkeys(
                ("requests", "served", "faults", "auth_failures", "truncated", "malformed"), 0
            )
            self.requests.clear()
            self.bodies.clear()

    def _fault(self) -> Reply | None:
        if self.fail_next > 0:
            self.fail_next -= 1
        elif not (self.fault_rate and self._rng.random() < self.fault_rate):
            return None
        self.counters["faults"] += 1
        status = self.fault_statuses[self._rng.randrange(len(self.fault_statuses))]
        if status == 500:
            return 500, {"Content-Type": "text/xml"}, message_document("UnhandledException")
        return status, {"Content-Type": "text/plain"}, b"Service Unavailable (fake fault)"

    def _document(self) -> bytes:
        if self.truncate_next > 0:
            self.truncate_next -= 1
            self.counters["truncated"] += 1
            return self.document[: len(self.document) // 2]
        if self.malformed_next > 0:
            self.malformed_next -= 1
            self.counters["malformed"] += 1
            head, _, tail = self.document.rpartition(b"</")
            return head + b"<Broken></Mismatched></" + tail
        return self.document

    def handle(self, method: str, raw_path: str, body: bytes = b"") -> Reply:
        """Answer one request (``raw_path`` as sent, query string included)."""
        with self._lock:
            status, headers, payload = self._handle(method.upper(), raw_path, body)
            self.requests.append((method.upper(), urlsplit(raw_path).path, status))
        return status, headers, payload

    def _handle(self, method: str, raw_path: str, body: bytes) -> Reply:
        self.counters["requests"] += 1
        split = urlsplit(raw_path)
        if split.path.rstrip("/").lower() != ENDPOINT:
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        if method not in {"GET", "POST"}:
            return 405, {"Allow": "GET, POST"}, b""
        if body:
            self.bodies.append(body)
        keys = {k.lower(): v for k, v in parse_qs(split.query).items()}
        if keys.get("apikey", [""])[0] != self.api_key:
            self.counters["auth_failures"] += 1
            return 401, {"Content-Type": "text/xml"}, message_document("InvalidApiKey")
        if self.forbid_methods:
            self.counters["auth_failures"] += 1
            return 403, {"Content-Type": "text/xml"}, message_document("MethodsNotAllocatedToKeyException")
        fault = self._fault()
        if fault is not None:
            return fault
        self.counters["served"] += 1
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if self.last_modified is not None:
            headers["Last-Modified"] = format_datetime(self.last_modified.astimezone(dt.UTC), usegmt=True)
        return 200, headers, self._document()

    # ---- HTTP server (fakes.serving) ----------------------------------------------------------------
    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return self.handle(method, path, body)

    def served_at(self, host: str, port: int) -> None:
        self.base_url = f"http://{host}:{port}"


@contextlib.contextmanager
def running_fake_isams_batch(**options: Any) -> Iterator[FakeIsamsBatch]:
    """Start a :class:`FakeIsamsBatch` on 127.0.0.1 with an ephemeral port; stop it on exit."""
    fake = FakeIsamsBatch(**options)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
