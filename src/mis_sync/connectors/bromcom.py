"""Bromcom MIS, direct through the Partner REST API: ``https://api.bromcomcloud.com/v2/{Entity}``
(mis-sources §3.2).

Connection (Airflow): ``login`` = the partner ``ApplicationId`` (or ``extra.application_id``),
``password`` = the ``ApplicationSecret`` (or ``extra.application_secret``), both sent as headers [S];
``extra.school_id`` (or ``mis.options.school_id``) = the Bromcom school id; ``host`` / ``extra.base_url``
only to point elsewhere (the local fake). Options: ``page_size`` (must equal the server's fixed page,
100,000 [S]), ``leaver_days`` (leavers whose end date is at most this many days ago are read, default
365), ``timeout``, ``retry_*``.

What is read (entities, filters and keys are data in ``include/mis_schemas/bromcom.yaml``):
``StudentFlatView`` (pupils; status from the enrolment start and end dates as of today),
``Staff`` (status from its start and end dates), ``StudentContacts`` [U] (contacts and
relationships), ``Collections`` [U] (every group; ``CollectionType`` gives the kind, houses and others
are left out), ``CollectionAssociates`` (pupil members [S]) and ``CollectionExecutives`` [U] (staff in
charge), date-ranged and judged as of today. A pupil's registration group is their current tutor-group
collection. Bromcom carries no "teaching staff" flag in these entities [U]: a staff member who leads a
current class is teaching staff. Groups get their pupils' year and the snapshot's academic year.
Row keys are matched case-insensitively; a reply with ``Success: false`` stops the run.

Paging: ``{page:N}`` appended to ``entityFilter``, from page 0, while a page is full [S]; a short page
followed by more rows stops the run as truncated (Bromcom states no totals, so a truncated last page
cannot be seen). No change feed is documented (§6.4): every run is a full read.
Snapshot time: the server's ``Date`` on the first response.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mis_sync.connectors.api_support import (
    current_between,
    fill_group_context,
    local_today,
    pages_until_empty,
    status_from_dates,
)
from mis_sync.connectors.base import ExtractError
from mis_sync.connectors.http_api import ApiClient, ApiResponse, HttpApiConnector, load_api_spec
from mis_sync.connectors.http_paging import json_list, require_keys
from mis_sync.connectors.mapping import apply_mapping, normalise_codes
from mis_sync.connectors.wonde import frame
from mis_sync.errors import SetupError
from mis_sync.model import Extract, GroupKind

Record = dict[str, Any]


class BromcomConnector(HttpApiConnector):
    type = "bromcom"
    title = "Bromcom"
    default_base_url = "https://api.bromcomcloud.com/v2"
    default_path = "/v2"

    def _school(self) -> str:
        school = self.options.get("school_id") or self.connection.extra.get("school_id")
        if not school:
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no Bromcom school id (set extra.school_id)"
            )
        return str(school)

    def _client(self) -> ApiClient:
        app = self.connection.login or self.connection.extra.get("application_id")
        if not app:
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no Bromcom ApplicationId (set login or "
                "extra.application_id)"
            )
        secret = self.secret("application_secret", label="Bromcom ApplicationSecret")
        return self.make_client(headers={"ApplicationId": str(app), "ApplicationSecret": secret})

    def _names(self) -> dict[str, str]:
        """lower-case key → the key as the YAML spells it (rows are bound case-insensitively)."""
        spec = load_api_spec(self.type)
        keys = [k for e in spec.mapping.entities.values() for k in e.columns]
        keys += [k for e in spec.endpoints.values() for k in e.required_keys]
        keys += ["StartDate", "EndDate", "CollectionType"]
        return {k.lower(): k for k in keys}

    def _fetch(
        self, client: ApiClient, name: str, today: pd.Timestamp
    ) -> tuple[list[Record], ApiResponse | None]:
        endpoint = load_api_spec(self.type).endpoints[name]
        try:
            days = int(self.setting("leaver_days", 365))
        except (TypeError, ValueError):
            raise SetupError(
                f"connection {self.connection.conn_id!r}: leaver_days must be a number"
            ) from None
        since = today - pd.Timedelta(days=days)
        template = endpoint.params.get("entityFilter", "")
        entity_filter = template.format(leavers_since=f"{since:%Y-%m-%d}", today=f"{today:%Y-%m-%d}")
        names, size, school = self._names(), self.page_size(100_000), self._school()

        def records(payload: Any, where: str) -> list[Record]:
            if not isinstance(payload, dict):
                raise ExtractError(f"{where}: expected a JSON object, got {type(payload).__name__}")
            envelope = {str(k).lower(): v for k, v in payload.items()}
            if envelope.get("success") is not True:
                raise ExtractError(f"{where}: the reply says Success: false")
            rows = json_list(envelope, "data", where)
            return [{names.get(str(k).lower(), k): v for k, v in row.items()} for row in rows]

        rows: list[Record] = []
        first: ApiResponse | None = None
        for page in pages_until_empty(
            client,
            endpoint.path,
            lambda n: {"schoolId": school, "entityFilter": f"{entity_filter}{{page:{n}}}"},
            endpoint=endpoint.path,
            records=records,
            page_size=size,
            first=0,
        ):
            require_keys(
                page.records,
                endpoint.required_keys,
                f"Bromcom {endpoint.path} page {page.number}",
                endpoint.required_keys[0],
            )
            rows += page.records
            first = first or page.response
        return rows, first

    def extract(self, *, full: bool = True) -> Extract:
        spec = load_api_spec(self.type)
        raw: dict[str, list[Record]] = {}
        snapshot: pd.Timestamp | None = None
        with self._client() as client:
            for name in spec.endpoints:  # the first has no dated filter; its Date gives "today"
                today = local_today(snapshot or pd.Timestamp.now(tz="UTC"))
                raw[name], first = self._fetch(client, name, today)
                snapshot = snapshot or (first.server_time() if first else None)
        snapshot = snapshot or pd.Timestamp.now(tz="UTC").floor("s")
        extract = Extract(
            tables=self._canonical(raw, local_today(snapshot)), snapshot_at=snapshot, source=self.type
        )
        return fill_group_context(extract, self.country)

    def _canonical(self, raw: dict[str, list[Record]], today: pd.Timestamp) -> dict[str, pd.DataFrame]:
        mapping = load_api_spec(self.type).mapping
        groups = frame(raw["collections"], mapping, "groups", ("CollectionType",))
        groups["_kind"] = normalise_codes(
            groups["CollectionType"].astype("string"), mapping.codes.get("kind", {})
        )
        kept = groups[groups["_kind"].isin([k.value for k in GroupKind]).fillna(False).to_numpy(dtype=bool)]
        kind_of = dict(zip(kept["CollectionId"].astype(str), kept["_kind"], strict=True))

        def current(name: str, role: str) -> pd.DataFrame:
            rows = frame(
                raw[name], mapping, "memberships", ("PersonId", "CollectionId", "StartDate", "EndDate")
            )
            rows = rows[current_between(rows["StartDate"], rows["EndDate"], today).to_numpy(dtype=bool)]
            rows = rows[rows["CollectionId"].astype(str).isin(kind_of)]
            return pd.DataFrame(
                {"_group_id": rows["CollectionId"], "_person_id": rows["PersonId"], "_role": role}
            )

        pupil_members, staff_members = current("associates", "pupil"), current("executives", "teacher")
        tutor_group = pupil_members[pupil_members["_group_id"].astype(str).map(kind_of) == "registration"]
        registration = dict(
            zip(tutor_group["_person_id"].astype(str), tutor_group["_group_id"], strict=False)
        )
        teaching = set(
            staff_members.loc[staff_members["_group_id"].astype(str).map(kind_of) == "teaching", "_person_id"]
        )

        pupils = frame(raw["students"], mapping, "pupils")
        pupils["_registration_group_id"] = pupils["StudentId"].astype(str).map(registration)
        pupils["_enrolment_status"] = status_from_dates(
            pupils["EnrolmentStartDate"], pupils["EnrolmentEndDate"], today
        )
        staff = frame(raw["staff"], mapping, "staff")
        staff["_enrolment_status"] = status_from_dates(staff["StartDate"], staff["EndDate"], today)
        staff["_is_teaching"] = staff["StaffId"].isin(teaching)
        links = frame(raw["contacts"], mapping, "relationships")
        contacts = frame(raw["contacts"], mapping, "contacts").drop_duplicates("ContactId", ignore_index=True)
        frames = {
            "pupils": pupils,
            "staff": staff,
            "contacts": contacts,
            "groups": kept.reset_index(drop=True),
            "memberships": pd.concat([pupil_members, staff_members], ignore_index=True),
            "relationships": links,
        }
        where = {
            "pupils": "Bromcom StudentFlatView",
            "staff": "Bromcom Staff",
            "contacts": "Bromcom StudentContacts",
            "groups": "Bromcom Collections",
            "memberships": "Bromcom CollectionAssociates / CollectionExecutives",
            "relationships": "Bromcom StudentContacts",
        }
        return apply_mapping(frames, mapping, where)


__all__ = ["BromcomConnector"]
