"""Read an establishment's directory into the DataFrames the planner compares against."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from mis_sync.directory.identity_store import reserved_usernames
from mis_sync.directory.schema import Group, Membership, SyncState, User
from mis_sync.directory_state import GROUP_FIELDS, USER_FIELDS, DirectoryState
from mis_sync.identity.store import load_identities, load_identity_decisions

NOT_TEXT = frozenset({"id", "user_id", "group_id", "suspended_at"})


def query_frame(connection: Connection, statement, columns: list[str]) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """A query's rows as a DataFrame; every column is text except ids and timestamps.

    Plain tuples, not SQLAlchemy ``Row``s: pandas probes every row with ``hasattr(row, "dtype")``,
    which a ``Row`` answers by raising and catching an exception (~10 µs a row; 0.3 s for a school).
    """
    rows = [tuple(row) for row in connection.execute(statement).all()]
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        if column not in NOT_TEXT:
            frame[column] = frame[column].astype("string")
    return frame


def user_ids(connection: Connection, establishment_id: str) -> pd.DataFrame:
    """user_id, person_kind, mis_id of every directory user of the establishment."""
    query = select(User.id, User.person_kind, User.mis_id).where(User.establishment_id == establishment_id)
    return query_frame(connection, query, ["user_id", "person_kind", "mis_id"])


def load_state(engine: Engine, establishment_id: str) -> DirectoryState:
    with engine.connect() as connection:
        return load_state_in(connection, establishment_id)


def load_state_in(connection: Connection, establishment_id: str) -> DirectoryState:
    user_columns = ["id", "person_kind", "mis_id", "username", "status", "suspended_at", *USER_FIELDS]
    users = query_frame(
        connection,
        select(*(getattr(User, c) for c in user_columns)).where(User.establishment_id == establishment_id),
        user_columns,
    )
    group_columns = ["id", "mis_id", "academic_year", "status", *GROUP_FIELDS]
    groups = query_frame(
        connection,
        select(*(getattr(Group, c) for c in group_columns)).where(Group.establishment_id == establishment_id),
        group_columns,
    )
    memberships = query_frame(
        connection,
        select(Group.mis_id, Group.academic_year, User.person_kind, User.mis_id, Membership.role)
        .join(Group, Group.id == Membership.group_id)
        .join(User, User.id == Membership.user_id)
        .where(Group.establishment_id == establishment_id),
        ["group_mis_id", "academic_year", "person_kind", "person_mis_id", "role"],
    )
    state_row = _state_row(connection, establishment_id)
    last_snapshot = None
    if state_row is not None and state_row.last_snapshot_at is not None:
        last_snapshot = _utc(state_row.last_snapshot_at)
    return DirectoryState(
        users=users,
        groups=groups,
        memberships=memberships,
        revision=state_row.revision if state_row else 0,
        last_snapshot_at=last_snapshot,
        all_usernames=set(users["username"].dropna()) | reserved_usernames(connection, establishment_id),
        identities=load_identities(connection, establishment_id),
        identity_decisions=load_identity_decisions(connection, establishment_id),
    )


def _state_row(connection: Connection, establishment_id: str) -> Any:
    table = SyncState.__table__
    query = select(table).where(table.c.establishment_id == establishment_id)
    return connection.execute(query).one_or_none()


def _utc(value) -> pd.Timestamp:  # type: ignore[no-untyped-def]
    """SQLite hands back naive datetimes; everything the directory stores is UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def sync_status(engine: Engine, establishment_id: str) -> dict[str, object] | None:
    """The stored per-establishment sync record, for reports (no personal data)."""
    with engine.connect() as connection:
        row = _state_row(connection, establishment_id)
    if row is None:
        return None
    return {
        "revision": row.revision,
        "last_run_id": row.last_run_id,
        "last_success_at": _utc(row.last_success_at).isoformat() if row.last_success_at else None,
        "last_snapshot_at": _utc(row.last_snapshot_at).isoformat() if row.last_snapshot_at else None,
        "data_changed_at": _utc(row.data_changed_at).isoformat() if row.data_changed_at else None,
        "last_counts": json.loads(row.last_counts) if row.last_counts else {},
    }
