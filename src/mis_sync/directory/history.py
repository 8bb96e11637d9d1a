"""One person's history in the audit log, read by the console's user timeline and by a subject access
export alike: the rows about their account (``user:<kind>:<mis id>``, as ``directory.apply`` writes it)
and the rows naming it at the end of their key (a membership's ``group:… user:…``)."""

from __future__ import annotations

from sqlalchemy import Select, or_, select

from mis_sync.directory.schema import AuditEntry

HISTORY_COLUMNS = (
    AuditEntry.at,
    AuditEntry.run_id,
    AuditEntry.entity,
    AuditEntry.entity_key,
    AuditEntry.action,
    AuditEntry.field,
    AuditEntry.old_value,
    AuditEntry.new_value,
    AuditEntry.reason,
)


def user_key(person_kind: str, mis_id: str) -> str:
    """The audit log's ``entity_key`` for a user."""
    return f"user:{person_kind}:{mis_id}"


def person_history(establishment_id: str, person_kind: str, mis_id: str) -> Select:  # type: ignore[type-arg]
    """The query of one person's audit rows (callers choose the order). ``_`` or ``%`` in an MIS id
    match only themselves."""
    key = user_key(person_kind, mis_id)
    return select(*HISTORY_COLUMNS).where(
        AuditEntry.establishment_id == establishment_id,
        or_(AuditEntry.entity_key == key, AuditEntry.entity_key.endswith(f" {key}", autoescape=True)),
    )
