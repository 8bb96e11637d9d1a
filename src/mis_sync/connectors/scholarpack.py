"""ScholarPack (primary MIS), direct: ``https://services.scholarpack.co.uk/api/v1/{resource}/``
(mis-sources §3.5). **No teaching groups**: ScholarPack has none; a primary's class is its registration
group [V], so this connector yields year groups and classes (as registration groups) only, says so in
the task log on every run, and its catalogue entry lists no ``teaching`` group kind.

Connection (Airflow): ScholarPack grants API access by OAuth 2 **authorisation code** [V]: a school
user with the admin and sysadmin roles approves the client once, outside any sync. The connection then
holds ``login`` = client id (or ``extra.client_id``), ``password`` = client secret (or
``extra.client_secret``) and ``extra.refresh_token`` from that grant; each run exchanges it at
``extra.token_url`` (default ``https://services.scholarpack.co.uk/oauth/token`` [U]) for an access
token. ``extra.access_token`` instead uses a token as given (no renewal). If ScholarPack rotates
refresh tokens [U], the connector logs it (never the token): an admin must store the new one.
``host`` / ``extra.base_url``: another API root (the sandbox, the local fake). Options: ``page_size``
(``per_page``, default 100 [V: 50 or 100]), ``timeout``, ``retry_*``.

What is read (data in ``include/mis_schemas/scholarpack.yaml``; record keys are [U], §6.5): pupils
(``students/``, status from admission and leaving dates as of today), staff (``staff/``), contacts
with their pupils (``contacts/``; one set of names, used as legal and preferred), year groups and
classes (``school/year-groups/``, ``school/classes/`` [U]) with their staff. On-roll pupils are members
of their NC year's year group and of their class. Scopes needed: ``student:read``, ``staff:read``,
``contacts:third-party``, ``school-info:read`` [V]; a missing one is a 403 naming the resource.

Paging: ``page`` / ``per_page`` with the documented ``{page, pages, per_page, has_next, …, data}``
envelope [V]; a short page before the last, or a changing page count, stops the run as truncated (no
total is stated, so a truncated last page cannot be seen). No change feed is documented: full reads.
Snapshot time: the server's ``Date`` on the first response.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd

from mis_sync.connectors.api_support import fill_group_context, local_today, oauth_client, status_from_dates
from mis_sync.connectors.base import ExtractError
from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.connectors.http_api import ApiClient, ApiResponse, HttpApiConnector, load_api_spec
from mis_sync.connectors.http_paging import PageInfo, as_int, json_list, numbered_pages, require_keys
from mis_sync.connectors.mapping import apply_mapping
from mis_sync.connectors.wonde import frame
from mis_sync.errors import SetupError
from mis_sync.model import Extract

log = logging.getLogger(__name__)

TOKEN_URL = "https://services.scholarpack.co.uk/oauth/token"
NO_TEACHING_GROUPS = CATALOGUE["scholarpack"].notes
"""Said in the task log on every run (the catalogue entry is the one place it is written)."""
Record = dict[str, Any]


def _page_info(payload: Any, where: str) -> PageInfo:
    if not isinstance(payload, dict):
        raise ExtractError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    return PageInfo(
        number=as_int(payload.get("page"), "page", where),
        count=as_int(payload.get("pages"), "pages", where),
        size=as_int(payload.get("per_page"), "per_page", where),
    )


class ScholarPackConnector(HttpApiConnector):
    type = "scholarpack"
    title = "ScholarPack"
    default_base_url = "https://services.scholarpack.co.uk/api/v1"
    default_path = "/api/v1"

    @contextlib.contextmanager
    def _client(self) -> Iterator[ApiClient]:
        extra = self.connection.extra
        if extra.get("access_token"):
            with self.make_client(headers={"Authorization": f"Bearer {extra['access_token']}"}) as client:
                yield client
            return
        client_id = self.connection.login or extra.get("client_id")
        refresh = extra.get("refresh_token")
        if not client_id or not refresh:
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no ScholarPack client id or refresh token (set "
                "login and extra.refresh_token from the school's grant, or extra.access_token)"
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": str(refresh),
            "client_id": str(client_id),
            "client_secret": self.secret("client_secret", label="ScholarPack client secret"),
        }
        with oauth_client(self, token_url=str(extra.get("token_url") or TOKEN_URL), form=form) as client:
            yield client

    def _fetch(self, client: ApiClient, name: str) -> tuple[list[Record], ApiResponse]:
        endpoint = load_api_spec(self.type).endpoints[name]
        rows: list[Record] = []
        first: ApiResponse | None = None
        for page in numbered_pages(
            client,
            endpoint.path,
            endpoint.params,
            endpoint=endpoint.path.rstrip("/"),
            records=lambda payload, where: json_list(payload, "data", where),
            info=_page_info,
            page_size=self.page_size(100),
            page_param="page",
            size_param="per_page",
        ):
            where = f"ScholarPack {endpoint.path.rstrip('/')} page {page.number}"
            require_keys(page.records, endpoint.required_keys, where, endpoint.required_keys[0])
            rows += page.records
            first = first or page.response
        assert first is not None  # numbered_pages yields at least page 1 or raises
        return rows, first

    def extract(self, *, full: bool = True) -> Extract:
        spec = load_api_spec(self.type)
        raw: dict[str, list[Record]] = {}
        snapshot: pd.Timestamp | None = None
        with self._client() as client:
            for name in spec.endpoints:
                raw[name], first = self._fetch(client, name)
                snapshot = snapshot or first.server_time()
        snapshot = snapshot or pd.Timestamp.now(tz="UTC").floor("s")
        log.info("%s", NO_TEACHING_GROUPS)
        tables = self._canonical(raw, local_today(snapshot))
        return fill_group_context(
            Extract(tables=tables, snapshot_at=snapshot, source=self.type), self.country
        )

    def _canonical(self, raw: dict[str, list[Record]], today: pd.Timestamp) -> dict[str, pd.DataFrame]:
        mapping = load_api_spec(self.type).mapping
        pupils = frame(raw["students"], mapping, "pupils")
        pupils["_enrolment_status"] = status_from_dates(
            pupils["admission_date"], pupils["leaving_date"], today
        )
        staff = frame(raw["staff"], mapping, "staff")
        staff["_enrolment_status"] = status_from_dates(staff["start_date"], staff["end_date"], today)
        contacts = frame(raw["contacts"], mapping, "contacts")
        contacts["_forename"], contacts["_surname"] = contacts["forename"], contacts["surname"]
        links = []
        for contact in raw["contacts"]:
            for i, link in enumerate(contact.get("students") or []):
                if not isinstance(link, dict) or not link.get("student_uuid"):
                    key = contact["contact_uuid"]
                    raise ExtractError(
                        f"ScholarPack contacts: record {key}: students[{i}] has no student_uuid"
                    )
                links.append({**link, "_contact_id": contact["contact_uuid"]})
        groups, members = [], []
        on_roll = pupils[pupils["_enrolment_status"] == "on_roll"]
        year_of = {}
        for name, kind, key in (
            ("year_groups", "year", "year_group_uuid"),
            ("classes", "registration", "class_uuid"),
        ):
            for g in raw[name]:
                groups.append({**g, "_id": g[key], "_kind": kind})
                members += [
                    {"_group_id": g[key], "_person_id": s, "_role": "teacher"}
                    for s in g.get("staff_uuids") or []
                ]
                if kind == "year":
                    year_of.setdefault(str(g.get("nc_year")), g[key])
        for pupil, year, form in zip(
            on_roll["student_uuid"], on_roll["nc_year"], on_roll["class_uuid"], strict=True
        ):
            if str(year) in year_of:
                members.append({"_group_id": year_of[str(year)], "_person_id": pupil, "_role": "pupil"})
            if form is not None and not pd.isna(form):
                members.append({"_group_id": form, "_person_id": pupil, "_role": "pupil"})
        frames = {
            "pupils": pupils,
            "staff": staff,
            "contacts": contacts,
            "groups": frame(groups, mapping, "groups"),
            "memberships": frame(members, mapping, "memberships"),
            "relationships": frame(links, mapping, "relationships"),
        }
        where = {
            "pupils": "ScholarPack students",
            "staff": "ScholarPack staff",
            "contacts": "ScholarPack contacts",
            "groups": "ScholarPack school/year-groups, school/classes",
            "memberships": "ScholarPack students (nc_year, class_uuid) / staff_uuids",
            "relationships": "ScholarPack contacts (students)",
        }
        return apply_mapping(frames, mapping, where)


__all__ = ["NO_TEACHING_GROUPS", "ScholarPackConnector"]
