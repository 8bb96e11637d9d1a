"""Directory tables for identity: imported existing users (Link mode) and reserved usernames.

- ``directory_existing_users``: the latest import of the school's existing accounts (AD, Google, a
  spreadsheet), replaced as a whole by each import, read by every Link-mode run.
- ``directory_reserved_usernames``: names that must never be issued again although no account holds
  them now, e.g. the old name after an admin renamed a user.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from sqlalchemy import Date, DateTime, Engine, Integer, String, delete, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from mis_sync.directory.schema import Base

EXISTING_COLUMNS = ["username", "first_name", "last_name", "role", "email", "mis_id", "upn", "date_of_birth"]


class ExistingUser(Base):
    __tablename__ = "directory_existing_users"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(320), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(24))
    email: Mapped[str | None] = mapped_column(String(320))
    mis_id: Mapped[str | None] = mapped_column(String(64))
    upn: Mapped[str | None] = mapped_column(String(13))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    line: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReservedUsername(Base):
    __tablename__ = "directory_reserved_usernames"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(320), primary_key=True)
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(200))


def save_existing_users(engine: Engine, establishment_id: str, users: pd.DataFrame, now: datetime) -> int:
    """Replace the establishment's imported users in one transaction (an import is a whole snapshot)."""
    rows = users[[*EXISTING_COLUMNS, "line"]].astype(object).where(users[[*EXISTING_COLUMNS, "line"]].notna())
    records = []
    for record in rows.to_dict(orient="records"):
        record = {k: (None if pd.isna(v) else v) for k, v in record.items()}
        if record["date_of_birth"] is not None:
            record["date_of_birth"] = pd.Timestamp(record["date_of_birth"]).date()
        records.append({**record, "establishment_id": establishment_id, "imported_at": now})
    table = ExistingUser.__table__
    with engine.begin() as connection:
        connection.execute(delete(table).where(table.c.establishment_id == establishment_id))
        if records:
            connection.execute(insert(table), records)
    return len(records)


def load_existing_users(engine: Engine, establishment_id: str) -> pd.DataFrame:
    table = ExistingUser.__table__
    with engine.connect() as connection:
        rows = [
            tuple(row)
            for row in connection.execute(
                select(*(table.c[c] for c in [*EXISTING_COLUMNS, "line"]))
                .where(table.c.establishment_id == establishment_id)
                .order_by(table.c.line)
            ).all()
        ]
    frame = pd.DataFrame(rows, columns=[*EXISTING_COLUMNS, "line"])
    for column in EXISTING_COLUMNS:
        if column != "date_of_birth":
            frame[column] = frame[column].astype("string")
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"]).astype("datetime64[s]")
    frame["line"] = frame["line"].astype("int64")
    return frame


def reserved_usernames(connection, establishment_id: str) -> set[str]:  # type: ignore[no-untyped-def]
    table = ReservedUsername.__table__
    query = select(table.c.username).where(table.c.establishment_id == establishment_id)
    return set(connection.execute(query).scalars())


USERNAME_PATTERN = r"^[a-z0-9](?:[a-z0-9._'-]{0,62}[a-z0-9])?$"
"""Valid for Microsoft Entra, Google Workspace and AD alike (``uk-data-rules.md`` §9); no ``..``."""


def rename_user(
    engine: Engine, establishment_id: str, old: str, new: str, *, actor: str, reason: str, now: datetime
) -> None:
    """An admin's explicit rename (e.g. after a teacher's change of surname): the MIS never renames.

    The old name stays reserved forever; the change is audit-logged and bumps the directory revision,
    so a plan made before the rename is refused as stale.
    """
    import re

    from mis_sync.directory.schema import AuditEntry, SyncState, User
    from mis_sync.errors import SetupError

    if not re.fullmatch(USERNAME_PATTERN, new) or ".." in new:
        raise SetupError(f"{new!r} is not a valid username (a-z, 0-9 and . - _ ' inside; at most 64)")
    users, reserved = User.__table__, ReservedUsername.__table__
    with engine.begin() as connection:
        taken = set(
            connection.execute(
                select(users.c.username).where(users.c.establishment_id == establishment_id)
            ).scalars()
        ) | reserved_usernames(connection, establishment_id)
        if new in taken:
            raise SetupError(f"username {new!r} is taken or reserved in {establishment_id}")
        row = connection.execute(
            select(users.c.id, users.c.person_kind, users.c.mis_id).where(
                users.c.establishment_id == establishment_id, users.c.username == old
            )
        ).first()
        if row is None:
            raise SetupError(f"no user {old!r} in {establishment_id}")
        connection.execute(users.update().where(users.c.id == row.id).values(username=new, updated_at=now))
        connection.execute(
            insert(reserved).values(
                establishment_id=establishment_id, username=old, reserved_at=now, reason=f"renamed to {new}"
            )
        )
        connection.execute(
            insert(AuditEntry.__table__).values(
                establishment_id=establishment_id,
                run_id="manual",
                at=now,
                entity="user",
                entity_key=f"user:{row.person_kind}:{row.mis_id}",
                action="rename",
                field="username",
                old_value=old,
                new_value=new,
                reason=f"{reason} (by {actor})"[:200],
            )
        )
        state = SyncState.__table__
        connection.execute(
            state.update()
            .where(state.c.establishment_id == establishment_id)
            .values(revision=state.c.revision + 1)
        )
