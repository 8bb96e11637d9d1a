"""SQLAlchemy 2 models of the directory. Alembic migrations in ``migrations/`` create them.

Tables are prefixed ``directory_`` so the directory can share a database with other systems. Usernames
are unique per establishment and never deleted: a suspended user keeps its name, so it is never
reissued to someone else.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "directory_users"
    __table_args__ = (
        UniqueConstraint("establishment_id", "person_kind", "mis_id", name="uq_users_mis_link"),
        UniqueConstraint("establishment_id", "username", name="uq_users_username"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    person_kind: Mapped[str] = mapped_column(String(16))
    """pupil | staff | contact: which MIS entity ``mis_id`` belongs to."""
    mis_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(24))
    """pupil | teaching_staff | non_teaching_staff | parent"""
    username: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(400))
    email: Mapped[str | None] = mapped_column(String(320))
    year_group: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active | suspended"""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Group(Base):
    __tablename__ = "directory_groups"
    __table_args__ = (
        UniqueConstraint("establishment_id", "mis_id", "academic_year", name="uq_groups_mis_link"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    mis_id: Mapped[str] = mapped_column(String(64))
    academic_year: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(100))
    year_group: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active | archived (gone from the MIS; kept so its id and history stay)"""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Membership(Base):
    __tablename__ = "directory_memberships"
    __table_args__ = (Index("ix_memberships_user", "user_id"),)

    group_id: Mapped[int] = mapped_column(ForeignKey("directory_groups.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("directory_users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    """member | teacher"""
    added_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=func.now())
    """Set by the database when the row is inserted (OneRoster's enrollment ``dateLastModified``)."""


class AuditEntry(Base):
    """Append-only: every change the sync makes, old → new, with the run and the reason."""

    __tablename__ = "directory_audit_log"
    __table_args__ = (Index("ix_audit_establishment_run", "establishment_id", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(250))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entity: Mapped[str] = mapped_column(String(16))
    """user | group | membership"""
    entity_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(200))


class SyncState(Base):
    """Per establishment: what was applied last, so runs never go backwards and reports know when."""

    __tablename__ = "directory_sync_state"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped by every apply that changes anything; a plan made at another revision is stale."""
    last_run_id: Mapped[str | None] = mapped_column(String(250))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_snapshot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data_hash: Mapped[str | None] = mapped_column(String(64))
    data_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Snapshot time at which the MIS data last differed from the run before ("last sync from MIS")."""
    last_counts: Mapped[str | None] = mapped_column(Text)
    """JSON: on-roll pupils, staff, … of the last applied extract (for the short-extract breaker)."""


class SyncRun(Base):
    """One row per DAG run that reached the report: what it did, in counts (no personal data)."""

    __tablename__ = "directory_sync_runs"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(250), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    """applied | dry_run | skipped"""
    snapshot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[str] = mapped_column(Text)
    """JSON report: counts per role and action, findings, held changes, timings."""


class TargetContainer(Base):
    """A class / group / course MIS Sync made (or adopted) in a target: its remote id and last state."""

    __tablename__ = "directory_target_containers"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    """microsoft365 | google_classroom"""
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    """The idempotency key (the class's externalId, the course's alias)."""
    remote_id: Mapped[str] = mapped_column(String(128))
    attr_hash: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    """active | archived"""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TargetMembership(Base):
    """A membership as last applied to (or read back from) a target."""

    __tablename__ = "directory_target_memberships"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    container_key: Mapped[str] = mapped_column(String(250), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    """member | owner"""
    state: Mapped[str] = mapped_column(String(16))
    """present (in the target) | adopted (a manual addition kept) | excluded (a manual removal kept)"""


class TargetUser(Base):
    """A principal name resolved to its id in a target (cached: ids never change)."""

    __tablename__ = "directory_target_users"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(128))
    attr_hash: Mapped[str | None] = mapped_column(String(32))
    """Hash of the account fields provisioning last set (None when the user was only looked up)."""
    resolved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TargetWaitingUser(Base):
    """A user the target cannot take yet: ``unresolved`` (no profile / account found) or ``suspended``
    (the account is disabled). Their memberships wait instead of failing every night."""

    __tablename__ = "directory_target_waiting_users"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    """unresolved | suspended"""
    directory_hash: Mapped[str | None] = mapped_column(String(32))
    """What the directory said about the user then: a change means "try again"."""
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TargetTeam(Base):
    """A team MIS Sync asked the target to make from one of its classes (made once, never deleted).
    A team's id is its class's group id, so only the class's key is kept."""

    __tablename__ = "directory_target_teams"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    container_key: Mapped[str] = mapped_column(String(250), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TargetSyncState(Base):
    """Per establishment and target: when live membership was last read back (the drift check)."""

    __tablename__ = "directory_target_sync_state"

    establishment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_drift_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_id: Mapped[str | None] = mapped_column(String(250))
    last_summary: Mapped[str | None] = mapped_column(Text)


class OneRosterApp(Base):
    """An app registered to read the OneRoster API: its schools, scopes and field groups.

    The secret is stored only as a scrypt hash; it is shown once, when the app is added.
    """

    __tablename__ = "directory_oneroster_apps"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    schools: Mapped[str] = mapped_column(Text)
    """JSON list of establishment ids, or ``["*"]``: every school of the trust (present and future)."""
    scopes: Mapped[str] = mapped_column(Text)
    """Space-separated OneRoster scopes (short names, e.g. ``roster-core.readonly``)."""
    field_groups: Mapped[str] = mapped_column(Text)
    """Comma-separated field groups the app may read (``mis_sync.oneroster.apps.FIELD_GROUPS``)."""
    secret_hash: Mapped[str] = mapped_column(String(256))
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
