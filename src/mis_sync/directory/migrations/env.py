"""Alembic environment for the directory. Run through ``mis_sync.directory.db.migrate``.

The caller passes an open connection in ``config.attributes["connection"]``; the version table is
``directory_alembic_version`` so the directory can live in a database that already uses Alembic.
"""

from __future__ import annotations

from alembic import context

from mis_sync.directory import credentials as _credentials  # noqa: F401  (directory_credentials)
from mis_sync.directory import identity_store as _identity  # noqa: F401  (existing users, reserved names)
from mis_sync.directory.schema import Base
from mis_sync.identity import schema as _identity_schema  # noqa: F401  (fingerprints, decisions)
from mis_sync.linking import schema as _linking_schema  # noqa: F401  (link decisions and state)
from mis_sync.quality import schema as _quality_schema  # noqa: F401  (its table joins Base.metadata)

VERSION_TABLE = "directory_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through mis_sync.directory.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
