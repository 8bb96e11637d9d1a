"""iSAMS through its REST API: ``https://{school}.isams.cloud/api/…`` (mis-sources §3.4 A).

Connection (Airflow): ``host`` = the school's iSAMS host (``{school}.isams.cloud``) or ``extra.base_url``
(the local fake); ``login`` = the OAuth client id (or ``extra.client_id``), ``password`` = the client
secret (or ``extra.client_secret``): a client-credentials token from ``/auth/connect/token`` with scope
``restapi`` [S] (``extra.token_url`` / ``extra.scope`` to override), renewed before its hour is up and
once after a 401. Options: ``page_size`` (``pageSize``, default 100 [S]), ``timeout``, ``retry_*``.

What is read (paths, record keys and mapping in ``include/mis_schemas/isams_rest.yaml``; NC-year and
gender codes shared with the Batch API's YAML): pupils (``/api/students``; status from enrolment and
leaving dates as of today [U whether leavers and applicants are listed]), current staff
(``/api/humanresources/employees``, all on roll, as the Batch API), year groups, forms [U path] and
sets with their tutors and teachers, each set's ``setList`` (one request per set [S]) and each pupil's
contacts (one request per pupil [U]: the documented per-pupil route is ``/tempcontacts``; §6.6 asks
for the current one). On-roll pupils are members of their NC year's year group and of their form
(``formGroup``, a form's name [S]). Group ids carry the Batch connector's prefixes (``year:``,
``form:``, ``set:``). Cannot carry: preferred surnames, former UPNs, SCNs, staff who are not current
and staff dates, contacts' preferred names and staff link.

Paging: ``page`` / ``pageSize`` with ``totalPages`` and ``totalCount`` [S]: a short page before the
last, or fewer records than declared, stops the run as truncated. No changed-since parameter is
confirmed (§6.6): every run is a full read. Snapshot time: the server's ``Date`` on the first response.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pandas as pd

from mis_sync.connectors.api_support import fill_group_context, local_today, oauth_client, status_from_dates
from mis_sync.connectors.base import ExtractError
from mis_sync.connectors.http_api import ApiClient, ApiResponse, HttpApiConnector, load_api_spec
from mis_sync.connectors.http_paging import PageInfo, as_int, json_list, numbered_pages, require_keys
from mis_sync.connectors.isams_batch_format import load_batch_format
from mis_sync.connectors.mapping import SourceMapping, apply_mapping
from mis_sync.connectors.wonde import frame
from mis_sync.errors import SetupError
from mis_sync.model import Extract

PAGED = frozenset({"students", "employees", "sets"})
Record = dict[str, Any]


def _page_info(payload: Any, where: str) -> PageInfo:
    if not isinstance(payload, dict):
        raise ExtractError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    return PageInfo(
        number=as_int(payload.get("page"), "page", where),
        count=as_int(payload.get("totalPages"), "totalPages", where),
        total=as_int(payload.get("totalCount"), "totalCount", where),
        size=as_int(payload.get("pageSize"), "pageSize", where),
    )


def shared_mapping() -> SourceMapping:
    """The REST mapping with the Batch API's code tables under its own (a REST entry wins)."""
    spec = load_api_spec("isams_rest")
    codes = {**load_batch_format().mapping.codes, **spec.mapping.codes}
    return spec.mapping.model_copy(update={"codes": codes})


