"""Retention inside the directory database: old run reports, fixed findings, leavers' audit values.

Audit entries are never deleted (they are the school's record of what was done to whose account and
why); once a leaver's account has been deleted (after ``accounts.leaver_grace_days``) and a further
``audit_pseudonymise_after_days`` have passed, the personal *values* in their entries (names, email,
year group) are replaced by ``PSEUDONYMISED``: each entry then names the person only by MIS id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from mis_sync.directory.history import user_key
from mis_sync.directory.schema import AuditEntry, SyncRun, SyncState, User
from mis_sync.privacy.settings import RetentionSettings
from mis_sync.quality.schema import QualityFinding
from mis_sync.storage import safe_segment

PSEUDONYMISED = "[pseudonymised]"
PERSONAL_AUDIT_FIELDS = ("first_name", "last_name", "display_name", "email", "year_group")
"""Audit fields whose values are personal; usernames stay (they stay reserved on the account row)."""
_CHUNK = 400


def run_times(engine: Engine, establishment_id: str) -> tuple[dict[str, datetime], str | None]:
    """Run folder name → when its report was recorded, and the last successful run's folder name."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(SyncRun.run_id, SyncRun.finished_at).where(SyncRun.establishment_id == establishment_id)
        ).all()
        last = connection.execute(
            select(SyncState.last_run_id).where(SyncState.establishment_id == establishment_id)
        ).scalar()
    times = {safe_segment(run_id): _aware(at) for run_id, at in rows if at is not None}
    return times, safe_segment(last) if last else None


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def pseudonymise_audit_values(connection: Connection, establishment_id: str, keys: Iterable[str]) -> int:
    """Replace personal old/new values in these users' audit entries; returns the entries changed."""
    changed = 0
    keys = list(keys)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        for column in (AuditEntry.old_value, AuditEntry.new_value):
            result = connection.execute(
                update(AuditEntry)
                .where(
                    AuditEntry.establishment_id == establishment_id,
                    AuditEntry.entity_key.in_(chunk),
                    AuditEntry.field.in_(PERSONAL_AUDIT_FIELDS),
                    column.is_not(None),
                    column != PSEUDONYMISED,
                )
                .values({column.key: PSEUDONYMISED})
            )
            changed += int(result.rowcount or 0)
    return changed


def directory_retention(
    engine: Engine, establishment_id: str, retention: RetentionSettings, now: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Apply the directory's retention in one transaction; returns counts (what would go on a dry run)."""
    reports_before = now - timedelta(days=retention.reports_days)
    findings_before = now - timedelta(days=retention.findings_history_days)
    deleted_before = now - timedelta(days=retention.audit_pseudonymise_after_days)
    with engine.begin() as connection:
        last = connection.execute(
            select(SyncState.last_run_id).where(SyncState.establishment_id == establishment_id)
        ).scalar()
        old_reports = and_(
            SyncRun.establishment_id == establishment_id,
            SyncRun.finished_at < reports_before,
            SyncRun.run_id != (last or ""),
        )
        fixed = and_(
            QualityFinding.establishment_id == establishment_id,
            QualityFinding.fixed_at.is_not(None),
            QualityFinding.fixed_at < findings_before,
        )
        leavers = [
            user_key(kind, mis_id)
            for kind, mis_id in connection.execute(
                select(User.person_kind, User.mis_id).where(
                    User.establishment_id == establishment_id,
                    User.status == "deleted",
                    User.updated_at <= deleted_before,
                )
            ).all()
        ]
        counts = {
            "run_reports": _count(connection, SyncRun, old_reports),
            "fixed_findings": _count(connection, QualityFinding, fixed),
            "audit_values": _count_audit(connection, establishment_id, leavers),
        }
        if not dry_run:
            connection.execute(delete(SyncRun).where(old_reports))
            connection.execute(delete(QualityFinding).where(fixed))
            pseudonymise_audit_values(connection, establishment_id, leavers)
    return counts


def _count(connection: Connection, table: type, where: object) -> int:
    return int(connection.execute(select(func.count()).select_from(table).where(where)).scalar() or 0)


def _count_audit(connection: Connection, establishment_id: str, keys: list[str]) -> int:
    total = 0
    for start in range(0, len(keys), _CHUNK):
        total += _count(
            connection,
            AuditEntry,
            and_(
                AuditEntry.establishment_id == establishment_id,
                AuditEntry.entity_key.in_(keys[start : start + _CHUNK]),
                AuditEntry.field.in_(PERSONAL_AUDIT_FIELDS),
                or_(
                    and_(AuditEntry.old_value.is_not(None), AuditEntry.old_value != PSEUDONYMISED),
                    and_(AuditEntry.new_value.is_not(None), AuditEntry.new_value != PSEUDONYMISED),
                ),
            ),
        )
    return total
