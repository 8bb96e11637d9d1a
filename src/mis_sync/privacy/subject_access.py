"""Subject access: everything the directory holds about one person, as JSON and CSV.

A parent's "what do you hold about my child?" (UK GDPR Art. 15) answered from one command: the directory
record, its history (audit log), class memberships, the ids the targets gave the account, data-quality
findings, Link-mode rows, and whether an initial password is stored — never the password or its
ciphertext. The files go into a folder only the exporting user can read (0700, files 0600); the export
itself is audit-logged with ids only. Run folders are not searched: they expire (``retention``) and
hold the same MIS data the directory was built from; ``docs/privacy.md`` says so.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select

from mis_sync.csv_cells import safe_cell
from mis_sync.directory.credentials import Credential
from mis_sync.directory.history import person_history, user_key
from mis_sync.directory.identity_store import ExistingUser
from mis_sync.directory.schema import (
    AuditEntry,
    Group,
    Membership,
    TargetMembership,
    TargetUser,
    User,
)
from mis_sync.errors import DataError
from mis_sync.linking.schema import LinkDecision, LinkState
from mis_sync.quality.schema import QualityFinding

ENTITY_OF_KIND = {"pupil": "pupils", "staff": "staff", "contact": "contacts"}


class PersonNotFound(DataError):
    """No (or more than one) directory user matches what was asked for."""


@dataclass(frozen=True)
class Person:
    establishment_id: str
    user_id: int
    person_kind: str
    mis_id: str
    username: str
    status: str

    @property
    def audit_key(self) -> str:
        return user_key(self.person_kind, self.mis_id)


def find_person(
    engine: Engine,
    establishment_id: str,
    *,
    mis_id: str | None = None,
    username: str | None = None,
    person_kind: str | None = None,
) -> Person:
    """The one directory user with this MIS id (and kind) or username; errors name ids, never values."""
    if (mis_id is None) == (username is None):
        raise ValueError("give exactly one of --mis-id or --username")
    query = select(User.id, User.person_kind, User.mis_id, User.username, User.status).where(
        User.establishment_id == establishment_id
    )
    if mis_id is not None:
        query = query.where(User.mis_id == mis_id)
        if person_kind:
            query = query.where(User.person_kind == person_kind)
    else:
        query = query.where(User.username == username)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    asked = f"MIS id {mis_id}" if mis_id is not None else "that username"
    if not rows:
        raise PersonNotFound(f"{establishment_id}: no directory user with {asked}")
    if len(rows) > 1:
        kinds = ", ".join(sorted(r.person_kind for r in rows))
        raise PersonNotFound(
            f"{establishment_id}: {asked} is held for several kinds ({kinds}); give --person-kind"
        )
    row = rows[0]
    return Person(establishment_id, int(row.id), row.person_kind, row.mis_id, row.username, row.status)


def _rows(connection: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(query)]


def literal(value: str) -> str:
    """``value`` for a LIKE pattern (escape ``\\``): MIS ids and usernames may hold ``_`` or ``%``."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like(column: Any, pattern: str) -> Any:
    return column.like(pattern, escape="\\")


def _principal(column: Any, username: str) -> Any:
    """Target user keys are principal names: the username, or ``username@domain``."""
    return or_(column == username, like(column, f"{literal(username)}@%"))


