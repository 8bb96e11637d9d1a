"""Local fake of the Wonde API v1.0 for one school — a LOCAL EMULATOR for tests and demos.

Usage::

    with running_fake_wonde(extract) as fake:      # any canonical Extract, e.g. generate_school(...)
        conn = ConnectionInfo(conn_id="wonde", login=fake.school_id, password=fake.token,
                              extra={"base_url": fake.base_url + "/v1.0"})
        WondeConnector(conn, {}).extract()
        fake.publish(next_extract, at=later)       # the school changed: deltas and deletions follow
        fake.faults.throttle_next = 2              # see fakes.http_fake.Faults
        fake.counters, fake.requests

Serves ``GET /v1.0/schools/{school_id}/{endpoint}`` for the endpoints of
``generator.shapes.wonde.ENDPOINTS`` and ``deletions``: Bearer (or Basic, token as user name) auth,
``include=`` (includes not asked for are left out), ``page`` / ``per_page`` (default 200, at most
``max_per_page``) with ``meta.pagination.{next, previous, more, per_page (a string, as Wonde sends it),
current_page}``, ``updated_after=YYYY-MM-DD HH:MM:SS`` (records changed after it) and
``deletions?type=…&updated_after=…`` (``{id, type, deleted_at, restored_at}``) and
``counts?include=students,…``.

Answers follow Wonde's documentation and official clients, and vary where those leave it open:

- ``counts``: ``{"data": {"students": {"data": {"count": N}}}}``, as Wonde's PHP and .NET clients read
  it (``counts_shape="data"``, the default); ``"counts"`` puts it under ``counts`` instead, ``"string"``
  sends the number as a string; endpoints in ``counts_omit`` are left out of the reply.
- withheld fields: Wonde sends ``null`` for what the app has no scope for. ``withhold`` maps an endpoint
  to dotted paths set to null in its records (``"employment_details"``: the whole include;
  ``"employment_details.data"``; ``"employment_details.data.current"``: one property; ``"year.data"``,
  ``"education_details.data.current_nc_year"``…), for the ids in ``withhold_ids`` (None: every record).
- ``year``: the ``year`` include carries ``{id, code, name}``; ``year_codes="labelled"`` sends codes as
  some MISs name them (``"Year 7"``, ``"Year R"``) rather than ``"7"``.
- change times: ``publish(extract, at)`` moves the clock (the ``Date`` header) to ``at`` and stamps the
  records that changed with ``at - sync_lag`` (Wonde synced them from the MIS before the read), so the
  connector's safety overlap does not refetch the whole school. Wonde does not document whether a
  record's ``updated_at`` moves when only its includes do (a class's members, a student's groups):
  ``members_touch_updated_at`` (default False) says whether they do here.
"""

from __future__ import annotations

import base64
import contextlib
import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from mis_sync.fakes.http_fake import (
    FakeApiServer,
    Request,
    Response,
    VersionedStore,
    fingerprint,
    running,
)
from mis_sync.generator.shapes.wonde import DELETION_TYPES, ENDPOINTS, INCLUDES, mis_number, render_wonde
from mis_sync.model import Extract

VERSION = "v1.0"
MEMBER_INCLUDES = {
    "groups": frozenset({"students", "employees"}),
    "classes": frozenset({"students", "employees"}),
    **dict.fromkeys(("students", "students-pre-admission", "students-leaver"), frozenset({"groups"})),
}
"""Includes that list other records' membership: with ``members_touch_updated_at`` False, a change in
them alone leaves the record's ``updated_at`` as it was."""


def _date(when: datetime) -> dict[str, Any]:
    return {"date": f"{when:%Y-%m-%d %H:%M:%S}.000000", "timezone_type": 3, "timezone": "UTC"}


