"""Apply a plan to the directory: one transaction, bulk SQL, an audit row for every change.

Safety rules enforced here, inside the transaction, not only in the planner:
- a plan made against another directory revision is refused (``StalePlanError``): re-plan instead;
- a snapshot older than the last one applied is skipped, so a backfill or a late retry cannot roll
  the directory back;
- any failure rolls everything back, so a retry starts from exactly the state the plan was made for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, and_, bindparam, delete, insert, select, update

from mis_sync.directory.concurrency import insert_if_absent
from mis_sync.directory.credentials import Credential, store_initial_passwords
from mis_sync.directory.schema import AuditEntry, Group, Membership, SyncState, User
from mis_sync.directory.state import _utc, query_frame, user_ids
from mis_sync.errors import StalePlanError
from mis_sync.identity.store import apply_identity
from mis_sync.passwords import PasswordPolicies, generate_passwords
from mis_sync.plan import GROUP_FIELDS, USER_FIELDS, Plan, held_rows, older_snapshot_reason

CHUNK = 2000
"""Rows per executemany: large enough for speed, small enough for PostgreSQL's parameter limit."""


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    writes: int
    revision: int
    skipped_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "writes": self.writes,
            "revision": self.revision,
            "skipped_reason": self.skipped_reason,
        }


def _execute(connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> int:
    """Run one bulk statement in chunks. The single write path (tests inject failures here)."""
    written = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        connection.execute(statement, list(chunk))
        written += len(chunk)
    return written


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Plain Python values (``None`` for nulls) for the DB driver."""
    subset = frame[columns].astype(object).where(frame[columns].notna(), None)
    return subset.to_dict(orient="records")


def _lists(*columns: pd.Series) -> list[list[Any]]:
    """Columns as Python lists, for zipping into rows: iterating an Arrow-backed string Series element
    by element costs ~1.5 µs a value (seconds for a trust's ~500k memberships), ``tolist`` a fraction."""
    return [column.tolist() for column in columns]


def data_hash(tables: dict[str, pd.DataFrame]) -> str:
    """Order-independent content hash of an extract: did the MIS data change since last run?"""
    digest = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        hashed = pd.util.hash_pandas_object(frame, index=False).sort_values().to_numpy()
        digest.update(name.encode())
        digest.update(hashed.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class InitialPasswords:
    """What apply needs to give new accounts an initial password: per-role policies and the keys."""

    policies: PasswordPolicies
    keys: Sequence[bytes]


def apply_plan(
    engine: Engine,
    establishment_id: str,
    plan: Plan,
    *,
    run_id: str,
    extract_hash: str,
    extract_counts: dict[str, int],
    now: datetime | None = None,
    passwords: InitialPasswords | None = None,
) -> ApplyResult:
    """``passwords``: when given, created (and re-created) accounts get an encrypted initial password
    in the same transaction, so an account never exists without one."""
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        state = _lock_state(connection, establishment_id)
        if plan.skipped_reason:
            return ApplyResult(False, 0, state.revision, plan.skipped_reason)
        last_applied = _utc(state.last_snapshot_at) if state.last_snapshot_at is not None else None
        if reason := older_snapshot_reason(plan.snapshot_at, last_applied):
            return ApplyResult(False, 0, state.revision, reason)
        if state.revision != plan.base_revision:
            raise StalePlanError(
                f"directory revision is {state.revision}, the plan was made at {plan.base_revision}; "
                "re-run the DAG to plan again"
            )
        writes = _apply_groups(connection, establishment_id, plan, run_id, now)
        writes += _apply_users(connection, establishment_id, plan, run_id, now)
        writes += apply_identity(  # re-keys before memberships, which find people by their MIS id
            connection,
            establishment_id,
            plan.users[~plan.users["held"].astype(bool)],
            USER_FIELDS,
            plan.identities,
            plan.identity_pending,
            run_id,
            now,
        )
        writes += _apply_memberships(connection, establishment_id, plan, run_id, now)
        _apply_credentials(connection, establishment_id, plan, run_id, now, passwords)

        if writes:
            state.revision += 1
        if state.data_hash != extract_hash:
            state.data_changed_at = plan.snapshot_at.to_pydatetime()
            state.data_hash = extract_hash
        state.last_run_id = run_id
        state.last_success_at = now
        state.last_snapshot_at = plan.snapshot_at.to_pydatetime()
        state.last_counts = json.dumps(extract_counts, sort_keys=True)
        connection.execute(
            update(SyncState)
            .where(SyncState.establishment_id == establishment_id)
            .values(
                revision=state.revision,
                data_changed_at=state.data_changed_at,
                data_hash=state.data_hash,
                last_run_id=run_id,
                last_success_at=now,
                last_snapshot_at=state.last_snapshot_at,
                last_counts=state.last_counts,
            )
        )
        return ApplyResult(True, writes, state.revision)


def _apply_credentials(
    connection: Connection,
    est: str,
    plan: Plan,
    run_id: str,
    now: datetime,
    passwords: InitialPasswords | None,
) -> None:
    """Initial passwords for new accounts; a deleted account's stored password goes with its data."""
    users = plan.users[~plan.users["held"].astype(bool)]
    deleted = [int(i) for i in users.loc[users["action"] == "delete", "user_id"]]
    if deleted:
        _execute(
            connection,
            delete(Credential.__table__).where(Credential.__table__.c.user_id == bindparam("b_id")),
            [{"b_id": i} for i in deleted],
        )
    if passwords is None:
        return
    fresh = users[users["action"].isin(["create", "restore"])]
    if fresh.empty:
        return
    ids = user_ids(connection, est).rename(columns={"user_id": "user_id_db"})
    fresh = fresh.merge(ids, on=["person_kind", "mis_id"])
    for role, rows in fresh.groupby("role"):
        policy = passwords.policies.for_role(str(role))
        store_initial_passwords(
            connection,
            [int(i) for i in rows["user_id_db"]],
            generate_passwords(policy, len(rows)),
            passwords.keys,
            run_id,
            now,
        )


def _lock_state(connection: Connection, establishment_id: str) -> SimpleNamespace:
    """The establishment's sync record, created if new, locked for the transaction (PostgreSQL).

    Created with insert-if-absent: two first runs of one school both find no row; the second's insert
    waits for the first's commit and then keeps its row, instead of failing on the primary key.
    """
    table = SyncState.__table__
    query = select(table).where(table.c.establishment_id == establishment_id).with_for_update()
    row = connection.execute(query).mappings().one_or_none()
    if row is None:
        insert_if_absent(
            connection, table, [{"establishment_id": establishment_id, "revision": 0}], ["establishment_id"]
        )
        row = connection.execute(query).mappings().one()
    return SimpleNamespace(**row)


def _audit(
    connection: Connection, establishment_id: str, run_id: str, now: datetime, rows: list[dict[str, Any]]
) -> int:
    for row in rows:
        row.update(establishment_id=establishment_id, run_id=run_id, at=now)
    return _execute(connection, insert(AuditEntry), rows)


def _field_audits(frame: pd.DataFrame, fields: list[str], entity: str, key: pd.Series) -> list[dict]:
    """One audit row per changed field of each update (old → new)."""
    rows = []
    for record, entity_key in zip(frame.to_dict(orient="records"), key.tolist(), strict=True):
        previous = json.loads(record["previous"] or "{}")
        for name in filter(None, str(record["changed_fields"]).split(",")):
            rows.append(
                {
                    "entity": entity,
                    "entity_key": entity_key,
                    "action": record["action"],
                    "field": name,
                    "old_value": previous.get(name),
                    "new_value": None if pd.isna(record[name]) else str(record[name]),
                    "reason": record["reason"],
                }
            )
    return rows


def _not_held(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows apply may write: the brake's held rows stay as they are until an approval."""
    return frame[~held_rows(frame)].reset_index(drop=True)


def _apply_groups(connection: Connection, est: str, plan: Plan, run_id: str, now: datetime) -> int:
    groups = _not_held(plan.groups)
    if groups.empty:
        return 0
    key = "group:" + groups["mis_id"] + "/" + groups["academic_year"]
    creates = groups[groups["action"] == "create"]
    rows = _records(creates, ["mis_id", "academic_year", *GROUP_FIELDS])
    for row in rows:
        row.update(establishment_id=est, status="active", created_at=now, updated_at=now)
    writes = _execute(connection, insert(Group), rows)

    changed = groups[groups["action"].isin(["update", "restore", "archive"])]
    if len(changed):
        rows = _records(changed, ["group_id", *GROUP_FIELDS])
        statuses = changed["action"].map({"update": "active", "restore": "active", "archive": "archived"})
        for row, status in zip(rows, statuses, strict=True):
            row.update(b_id=row.pop("group_id"), status=status, updated_at=now)
        statement = (
            update(Group.__table__)
            .where(Group.__table__.c.id == bindparam("b_id"))
            .values({name: bindparam(name) for name in [*GROUP_FIELDS, "status", "updated_at"]})
        )
        writes += _execute(connection, statement, rows)

    audits = [
        {
            "entity": "group",
            "entity_key": k,
            "action": a,
            "field": None,
            "old_value": None,
            "new_value": None,
            "reason": r,
        }
        for k, a, r in zip(*_lists(key, groups["action"], groups["reason"]), strict=True)
    ]
    _audit(connection, est, run_id, now, audits)
    return writes


def _apply_users(connection: Connection, est: str, plan: Plan, run_id: str, now: datetime) -> int:
    users = plan.users[~plan.users["held"].astype(bool)]
    if users.empty:
        return 0
    key = "user:" + users["person_kind"] + ":" + users["mis_id"]
    creates = users[users["action"].isin(["create", "link"])]  # link: an existing account joins the MIS
    rows = _records(creates, ["person_kind", "mis_id", "username", *USER_FIELDS])
    for row in rows:
        row.update(establishment_id=est, status="active", created_at=now, updated_at=now)
    writes = _execute(connection, insert(User), rows)

    changed = users[users["action"].isin(["update", "restore"])]
    if len(changed):
        rows = _records(changed, ["user_id", *USER_FIELDS])
        for row in rows:
            row.update(b_id=row.pop("user_id"), status="active", suspended_at=None, updated_at=now)
        statement = (
            update(User.__table__)
            .where(User.__table__.c.id == bindparam("b_id"))
            .values({n: bindparam(n) for n in [*USER_FIELDS, "status", "suspended_at", "updated_at"]})
        )
        writes += _execute(connection, statement, rows)

    suspends = users[users["action"] == "suspend"]
    if len(suspends):
        # Suspension time is the MIS snapshot's, so the grace period runs on the school's calendar.
        suspended_at = plan.snapshot_at.to_pydatetime()
        rows = [{"b_id": int(i)} for i in suspends["user_id"]]
        statement = (
            update(User.__table__)
            .where(User.__table__.c.id == bindparam("b_id"))
            .values(status="suspended", suspended_at=suspended_at, updated_at=now)
        )
        writes += _execute(connection, statement, rows)

    deletes = users[users["action"] == "delete"]
    if len(deletes):
        # Data minimisation: personal fields go; the row and its username stay, so the name is never
        # reissued and the person gets it back if they return.
        rows = [{"b_id": int(i)} for i in deletes["user_id"]]
        cleared = dict.fromkeys(["first_name", "last_name", "display_name", "email", "year_group"])
        statement = (
            update(User.__table__)
            .where(User.__table__.c.id == bindparam("b_id"))
            .values(status="deleted", updated_at=now, **cleared)
        )
        writes += _execute(connection, statement, rows)

    audits = [
        {
            "entity": "user",
            "entity_key": k,
            "action": a,
            "field": "username",
            "old_value": None,
            "new_value": u,
            "reason": r,
        }
        for k, a, u, r in zip(
            *_lists(key[creates.index], creates["action"], creates["username"], creates["reason"]),
            strict=True,
        )
    ]
    audits += _field_audits(
        users[users["action"] == "update"], USER_FIELDS, "user", key[users["action"] == "update"]
    )
    for action, old, new in (
        ("restore", "suspended", "active"),
        ("suspend", "active", "suspended"),
        ("delete", "suspended", "deleted"),
    ):
        selected = users["action"] == action
        audits += [
            {
                "entity": "user",
                "entity_key": k,
                "action": action,
                "field": "status",
                "old_value": "deleted" if action == "restore" and "deleted" in r else old,
                "new_value": new,
                "reason": r,
            }
            for k, r in zip(*_lists(key[selected], users.loc[selected, "reason"]), strict=True)
        ]
    _audit(connection, est, run_id, now, audits)
    return writes


def _apply_memberships(connection: Connection, est: str, plan: Plan, run_id: str, now: datetime) -> int:
    memberships = _not_held(plan.memberships)
    if memberships.empty:
        return 0
    group_ids = query_frame(
        connection,
        select(Group.id, Group.mis_id, Group.academic_year).where(Group.establishment_id == est),
        ["group_id", "group_mis_id", "academic_year"],
    )
    users = user_ids(connection, est).rename(columns={"mis_id": "person_mis_id"})
    resolved = memberships.merge(group_ids, on=["group_mis_id", "academic_year"]).merge(
        users, on=["person_kind", "person_mis_id"]
    )
    if len(resolved) != len(memberships):
        raise RuntimeError(
            f"{len(memberships) - len(resolved)} membership change(s) refer to groups or users "
            "missing from the directory"
        )
    removes = resolved[resolved["action"] == "remove"]
    writes = _execute(
        connection,
        delete(Membership.__table__).where(
            and_(
                Membership.__table__.c.group_id == bindparam("b_group"),
                Membership.__table__.c.user_id == bindparam("b_user"),
                Membership.__table__.c.role == bindparam("b_role"),
            )
        ),
        [
            {"b_group": int(g), "b_user": int(u), "b_role": r}
            for g, u, r in zip(*_lists(removes["group_id"], removes["user_id"], removes["role"]), strict=True)
        ],
    )
    adds = resolved[resolved["action"] == "add"]
    writes += _execute(
        connection,
        insert(Membership),
        [
            {"group_id": int(g), "user_id": int(u), "role": r}
            for g, u, r in zip(*_lists(adds["group_id"], adds["user_id"], adds["role"]), strict=True)
        ],
    )
    key = (
        "group:"
        + resolved["group_mis_id"]
        + "/"
        + resolved["academic_year"]
        + " user:"
        + resolved["person_kind"]
        + ":"
        + resolved["person_mis_id"]
    )
    _audit(
        connection,
        est,
        run_id,
        now,
        [
            {
                "entity": "membership",
                "entity_key": k,
                "action": a,
                "field": "role",
                "old_value": None,
                "new_value": r,
                "reason": why,
            }
            for k, a, r, why in zip(
                *_lists(key, resolved["action"], resolved["role"], resolved["reason"]), strict=True
            )
        ],
    )
    return writes
