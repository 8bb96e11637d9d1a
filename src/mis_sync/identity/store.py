"""Identity continuity in the directory: read fingerprints and decisions, apply re-keys (bulk SQL).

``apply_identity`` runs inside ``directory.apply.apply_plan``'s transaction, after the users are
written (new accounts need their ids) and before the memberships (which resolve people by MIS id, so
a re-keyed account must already carry its new one). Audit rows carry MIS ids and rule names only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from mis_sync.directory.schema import AuditEntry, User
from mis_sync.directory_state import DECISION_COLUMNS, IDENTITY_COLUMNS
from mis_sync.errors import DataError
from mis_sync.identity.schema import IDENTITY_DECISIONS, IdentityDecision, IdentityPending, UserIdentity

PERSON_KINDS = ("pupil", "staff")


def _frame(connection: Connection, statement: Any, columns: list[str]) -> pd.DataFrame:
    rows = [tuple(row) for row in connection.execute(statement).all()]
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        if column not in ("id", "decided_at"):
            frame[column] = frame[column].astype("string")
    return frame


def load_identities(connection: Connection, establishment_id: str) -> pd.DataFrame:
    query = (
        select(User.person_kind, User.mis_id, UserIdentity.rule, UserIdentity.fingerprint)
        .join(User, User.id == UserIdentity.user_id)
        .where(User.establishment_id == establishment_id)
    )
    return _frame(connection, query, IDENTITY_COLUMNS)


def load_identity_decisions(connection: Connection, establishment_id: str) -> pd.DataFrame:
    d = IdentityDecision
    query = select(d.id, d.person_kind, d.old_mis_id, d.new_mis_id, d.decision, d.decided_at).where(
        d.establishment_id == establishment_id
    )
    return _frame(connection, query, DECISION_COLUMNS)


class IdentityDecisionError(DataError):
    """An identity decision is incomplete or unknown (names the fields, never values)."""


def record_identity_decision(
    engine: Engine,
    establishment_id: str,
    decision: str,
    *,
    person_kind: str,
    old_mis_id: str,
    new_mis_id: str,
    decided_by: str,
    note: str | None = None,
    now: datetime | None = None,
) -> None:
    """Append an admin's decision about a (vanished account, new MIS record) pair; the next run uses it."""
    if decision not in IDENTITY_DECISIONS:
        raise IdentityDecisionError(f"unknown decision (expected one of {', '.join(IDENTITY_DECISIONS)})")
    if person_kind not in PERSON_KINDS:
        raise IdentityDecisionError(f"person_kind must be one of {', '.join(PERSON_KINDS)}")
    if not old_mis_id or not new_mis_id:
        raise IdentityDecisionError("a decision needs both the account's old MIS id and the new MIS id")
    with engine.begin() as connection:
        connection.execute(
            insert(IdentityDecision).values(
                establishment_id=establishment_id,
                person_kind=person_kind,
                old_mis_id=old_mis_id,
                new_mis_id=new_mis_id,
                decision=decision,
                decided_by=decided_by,
                decided_at=now or datetime.now(UTC),
                note=note,
            )
        )


def pending_pairs(engine: Engine, establishment_id: str) -> pd.DataFrame:
    """The last applied run's ambiguous pairs with the account's username (for the admin's terminal)."""
    p = IdentityPending
    query = (
        select(p.person_kind, p.old_mis_id, User.username, p.new_mis_id, p.rule, p.reason, p.run_id)
        .join(
            User,
            (User.establishment_id == p.establishment_id)
            & (User.person_kind == p.person_kind)
            & (User.mis_id == p.old_mis_id),
            isouter=True,
        )
        .where(p.establishment_id == establishment_id)
        .order_by(p.person_kind, p.old_mis_id, p.new_mis_id)
    )
    columns = ["person_kind", "old_mis_id", "username", "new_mis_id", "rule", "reason", "run_id"]
    with engine.connect() as connection:
        return _frame(connection, query, columns)


def _execute(connection: Connection, statement: Any, rows: list[dict[str, Any]]) -> int:
    for start in range(0, len(rows), 2000):
        connection.execute(statement, rows[start : start + 2000])
    return len(rows)


