"""The stored target state: what MIS Sync last applied to (or read back from) a target.

Every confirmed write is recorded here as soon as its batch answers, so a crash loses at most one
batch of records; re-sending those is harmless because "already exists" counts as success.
Portable bulk SQL (delete + insert by key in one transaction) works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, delete, insert, select, tuple_, update

from mis_sync.directory.schema import (
    TargetContainer,
    TargetMembership,
    TargetSyncState,
    TargetTeam,
    TargetUser,
    TargetWaitingUser,
)
from mis_sync.directory.state import query_frame

STORED_CONTAINER_COLUMNS = ["key", "remote_id", "attr_hash", "status"]
STORED_MEMBERSHIP_COLUMNS = ["container_key", "user_key", "role", "state"]
WAITING_COLUMNS = ["user_key", "reason", "directory_hash"]
_CHUNK = 400  # keys per IN (…) clause: far below SQLite's 32,766 bound parameters


@dataclass
class StoredState:
    containers: pd.DataFrame
    memberships: pd.DataFrame
    users: pd.DataFrame
    """user_key, remote_id"""
    last_drift_check_at: datetime | None = None
    teams: frozenset[str] = frozenset()
    """Keys of the containers a team has been made from (Microsoft 365 class teams)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TargetStore:
    """Reads and writes one establishment's state for one target."""

    def __init__(self, engine: Engine, establishment_id: str, target: str) -> None:
        self.engine, self.establishment_id, self.target = engine, establishment_id, target

    def _where(self, table: Any) -> Any:
        return and_(table.establishment_id == self.establishment_id, table.target == self.target)

    # ---- reads ----------------------------------------------------------------------------------------
    def load(self) -> StoredState:
        with self.engine.connect() as conn:
            containers = query_frame(
                conn,
                select(*(getattr(TargetContainer, c) for c in STORED_CONTAINER_COLUMNS)).where(
                    self._where(TargetContainer)
                ),
                STORED_CONTAINER_COLUMNS,
            )
            memberships = query_frame(
                conn,
                select(*(getattr(TargetMembership, c) for c in STORED_MEMBERSHIP_COLUMNS)).where(
                    self._where(TargetMembership)
                ),
                STORED_MEMBERSHIP_COLUMNS,
            )
            users = query_frame(
                conn,
                select(TargetUser.user_key, TargetUser.remote_id).where(self._where(TargetUser)),
                ["user_key", "remote_id"],
            )
            row = conn.execute(
                select(TargetSyncState.last_drift_check_at).where(self._where(TargetSyncState))
            ).first()
            teams = conn.execute(select(TargetTeam.container_key).where(self._where(TargetTeam))).scalars()
            team_keys = frozenset(teams)
        checked = row[0] if row else None
        if checked is not None and checked.tzinfo is None:
            checked = checked.replace(tzinfo=UTC)
        return StoredState(containers, memberships, users, checked, team_keys)

    # ---- writes ---------------------------------------------------------------------------------------
    def load_user_hashes(self) -> pd.DataFrame:
        """user_key, remote_id, attr_hash (what provisioning last set; None if only looked up)."""
        with self.engine.connect() as conn:
            return query_frame(
                conn,
                select(TargetUser.user_key, TargetUser.remote_id, TargetUser.attr_hash).where(
                    self._where(TargetUser)
                ),
                ["user_key", "remote_id", "attr_hash"],
            )

    def save_users(self, resolved: dict[str, str], hashes: dict[str, str | None] | None = None) -> None:
        """Record principal name → remote id (and, from provisioning, the account fields' hash)."""
        if not resolved:
            return
        keys = list(resolved)
        now = _now()
        hashes = hashes or {}
        with self.engine.begin() as conn:
            for part in _chunks(keys):
                conn.execute(delete(TargetUser).where(self._where(TargetUser), TargetUser.user_key.in_(part)))
            rows = [
                self._row(user_key=k, remote_id=resolved[k], attr_hash=hashes.get(k), resolved_at=now)
                for k in keys
            ]
            conn.execute(insert(TargetUser), rows)

    def forget_users(self, keys: list[str]) -> None:
        """Users the target no longer has (an add answered 404 and a new look-up found nobody): the
        next run looks them up again instead of sending their old id."""
        if not keys:
            return
        with self.engine.begin() as conn:
            for part in _chunks(keys):
                conn.execute(delete(TargetUser).where(self._where(TargetUser), TargetUser.user_key.in_(part)))

    def load_waiting(self) -> pd.DataFrame:
        """user_key, reason (unresolved | suspended), directory_hash of the users the target cannot
        take yet."""
        with self.engine.connect() as conn:
            statement = select(*(getattr(TargetWaitingUser, c) for c in WAITING_COLUMNS)).where(
                self._where(TargetWaitingUser)
            )
            return query_frame(conn, statement, WAITING_COLUMNS)

    def save_waiting(self, reason: str, users: dict[str, str | None]) -> None:
        """Record users (principal name → the directory's hash of them) as waiting for ``reason``."""
        self.clear_waiting(list(users))
        if users:
            now = _now()
            rows = [
                self._row(user_key=key, reason=reason, directory_hash=mark, since=now)
                for key, mark in users.items()
            ]
            with self.engine.begin() as conn:
                conn.execute(insert(TargetWaitingUser), rows)

    def clear_waiting(self, user_keys: list[str]) -> None:
        if not user_keys:
            return
        with self.engine.begin() as conn:
            for part in _chunks(user_keys):
                conn.execute(
                    delete(TargetWaitingUser).where(
                        self._where(TargetWaitingUser), TargetWaitingUser.user_key.in_(part)
                    )
                )

    def save_containers(self, rows: list[dict[str, Any]]) -> None:
        """Upsert containers: each row has key, remote_id, attr_hash, status."""
        if not rows:
            return
        now = _now()
        with self.engine.begin() as conn:
            for part in _chunks([r["key"] for r in rows]):
                conn.execute(
                    delete(TargetContainer).where(self._where(TargetContainer), TargetContainer.key.in_(part))
                )
            conn.execute(insert(TargetContainer), [self._row(**r, updated_at=now) for r in rows])

    def save_memberships(
        self, present: list[tuple[str, str, str]], absent: list[tuple[str, str, str]]
    ) -> None:
        """Record confirmed adds (``present``) and removals (``absent``) of (container, user, role)."""
        if not present and not absent:
            return
        key = tuple_(TargetMembership.container_key, TargetMembership.user_key, TargetMembership.role)
        with self.engine.begin() as conn:
            for part in _chunks(list(present) + list(absent)):
                conn.execute(delete(TargetMembership).where(self._where(TargetMembership), key.in_(part)))
            if present:
                rows = [
                    self._row(container_key=c, user_key=u, role=r, state="present") for c, u, r in present
                ]
                conn.execute(insert(TargetMembership), rows)

    def save_teams(self, keys: list[str]) -> None:
        """Record the containers whose team the target accepted (or already had)."""
        self._replace_teams(keys, insert_them=True)

    def forget_teams(self, keys: list[str]) -> None:
        """Teams found missing by the drift check: forget them, so this run asks for them again."""
        self._replace_teams(keys, insert_them=False)

    def _replace_teams(self, keys: list[str], *, insert_them: bool) -> None:
        if not keys:
            return
        with self.engine.begin() as conn:
            for part in _chunks(keys):
                conn.execute(
                    delete(TargetTeam).where(self._where(TargetTeam), TargetTeam.container_key.in_(part))
                )
            if insert_them:
                now = _now()
                conn.execute(insert(TargetTeam), [self._row(container_key=k, requested_at=now) for k in keys])

    def forget_containers(self, keys: list[str]) -> None:
        """A container deleted in the target by hand: forget it (and its team), so the next run makes it
        again."""
        if not keys:
            return
        with self.engine.begin() as conn:
            for part in _chunks(keys):
                conn.execute(
                    delete(TargetTeam).where(self._where(TargetTeam), TargetTeam.container_key.in_(part))
                )
                conn.execute(
                    delete(TargetMembership).where(
                        self._where(TargetMembership), TargetMembership.container_key.in_(part)
                    )
                )
                conn.execute(
                    delete(TargetContainer).where(self._where(TargetContainer), TargetContainer.key.in_(part))
                )

    def replace_memberships(self, container_keys: list[str], rows: pd.DataFrame) -> None:
        """After a drift check: the containers' stored memberships become ``rows`` (with their state)."""
        with self.engine.begin() as conn:
            for part in _chunks(container_keys):
                conn.execute(
                    delete(TargetMembership).where(
                        self._where(TargetMembership), TargetMembership.container_key.in_(part)
                    )
                )
            records = [self._row(**r) for r in rows[STORED_MEMBERSHIP_COLUMNS].to_dict("records")]
            if records:
                conn.execute(insert(TargetMembership), records)

    def record_run(self, run_id: str, summary: dict[str, Any], *, drift_checked: bool) -> None:
        values: dict[str, Any] = {"last_run_id": run_id, "last_summary": json.dumps(summary, sort_keys=True)}
        if drift_checked:
            values["last_drift_check_at"] = _now()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(TargetSyncState).where(self._where(TargetSyncState)).values(**values)
            ).rowcount
            if not done:
                conn.execute(insert(TargetSyncState), [self._row(**values)])

    def _row(self, **values: Any) -> dict[str, Any]:
        return {"establishment_id": self.establishment_id, "target": self.target, **values}
