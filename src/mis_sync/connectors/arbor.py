"""Arbor MIS, direct: ``https://{school}.uk.arbor.sc/rest-v2/{resource}`` (mis-sources §3.1).

Connection (Airflow): ``host`` = the school's Arbor host (``{school}.uk.arbor.sc``; ``/rest-v2`` is
added) or ``extra.base_url`` for a full root (the local fake); ``login`` / ``password`` = the API user
the school created for the partner app (HTTP Basic [V]); ``extra.application_id`` = the partner app's
id, sent as ``x-mis-application-id`` [V] (with it and no host, the common endpoint
``https://api.uk.arbor.sc/rest-v2`` is used, as the PHP SDK does [S]).
Options: ``page_size`` (``page-size``, default 500; Arbor's maximum is [U]), ``page_param``
(``page-number`` per the docs [V]; the PHP SDK sends ``page`` [S]), ``filter_chunk`` (ids per
``filters.<x>.in`` request, default 100), ``delta_max_changes`` (default 5000), ``full_after_deltas``,
``timeout``, ``retry_*``.

What is read (paths, record keys and required keys are data in ``include/mis_schemas/arbor.yaml``; the
reshaping is ``arbor_build``): Students, Staff and Guardians with their People, UPN assignments,
AcademicYearEnrolments, StaffContracts, email addresses, telephone numbers and
StudentGuardianRelationships; AcademicLevels, RegistrationForms and AcademicUnits with their memberships
(date-ranged, "as of today" [V]) and tutors / leads; subjects, academic years and relationship types.
Paging: ``page-number`` / ``page-size`` until an empty page (Arbor states no page count [U]); a short
page followed by more records stops the run as truncated. A truncated *last* page cannot be told from
the end of the list (no totals): the periodic full read and the extract-size brake are the guard.

Delta (``DeltaConnector``) through ``/{resource}/changelog?from-revision=N`` [V]. The cursor is each
resource's highest ``revisionId`` [V] seen (then ``toRevision``). The people indexes (students, staff,
guardians) and every group table are read in full each time (who exists; deletions come from what is
gone); a change makes its owner dirty: a Person its pupil / staff member / contact, a UPN, enrolment or
relationship its pupil, a contract its staff member, a membership its group (and pupil). Records
whose dates start or end since the last run make their owners dirty too (a pre-admission whose start
date arrived is on roll today with no change logged). Every dirty owner's records are re-read with
``filters.<link>.in=<hrefs>`` [V operator; list syntax U] and its rows rebuilt whole, so a delta row
is what a full read gives. A deleted record whose change carries only a stub cannot be traced to its
owner: the run then reads in full and says why [U whether Arbor sends the deleted object]; so
does a changelog longer than ``delta_max_changes``. A renamed subject, year level or relationship type
reaches groups at once (they are rebuilt every run) but the rows of people who did not change only at
the next full read (``full_after_deltas``, weekly by default).
Snapshot time: the server's ``Date`` on the first response.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import pandas as pd

from mis_sync.connectors.api_support import chunks, fill_group_context, local_today, pages_until_empty
from mis_sync.connectors.arbor_build import GROUPS, MEMBERS, ArborBuilder, Record, href_id
from mis_sync.connectors.delta import ChangeSet, CursorError, DeltaConnector, DeltaState
from mis_sync.connectors.http_api import ApiClient, HttpApiConnector, load_api_spec
from mis_sync.connectors.http_paging import json_list, require_keys
from mis_sync.errors import ExtractError, SetupError
from mis_sync.model import Extract

COMMON_ENDPOINT = "https://api.uk.arbor.sc/rest-v2"
INDEXES = {"students": "pupil", "staff": "staff", "guardians": "contact"}
OWNERS: dict[str, tuple[tuple[str, str], ...]] = {
    "students": (("href", "pupil"),),
    "staff": (("href", "staff"),),
    "guardians": (("href", "contact"),),
    "people": (("href", "person"),),
    "upns": (("student", "pupil"),),
    "enrolments": (("student", "pupil"),),
    "links": (("student", "pupil"),),
    "emails": (("emailAddressOwner", "person"),),
    "phones": (("numberOwner", "person"),),
    "contracts": (("staff", "staff"),),
    **{
        name: ((person, "pupil" if role == "pupil" else "-"), (group, resource))
        for name, (group, resource, person, role) in MEMBERS.items()
    },
}
"""Changelogged endpoint → (stub property, owner kind) pairs; a group owner's kind is its resource."""
DATED = ("enrolments", "contracts", *MEMBERS)
"""Date-ranged endpoints whose start/end passing makes their owner change without a logged change."""
SATELLITES = {
    "pupil": (
        ("upns", "student"),
        ("enrolments", "student"),
        ("links", "student"),
        ("level_members", "student"),
        ("form_members", "student"),
    ),
    "staff": (("contracts", "staff"),),
}
"""What to re-read, filtered by the owner's href, for a dirty pupil or staff member."""
OWNER_KINDS = ("pupil", "staff", "contact", "person")
GROUP_RESOURCES = tuple(resource for _kind, resource in GROUPS.values())
ENTITY = {"pupil": "pupils", "staff": "staff", "contact": "contacts"}