class IsamsRestConnector(HttpApiConnector):
    type = "isams_rest"
    title = "iSAMS REST"
    default_base_url = ""
    default_path = ""

    def api_root(self) -> str:
        if not (self.connection.extra.get("base_url") or self.connection.host):
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no iSAMS host (set host to {{school}}.isams.cloud)"
            )
        return super().api_root()

    @contextlib.contextmanager
    def _client(self) -> Iterator[ApiClient]:
        extra = self.connection.extra
        client_id = self.connection.login or extra.get("client_id")
        if not client_id:
            raise SetupError(f"connection {self.connection.conn_id!r}: no iSAMS client id (set login)")
        form = {
            "client_id": str(client_id),
            "client_secret": self.secret("client_secret", label="iSAMS client secret"),
            "grant_type": "client_credentials",
            "scope": str(extra.get("scope") or "restapi"),
        }
        token_url = str(extra.get("token_url") or f"{self.api_root()}/auth/connect/token")
        with oauth_client(self, token_url=token_url, form=form) as client:
            yield client

    def _fetch(self, client: ApiClient, name: str, **path_args: str) -> tuple[list[Record], ApiResponse]:
        endpoint = load_api_spec(self.type).endpoints[name]
        path = endpoint.path
        for key, value in path_args.items():
            path = path.replace(f"{{{key}}}", quote(value, safe=""))
        key = endpoint.records_key or name
        label = endpoint.path.rsplit("/", 1)[-1]
        if name not in PAGED:
            where = f"{label} {' '.join(path_args.values())}".strip()
            reply = client.get(path, endpoint.params, where=where)
            rows = json_list(reply.payload, key, f"iSAMS REST {where}")
            require_keys(rows, endpoint.required_keys, f"iSAMS REST {where}", endpoint.required_keys[0])
            return rows, reply
        rows, first = [], None
        for page in numbered_pages(
            client,
            path,
            endpoint.params,
            endpoint=label,
            records=lambda payload, where: json_list(payload, key, where),
            info=_page_info,
            page_size=self.page_size(100),
            page_param="page",
            size_param="pageSize",
        ):
            require_keys(
                page.records,
                endpoint.required_keys,
                f"iSAMS REST {label} page {page.number}",
                endpoint.required_keys[0],
            )
            rows += page.records
            first = first or page.response
        assert first is not None
        return rows, first

    def extract(self, *, full: bool = True) -> Extract:
        raw: dict[str, list[Record]] = {}
        with self._client() as client:
            raw["students"], first = self._fetch(client, "students")
            for name in ("employees", "year_groups", "forms", "subjects", "sets"):
                raw[name], _ = self._fetch(client, name)
            raw["set_lists"] = [
                {**row, "_set": s["id"]}
                for s in raw["sets"]
                for row in self._fetch(client, "set_lists", id=str(s["id"]))[0]
            ]
            raw["contacts"] = [
                {**row, "_pupil_id": p["schoolId"]}
                for p in raw["students"]
                for row in self._fetch(client, "contacts", schoolId=str(p["schoolId"]))[0]
            ]
        snapshot = first.server_time() or pd.Timestamp.now(tz="UTC").floor("s")
        tables = self._canonical(raw, local_today(snapshot))
        return fill_group_context(
            Extract(tables=tables, snapshot_at=snapshot, source=self.type), self.country
        )

    def _canonical(self, raw: dict[str, list[Record]], today: pd.Timestamp) -> dict[str, pd.DataFrame]:
        mapping = shared_mapping()
        pupils = frame(raw["students"], mapping, "pupils", ("formGroup",))
        pupils["_enrolment_status"] = status_from_dates(pupils["enrolmentDate"], pupils["leavingDate"], today)
        form_of = {str(f["name"]): f"form:{f['id']}" for f in raw["forms"]} | {
            str(f["id"]): f"form:{f['id']}" for f in raw["forms"]
        }
        pupils["_registration_group_id"] = pupils["formGroup"].map(
            lambda v: form_of.get(str(v)) if v else None
        )
        on_roll = pupils[pupils["_enrolment_status"] == "on_roll"]
        subjects = {str(s["id"]): s.get("name") for s in raw["subjects"]}
        groups: list[Record] = []
        members: list[Record] = []

        def add(
            gid: str, kind: str, record: Record, code: Any, subject: Any, year: Any, staff: list[Any]
        ) -> None:
            groups.append(
                {**record, "_id": gid, "_kind": kind, "_code": code, "_subject": subject, "_year_group": year}
            )
            members.extend({"_group_id": gid, "_person_id": s, "_role": "teacher"} for s in staff if s)

        by_year = {}
        for y in raw["year_groups"]:
            gid = f"year:{y['id']}"
            by_year.setdefault(str(y["ncYear"]), gid)
            add(gid, "year", y, y.get("code"), None, y["ncYear"], [y.get("tutorEmployeeId")])
        for f in raw["forms"]:
            staff = [f.get("tutorEmployeeId"), *(f.get("assistantTutorEmployeeIds") or [])]
            add(f"form:{f['id']}", "registration", f, f.get("name"), None, f.get("yearGroup"), staff)
        for s in raw["sets"]:
            teachers = [t.get("employeeId") for t in s.get("teachers") or [] if isinstance(t, dict)]
            add(
                f"set:{s['id']}",
                "teaching",
                s,
                s.get("setCode"),
                subjects.get(str(s.get("subjectId"))),
                s.get("yearGroup"),
                teachers,
            )
        for pupil, year, form in zip(
            on_roll["schoolId"], on_roll["yearGroup"], on_roll["_registration_group_id"], strict=True
        ):
            if str(year) in by_year:
                members.append({"_group_id": by_year[str(year)], "_person_id": pupil, "_role": "pupil"})
            if form:
                members.append({"_group_id": form, "_person_id": pupil, "_role": "pupil"})
        members += [
            {"_group_id": f"set:{r['_set']}", "_person_id": r["schoolId"], "_role": "pupil"}
            for r in raw["set_lists"]
        ]
        staff = frame(raw["employees"], mapping, "staff")
        staff["_enrolment_status"] = "on_roll"
        contacts = frame(raw["contacts"], mapping, "contacts").drop_duplicates("id", ignore_index=True)
        frames = {
            "pupils": pupils,
            "staff": staff,
            "contacts": contacts,
            "groups": frame(groups, mapping, "groups"),
            "memberships": frame(members, mapping, "memberships").drop_duplicates(ignore_index=True),
            "relationships": frame(raw["contacts"], mapping, "relationships"),
        }
        where = {
            "pupils": "iSAMS REST students",
            "staff": "iSAMS REST employees",
            "contacts": "iSAMS REST contacts",
            "groups": "iSAMS REST yeargroups / forms / sets",
            "memberships": "iSAMS REST groups and setLists",
            "relationships": "iSAMS REST contacts",
        }
        return apply_mapping(frames, mapping, where)


__all__ = ["IsamsRestConnector"]
