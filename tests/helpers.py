"""Test helpers: run plan + apply outside Airflow and dump the directory by natural keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from mis_sync.config import Establishment, load_establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.connectors.file_drop import FileDropConnector
from mis_sync.directory.apply import ApplyResult, apply_plan, data_hash
from mis_sync.directory.schema import AuditEntry, Group, Membership, User
from mis_sync.directory.state import load_state
from mis_sync.model import Extract
from mis_sync.plan import Plan, make_plan
from mis_sync.validate import on_roll_counts

REPO = Path(__file__).resolve().parents[1]
TINY = Path(__file__).with_name("fixtures") / "tiny-school"


def demo_config(**overrides: Any) -> Establishment:
    config = load_establishment(REPO / "include" / "establishments" / "demo-academy.yaml")
    return config.model_copy(update=overrides) if overrides else config


def read_drop(folder: Path) -> Extract:
    return FileDropConnector(ConnectionInfo(conn_id="test", extra={"path": str(folder)}), {}).extract()


def sync(
    engine: Engine, config: Establishment, extract: Extract, run_id: str, *, approve: bool = False
) -> tuple[Plan, ApplyResult]:
    plan = make_plan(extract, load_state(engine, config.id), config, approve_suspensions=approve)
    result = apply_plan(
        engine,
        config.id,
        plan,
        run_id=run_id,
        extract_hash=data_hash(extract.tables),
        extract_counts=on_roll_counts(extract),
    )
    return plan, result


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """The directory's content by natural keys (no surrogate ids or timestamps), sorted."""
    with engine.connect() as c:
        users = c.execute(
            select(
                User.establishment_id,
                User.person_kind,
                User.mis_id,
                User.username,
                User.role,
                User.first_name,
                User.last_name,
                User.display_name,
                User.email,
                User.year_group,
                User.status,
            )
        ).all()
        groups = c.execute(
            select(Group.mis_id, Group.academic_year, Group.kind, Group.name, Group.subject, Group.status)
        ).all()
        memberships = c.execute(
            select(Group.mis_id, User.person_kind, User.mis_id, Membership.role)
            .join(Group, Group.id == Membership.group_id)
            .join(User, User.id == Membership.user_id)
        ).all()
        audit = c.execute(
            select(
                AuditEntry.entity,
                AuditEntry.entity_key,
                AuditEntry.action,
                AuditEntry.field,
                AuditEntry.old_value,
                AuditEntry.new_value,
                AuditEntry.reason,
            )
        ).all()
    return {
        name: sorted(tuple("" if v is None else v for v in row) for row in rows)
        for name, rows in (
            ("users", users),
            ("groups", groups),
            ("memberships", memberships),
            ("audit", audit),
        )
    }


def audit_count(engine: Engine) -> int:
    with engine.connect() as c:
        return len(c.execute(select(AuditEntry.id)).all())


def with_table(extract: Extract, name: str, frame: pd.DataFrame, *, hours_later: int = 24) -> Extract:
    """A later snapshot of the same school with one table replaced."""
    tables = dict(extract.tables)
    tables[name] = frame.reset_index(drop=True)
    return Extract(tables, extract.snapshot_at + pd.Timedelta(hours=hours_later), extract.source)