def _user_ids(connection: Connection, establishment_id: str) -> dict[tuple[str, str], int]:
    rows = connection.execute(
        select(User.person_kind, User.mis_id, User.id).where(User.establishment_id == establishment_id)
    ).all()
    return {(kind, mis_id): int(user_id) for kind, mis_id, user_id in rows}


def _apply_rekeys(
    connection: Connection, est: str, users: pd.DataFrame, fields: list[str], run_id: str, now: datetime
) -> int:
    rekeys = users[users["action"] == "rekey"]
    if rekeys.empty:
        return 0
    values = (
        rekeys[["user_id", "mis_id", *fields]]
        .astype(object)
        .where(rekeys[["user_id", "mis_id", *fields]].notna(), None)
    )
    rows = []
    for record in values.to_dict(orient="records"):
        record["b_id"] = int(record.pop("user_id"))
        rows.append({**record, "status": "active", "suspended_at": None, "updated_at": now})
    table = User.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({n: bindparam(n) for n in ["mis_id", *fields, "status", "suspended_at", "updated_at"]})
    )
    writes = _execute(connection, statement, rows)
    audits = []
    for kind, new_id, previous, reason in zip(
        rekeys["person_kind"], rekeys["mis_id"], rekeys["previous"], rekeys["reason"], strict=True
    ):
        before = json.loads(previous)
        key = f"user:{kind}:{new_id}"
        audits.append(
            {"entity_key": key, "action": "rekey", "field": "mis_id", "old_value": before["mis_id"],
             "new_value": str(new_id), "reason": reason}
        )  # fmt: skip
        if before.get("status") != "active":
            audits.append(
                {"entity_key": key, "action": "rekey", "field": "status", "old_value": before.get("status"),
                 "new_value": "active", "reason": reason}
            )  # fmt: skip
    for row in audits:
        row.update(establishment_id=est, run_id=run_id, at=now, entity="user")
    _execute(connection, insert(AuditEntry), audits)
    return writes


def _apply_fingerprints(connection: Connection, est: str, prints: pd.DataFrame, deleted: list[int]) -> None:
    """Rewrite the fingerprint sets that changed; a deleted account's go with its personal data."""
    table = UserIdentity.__table__
    ids = _user_ids(connection, est) if not prints.empty else {}
    people = {ids[k] for k in zip(prints["person_kind"], prints["mis_id"], strict=True) if k in ids}
    gone = sorted(people | set(deleted))
    if gone:
        _execute(
            connection, delete(table).where(table.c.user_id == bindparam("b_id")), [{"b_id": i} for i in gone]
        )
    rows = [
        {"user_id": ids[(kind, mis_id)], "rule": rule, "fingerprint": value}
        for kind, mis_id, rule, value in zip(
            prints["person_kind"], prints["mis_id"], prints["rule"], prints["fingerprint"], strict=True
        )
        if (kind, mis_id) in ids
    ]
    _execute(connection, insert(table), rows)


def _replace_pending(
    connection: Connection, est: str, pending: pd.DataFrame, run_id: str, now: datetime
) -> None:
    table = IdentityPending.__table__
    connection.execute(delete(table).where(table.c.establishment_id == est))
    rows = [
        {**record, "establishment_id": est, "run_id": run_id, "updated_at": now}
        for record in pending[["person_kind", "old_mis_id", "new_mis_id", "rule", "reason"]]
        .astype(str)
        .to_dict(orient="records")
    ]
    _execute(connection, insert(table), rows)


def apply_identity(
    connection: Connection,
    est: str,
    users: pd.DataFrame,
    fields: list[str],
    fingerprints: pd.DataFrame | None,
    pending: pd.DataFrame | None,
    run_id: str,
    now: datetime,
) -> int:
    """Re-keys (counted as writes, audit-logged), then fingerprints and the pending pairs (bookkeeping:
    not counted, not audited). ``users``: the plan's user rows that are not held."""
    writes = _apply_rekeys(connection, est, users, fields, run_id, now)
    deleted = [int(i) for i in users.loc[users["action"] == "delete", "user_id"]]
    _apply_fingerprints(
        connection,
        est,
        fingerprints if fingerprints is not None else pd.DataFrame(columns=IDENTITY_COLUMNS),
        deleted,
    )
    if pending is not None:
        _replace_pending(connection, est, pending, run_id, now)
    return writes
