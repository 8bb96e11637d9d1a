"""What the console shows, read from the directory through the package's own readers.

Sync state comes from ``directory.state.sync_status`` and reports from ``pipeline.latest_report`` (the
same records the CLI prints); this module only selects and shapes rows for pages. It never changes the
directory: actions go through ``directory.identity_store.rename_user`` and
``directory.credentials.export_passwords``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, and_, cast, exists, func, or_, select

from mis_sync.directory.credentials import Credential
from mis_sync.directory.history import person_history
from mis_sync.directory.schema import AuditEntry, Group, Membership, SyncRun, User
from mis_sync.directory.state import sync_status
from mis_sync.pipeline import latest_report

SEARCH_LIMIT = 200
"""Rows a search page shows; a narrower search finds the rest."""
STALE_AFTER = timedelta(hours=36)
"""A nightly sync older than this needs attention (one missed night plus slack)."""


@dataclass(frozen=True)
class Health:
    state: str
    """ok | needs attention | failing"""
    reason: str


def health(status: dict[str, Any] | None, report: dict[str, Any] | None, now: datetime) -> Health:
    """The at-a-glance state of one establishment, from its sync record and latest report."""
    if status is None or report is None:
        return Health("needs attention", "no run has reached the report yet")
    failed = sum(int(t.get("failed", 0)) for t in report.get("targets", {}).values())
    error_findings = int(report.get("findings", {}).get("error", 0))
    if report.get("outcome") == "skipped" and report.get("skipped_reason"):
        return Health("failing", f"last run skipped: {report['skipped_reason']}")
    if failed:
        return Health("failing", f"{failed} change(s) failed at a target in the last run")
    if report.get("held_reason") and report.get("users_held"):
        return Health("needs attention", f"{report['users_held']} change(s) wait for approval")
    last_success = status.get("last_success_at")
    if last_success is None:
        return Health("failing", "no successful run yet")
    if now - datetime.fromisoformat(str(last_success)) > STALE_AFTER:
        return Health("needs attention", f"no successful run since {str(last_success)[:16]}")
    if error_findings:
        return Health("needs attention", f"{error_findings} error finding(s) for the data manager")
    return Health("ok", "last run applied; nothing waits")


def accounts_per_role(engine: Engine, establishment_id: str) -> dict[str, dict[str, int]]:
    """{role: {status: count}} in one grouped query."""
    query = (
        select(User.role, User.status, func.count())
        .where(User.establishment_id == establishment_id)
        .group_by(User.role, User.status)
    )
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for role, status, count in connection.execute(query):
            counts.setdefault(role, {})[status] = int(count)
    return counts


def overview(engine: Engine, establishment_id: str, now: datetime | None = None) -> dict[str, Any]:
    """One dashboard row: sync record, latest report, account counts and health."""
    status = sync_status(engine, establishment_id)
    report = latest_report(engine, establishment_id)
    return {
        "status": status or {},
        "report": report or {},
        "accounts": accounts_per_role(engine, establishment_id),
        "health": health(status, report, now or datetime.now(UTC)),
    }


def run_history(engine: Engine, establishment_id: str, limit: int = 30) -> list[dict[str, Any]]:
    """The newest runs first: id, outcome, times and the counts their reports recorded."""
    query = (
        select(SyncRun.run_id, SyncRun.outcome, SyncRun.snapshot_at, SyncRun.finished_at, SyncRun.summary)
        .where(SyncRun.establishment_id == establishment_id)
        .order_by(SyncRun.finished_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    history = []
    for row in rows:
        summary = json.loads(row.summary)
        history.append(
            {
                "run_id": row.run_id,
                "outcome": row.outcome,
                "snapshot_at": row.snapshot_at,
                "finished_at": row.finished_at,
                "writes": summary.get("writes", 0),
                "users_held": summary.get("users_held", 0),
                "held_reason": summary.get("held_reason"),
                "findings": summary.get("findings", {}),
            }
        )
    return history


@dataclass(frozen=True)
class UserFilters:
    text: str = ""
    role: str = ""
    year_group: str = ""
    registration_group: str = ""
    status: str = ""


def _registration_of(establishment_id: str):  # type: ignore[no-untyped-def]
    """Correlated subquery: the user's current registration group name (None when none)."""
    return (
        select(func.min(Group.name))
        .join(Membership, Membership.group_id == Group.id)
        .where(
            Membership.user_id == User.id,
            Group.establishment_id == establishment_id,
            Group.kind == "registration",
            Group.status == "active",
        )
        .correlate(User)
        .scalar_subquery()
    )


