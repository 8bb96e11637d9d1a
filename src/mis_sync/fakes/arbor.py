"""Local fake of Arbor's REST API (``/rest-v2``) for one school — a LOCAL EMULATOR for tests and demos,
never a stand-in for validating behaviour against a real Arbor instance.

Usage::

    with running_fake_arbor(extract) as fake:      # any canonical Extract, e.g. generate_school(...)
        conn = ConnectionInfo(conn_id="arbor", login=fake.user, password=fake.password,
                              extra={"base_url": fake.base_url + "/rest-v2"})
        ArborConnector(conn, {}).extract()
        fake.publish(next_extract)                 # the school changed: changelogs follow
        fake.faults.forbidden = {"staff"}          # see fakes.http_fake.Faults (keyed by resource path)

Serves, for every resource of ``generator.shapes.arbor.RESOURCES`` (mis-sources §3.1):

- ``GET /rest-v2/{resource}``: ``{"<records key>": [...]}`` (lcfirst of the plural, as the PHP SDK
  reads it), paged by ``page-number`` (or ``page``) and ``page-size`` (default ``page_size``, capped at
  ``max_page_size``; a page past the end is empty), filtered by ``filters.<property>.<operator>``
  with ``equals``, ``in`` (comma-separated), ``from`` / ``to`` (dates, inclusive) and ``NULL``; model
  properties compare by href, ``id`` by id;
- ``GET /rest-v2/{resource}/{id}``: ``{"<lcfirst entity type>": record}``;
- ``GET /rest-v2/{resource}/changelog?from-revision=N``: ``{"changes": [{changedObject, changeType
  (CREATE / UPDATE / DELETE), fromRevision, toRevision}]}``. A deletion's ``changedObject`` is the last
  state of the record (``delete_objects="full"``) or a bare stub (``"stub"``) [U which Arbor sends].

Every record carries ``revisionId``: the version (one per ``publish``) in which it last changed. Auth:
HTTP Basic ``user`` / ``password``; ``application_id`` if set must come as ``x-mis-application-id``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pandas as pd

from mis_sync.fakes.http_fake import FakeApiServer, Request, Response, VersionedStore, running
from mis_sync.generator.shapes.arbor import RESOURCES, render_arbor
from mis_sync.model import Extract

ROOT = "/rest-v2/"


def records_key(resource: str) -> str:
    """``academic-unit-enrolments`` → ``academicUnitEnrolments``; ``uk-dfe_upn-assignments`` →
    ``ukDfe_UpnAssignments`` (the SDK's lcfirst of the plural entity name)."""
    first, *rest = resource.split("-")
    return first + "".join("_".join(p[:1].upper() + p[1:] for p in part.split("_")) for part in rest)


def _href_id(value: Any) -> str | None:
    href = value.get("href") if isinstance(value, dict) else None
    return str(href).rsplit("/", 1)[-1] if href else None


class FakeArbor(FakeApiServer):
    thread_name = "fake-arbor"

    def __init__(
        self,
        extract: Extract | None = None,
        *,
        user: str = "mis-sync-api",
        password: str = "fake-arbor-password",
        application_id: str | None = None,
        page_size: int = 100,
        max_page_size: int = 1000,
        delete_objects: str = "full",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.user, self.password, self.application_id = user, password, application_id
        self.page_size, self.max_page_size, self.delete_objects = page_size, max_page_size, delete_objects
        self.store = VersionedStore()
        self.revisions: dict[str, dict[str, int]] = {}
        self._cache: dict[tuple[int, str, tuple[tuple[str, str], ...]], list[tuple[str, dict[str, Any]]]] = {}
        if extract is not None:
            self.publish(extract)

    def publish(self, extract: Extract, at: datetime | pd.Timestamp | None = None) -> None:
        """Serve ``extract`` from now on, as of ``at`` (default: its ``snapshot_at``)."""
        when = pd.Timestamp(at if at is not None else extract.snapshot_at).tz_convert("UTC").to_pydatetime()
        with self._lock:
            previous = self.store.versions[-1] if self.store.versions else {}
            tables = render_arbor(extract)
            version = self.store.publish(tables, when)
            for resource, rows in self.store.versions[-1].items():
                revs = self.revisions.setdefault(resource, {})
                before = previous.get(resource, {})
                for key, (digest, _) in rows.items():
                    if key not in before or before[key][0] != digest:
                        revs[key] = version
            self.now = when.replace(microsecond=0)

    def endpoint_of(self, request: Request) -> str:
        return request.path[len(ROOT) :].split("/", 1)[0]

    def _authorised(self, request: Request) -> bool:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.application_id and headers.get("x-mis-application-id") != self.application_id:
            return False
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            return base64.b64decode(value).decode() == f"{self.user}:{self.password}"
        except (binascii.Error, UnicodeDecodeError):
            return False

    def _served(self, resource: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "revisionId": self.revisions.get(resource, {}).get(key, 0)}

    def route(self, request: Request) -> Response:
        if request.method != "GET" or not request.path.startswith(ROOT):
            raise LookupError(request.path)
        if self.faults.unauthorized or not self._authorised(request):
            self.counters["auth_failures"] += 1
            return self.error(401, "Unauthorized")
        parts = request.path[len(ROOT) :].strip("/").split("/")
        resource = parts[0]
        if resource not in RESOURCES or len(parts) > 2:
            raise LookupError(resource)
        if resource in self.faults.forbidden:
            self.counters["forbidden"] += 1
            return self.error(403, "The application has no permission for this resource.")
        if len(parts) == 2 and parts[1] == "changelog":
            return self._changelog(resource, int(request.query.get("from-revision") or 0))
        current = self.store.versions[-1].get(resource, {}) if self.store.versions else {}
        if len(parts) == 2:
            if parts[1] not in current:
                raise LookupError(parts[1])
            entity = RESOURCES[resource]
            root = entity[:1].lower() + entity[1:]
            body = {root: self._served(resource, parts[1], current[parts[1]][1])}
            return self.json_response(body, endpoint=resource, page=1)
        return self._listing(request, resource, current)

    def _listing(self, request: Request, resource: str, current: dict[str, Any]) -> Response:
        q = request.query
        filters = tuple(sorted((n, v) for n, v in q.items() if n.startswith("filters.")))
        key = (self.store.version, resource, filters)
        if key not in self._cache:  # pages of one listing share one filtered list
            rows = [(k, r) for k, (_, r) in current.items()]
            for name, value in filters:
                prop, _, op = name[len("filters.") :].rpartition(".")
                rows = [(k, r) for k, r in rows if self._match(k, r, prop, op, value)]
            self._cache = {k: v for k, v in self._cache.items() if k[0] == self.store.version}
            self._cache[key] = rows
        rows = self._cache[key]
        page = int(q.get("page-number") or q.get("page") or 1)
        size = min(int(q.get("page-size") or self.page_size), self.max_page_size)
        if page < 1 or size < 1:
            raise ValueError("page-number and page-size must be positive")
        chunk = [self._served(resource, k, r) for k, r in rows[(page - 1) * size : page * size]]
        body = {records_key(resource): self.page_records(resource, page, chunk)}
        return self.json_response(body, endpoint=resource, page=page)

    @staticmethod
    def _match(key: str, record: dict[str, Any], prop: str, op: str, value: str) -> bool:
        if prop == "id":
            actual: Any = key
        else:
            actual = record.get(prop)
            if isinstance(actual, dict):
                actual = actual.get("href") if "href" in actual else str(actual.get("date", ""))[:10]
        if op == "equals":
            return (actual is None) if value == "NULL" else str(actual) == value
        if op == "in":
            return str(actual) in value.split(",")
        if op in ("from", "to"):
            if not actual:
                return False
            return str(actual)[:10] >= value[:10] if op == "from" else str(actual)[:10] <= value[:10]
        raise ValueError(f"unsupported filter operator {op}")

    def _changelog(self, resource: str, since: int) -> Response:
        version = self.store.version
        if since >= version:
            return self.json_response({"changes": []}, endpoint=resource, page=1)
        before = self.store.versions[since - 1].get(resource, {}) if since >= 1 else {}
        changed, removed = self.store.changed_since_version(resource, since)
        revs = self.revisions.get(resource, {})
        changes = []
        for record in changed:
            key = _href_id(record) or ""
            changes.append(
                {
                    "changedObject": self._served(resource, key, record),
                    "changeType": "UPDATE" if key in before else "CREATE",
                    "fromRevision": since,
                    "toRevision": revs.get(key, version),
                }
            )
        for record in removed:
            last = record if self.delete_objects == "full" else {k: record[k] for k in ("entityType", "href")}
            changes.append(
                {"changedObject": last, "changeType": "DELETE", "fromRevision": since, "toRevision": version}
            )
        return self.json_response({"changes": changes}, endpoint=resource, page=1)


@contextlib.contextmanager
def running_fake_arbor(extract: Extract | None = None, **options: Any) -> Iterator[FakeArbor]:
    """Start a :class:`FakeArbor` serving ``extract`` on 127.0.0.1 with an ephemeral port."""
    with running(FakeArbor(extract, **options)) as fake:
        yield fake