def collect(engine: Engine, person: Person) -> dict[str, list[dict[str, Any]]]:
    """Every section of the export, as lists of rows (column → value)."""
    est = person.establishment_id
    entity = ENTITY_OF_KIND[person.person_kind]
    user_columns = [c for c in User.__table__.c if c.name != "establishment_id"]
    with engine.connect() as c:
        return {
            "directory_record": _rows(c, select(*user_columns).where(User.id == person.user_id)),
            "history": _rows(
                c, person_history(est, person.person_kind, person.mis_id).order_by(AuditEntry.id)
            ),
            "memberships": _rows(
                c,
                select(Group.mis_id.label("group_mis_id"), Group.academic_year, Group.kind, Group.name)
                .add_columns(Membership.role)
                .join(Group, Group.id == Membership.group_id)
                .where(Membership.user_id == person.user_id)
                .order_by(Group.mis_id),
            ),
            "target_accounts": _rows(
                c,
                select(
                    TargetUser.target, TargetUser.user_key, TargetUser.remote_id, TargetUser.resolved_at
                ).where(TargetUser.establishment_id == est, _principal(TargetUser.user_key, person.username)),
            ),
            "target_memberships": _rows(
                c,
                select(
                    TargetMembership.target,
                    TargetMembership.container_key,
                    TargetMembership.role,
                    TargetMembership.state,
                ).where(
                    TargetMembership.establishment_id == est,
                    _principal(TargetMembership.user_key, person.username),
                ),
            ),
            "findings": _rows(
                c,
                select(
                    QualityFinding.entity,
                    QualityFinding.mis_id,
                    QualityFinding.rule,
                    QualityFinding.field,
                    QualityFinding.severity,
                    QualityFinding.first_seen_at,
                    QualityFinding.last_seen_at,
                    QualityFinding.fixed_at,
                ).where(
                    QualityFinding.establishment_id == est,
                    or_(
                        (QualityFinding.entity == entity) & (QualityFinding.mis_id == person.mis_id),
                        (QualityFinding.entity == "memberships")
                        & like(QualityFinding.mis_id, f"%/{literal(person.mis_id)}/%"),
                    ),
                ),
            ),
            "stored_credentials": _rows(
                c,
                select(
                    Credential.created_at,
                    Credential.created_run,
                    Credential.exported_count,
                    Credential.last_exported_at,
                ).where(Credential.user_id == person.user_id),
            ),
            "imported_accounts": _rows(
                c,
                select(*[col for col in ExistingUser.__table__.c if col.name != "establishment_id"]).where(
                    ExistingUser.establishment_id == est,
                    or_(ExistingUser.username == person.username, ExistingUser.mis_id == person.mis_id),
                ),
            ),
            "link_state": _rows(
                c,
                select(LinkState.username, LinkState.mis_id, LinkState.category, LinkState.source).where(
                    LinkState.establishment_id == est,
                    or_(LinkState.username == person.username, LinkState.mis_id == person.mis_id),
                ),
            ),
            "link_decisions": _rows(
                c,
                select(
                    LinkDecision.decision, LinkDecision.username, LinkDecision.mis_id, LinkDecision.decided_at
                ).where(
                    LinkDecision.establishment_id == est,
                    or_(LinkDecision.username == person.username, LinkDecision.mis_id == person.mis_id),
                ),
            ),
        }


def _text(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _private_write(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def private_folder(out: Path) -> None:
    """Create ``out`` readable by its owner only; refuse one that already holds files (no mixing)."""
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} already holds files; choose a new, empty folder")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)


def write_export(
    sections: dict[str, list[dict[str, Any]]], person: Person, out: Path, now: datetime
) -> list[Path]:
    """``person.json`` with every section, and one CSV per non-empty section."""
    private_folder(out)
    document = {
        "establishment": person.establishment_id,
        "person_kind": person.person_kind,
        "mis_id": person.mis_id,
        "exported_at": now.isoformat(),
        "stored_credentials_note": "whether an initial password is stored; the password is never exported",
        "sections": {
            name: [{k: _text(v) for k, v in row.items()} for row in rows] for name, rows in sections.items()
        },
    }
    written = [out / "person.json"]
    _private_write(written[0], json.dumps(document, indent=2, sort_keys=True))
    for name, rows in sections.items():
        if not rows:
            continue
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        # a parent may read this in a spreadsheet: MIS values never run as formulas (mis_sync.csv_cells)
        writer.writerows({k: safe_cell(_text(v)) for k, v in row.items()} for row in rows)
        path = out / f"{name}.csv"
        _private_write(path, buffer.getvalue())
        written.append(path)
    return written


def export_person(engine: Engine, person: Person, out: Path, actor: str, now: datetime) -> dict[str, int]:
    """Write the export and audit-log it (ids and counts only); returns rows per section."""
    sections = collect(engine, person)
    write_export(sections, person, out, now)
    counts = {name: len(rows) for name, rows in sections.items()}
    with engine.begin() as connection:
        connection.execute(
            insert(AuditEntry).values(
                establishment_id=person.establishment_id,
                run_id="subject-access",
                at=now,
                entity="user",
                entity_key=person.audit_key,
                action="export",
                field=None,
                old_value=None,
                new_value=json.dumps(counts, sort_keys=True),
                reason=f"subject access export by {actor}"[:200],
            )
        )
    return counts
