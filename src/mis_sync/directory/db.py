"""Directory database: engines and Alembic migrations.

SQLite by default (a file beside the Airflow home), any SQLAlchemy URL in production — PostgreSQL
through an Airflow Connection. ``migrate`` is idempotent and safe to call at the start of every task.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from mis_sync.directory.concurrency import MIGRATION_LOCK, advisory_xact_lock

MIGRATIONS = Path(__file__).with_name("migrations")


def _private_sqlite_file(engine: Engine) -> None:
    """Create a SQLite directory file owner-only (0600) before SQLite does (it would use the umask);
    its WAL and shared-memory files copy the database file's mode. Tightens a file we own that others
    can read (e.g. the demo's, made before this check)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        if not path.parent.is_dir():
            return  # SQLite reports the missing folder itself
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        os.chmod(path, 0o600)


def make_engine(url: str) -> Engine:
    """An engine with the settings the directory relies on (foreign keys on SQLite, no echo)."""
    # hide_parameters: a failed INSERT must not print names or emails into the task log.
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        _private_sqlite_file(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the directory schema to the newest revision.

    On PostgreSQL the upgrade runs under an advisory lock (``concurrency.MIGRATION_LOCK``): schools'
    first runs start together, and two upgrades of an empty database would both create the tables.
    The second waits, then finds the schema at head and does nothing.
    """
    config = alembic_config()
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # "Context impl SQLiteImpl" on every task is noise
    try:
        with engine.begin() as connection:
            advisory_xact_lock(connection, MIGRATION_LOCK)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        alembic_log.setLevel(level)