class ArborConnector(HttpApiConnector, DeltaConnector):
    type = "arbor"
    title = "Arbor"
    default_base_url = COMMON_ENDPOINT
    default_path = "/rest-v2"

    def spec_digest(self) -> str:
        return load_api_spec(self.type).digest

    def api_root(self) -> str:
        if not (self.connection.extra.get("base_url") or self.connection.host or self._app_id()):
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no Arbor host (set host to the school's "
                "{school}.uk.arbor.sc, or extra.application_id for the common endpoint)"
            )
        return super().api_root()

    def _app_id(self) -> str | None:
        value = self.connection.extra.get("application_id")
        return str(value) if value else None

    def _client(self) -> ApiClient:
        user = self.connection.login or self.connection.extra.get("user")
        if not user:
            raise SetupError(f"connection {self.connection.conn_id!r}: no Arbor API user (set login)")
        password = self.secret("api_password", label="Arbor API password")
        headers = {"x-mis-application-id": app} if (app := self._app_id()) else {}
        return self.make_client(auth=httpx.BasicAuth(str(user), password), headers=headers)

    # ---- reading ------------------------------------------------------------------------------------
    def _list(self, client: ApiClient, name: str, filters: dict[str, str] | None = None) -> list[Record]:
        endpoint = load_api_spec(self.type).endpoints[name]
        size, page_param = self.page_size(500), str(self.setting("page_param", "page-number"))
        key = endpoint.records_key or endpoint.path
        rows: list[Record] = []
        for page in pages_until_empty(
            client,
            endpoint.path,
            lambda n: {**endpoint.params, **(filters or {}), page_param: n, "page-size": size},
            endpoint=endpoint.path,
            records=lambda payload, where: json_list(payload, key, where),
            page_size=size,
        ):
            require_keys(
                page.records, endpoint.required_keys, f"Arbor {endpoint.path} page {page.number}", "href"
            )
            rows += page.records
        return rows

    def _list_in(self, client: ApiClient, name: str, prop: str, values: Iterable[str]) -> list[Record]:
        """Records whose ``prop`` is one of ``values`` (hrefs, or ids for ``id``), chunk by chunk."""
        chunk = int(self.setting("filter_chunk", 100))
        rows: list[Record] = []
        for part in chunks(sorted(set(values)), chunk):
            rows += self._list(client, name, {f"filters.{prop}.in": ",".join(part)})
        return rows

    def read_full(self) -> tuple[Extract, dict[str, str]]:
        spec = load_api_spec(self.type)
        raw: dict[str, list[Record]] = {}
        with self._client() as client:
            first = client.get(
                spec.endpoints["academic_years"].path, {"page-size": 1}, where="academic-years"
            )
            for name in spec.endpoints:
                raw[name] = self._list(client, name)
        snapshot = first.server_time() or pd.Timestamp.now(tz="UTC").floor("s")
        builder = ArborBuilder(raw, spec.mapping, local_today(snapshot), self.country)
        members = {name: raw[name] for name in MEMBERS}
        tables = builder.tables(raw["students"], raw["staff"], raw["guardians"], raw["staff"], members)
        cursor = {
            f"revision.{name}": str(max((int(r.get("revisionId") or 0) for r in raw[name]), default=0))
            for name, e in spec.endpoints.items()
            if e.delta
        }
        return Extract(tables=tables, snapshot_at=snapshot, source=self.type), cursor

    def finish(self, extract: Extract) -> Extract:
        """Forms carry no year: their pupils' (a whole-snapshot derivation, so after a delta merge too)."""
        return super().finish(fill_group_context(extract, self.country))

    # ---- delta --------------------------------------------------------------------------------------
    def _changes(
        self, client: ApiClient, state: DeltaState
    ) -> tuple[dict[str, list[Record]], dict[str, str]]:
        spec = load_api_spec(self.type)
        names = [n for n, e in spec.endpoints.items() if e.delta]
        missing = [n for n in names if f"revision.{n}" not in state.cursor]
        if missing:
            raise CursorError(f"the stored Arbor cursor has no revision for {', '.join(missing)}")
        changes, cursor, total = {}, {}, 0
        limit = int(self.setting("delta_max_changes", 5000))
        for name in names:
            path, since = spec.endpoints[name].path, int(state.cursor[f"revision.{name}"])
            reply = client.get(f"{path}/changelog", {"from-revision": since}, where=f"{path} changelog")
            found = json_list(reply.payload, "changes", f"Arbor {path} changelog")
            total += len(found)
            if total > limit:
                raise CursorError(f"more than {limit} Arbor changes since the last extract: reading in full")
            changes[name] = found
            cursor[f"revision.{name}"] = str(max([since, *(int(c.get("toRevision") or 0) for c in found)]))
        return changes, cursor

    def read_changes(self, state: DeltaState) -> tuple[ChangeSet, dict[str, str]]:
        spec = load_api_spec(self.type)
        prev = state.snapshot.tables
        with self._client() as client:
            first = client.get(
                spec.endpoints["academic_years"].path, {"page-size": 1}, where="academic-years"
            )
            snapshot = first.server_time() or pd.Timestamp.now(tz="UTC").floor("s")
            today, before = local_today(snapshot), local_today(state.snapshot.snapshot_at)
            changes, cursor = self._changes(client, state)
            raw = {n: self._list(client, n) for n, e in spec.endpoints.items() if not e.delta or n in INDEXES}
            dirty: dict[str, set[str]] = {k: set() for k in (*OWNER_KINDS, *GROUP_RESOURCES)}
            for name, found in changes.items():
                for i, change in enumerate(found):
                    self._mark(dirty, name, i, change.get("changedObject"))
            if today > before:  # dates that passed since the last run change records without a log
                window = {"from": f"{before + pd.Timedelta(days=1):%Y-%m-%d}", "to": f"{today:%Y-%m-%d}"}
                for name in DATED:
                    for field in ("startDate", "endDate"):
                        query = {f"filters.{field}.{op}": value for op, value in window.items()}
                        for i, record in enumerate(self._list(client, name, query)):
                            self._mark(dirty, name, i, record)
            self._spread(dirty, raw, prev)
            satellites, members = self._refetch(client, dirty, raw)
        builder = ArborBuilder({**raw, **satellites}, spec.mapping, today, self.country)
        pick = {kind: [r for r in raw[name] if href_id(r) in dirty[kind]] for name, kind in INDEXES.items()}
        tables = builder.tables(pick["pupil"], pick["staff"], pick["contact"], raw["staff"], members)
        deletes = {}
        for name, kind in INDEXES.items():
            gone = set(prev[ENTITY[kind]]["mis_id"]) - {href_id(r) for r in raw[name]}
            if gone:
                deletes[ENTITY[kind]] = pd.DataFrame({"mis_id": sorted(gone)}, dtype="string")
        groups = frozenset(f"{resource}/{g}" for resource in GROUP_RESOURCES for g in dirty[resource])
        change_set = ChangeSet(
            snapshot_at=snapshot,
            upserts=tables,
            deletes=deletes,
            scopes={
                "memberships": ("group_id", groups),
                "relationships": ("pupil_id", frozenset(dirty["pupil"])),
            },
            complete=frozenset({"groups"}),
        )
        return change_set, cursor

    @staticmethod
    def _mark(dirty: dict[str, set[str]], name: str, index: int, record: Any) -> None:
        """Whose records ``record`` (a changed object) belongs to; unknown owner → read in full."""
        if not isinstance(record, dict):
            raise ExtractError(f"Arbor {name} changelog: change {index} has no changedObject")
        for prop, kind in OWNERS[name]:
            owner = href_id(record if prop == "href" else record.get(prop))
            if owner is None:
                raise CursorError(
                    f"an Arbor {name} change (record {href_id(record)}) does not say which {prop} it "
                    "belonged to (a deletion sent as a bare stub): reading in full"
                )
            if kind != "-":
                dirty[kind].add(owner)

    @staticmethod
    def _spread(
        dirty: dict[str, set[str]], raw: dict[str, list[Record]], prev: dict[str, pd.DataFrame]
    ) -> None:
        """New people and groups are dirty (all their records are needed); a changed Person dirties
        whoever is that Person; a staff member who changed, came or went dirties the contacts linked."""
        by_person: dict[str, list[tuple[str, str]]] = {}
        for name, kind in INDEXES.items():
            for r in raw[name]:
                by_person.setdefault(href_id(r.get("person")) or "", []).append((kind, href_id(r) or ""))
            dirty[kind] |= {href_id(r) or "" for r in raw[name]} - set(prev[ENTITY[kind]]["mis_id"])
        for person in dirty["person"]:
            for kind, key in by_person.get(person, []):
                dirty[kind].add(key)
        gone_staff = set(prev["staff"]["mis_id"]) - {href_id(r) for r in raw["staff"]}
        linked = prev["contacts"]["staff_mis_id"].isin(dirty["staff"] | gone_staff).fillna(False)
        dirty["contact"] |= set(prev["contacts"].loc[linked.to_numpy(dtype=bool), "mis_id"])
        for r in raw["staff"]:
            if href_id(r) in dirty["staff"]:
                dirty["contact"] |= {
                    k for kind, k in by_person.get(href_id(r.get("person")) or "", []) if kind == "contact"
                }
        for name, (_kind, resource) in GROUPS.items():
            prefix = f"{resource}/"
            known = {str(g)[len(prefix) :] for g in prev["groups"]["mis_id"] if str(g).startswith(prefix)}
            dirty[resource] |= {href_id(r) or "" for r in raw[name]} - known

    def _refetch(
        self, client: ApiClient, dirty: dict[str, set[str]], raw: dict[str, list[Record]]
    ) -> tuple[dict[str, list[Record]], dict[str, list[Record]]]:
        """Every record of every dirty owner (by ``filters.<link>.in``): the people's records, and the
        dirty groups' memberships (kept apart from the pupil-filtered ones, which give pupils their
        year and registration group but are not whole groups)."""
        persons = {
            href_id(r.get("person")) or ""
            for name, kind in INDEXES.items()
            for r in raw[name]
            if href_id(r) in dirty[kind]
        }
        out = {"people": self._list_in(client, "people", "id", persons)}
        hrefs = [f"/rest-v2/people/{p}" for p in persons]
        out["emails"] = self._list_in(client, "emails", "emailAddressOwner", hrefs)
        out["phones"] = self._list_in(client, "phones", "numberOwner", hrefs)
        for kind, satellites in SATELLITES.items():
            owners = [f"/rest-v2/{'students' if kind == 'pupil' else 'staff'}/{k}" for k in dirty[kind]]
            for name, prop in satellites:
                out[name] = self._list_in(client, name, prop, owners)
        members = {}
        for name, (group_prop, resource, _person, _role) in MEMBERS.items():
            keys = [f"/rest-v2/{resource}/{g}" for g in dirty[resource]]
            members[name] = self._list_in(client, name, group_prop, keys)
        return out, members
