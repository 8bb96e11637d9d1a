"""Groupcall Xporter on Demand (XoD): ``https://xporter.groupcall.com/api/v1/School/{estab}/{Endpoint}``
(mis-sources §2.2).

Connection (Airflow): ``password`` = the school's ``schoolSecret`` (or ``extra.school_secret``);
``login`` = the relying party (your app's id at Groupcall, or ``extra.relying_party``);
``extra.estab`` (or ``mis.options.estab`` / ``laestab``) = the school's 7-digit LA + DfE number;
``extra.third_party_id`` (default ``XporterOnDemand``, as Groupcall's Ruby client);
``extra.token_url`` (default ``https://login.groupcall.com/idaas/sts/STS/GetToken``);
``host`` or ``extra.base_url`` for the API root (default ``https://xporter.groupcall.com/api/v1``).
Options: ``page_size`` (``pageSize``, default 1000 as Groupcall recommend), ``full_after_deltas``,
``timeout``, ``retry_*``.

Auth: ``POST GetToken`` with ``estab``, ``relyingParty``, ``password``, ``thirdpartyid`` → ``token``;
requests carry ``Authorization: Idaas {token}`` (not Bearer). A 401 fetches a new token once.

What is read (data in ``include/mis_schemas/xporter.yaml``): ``Students`` (with leavers and
pre-admissions; ``StudentStatus`` gives the status), ``Staff`` (current, future, previous), ``Contacts``
(a contact with a staff member's ``IdaasId`` is that staff member [U]), ``StudentContacts``
(relationships [U]) and ``Groups?type=YearGrp|RegGrp|TeachingGrp`` with member ids.

Delta: Xporter changesets. Every read passes ``changedRows`` (``*`` for a full read) and keeps the
``NextChangedRows`` token per endpoint; a delta passes the tokens back and gets changed rows plus
``{Table}_deleted``. ``Staff`` is read in full each time. A changed group replaces all its
memberships. Snapshot time: ``__changedRows__.SnapshotDate``: the cache refresh, so up to a day old
(Xporter serves cached data, refreshed overnight).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd

from mis_sync.connectors.base import ExtractError
from mis_sync.connectors.delta import ChangeSet, CursorError, DeltaConnector, DeltaState
from mis_sync.connectors.http_api import ApiClient, HttpApiConnector, load_api_spec
from mis_sync.connectors.http_paging import PageInfo, as_int, json_list, numbered_pages, require_keys
from mis_sync.connectors.mapping import apply_mapping
from mis_sync.connectors.wonde import derive_group_context, frame
from mis_sync.errors import SetupError
from mis_sync.model import Extract

TOKEN_URL = "https://login.groupcall.com/idaas/sts/STS/GetToken"
GROUP_ENDPOINTS = ("year_groups", "registration_groups", "teaching_groups")


class IdaasAuth(httpx.Auth):
    """``Authorization: Idaas {token}``, the token from ``fetch``; fetched again once after a 401."""

    def __init__(self, fetch: Callable[[], str]) -> None:
        self._fetch = fetch
        self._token: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fresh = self._token is None
        if self._token is None:
            self._token = self._fetch()
        request.headers["Authorization"] = f"Idaas {self._token}"
        response = yield request
        if response.status_code == 401 and not fresh:
            self._token = self._fetch()
            request.headers["Authorization"] = f"Idaas {self._token}"
            yield request


def _page_info(payload: Any, where: str) -> PageInfo:
    block = payload.get("__pagination__") if isinstance(payload, dict) else None
    if not isinstance(block, list) or not block or not isinstance(block[0], dict):
        raise ExtractError(f"{where}: required key '__pagination__' is missing")
    b = block[0]
    return PageInfo(
        number=as_int(b.get("PageNumber"), "PageNumber", where),
        count=as_int(b.get("PageCount"), "PageCount", where),
        total=as_int(b.get("RowCount"), "RowCount", where),
        size=as_int(b.get("PageSize"), "PageSize", where),
    )


@dataclass
class Fetched:
    rows: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, Any] | None = None
    """``__changedRows__[0]`` of the first page: ``SnapshotDate``, ``NextChangedRows``…"""


class XporterConnector(HttpApiConnector, DeltaConnector):
    type = "xporter"
    title = "Xporter"
    default_base_url = "https://xporter.groupcall.com/api/v1"
    default_path = "/api/v1"

    def spec_digest(self) -> str:
        return f"{load_api_spec(self.type).digest}:{self.page_size(1000)}"

    def _estab(self) -> str:
        estab = str(
            self.options.get("estab")
            or self.options.get("laestab")
            or self.connection.extra.get("estab")
            or ""
        )
        if len(estab) != 7 or not estab.isdigit():
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no 7-digit estab (LA + DfE number); set "
                "extra.estab or mis.options.estab"
            )
        return estab

    @contextlib.contextmanager
    def _client(self) -> Generator[ApiClient, None, None]:
        extra = self.connection.extra
        secret = self.secret("school_secret", label="Xporter school secret")
        relying_party = extra.get("relying_party") or self.connection.login
        if not relying_party:
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no relying party (set login or extra.relying_party)"
            )
        token_url = httpx.URL(str(extra.get("token_url") or TOKEN_URL))
        body = {
            "estab": self._estab(),
            "relyingParty": relying_party,
            "password": secret,
            "thirdpartyid": extra.get("third_party_id") or "XporterOnDemand",
        }
        origin = f"{token_url.scheme}://{token_url.netloc.decode()}"
        with self.make_client(base_url=origin) as token_client:

            def fetch() -> str:
                reply = token_client.request("POST", str(token_url), json_body=body, where="GetToken")
                token = reply.payload.get("token") if isinstance(reply.payload, dict) else None
                if not isinstance(token, str) or not token:
                    raise ExtractError("Xporter GetToken: the reply has no 'token'")
                return token

            with self.make_client(auth=IdaasAuth(fetch)) as client:
                yield client

    def _fetch(self, client: ApiClient, name: str, changed_rows: str | None) -> Fetched:
        endpoint = load_api_spec(self.type).endpoints[name]
        key = endpoint.records_key or endpoint.path
        label = endpoint.path + (f" ({endpoint.params['type']})" if "type" in endpoint.params else "")
        params = {**endpoint.params, **({"changedRows": changed_rows} if changed_rows else {})}
        out = Fetched()
        for page in numbered_pages(
            client,
            f"School/{self._estab()}/{endpoint.path}",
            params,
            endpoint=label,
            records=lambda payload, where: json_list(payload, key, where),
            info=_page_info,
            page_size=self.page_size(1000),
        ):
            where = f"Xporter {label} page {page.number}"
            require_keys(page.records, endpoint.required_keys, where, endpoint.required_keys[0])
            out.rows += page.records
            if changed_rows:
                block = page.response.payload.get("__changedRows__")
                if not isinstance(block, list) or not block or not isinstance(block[0], dict):
                    raise ExtractError(f"{where}: required key '__changedRows__' is missing")
                if not block[0].get("NextChangedRows"):
                    raise ExtractError(f"{where}: __changedRows__ has no NextChangedRows")
                out.changes = out.changes or block[0]
                deleted = page.response.payload.get(f"{key}_deleted") or []
                for i, item in enumerate(deleted):
                    if isinstance(item, str):
                        item = {endpoint.required_keys[0]: item}
                    if not isinstance(item, dict) or any(item.get(k) is None for k in endpoint.required_keys):
                        raise ExtractError(
                            f"{where}: {key}_deleted[{i}] lacks {', '.join(endpoint.required_keys)}"
                        )
                    out.deleted.append(item)
        return out

    def _read(self, cursor: dict[str, str] | None) -> tuple[dict[str, Fetched], pd.Timestamp]:
        spec = load_api_spec(self.type)
        fetched: dict[str, Fetched] = {}
        with self._client() as client:
            for name, endpoint in spec.endpoints.items():
                token = (cursor or {}).get(f"changed_rows.{name}", "*") if endpoint.delta else None
                fetched[name] = self._fetch(client, name, token)
        stamps = []
        for name, f in fetched.items():
            if f.changes and f.changes.get("SnapshotDate"):
                try:
                    stamp = pd.Timestamp(f.changes["SnapshotDate"])
                except ValueError:
                    raise ExtractError(
                        f"Xporter {name}: __changedRows__.SnapshotDate is not a time"
                    ) from None
                # Xporter is a UK service: a bare time is UK local time.
                stamps.append(stamp.tz_localize("Europe/London") if stamp.tzinfo is None else stamp)
        # The oldest cache time: a read that straddled an overnight refresh claims no more than it has.
        snapshot = min(stamps) if stamps else pd.Timestamp.now(tz="UTC").floor("s")
        return fetched, snapshot.tz_convert("UTC")

    @staticmethod
    def _cursor(fetched: dict[str, Fetched]) -> dict[str, str]:
        return {
            f"changed_rows.{n}": str(f.changes["NextChangedRows"]) for n, f in fetched.items() if f.changes
        }

    def _canonical(self, fetched: dict[str, Fetched]) -> dict[str, pd.DataFrame]:
        spec = load_api_spec(self.type)
        mapping = spec.mapping
        staff = frame(fetched["staff"].rows, mapping, "staff", ("IdaasId",))
        contacts = frame(fetched["contacts"].rows, mapping, "contacts", ("IdaasId",))
        contacts["_legal_forename"], contacts["_legal_surname"] = contacts["Forename"], contacts["Surname"]
        by_idaas = staff.dropna(subset=["IdaasId"]).drop_duplicates("IdaasId").set_index("IdaasId")["Id"]
        contacts["_staff_mis_id"] = contacts["IdaasId"].map(by_idaas)
        groups, members = [], []
        for name in GROUP_ENDPOINTS:
            kind = spec.endpoints[name].params.get("type")
            for row in fetched[name].rows:
                groups.append({**row, "_kind": kind})
                for column, role in (("StudentIds", "pupil"), ("StaffIds", "teacher")):
                    for person in str(row.get(column) or "").split(","):
                        if person.strip():
                            members.append(
                                {"_group_id": row["Id"], "_person_id": person.strip(), "_role": role}
                            )
        frames = {
            "pupils": frame(fetched["students"].rows, mapping, "pupils"),
            "staff": staff,
            "contacts": contacts,
            "groups": frame(groups, mapping, "groups"),
            "memberships": frame(members, mapping, "memberships"),
            "relationships": frame(fetched["student_contacts"].rows, mapping, "relationships"),
        }
        where = {
            "pupils": "Xporter Students",
            "staff": "Xporter Staff",
            "contacts": "Xporter Contacts",
            "groups": "Xporter Groups",
            "memberships": "Xporter Groups (StudentIds, StaffIds)",
            "relationships": "Xporter StudentContacts",
        }
        return apply_mapping(frames, mapping, where)

    def finish(self, extract: Extract) -> Extract:
        return super().finish(derive_group_context(extract, self.country))

    def read_full(self) -> tuple[Extract, dict[str, str]]:
        fetched, snapshot = self._read(None)
        tables = self._canonical(fetched)
        return Extract(tables=tables, snapshot_at=snapshot, source=self.type), self._cursor(fetched)

    def read_changes(self, state: DeltaState) -> tuple[ChangeSet, dict[str, str]]:
        spec = load_api_spec(self.type)
        missing = [
            n for n, e in spec.endpoints.items() if e.delta and f"changed_rows.{n}" not in state.cursor
        ]
        if missing:
            raise CursorError(f"the stored Xporter cursor has no changedRows token for {', '.join(missing)}")
        fetched, snapshot = self._read(state.cursor)
        tables = self._canonical(fetched)

        def ids(names: tuple[str, ...]) -> pd.DataFrame:
            return pd.DataFrame(
                {"mis_id": [str(d["Id"]) for n in names for d in fetched[n].deleted]}, dtype="string"
            )

        links = fetched["student_contacts"].deleted
        deletes = {
            "pupils": ids(("students",)),
            "contacts": ids(("contacts",)),
            "groups": ids(GROUP_ENDPOINTS),
            "relationships": pd.DataFrame(
                {
                    "contact_id": [str(d["ContactId"]) for d in links],
                    "pupil_id": [str(d["StudentId"]) for d in links],
                },
                dtype="string",
            ),
        }
        changes = ChangeSet(
            snapshot_at=snapshot,
            upserts=tables,
            deletes={k: v for k, v in deletes.items() if len(v)},
            scopes={
                "memberships": (
                    "group_id",
                    frozenset(str(r["Id"]) for n in GROUP_ENDPOINTS for r in fetched[n].rows),
                )
            },
            complete=frozenset({"staff"}),
        )
        return changes, self._cursor(fetched)