class FakeWonde(FakeApiServer):
    thread_name = "fake-wonde"

    def __init__(
        self,
        extract: Extract | None = None,
        *,
        school_id: str = "A1930499544",
        token: str = "fake-wonde-token",
        per_page: int = 200,
        max_per_page: int = 1000,
        sync_lag: timedelta = timedelta(hours=1),
        counts_shape: str = "data",
        counts_omit: frozenset[str] = frozenset(),
        withhold: dict[str, tuple[str, ...]] | None = None,
        withhold_ids: set[str] | None = None,
        year_codes: str = "plain",
        members_touch_updated_at: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.school_id, self.token = school_id, token
        self.per_page, self.max_per_page, self.sync_lag = per_page, max_per_page, sync_lag
        self.counts_shape, self.counts_omit = counts_shape, set(counts_omit)
        self.withhold, self.withhold_ids = dict(withhold or {}), withhold_ids
        self.year_codes, self.members_touch_updated_at = year_codes, members_touch_updated_at
        self.store = VersionedStore(DELETION_TYPES)
        if extract is not None:
            self.publish(extract)

    def publish(self, extract: Extract, at: datetime | pd.Timestamp | None = None) -> None:
        """Serve ``extract`` from now on, as of ``at`` (default: its ``snapshot_at``)."""
        when = pd.Timestamp(at if at is not None else extract.snapshot_at).tz_convert("UTC").to_pydatetime()
        tables = render_wonde(extract, labelled_years=self.year_codes == "labelled")
        with self._lock:
            before = {e: dict(t) for e, t in self.store.changed_at.items()}
            previous = self.store.versions[-1] if self.store.versions else {}
            self.store.publish(tables, when - self.sync_lag)
            if not self.members_touch_updated_at:
                self._keep_times_of_include_only_changes(previous, tables, before)
            self.now = when.replace(microsecond=0)

    def _keep_times_of_include_only_changes(
        self,
        previous: dict[str, dict[str, tuple[str, dict[str, Any]]]],
        tables: dict[str, dict[str, dict[str, Any]]],
        before: dict[str, dict[str, datetime]],
    ) -> None:
        """A record whose own fields did not change keeps its ``updated_at`` though its members did."""
        for endpoint, includes in MEMBER_INCLUDES.items():
            old = previous.get(endpoint, {})
            for key, record in tables.get(endpoint, {}).items():
                if key in old and key in before.get(endpoint, {}):
                    own = {k: v for k, v in record.items() if k not in includes}
                    was = {k: v for k, v in old[key][1].items() if k not in includes}
                    if fingerprint(own) == fingerprint(was):
                        self.store.changed_at[endpoint][key] = before[endpoint][key]

    def endpoint_of(self, request: Request) -> str:
        return request.path.rstrip("/").rsplit("/", 1)[-1]

    def _authorised(self, request: Request) -> bool:
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value == self.token
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                return base64.b64decode(value).decode().split(":", 1)[0] == self.token
        return False

    def route(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != VERSION or parts[1] != "schools" or request.method != "GET":
            raise LookupError(request.path)
        if self.faults.unauthorized or not self._authorised(request):
            self.counters["auth_failures"] += 1
            return self.error(401, "Unauthenticated.")
        if parts[2] != self.school_id:
            raise LookupError("school")
        endpoint = parts[3]
        if endpoint in self.faults.forbidden:
            self.counters["forbidden"] += 1
            return self.error(403, "This action is unauthorized.")
        q = request.query
        since = (
            datetime.strptime(q["updated_after"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            if q.get("updated_after")
            else None
        )
        if endpoint == "counts":
            return self._counts(q.get("include", ""))
        if endpoint == "deletions":
            rows = self._deletions(q.get("type"), since)
        elif endpoint in ENDPOINTS:
            rows = self.store.changed_since(endpoint, since) if since else self.store.records(endpoint)
        else:
            raise LookupError(endpoint)
        page = int(q.get("page", 1))
        size = min(int(q.get("per_page", self.per_page)), self.max_per_page)
        if page < 1 or size < 1:
            raise ValueError("page and per_page must be positive")
        chunk = rows[(page - 1) * size : page * size]
        more = page * size < len(rows)
        if endpoint != "deletions":
            asked = {i.split(".")[0] for i in q.get("include", "").split(",") if i}
            times = self.store.changed_at.get(endpoint, {})
            chunk = [
                self._withheld(
                    endpoint,
                    {
                        **{k: v for k, v in r.items() if k not in INCLUDES[endpoint] or k in asked},
                        "created_at": _date(min(times[r["id"]], self.now)),
                        "updated_at": _date(times[r["id"]]),
                    },
                )
                for r in chunk
            ]

        def link(number: int) -> str:
            return f"{self.base_url}{request.path}?{urlencode({**q, 'page': number})}"

        pagination = {
            "next": link(page + 1) if more else None,
            "previous": link(page - 1) if page > 1 else None,
            "more": more,
            "per_page": str(size),
            "current_page": page,
        }
        data = self.page_records(endpoint, page, chunk)
        return self.json_response(
            {"data": data, "meta": {"pagination": pagination}}, endpoint=endpoint, page=page
        )

    def _counts(self, include: str) -> Response:
        asked = [i for i in include.split(",") if i in ENDPOINTS and i not in self.counts_omit]
        counts: dict[str, Any] = {
            e: {"data": {"count": self._count(len(self.store.records(e)))}} for e in asked
        }
        key = "counts" if self.counts_shape == "counts" else "data"
        return self.json_response({key: counts}, endpoint="counts", page=1)

    def _count(self, n: int) -> int | str:
        return str(n) if self.counts_shape == "string" else n

    def _withheld(self, endpoint: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with the ``withhold`` paths of ``endpoint`` set to null (a copy along the path)."""
        paths = self.withhold.get(endpoint, ())
        if not paths or (self.withhold_ids is not None and record["id"] not in self.withhold_ids):
            return record
        record = copy.deepcopy(record)
        for path in paths:
            *parents, last = path.split(".")
            node: Any = record
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and last in node:
                node[last] = None
        return record

    def _deletions(self, kind: str | None, since: datetime | None) -> list[dict[str, Any]]:
        current = self.store.versions[-1] if self.store.versions else {}
        present = {(DELETION_TYPES[e], k) for e in ENDPOINTS for k in current.get(e, {})}
        return [
            {
                "id": key,
                "mis_id": mis_number(key),
                "type": k,
                "deleted_at": _date(when),
                "restored_at": _date(self.now) if (k, key) in present else None,
            }
            for k, key, when, _ in self.store.deletions
            if (kind is None or k == kind) and (since is None or when > since)
        ]


@contextlib.contextmanager
def running_fake_wonde(extract: Extract | None = None, **options: Any) -> Iterator[FakeWonde]:
    """Start a :class:`FakeWonde` serving ``extract`` on 127.0.0.1 with an ephemeral port."""
    with running(FakeWonde(extract, **options)) as fake:
        yield fake
