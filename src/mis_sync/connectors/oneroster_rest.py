"""OneRoster 1.1 REST (Groupcall XoD's OneRoster facade, SIMS ID's OneRoster API, any 1.1 provider):
``{base}/ims/oneroster/v1p1/{collection}`` (mis-sources §4.3).

Connection (Airflow): ``host`` (``/ims/oneroster/v1p1`` is added) or ``extra.base_url``; with
``extra.token_url``: OAuth 2 client credentials, ``login`` = client id, ``password`` = client secret
(``extra.scope`` optional), the token renewed before it expires and once after a 401; without it:
``extra.bearer_token`` (or ``password``) sent as a fixed Bearer token. Options: ``page_size``
(``limit``, default 100 [U spec default]), ``delta_overlap_seconds`` (default 600),
``full_after_deltas``, ``timeout``, ``retry_*``.

What is read (collections and mapping in ``include/mis_schemas/oneroster_rest.yaml``; the code tables
are the OneRoster CSV connector's, from ``oneroster_1_1.yaml``): ``users`` (by ``role``: pupils, staff,
contacts; ``enabledUser`` gives on roll or leaver), ``demographics`` (date of birth, sex),
``classes`` (homeroom → registration group, scheduled → teaching group; the first term's school year),
``enrollments`` (memberships; a pupil's homeroom is their registration group), ``academicSessions``.
A pupil's ``agents`` are their contacts; the relationship is the contact's role. OneRoster 1.1 cannot
carry preferred names, titles, former UPNs, SCNs, admission / leaving / start dates, pre-admissions,
year groups (§4.1), a contact's staff link, parental responsibility or priority.

Paging: ``limit`` / ``offset`` with ``X-Total-Count`` [S]: fewer records than declared stops the run
as truncated. Full read: ``filter=status='active'`` [V, SDS]. Delta (``DeltaConnector``):
``filter=dateLastModified>'{previous snapshot − overlap}'`` on each collection [V]; records with
``status=tobedeleted`` are deletions [S]. A changed user is rebuilt from its record; columns that come
from elsewhere (date of birth and sex from ``demographics``, the registration group from a homeroom
enrollment) keep their previous value unless that record changed too; a pupil or staff member whose
demographics or homeroom changed without their user record is fetched by ``users/{sourcedId}``.
Snapshot time: the server's ``Date`` on the first response.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from mis_sync.academic_year import academic_year, academic_years_of_terms
from mis_sync.connectors.api_support import oauth_client, records_frame
from mis_sync.connectors.delta import ChangeSet, CursorError, DeltaConnector, DeltaState
from mis_sync.connectors.http_api import ApiClient, ApiResponse, HttpApiConnector, load_api_spec
from mis_sync.connectors.http_paging import json_list, offset_pages, require_keys
from mis_sync.connectors.mapping import SourceMapping, apply_mapping
from mis_sync.connectors.sds import code_lookup, load_format
from mis_sync.connectors.wonde import frame
from mis_sync.errors import ExtractError, SetupError
from mis_sync.model import Extract

Record = dict[str, Any]
KINDS = {"pupil": "pupils", "staff": "staff", "contact": "contacts"}


def shared_mapping() -> SourceMapping:
    """The REST mapping with the CSV connector's code tables under its own (a REST entry wins)."""
    spec = load_api_spec("oneroster_rest")
    codes = {**load_format("oneroster_1_1").mapping.codes, **spec.mapping.codes}
    return spec.mapping.model_copy(update={"codes": codes})


def first_of(values: pd.Series) -> pd.Series:
    """``["7", "8"]`` → ``"7"``; a comma-separated string (some providers) likewise; empty → None."""

    def one(v: Any) -> Any:
        if isinstance(v, list):
            return v[0] if v else None
        if v is None or v == "":
            return None
        return str(v).split(",")[0].strip() or None

    return values.map(one)


