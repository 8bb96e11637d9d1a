"""Wonde, the MIS aggregator: ``https://{domain}/v1.0/schools/{school_id}/{endpoint}`` (mis-sources §2.1).

Connection (Airflow): ``login`` = the Wonde school id (or ``extra.school_id`` / ``mis.options.school_id``),
``password`` = the school's API token (or ``extra.token``), sent as ``Authorization: Bearer``.
``host`` = the school's regional domain (``api.wonde.com`` by default; ``api-ap-southeast-2.wonde.com``
for AU/NZ: the wrong one returns no data) or ``extra.base_url`` for a full root (the local fake).
Options: ``page_size`` (``per_page``, default 200), ``delta_overlap_seconds`` (default 600),
``full_after_deltas``, ``max_withheld_fraction`` (default 0.5), ``verify_counts`` (default true),
``timeout``, ``retry_*`` (see ``http_api``). What each Wonde fact rests on (documented, official client,
integrators, assumed) is listed in the schema file; the checks are in ``wonde_checks``.

What is read (endpoints, ``include=`` lists and keys are data in ``include/mis_schemas/wonde.yaml``):
pupils from ``students`` / ``students-pre-admission`` / ``students-leaver`` (the endpoint gives the
enrolment status), their year from the ``year`` include (else ``education_details``) and their
contacts (relationships) from the ``contacts`` include; staff from ``employees`` (status from
``employment_details.current`` and the start date; null = withheld, never "left"); contacts from
``contacts`` (a contact is a staff member when they share the employee's ``upi``); year and
registration groups from ``groups``, teaching groups from ``classes``, members from their ``students`` /
``employees`` includes, and each pupil's registration group from those member lists. Groups of other
types (houses…) are left out. A group's year is its pupils' year when they all share one.

Checks (``wonde_checks``): each endpoint read in full is compared with ``/counts`` (short = error;
count not reported = finding); staff whose status Wonde withheld are quarantined (a finding), and a
school-wide pattern stops the run naming the permission; pupils without a year group are flagged.

Delta (``DeltaConnector``): students and contacts with ``updated_after`` = the previous snapshot time
minus ``delta_overlap_seconds``, plus ``deletions?type=student|contact``; ``employees``, ``groups`` and
``classes`` are read in full every time (Wonde does not document that a class's ``updated_at`` moves
when its members change), so staff, groups and memberships are whole tables; a changed pupil replaces
all their relationships. Snapshot time: the server's ``Date`` on the first response.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pandas as pd

from mis_sync.academic_year import academic_year
from mis_sync.connectors.base import ExtractError
from mis_sync.connectors.delta import ChangeSet, CursorError, DeltaConnector, DeltaState
from mis_sync.connectors.http_api import ApiClient, ApiResponse, HttpApiConnector, load_api_spec
from mis_sync.connectors.http_paging import as_int, dig, follow_links, json_list, require_keys
from mis_sync.connectors.mapping import SourceMapping, apply_mapping, normalise_year_group
from mis_sync.connectors.wonde_checks import (
    COUNTED_ENTITY,
    check_counts,
    joined,
    max_withheld,
    missing_year_findings,
    pupil_year,
    staff_status,
    stop_if_school_wide,
    withheld_staff_findings,
)
from mis_sync.errors import SetupError
from mis_sync.model import ENTITIES, Extract, GroupKind

log = logging.getLogger(__name__)

PUPIL_STATUS = {"students": "on_roll", "students_pre_admission": "pre_admission", "students_leaver": "leaver"}
DELETION_TYPES = {"student": "pupils", "contact": "contacts"}
"""``/deletions?type=…`` → the entity whose rows go [U: payload shape]. Employees, groups and classes
are read in full on every run, so they need no deletions."""
GROUP_DELETION_TYPES = {"group": "groups", "class": "groups"}
"""Asked for only when a school's schema reads groups and classes by ``updated_after``."""


