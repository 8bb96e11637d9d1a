"""Concurrent runs against one directory: PostgreSQL advisory locks and insert-if-absent.

Why: every school's DAG used to start at 01:30, so a new trust's first night ran many schools (and a
retried or hand-triggered run of the same school) at once against an empty database. Three places read
"is it there?" and then inserted: the Alembic migration, the first ``directory_sync_state`` row and the
findings history. Two runs both saw "absent" and the second crashed on a duplicate. Here:

- ``advisory_xact_lock``: a PostgreSQL transaction-level advisory lock on a stable key, so the
  read-then-write sections take turns (released at commit or rollback; nothing to clean up after a
  crash). SQLite already serialises writers; other dialects get no lock.
- ``insert_if_absent``: ``INSERT … ON CONFLICT DO NOTHING`` (PostgreSQL, SQLite), so the loser of a race
  keeps the winner's row instead of failing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert, text
from sqlalchemy.sql.dml import Insert

MIGRATION_LOCK = "misync:directory:migrations"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (the same in every process and Python version)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def advisory_xact_lock(connection: Connection, name: str) -> None:
    """Wait for, then hold until the transaction ends, the PostgreSQL advisory lock named ``name``."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


def _insert_ignoring(table: Table, conflict_columns: Sequence[str], dialect: str) -> Insert:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    return insert(table)


def insert_if_absent(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict_columns: Sequence[str],
) -> None:
    """Insert ``rows``, skipping any whose ``conflict_columns`` already exist (one bulk statement)."""
    if rows:
        connection.execute(_insert_ignoring(table, conflict_columns, connection.dialect.name), list(rows))


__all__ = ["MIGRATION_LOCK", "advisory_xact_lock", "insert_if_absent", "lock_key"]