class OneRosterRestConnector(HttpApiConnector, DeltaConnector):
    type = "oneroster_rest"
    title = "OneRoster REST"
    default_base_url = ""
    default_path = "/ims/oneroster/v1p1"

    def spec_digest(self) -> str:
        codes = json.dumps(shared_mapping().codes, sort_keys=True).encode()
        return f"{load_api_spec(self.type).digest}:{hashlib.sha256(codes).hexdigest()[:12]}"

    def api_root(self) -> str:
        if not (self.connection.extra.get("base_url") or self.connection.host):
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no OneRoster host (set host or extra.base_url)"
            )
        return super().api_root()

    @contextlib.contextmanager
    def _client(self) -> Iterator[ApiClient]:
        extra = self.connection.extra
        if extra.get("token_url"):
            if not self.connection.login:
                raise SetupError(f"connection {self.connection.conn_id!r}: no OAuth client id (set login)")
            form = {
                "grant_type": "client_credentials",
                "client_id": str(self.connection.login),
                "client_secret": self.secret("client_secret", label="OneRoster client secret"),
            }
            if extra.get("scope"):
                form["scope"] = str(extra["scope"])
            with oauth_client(self, token_url=str(extra["token_url"]), form=form) as client:
                yield client
            return
        token = self.secret("bearer_token", label="OneRoster bearer token or OAuth token_url")
        with self.make_client(headers={"Authorization": f"Bearer {token}"}) as client:
            yield client

    def _fetch(self, client: ApiClient, name: str, flt: str) -> tuple[list[Record], ApiResponse]:
        endpoint = load_api_spec(self.type).endpoints[name]
        key = endpoint.records_key or endpoint.path
        rows: list[Record] = []
        first: ApiResponse | None = None
        for page in offset_pages(
            client,
            endpoint.path,
            {**endpoint.params, "filter": flt},
            endpoint=endpoint.path,
            records=lambda payload, where: json_list(payload, key, where),
            limit=self.page_size(100),
        ):
            require_keys(
                page.records,
                endpoint.required_keys,
                f"OneRoster {endpoint.path} page {page.number}",
                "sourcedId",
            )
            rows += page.records
            first = first or page.response
        assert first is not None
        return rows, first

    def _read(self, client: ApiClient, flt: str) -> tuple[dict[str, list[Record]], pd.Timestamp]:
        raw: dict[str, list[Record]] = {}
        snapshot = None
        for name, endpoint in load_api_spec(self.type).endpoints.items():
            raw[name], first = self._fetch(client, name, flt if endpoint.delta else "status='active'")
            snapshot = snapshot or first.server_time()
        return raw, snapshot or pd.Timestamp.now(tz="UTC").floor("s")

    # ---- records → canonical ---------------------------------------------------------------------------
    def _tables(
        self,
        raw: dict[str, list[Record]],
        snapshot: pd.Timestamp,
        homeroom_classes: set[str] | None = None,
        roles: dict[str, str] | None = None,
    ) -> dict[str, pd.DataFrame]:
        m = shared_mapping()
        codes = m.codes
        users = records_frame(raw["users"], ["sourcedId", "role"])
        kind = code_lookup(users["role"].astype("string"), codes["person_kind"])
        if kind.isna().any():
            bad = users.loc[kind.isna().to_numpy(dtype=bool), "sourcedId"].iloc[0]
            raise ExtractError(f"OneRoster users: record {bad}: role is not a OneRoster 1.1 role")
        demo = {d["sourcedId"]: d for d in raw["demographics"]}
        classes = records_frame(raw["classes"], ["sourcedId", "classType", "grades", "subjects", "terms"])
        class_kind = code_lookup(classes["classType"].astype("string"), codes["class_kind"]).fillna(
            "teaching"
        )
        homerooms = set(classes.loc[(class_kind == "registration").to_numpy(dtype=bool), "sourcedId"])
        homerooms |= homeroom_classes or set()
        enrol = records_frame(raw["enrollments"], ["sourcedId", "user.sourcedId", "class.sourcedId", "role"])
        # an unknown enrollment role is kept as given: data quality quarantines that membership
        enrol["_role"] = code_lookup(enrol["role"].astype("string"), codes["member_role"]).fillna(
            enrol["role"].astype("string")
        )
        in_homeroom = enrol[(enrol["_role"] == "pupil") & enrol["class.sourcedId"].isin(homerooms)]
        homeroom = dict(zip(in_homeroom["user.sourcedId"], in_homeroom["class.sourcedId"], strict=True))

        def people(k: str, entity: str) -> pd.DataFrame:
            rows = [r for r, kd in zip(raw["users"], kind, strict=True) if kd == k]
            out = frame(rows, m, entity, ("role", "enabledUser", "grades"))
            out["_birth_date"] = out["sourcedId"].map(lambda i: (demo.get(i) or {}).get("birthDate"))
            out["_sex"] = out["sourcedId"].map(lambda i: (demo.get(i) or {}).get("sex"))
            out["_enrolment_status"] = code_lookup(
                out["enabledUser"].astype("string"), codes["enabled_status"]
            ).fillna("on_roll")
            out["_grade"] = first_of(out["grades"])
            out["_homeroom"] = out["sourcedId"].map(homeroom)
            out["_is_teaching"] = code_lookup(out["role"].astype("string"), codes["teaching_role"]).fillna(
                "false"
            )
            return out

        role_of = {**(roles or {}), **dict(zip(users["sourcedId"], users["role"], strict=True))}
        links = [
            {
                "_contact_id": a.get("sourcedId"),
                "_pupil_id": user["sourcedId"],
                "_relationship": role_of.get(a.get("sourcedId")),
            }
            for user, kd in zip(raw["users"], kind, strict=True)
            if kd == "pupil"
            for a in user.get("agents") or []
            if isinstance(a, dict) and a.get("sourcedId")
        ]
        sessions = records_frame(raw["academic_sessions"], ["sourcedId", "startDate", "endDate"])
        label = dict(
            zip(
                sessions["sourcedId"],
                academic_years_of_terms(sessions["startDate"], sessions["endDate"], self.country),
                strict=True,
            )
        )
        groups = frame(raw["classes"], m, "groups", ("classType", "grades", "subjects", "terms"))
        groups["_kind"] = class_kind.to_numpy()
        groups["_grade"], groups["_subject"] = first_of(groups["grades"]), first_of(groups["subjects"])
        term = groups["terms"].map(
            lambda ts: (ts[0] or {}).get("sourcedId") if isinstance(ts, list) and ts else None
        )
        groups["_academic_year"] = term.map(label).fillna(academic_year(snapshot, self.country))
        members = pd.DataFrame(
            {
                "_group_id": enrol["class.sourcedId"],
                "_person_id": enrol["user.sourcedId"],
                "_role": enrol["_role"],
            }
        )
        frames = {
            "pupils": people("pupil", "pupils"),
            "staff": people("staff", "staff"),
            "contacts": people("contact", "contacts"),
            "groups": groups,
            "memberships": members,
            "relationships": frame(links, m, "relationships"),
        }
        where = {
            "pupils": "OneRoster users (students)",
            "staff": "OneRoster users (staff)",
            "contacts": "OneRoster users (agents)",
            "groups": "OneRoster classes",
            "memberships": "OneRoster enrollments",
            "relationships": "OneRoster users (agents)",
        }
        return apply_mapping(frames, m, where)

    def read_full(self) -> tuple[Extract, dict[str, str]]:
        with self._client() as client:
            raw, snapshot = self._read(client, "status='active'")
        tables = self._tables(raw, snapshot)
        return Extract(tables=tables, snapshot_at=snapshot, source=self.type), {
            "modified_after": snapshot.isoformat()
        }

    # ---- delta --------------------------------------------------------------------------------------
    def read_changes(self, state: DeltaState) -> tuple[ChangeSet, dict[str, str]]:
        try:
            overlap = pd.Timedelta(seconds=float(self.setting("delta_overlap_seconds", 600)))
            since = pd.Timestamp(state.cursor["modified_after"]).tz_convert("UTC") - overlap
        except (KeyError, ValueError, TypeError):
            raise CursorError("the stored OneRoster cursor has no readable modified_after time") from None
        prev = state.snapshot.tables
        with self._client() as client:
            raw, snapshot = self._read(client, f"dateLastModified>'{since:%Y-%m-%dT%H:%M:%S}.000Z'")
            live, gone = self._split(raw)
            homeroom_ids = set(prev["groups"].loc[prev["groups"]["kind"] == "registration", "mis_id"])
            homeroom_ids |= {
                c["sourcedId"] for c in live["classes"] if str(c.get("classType", "")).lower() == "homeroom"
            }
            homeroom_ids -= {c["sourcedId"] for c in gone["classes"]}
            moved = {
                e["user"]["sourcedId"]
                for e in live["enrollments"] + gone["enrollments"]
                if e["class"]["sourcedId"] in homeroom_ids and str(e.get("role")).lower() == "student"
            }
            demo = {d["sourcedId"] for d in live["demographics"]}
            known = {u["sourcedId"] for u in live["users"]} | {u["sourcedId"] for u in gone["users"]}
            people = set(prev["pupils"]["mis_id"]) | set(prev["staff"]["mis_id"])
            # Demographics or a homeroom changed without the user record: fetch the user to rebuild it.
            for key in sorted(((demo | moved) & people) - known):
                live["users"].append(self._user(client, key))
            links = prev["relationships"].dropna(subset=["relationship"])
            roles = dict(zip(links["contact_id"], links["relationship"].str.lower(), strict=True))
            agents = {
                a.get("sourcedId")
                for u in live["users"]
                for a in u.get("agents") or []
                if isinstance(a, dict)
            }
            for key in sorted(a for a in agents - known - set(roles) if a):  # an agent of unknown role
                roles[key] = str(self._user(client, key).get("role", "")).lower()
        tables = self._tables(live, snapshot, homeroom_ids, roles)
        self._keep_previous(tables, prev, demo, moved)
        changed_contacts = set(tables["contacts"]["mis_id"])
        relinked = prev["relationships"][prev["relationships"]["contact_id"].isin(changed_contacts)]
        role_now = self._contact_relationships(live)
        relinked = relinked.assign(
            relationship=relinked["contact_id"].map(role_now).fillna(relinked["relationship"])
        )
        tables["relationships"] = pd.concat([relinked, tables["relationships"]], ignore_index=True)
        deletes = self._deletes(gone)
        scopes = {"relationships": ("pupil_id", frozenset(tables["pupils"]["mis_id"]))}
        change_set = ChangeSet(snapshot_at=snapshot, upserts=tables, deletes=deletes, scopes=scopes)
        return change_set, {"modified_after": snapshot.isoformat()}

    @staticmethod
    def _user(client: ApiClient, key: str) -> Record:
        reply = client.get(f"users/{key}", None, where=f"users/{key}")
        user = reply.payload.get("user") if isinstance(reply.payload, dict) else None
        if not isinstance(user, dict) or not user.get("role"):
            raise ExtractError(f"OneRoster users/{key}: required key 'user' (with its role) is missing")
        return user

    @staticmethod
    def _split(raw: dict[str, list[Record]]) -> tuple[dict[str, list[Record]], dict[str, list[Record]]]:
        """Active and ``tobedeleted`` records; a record both deleted and (re)created is active."""
        live, gone = {}, {}
        for name, rows in raw.items():
            dead = [r for r in rows if str(r.get("status", "active")).lower() == "tobedeleted"]
            alive = [r for r in rows if r not in dead]
            ids = {r["sourcedId"] for r in alive}
            live[name], gone[name] = alive, [r for r in dead if r["sourcedId"] not in ids]
        return live, gone

    def _contact_relationships(self, live: dict[str, list[Record]]) -> dict[str, str]:
        codes = shared_mapping().codes
        kinds = {k.lower(): v for k, v in codes["person_kind"].items()}
        names = {k.lower(): v for k, v in codes.get("relationship", {}).items()}
        return {
            u["sourcedId"]: names.get(str(u["role"]).lower(), str(u["role"]).lower())
            for u in live["users"]
            if kinds.get(str(u["role"]).lower()) == "contact"
        }

    @staticmethod
    def _keep_previous(
        tables: dict[str, pd.DataFrame], prev: dict[str, pd.DataFrame], demo: set[str], moved: set[str]
    ) -> None:
        """Columns whose source record did not change keep their previous value."""
        for entity, columns, changed in (
            ("pupils", ("date_of_birth", "gender"), demo),
            ("pupils", ("registration_group_id",), moved),
            ("staff", ("date_of_birth",), demo),
        ):
            rows, old = tables[entity], prev[entity].set_index("mis_id")
            keep = ~rows["mis_id"].isin(changed) & rows["mis_id"].isin(old.index)
            for column in columns:
                rows.loc[keep, column] = rows.loc[keep, "mis_id"].map(old[column]).to_numpy()

    def _deletes(self, gone: dict[str, list[Record]]) -> dict[str, pd.DataFrame]:
        codes = shared_mapping().codes
        kinds = {k.lower(): v for k, v in codes["person_kind"].items()}
        member = {k.lower(): v for k, v in codes["member_role"].items()}
        deletes: dict[str, pd.DataFrame] = {}
        for kind, entity in KINDS.items():
            ids = sorted({u["sourcedId"] for u in gone["users"] if kinds.get(str(u["role"]).lower()) == kind})
            if ids:
                deletes[entity] = pd.DataFrame({"mis_id": ids}, dtype="string")
        if gone["classes"]:
            deletes["groups"] = pd.DataFrame(
                {"mis_id": sorted({c["sourcedId"] for c in gone["classes"]})}, dtype="string"
            )
        if gone["enrollments"]:
            deletes["memberships"] = pd.DataFrame(
                [
                    {
                        "group_id": e["class"]["sourcedId"],
                        "person_id": e["user"]["sourcedId"],
                        "role": member.get(str(e["role"]).lower()),
                    }
                    for e in gone["enrollments"]
                ],
                dtype="string",
            )
        return deletes


__all__ = ["OneRosterRestConnector"]
