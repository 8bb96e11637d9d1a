"""Erasure: remove one person's personal data from the directory and the run folders still kept.

Refused while the person is on roll (active in the directory, or on roll in the latest MIS extract):
the next night would re-create them. Otherwise, in one directory transaction: personal fields cleared
(the account row and username stay, so the name is never reissued), memberships, stored initial
password, findings and imported Link-mode rows removed, audit values pseudonymised (entries keep ids);
then every Parquet file in the establishment's run storage is rewritten without their rows. An erasure
record — what was removed where, what remains and when it expires — goes into the audit log (ids and
counts only) and is returned for the school.

Target accounts are not deleted here: the target adapters only disable leavers (never delete), so
deleting or anonymising the Microsoft 365 / Google account is recorded as a pending action with the
target's account id for the school's admin to carry out (``docs/privacy.md``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, or_, select, update

from mis_sync.config import Establishment
from mis_sync.directory.credentials import Credential
from mis_sync.directory.identity_store import ExistingUser
from mis_sync.directory.schema import AuditEntry, Membership, SyncState, TargetUser, User
from mis_sync.errors import DataError
from mis_sync.privacy.directory_retention import pseudonymise_audit_values
from mis_sync.privacy.person_files import on_roll_in_latest_extract, rewrite_run_storage
from mis_sync.privacy.subject_access import ENTITY_OF_KIND, Person, _principal, like, literal
from mis_sync.quality.schema import QualityFinding
from mis_sync.storage import safe_segment

PERSONAL_USER_FIELDS = ("first_name", "last_name", "display_name", "email", "year_group")


class ErasureRefused(DataError):
    """The person cannot be erased now; the message says why and what to do."""


def check_erasable(engine: Engine, person: Person, storage_root: Any | None) -> None:
    if person.status == "active":
        raise ErasureRefused(
            f"{person.establishment_id}: {person.person_kind} {person.mis_id} is on roll (an active account "
            "from the latest MIS extract applied); the next run would re-create them. Record the leaving "
            "date in the MIS first, then erase after the next run has suspended the account."
        )
    latest = _last_successful_folder(engine, person.establishment_id, storage_root)
    if latest is not None and on_roll_in_latest_extract(latest, person):
        raise ErasureRefused(
            f"{person.establishment_id}: {person.person_kind} {person.mis_id} is on roll in the latest MIS "
            "extract; the next run would re-create them. Record the leaving date in the MIS first."
        )


def _last_successful_folder(engine: Engine, establishment_id: str, storage_root: Any | None) -> Any | None:
    if storage_root is None:
        return None
    with engine.connect() as connection:
        last = connection.execute(
            select(SyncState.last_run_id).where(SyncState.establishment_id == establishment_id)
        ).scalar()
    return storage_root / establishment_id / safe_segment(last) if last else None


def erase_person(
    engine: Engine,
    config: Establishment,
    person: Person,
    *,
    storage_root: Any | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Erase the person (after ``check_erasable``); return the erasure record (ids and counts only)."""
    check_erasable(engine, person, storage_root)
    est = person.establishment_id
    entity = ENTITY_OF_KIND[person.person_kind]
    with engine.begin() as c:
        targets = [
            {"action": "delete or anonymise the account", "target": t, "remote_id": r}
            for t, r in c.execute(
                select(TargetUser.target, TargetUser.remote_id).where(
                    TargetUser.establishment_id == est, _principal(TargetUser.user_key, person.username)
                )
            ).all()
        ]
        directory = {
            "memberships": c.execute(delete(Membership).where(Membership.user_id == person.user_id)).rowcount,
            "stored_credentials": c.execute(
                delete(Credential).where(Credential.user_id == person.user_id)
            ).rowcount,
            "findings": c.execute(
                delete(QualityFinding).where(
                    QualityFinding.establishment_id == est,
                    or_(
                        (QualityFinding.entity == entity) & (QualityFinding.mis_id == person.mis_id),
                        (QualityFinding.entity == "memberships")
                        & like(QualityFinding.mis_id, f"%/{literal(person.mis_id)}/%"),
                    ),
                )
            ).rowcount,
            "imported_accounts": c.execute(
                delete(ExistingUser).where(
                    ExistingUser.establishment_id == est,
                    or_(ExistingUser.username == person.username, ExistingUser.mis_id == person.mis_id),
                )
            ).rowcount,
            "personal_fields": c.execute(
                update(User)
                .where(User.id == person.user_id)
                .values(status="deleted", updated_at=now, **dict.fromkeys(PERSONAL_USER_FIELDS))
            ).rowcount
            * len(PERSONAL_USER_FIELDS),
        }
        membership_keys = [
            k
            for (k,) in c.execute(
                select(AuditEntry.entity_key).where(
                    AuditEntry.establishment_id == est,
                    like(AuditEntry.entity_key, f"% {literal(person.audit_key)}"),
                )
            ).all()
        ]
        directory["audit_values_pseudonymised"] = pseudonymise_audit_values(
            c, est, [person.audit_key, *set(membership_keys)]
        )
    files = rewrite_run_storage(storage_root / est, person) if storage_root is not None else {}
    record = _record(config, person, directory, files, targets, now)
    with engine.begin() as c:
        c.execute(
            insert(AuditEntry).values(
                establishment_id=est,
                run_id="erasure",
                at=now,
                entity="erasure",
                entity_key=person.audit_key,
                action="erase",
                field=None,
                old_value=None,
                new_value=json.dumps(record, sort_keys=True, default=str),
                reason=f"erasure request carried out by {actor}"[:200],
            )
        )
    return record


def _record(
    config: Establishment,
    person: Person,
    directory: dict[str, int],
    files: dict[str, int],
    targets: list[dict[str, str]],
    now: datetime,
) -> dict[str, Any]:
    retention = config.retention
    return {
        "establishment": person.establishment_id,
        "person_kind": person.person_kind,
        "mis_id": person.mis_id,
        "erased_at": now.isoformat(),
        "removed": {"directory": directory, "run_storage": files},
        "kept": {
            "account_row": "user id, MIS id and username (reserved, never reissued), status deleted",
            "audit_entries": "ids, actions, reasons and dates; personal values pseudonymised",
        },
        "pending": targets,
        "expires": {
            "run_folder_reports_by": (now + timedelta(days=retention.reports_days)).date().isoformat(),
            "run_folder_data_by": (now + timedelta(days=retention.extracts_days)).date().isoformat(),
            "note": "files rewritten now; remaining run files (counts only) expire with their run folders",
        },
    }