def derive_group_context(extract: Extract, country: str = "england") -> Extract:
    """Aggregators give no group year or academic year: take the pupils' year when every pupil member
    shares one (else a year group's own code), and the academic year of the snapshot. Run on the
    whole snapshot, so a merged delta gets exactly what a full read would."""
    t = dict(extract.tables)
    groups, members, pupils = t["groups"].copy(), t["memberships"], t["pupils"]
    years = members[members["role"] == "pupil"].merge(
        pupils[["mis_id", "year_group"]], left_on="person_id", right_on="mis_id"
    )
    per_group = years.groupby("group_id")["year_group"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
    derived = groups["mis_id"].map(per_group).astype("string")
    own = normalise_year_group(groups["code"].fillna(groups["name"]).astype("string"), {})
    groups["year_group"] = derived.where(derived.notna() | (groups["kind"] != "year"), own)
    groups["academic_year"] = academic_year(extract.snapshot_at, country)
    t["groups"] = ENTITIES["groups"].coerce(groups)
    return replace(extract, tables=t)


def registration_from_memberships(extract: Extract) -> Extract:
    """Each pupil's registration group from the registration groups' member lists (read in full on
    every run), not from the pupil's own ``groups`` include: Wonde does not document that a student's
    ``updated_at`` moves when their group does, so a delta may not re-send the pupil. A pupil in two
    registration groups gets the first by id; in none, no registration group."""
    t = dict(extract.tables)
    groups, members, pupils = t["groups"], t["memberships"], t["pupils"].copy()
    registration = groups.loc[groups["kind"] == "registration", "mis_id"]
    rows = members[(members["role"] == "pupil") & members["group_id"].isin(registration)]
    first = rows.sort_values(["person_id", "group_id"]).drop_duplicates("person_id")
    pupils["registration_group_id"] = pupils["mis_id"].map(first.set_index("person_id")["group_id"])
    t["pupils"] = ENTITIES["pupils"].coerce(pupils)
    return replace(extract, tables=t)


def frame(
    records: list[dict[str, Any]], mapping: SourceMapping, entity: str, extra: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The mapped keys (dotted paths into each record), plus ``extra`` ones, as columns; missing → null.

    Only the keys used are read: much faster than flattening whole records, and unknown keys a source
    adds later cannot collide with canonical column names."""
    keys = [*mapping.entities[entity].columns, *extra]
    columns = {}
    for key in keys:
        parts = key.split(".")
        values = []
        for record in records:
            value: Any = record
            for part in parts:
                value = value.get(part) if isinstance(value, dict) else None
            values.append(value)
        columns[key] = values
    return pd.DataFrame(columns, dtype=object)


def include_ids(record: dict[str, Any], include: str, where: str) -> list[str]:
    items = dig(record, f"{include}.data") or []
    ids = [item.get("id") if isinstance(item, dict) else None for item in items]
    if any(i is None for i in ids):
        raise ExtractError(f"{where}: record {record.get('id')}: {include}: an item has no 'id'")
    return [str(i) for i in ids]


class WondeConnector(HttpApiConnector, DeltaConnector):
    type = "wonde"
    title = "Wonde"
    default_base_url = "https://api.wonde.com/v1.0"
    default_path = "/v1.0"

    def spec_digest(self) -> str:
        return load_api_spec(self.type).digest

    def _school(self) -> str:
        school = (
            self.options.get("school_id") or self.connection.extra.get("school_id") or self.connection.login
        )
        if not school:
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no Wonde school id (set login or extra.school_id)"
            )
        return str(school)

    def _client(self) -> ApiClient:
        token = self.secret("token", label="Wonde school token")
        return self.make_client(headers={"Authorization": f"Bearer {token}"})

    def _fetch(
        self, client: ApiClient, name: str, params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], ApiResponse]:
        endpoint = load_api_spec(self.type).endpoints[name]
        query = {**endpoint.params, "per_page": str(self.page_size(200)), **params}
        rows: list[dict[str, Any]] = []
        first: ApiResponse | None = None
        for page in follow_links(
            client,
            f"schools/{self._school()}/{endpoint.path}",
            query,
            endpoint=endpoint.path,
            records=lambda payload, where: json_list(payload, "data", where),
            next_link=lambda payload: dig(payload, "meta.pagination.next"),
            more=lambda payload: dig(payload, "meta.pagination.more"),
            page_size=lambda payload, where: (
                None
                if dig(payload, "meta.pagination.per_page") is None
                else as_int(dig(payload, "meta.pagination.per_page"), "per_page", where)
            ),
        ):
            require_keys(
                page.records, endpoint.required_keys, f"Wonde {endpoint.path} page {page.number}", "id"
            )
            rows.extend(page.records)
            first = first or page.response
        assert first is not None
        return rows, first

    def _read(
        self, client: ApiClient, since: pd.Timestamp | None
    ) -> tuple[dict[str, list[dict[str, Any]]], pd.Timestamp]:
        spec = load_api_spec(self.type)
        raw: dict[str, list[dict[str, Any]]] = {}
        snapshot: pd.Timestamp | None = None
        for name, endpoint in spec.endpoints.items():
            if name == "deletions":
                continue
            params = (
                {} if since is None or not endpoint.delta else {"updated_after": f"{since:%Y-%m-%d %H:%M:%S}"}
            )
            raw[name], first = self._fetch(client, name, params)
            snapshot = snapshot or first.server_time()
        return raw, snapshot or pd.Timestamp.now(tz="UTC").floor("s")

    def _canonical(
        self, raw: dict[str, list[dict[str, Any]]], snapshot: pd.Timestamp
    ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        """Reshape the endpoints' records into raw entity frames and map them onto the canonical model;
        with the findings about staff whose status Wonde withheld (``wonde_checks``)."""
        mapping = load_api_spec(self.type).mapping
        pupils, links = [], []
        for name, status in PUPIL_STATUS.items():
            path = load_api_spec(self.type).endpoints[name].path
            for record in raw.get(name, []):
                registration = [
                    g
                    for g in dig(record, "groups.data") or []
                    if str(g.get("type", "")).upper() == "REGISTRATION"
                ]
                contacts = dig(record, "contacts.data") or []
                include_ids(record, "contacts", f"Wonde {path}")
                links += [{**c, "_contact_id": c["id"], "_pupil_id": record["id"]} for c in contacts]
                pupils.append(
                    {
                        **record,
                        "_enrolment_status": status,
                        "_registration_group_id": registration[0].get("id") if registration else None,
                    }
                )
        for pupil, year in zip(pupils, pupil_year(pupils), strict=True):
            pupil["_year_group"] = year
        relationships = frame(links, mapping, "relationships")

        staff = frame(raw["employees"], mapping, "staff", ("upi", "employment_details.data.current"))
        start = pd.to_datetime(
            staff[mapping.source_column("staff", "start_date")].astype("string").str.slice(0, 10),
            errors="coerce",
        )
        status, withheld = staff_status(staff["employment_details.data.current"], start, snapshot)
        stop_if_school_wide(
            int(withheld.sum()),
            len(staff),
            max_withheld(self.setting("max_withheld_fraction")),
            what="employees: employment_details.current (whether each member of staff is current)",
            permission="read access to employees' employment details, including 'current'",
        )
        staff["_enrolment_status"] = status
        findings = withheld_staff_findings(staff.loc[withheld.to_numpy(dtype=bool), "id"])
        if len(findings):
            log.warning(
                "Wonde employees: status withheld (null) for %d of %d staff: held as they are",
                len(findings),
                len(staff),
            )

        contacts = frame(raw["contacts"], mapping, "contacts", ("upi",))
        by_upi = staff.dropna(subset=["upi"]).drop_duplicates("upi").set_index("upi")["id"]
        contacts["_staff_mis_id"] = contacts["upi"].map(by_upi)

        groups, members = [], []
        for name, kind in (("groups", None), ("classes", "teaching")):
            path = load_api_spec(self.type).endpoints[name].path
            for record in raw.get(name, []):
                for include, role in (("students", "pupil"), ("employees", "teacher")):
                    for person in include_ids(record, include, f"Wonde {path}"):
                        members.append({"_group_id": record["id"], "_person_id": person, "_role": role})
                groups.append({**record, "_kind": kind or record.get("type")})

        frames = {
            "pupils": frame(pupils, mapping, "pupils"),
            "staff": staff,
            "contacts": contacts,
            "groups": frame(groups, mapping, "groups"),
            "memberships": frame(members, mapping, "memberships"),
            "relationships": relationships,
        }
        where = {
            "pupils": "Wonde students / students-pre-admission / students-leaver",
            "staff": "Wonde employees",
            "contacts": "Wonde contacts",
            "groups": "Wonde groups / classes",
            "memberships": "Wonde groups / classes (students, employees)",
            "relationships": "Wonde students (contacts)",
        }
        tables = apply_mapping(frames, mapping, where)
        kept = tables["groups"]["kind"].isin([k.value for k in GroupKind])
        tables["groups"] = tables["groups"][kept.fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
        in_kept = tables["memberships"]["group_id"].isin(tables["groups"]["mis_id"])
        tables["memberships"] = tables["memberships"][in_kept.to_numpy(dtype=bool)].reset_index(drop=True)
        return tables, findings

    def finish(self, extract: Extract) -> Extract:
        """Group years, academic year and pupils without a year group are judged on the whole snapshot
        (after a delta merge too): a pupil not re-sent keeps its finding until it is fixed."""
        pupils = extract.tables["pupils"]
        current = pupils["enrolment_status"].isin(["on_roll", "pre_admission"]).fillna(False)
        no_year = (pupils["year_group"].isna() & current).to_numpy(dtype=bool)
        stop_if_school_wide(
            int(no_year.sum()),
            int(current.sum()),
            max_withheld(self.setting("max_withheld_fraction")),
            what="students: year group (the 'year' include and education_details.current_nc_year)",
            permission="read access to students' year and education details (current NC year)",
        )
        if no_year.any():
            log.warning("Wonde students: %d current pupil(s) without a year group", int(no_year.sum()))
        found = extract.source_findings
        found = joined(
            found[found["rule"] != "year_group_missing"], missing_year_findings(pupils.loc[no_year, "mis_id"])
        )
        extract = replace(extract, source_findings=found)
        return super().finish(derive_group_context(registration_from_memberships(extract), self.country))

    def _check_counts(
        self, client: ApiClient, raw: dict[str, list[dict[str, Any]]], *, full: bool
    ) -> pd.DataFrame:
        """A last page that lost records looks like any last page; ``/counts`` says how many there
        should be (``wonde_checks.check_counts``): a shortfall stops the run, a count the reply does not
        carry is a finding. A delta checks the endpoints it read in full. ``options.verify_counts:
        false`` skips the check (and says so in the log)."""
        if str(self.setting("verify_counts", True)).lower() == "false":
            log.warning("Wonde: verify_counts is false: reads are not checked against /counts")
            return check_counts({}, {})
        endpoints = load_api_spec(self.type).endpoints
        received = {
            endpoints[name].path: len(raw[name])
            for name in COUNTED_ENTITY
            if name in endpoints and (full or not endpoints[name].delta)
        }
        if not received:
            return check_counts({}, {})
        reply = client.get(
            f"schools/{self._school()}/counts", {"include": ",".join(received)}, where="counts"
        )
        return check_counts(reply.payload, received)

    def read_full(self) -> tuple[Extract, dict[str, str]]:
        with self._client() as client:
            raw, snapshot = self._read(client, None)
            counted = self._check_counts(client, raw, full=True)
        tables, findings = self._canonical(raw, snapshot)
        found = joined(counted, findings)
        extract = Extract(tables=tables, snapshot_at=snapshot, source=self.type, source_findings=found)
        return extract, {"updated_after": snapshot.isoformat()}

    def _complete_entities(self) -> frozenset[str]:
        """Entities a delta reads whole: staff (``employees``), and groups with their memberships when
        ``groups`` and ``classes`` are read in full (``delta: false`` in the schema: Wonde does not
        document that a class's ``updated_at`` changes when its members do)."""
        endpoints = load_api_spec(self.type).endpoints
        complete = {"staff"} if not endpoints["employees"].delta else set()
        if not endpoints["groups"].delta and not endpoints["classes"].delta:
            complete |= {"groups", "memberships"}
        return frozenset(complete)

    def read_changes(self, state: DeltaState) -> tuple[ChangeSet, dict[str, str]]:
        try:
            overlap = pd.Timedelta(seconds=float(self.setting("delta_overlap_seconds", 600)))
            since = pd.Timestamp(state.cursor["updated_after"]).tz_convert("UTC") - overlap
        except (KeyError, ValueError, TypeError):
            raise CursorError("the stored Wonde cursor has no readable updated_after time") from None
        with self._client() as client:
            raw, snapshot = self._read(client, since)
            counted = self._check_counts(client, raw, full=False)
            deleted: dict[str, set[str]] = {}
            complete = self._complete_entities()
            kinds = {**DELETION_TYPES, **({} if "groups" in complete else GROUP_DELETION_TYPES)}
            for kind, entity in kinds.items():
                rows, _ = self._fetch(
                    client, "deletions", {"type": kind, "updated_after": f"{since:%Y-%m-%d %H:%M:%S}"}
                )
                deleted.setdefault(entity, set()).update(
                    str(r["id"]) for r in rows if not r.get("restored_at")
                )
        tables, findings = self._canonical(raw, snapshot)
        changed_pupils = frozenset(str(r["id"]) for name in PUPIL_STATUS for r in raw[name])
        changed_groups = frozenset(str(r["id"]) for name in ("groups", "classes") for r in raw[name])
        changes = ChangeSet(
            snapshot_at=snapshot,
            upserts=tables,
            deletes={
                e: pd.DataFrame({"mis_id": sorted(ids)}, dtype="string") for e, ids in deleted.items() if ids
            },
            scopes={
                "relationships": ("pupil_id", changed_pupils),
                **({} if "memberships" in complete else {"memberships": ("group_id", changed_groups)}),
            },
            complete=complete,
            source_findings=joined(counted, findings),
        )
        return changes, {"updated_after": snapshot.isoformat()}


__all__ = ["WondeConnector", "derive_group_context"]
