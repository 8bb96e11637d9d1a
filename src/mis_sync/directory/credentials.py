"""Initial passwords at rest: ``directory_credentials``, Fernet-encrypted, and the audited export.

One row per user that MIS Sync gave an initial password. The ciphertext is a Fernet token (see
``mis_sync.passwords``); the key is never in the database. Exporting ("Download Passwords") writes a
CSV for the school, bumps each row's export counter and appends one ``directory_audit_log`` row
naming the actor and the count — never a password.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from mis_sync.csv_cells import safe_cell
from mis_sync.directory.schema import AuditEntry, Base, User
from mis_sync.errors import SetupError
from mis_sync.passwords import decrypt_password, encrypt_password, fernet

log = logging.getLogger(__name__)

CHUNK = 500
"""Ids per IN (...) list and rows per executemany."""
EXPORT_COLUMNS = ["username", "display_name", "role", "year_group", "initial_password"]
ROLE_ORDER = {"pupil": 0, "teaching_staff": 1, "non_teaching_staff": 2, "parent": 3}


class Credential(Base):
    """A user's initial password, encrypted. Deleted with the user."""

    __tablename__ = "directory_credentials"
    __table_args__ = (Index("ix_credentials_created_run", "created_run"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("directory_users.id", ondelete="CASCADE", name="fk_credentials_user"), primary_key=True
    )
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_run: Mapped[str] = mapped_column(String(250))
    exported_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def _chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def store_initial_passwords(
    connection: Connection,
    user_ids: Sequence[int],
    passwords: Sequence[str],
    keys: Sequence[bytes],
    run_id: str,
    now: datetime,
) -> int:
    """Encrypt and insert initial passwords in bulk, inside the caller's transaction.

    Idempotent: a user who already has a stored password keeps it (a retried apply never changes a
    password the school may already have handed out). Returns how many were stored.
    """
    if len(user_ids) != len(passwords):
        raise ValueError(f"{len(user_ids)} user ids but {len(passwords)} passwords")
    box = fernet(keys)
    wanted: dict[int, str] = {}
    for user_id, password in zip(user_ids, passwords, strict=True):
        wanted.setdefault(int(user_id), password)
    existing: set[int] = set()
    for chunk in _chunks(list(wanted)):
        existing.update(
            connection.execute(select(Credential.user_id).where(Credential.user_id.in_(chunk))).scalars()
        )
    rows = [
        {
            "user_id": user_id,
            "ciphertext": encrypt_password(password, box),
            "created_at": now,
            "created_run": run_id,
            "exported_count": 0,
        }
        for user_id, password in wanted.items()
        if user_id not in existing
    ]
    for chunk in _chunks(rows):
        connection.execute(insert(Credential), list(chunk))
    return len(rows)


def _year_key(value: str | None) -> tuple[int, int, str]:
    if value is None:
        return (2, 0, "")
    if value.isdigit():
        return (1, int(value), value)
    return (0, 0, value)  # N1, N2, R before Year 1


def _actor(actor: str) -> str:
    cleaned = re.sub(r"[\x00-\x1f\x7f]", " ", actor).strip()
    if not cleaned:
        raise ValueError("actor must name who exports the passwords")
    return cleaned[:100]


def export_passwords(
    engine: Engine,
    establishment_id: str,
    keys: Sequence[bytes],
    out_path: str | Path,
    actor: str,
    run_id: str | None = None,
    *,
    now: datetime | None = None,
    user_ids: Sequence[int] | None = None,
) -> int:
    """Write the initial passwords of the establishment's active users to a CSV ("Download Passwords").

    Columns: username, display_name, role, year_group, initial_password; sorted by role, year group
    and username. ``run_id`` limits the export to passwords created by that run; ``user_ids`` to those
    users (the console's filters: new since the last download, role, year, registration group). The
    file is created readable by its owner only and appears complete or not at all. One audit row per
    export (who, how many; never a password); each exported credential's ``exported_count`` goes up by
    one. A wrong key raises ``CredentialKeyError`` before anything is written. Returns the number of rows.
    """
    who = _actor(actor)
    now = now or datetime.now(UTC)
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise SetupError(f"cannot write the password file: folder {str(out_path.parent)!r} does not exist")
    box = fernet(keys)
    statement = (
        select(
            Credential.user_id,
            Credential.ciphertext,
            User.username,
            User.display_name,
            User.role,
            User.year_group,
        )
        .join(User, User.id == Credential.user_id)
        .where(User.establishment_id == establishment_id, User.status == "active")
    )
    if run_id is not None:
        statement = statement.where(Credential.created_run == run_id)
    selected = None if user_ids is None else sorted({int(i) for i in user_ids})

    tmp_name: str | None = None
    try:
        with engine.begin() as connection:
            if selected is None:
                rows = connection.execute(statement).all()
            else:
                rows = [
                    row
                    for chunk in _chunks(selected)
                    for row in connection.execute(statement.where(Credential.user_id.in_(chunk))).all()
                ]
            rows.sort(key=lambda r: (ROLE_ORDER.get(r.role, 9), _year_key(r.year_group), r.username))
            records = [
                [r.username, r.display_name, r.role, r.year_group, decrypt_password(r.ciphertext, box)]
                for r in rows
            ]
            fd, tmp_name = tempfile.mkstemp(prefix=".passwords-", suffix=".csv", dir=out_path.parent)
            os.chmod(tmp_name, 0o600)
            # utf-8-sig: Excel shows Zoë, not ZoÃ«.
            with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(EXPORT_COLUMNS)
                for username, display, role, year, password in records:
                    writer.writerow(
                        [safe_cell(username), safe_cell(display), safe_cell(role), safe_cell(year), password]
                    )
            records.clear()
            ids = [r.user_id for r in rows]
            bump = (
                update(Credential)
                .where(Credential.user_id == bindparam("uid"))
                .values(exported_count=Credential.exported_count + 1, last_exported_at=now)
            )
            for chunk in _chunks(ids):
                connection.execute(bump, [{"uid": uid} for uid in chunk])
            scope = f"created in run {run_id}" if run_id is not None else "all active users"
            if selected is not None:
                scope = f"{len(selected)} selected user(s)" + (f", run {run_id}" if run_id else "")
            connection.execute(
                insert(AuditEntry).values(
                    establishment_id=establishment_id,
                    run_id=run_id if run_id is not None else "manual",
                    at=now,
                    entity="credentials",
                    entity_key=f"run:{run_id}"[:200] if run_id is not None else "all",
                    action="export",
                    field=None,
                    old_value=None,
                    new_value=str(len(ids)),
                    reason=f"{len(ids)} initial password(s) exported by {who} ({scope})"[:200],
                )
            )
        os.replace(tmp_name, out_path)
        tmp_name = None
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    log.info("exported %d initial password(s) of establishment %s", len(ids), establishment_id)
    return len(ids)