def search_users(engine: Engine, establishment_id: str, filters: UserFilters) -> list[dict[str, Any]]:
    """Users matching every given filter; the text matches name, username or MIS id (case-insensitive)."""
    registration = _registration_of(establishment_id).label("registration_group")
    query = select(
        User.id, User.username, User.display_name, User.role, User.year_group, User.status, User.mis_id
    ).add_columns(registration)
    conditions = [User.establishment_id == establishment_id]
    if text := filters.text.strip():
        needle = text.lower()  # autoescape: a typed % or _ matches itself, not anything
        conditions.append(
            or_(
                func.lower(User.username).contains(needle, autoescape=True),
                func.lower(User.mis_id) == needle,
                func.lower(User.display_name).contains(needle, autoescape=True),
                func.lower(User.first_name + " " + User.last_name).contains(needle, autoescape=True),
            )
        )
    for column, value in ((User.role, filters.role), (User.year_group, filters.year_group)):
        if value:
            conditions.append(column == value)
    if filters.status:
        conditions.append(User.status == filters.status)
    if filters.registration_group:
        conditions.append(registration == filters.registration_group)
    query = query.where(and_(*conditions)).order_by(User.role, User.username).limit(SEARCH_LIMIT)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def filter_choices(engine: Engine, establishment_id: str) -> dict[str, list[str]]:
    """The roles, year groups and registration groups that exist, for the filter menus."""
    with engine.connect() as connection:
        roles = connection.execute(
            select(User.role).where(User.establishment_id == establishment_id).distinct()
        ).scalars()
        years = connection.execute(
            select(User.year_group)
            .where(User.establishment_id == establishment_id, User.year_group.is_not(None))
            .distinct()
        ).scalars()
        groups = connection.execute(
            select(Group.name)
            .where(
                Group.establishment_id == establishment_id,
                Group.kind == "registration",
                Group.status == "active",
            )
            .distinct()
        ).scalars()
        return {
            "roles": sorted(roles),
            "years": sorted(years, key=lambda y: (not y.isdigit(), int(y) if y.isdigit() else 0, y)),
            "registration_groups": sorted(groups),
        }


def user_detail(engine: Engine, establishment_id: str, user_id: int) -> dict[str, Any] | None:
    """A user's record, groups and timeline (every audit row about the user or their memberships)."""
    with engine.connect() as connection:
        user = (
            connection.execute(
                select(User.__table__).where(User.establishment_id == establishment_id, User.id == user_id)
            )
            .mappings()
            .first()
        )
        if user is None:
            return None
        timeline = connection.execute(
            person_history(establishment_id, user["person_kind"], user["mis_id"]).order_by(
                AuditEntry.at.desc(), AuditEntry.id.desc()
            )
        ).all()
        groups = connection.execute(
            select(Group.name, Group.kind, Group.academic_year, Group.status, Membership.role)
            .join(Membership, Membership.group_id == Group.id)
            .where(Membership.user_id == user_id)
            .order_by(Group.kind, Group.name)
        ).all()
        has_password = connection.execute(select(exists().where(Credential.user_id == user_id))).scalar_one()
    return {
        "user": dict(user),
        "timeline": [dict(row._mapping) for row in timeline],
        "groups": [dict(row._mapping) for row in groups],
        "has_initial_password": bool(has_password),
    }


@dataclass(frozen=True)
class PasswordFilters:
    only_new: bool = True
    """Only passwords never downloaded yet ("new users since the last download")."""
    role: str = ""
    year_group: str = ""
    registration_group: str = ""


def password_user_ids(engine: Engine, establishment_id: str, filters: PasswordFilters) -> list[int]:
    """Ids of active users with a stored initial password that match the filters."""
    registration = _registration_of(establishment_id)
    conditions = [User.establishment_id == establishment_id, User.status == "active"]
    if filters.only_new:
        conditions.append(Credential.exported_count == 0)
    if filters.role:
        conditions.append(User.role == filters.role)
    if filters.year_group:
        conditions.append(cast(User.year_group, String) == filters.year_group)
    if filters.registration_group:
        conditions.append(registration == filters.registration_group)
    query = select(User.id).join(Credential, Credential.user_id == User.id).where(and_(*conditions))
    with engine.connect() as connection:
        return list(connection.execute(query.order_by(User.id)).scalars())


def registration_groups_of(engine: Engine, establishment_id: str, usernames: list[str]) -> dict[str, str]:
    """username → registration group, for grouping printed slips."""
    if not usernames:
        return {}
    registration = _registration_of(establishment_id)
    query = select(User.username, registration).where(
        User.establishment_id == establishment_id, User.username.in_(usernames)
    )
    with engine.connect() as connection:
        return {name: group or "" for name, group in connection.execute(query)}


def downloads(engine: Engine, establishment_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest password downloads (who and how many: the audit rows the export wrote)."""
    query = (
        select(AuditEntry.at, AuditEntry.new_value, AuditEntry.reason)
        .where(
            AuditEntry.establishment_id == establishment_id,
            AuditEntry.entity == "credentials",
            AuditEntry.action == "export",
        )
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
