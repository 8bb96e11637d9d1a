"""Directory tables for identity continuity: fingerprints, admin decisions, pairs waiting for one.

Fingerprints, not values: the directory never stored UPNs or dates of birth and does not start to. A
fingerprint (a keyed hash of a normalised identifier, see ``identity.keys``) only answers "is this the
same value as before?", which is all re-keying needs. Decisions are append-only like Link mode's: the
newest decision about a pair wins, and the history is the audit trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mis_sync.directory.schema import Base

IDENTITY_DECISIONS = ("same", "distinct", "clear")


class UserIdentity(Base):
    """One fingerprint of one account's person: which rule (``upn``, ``dob_names``, ``email``…)."""

    __tablename__ = "directory_user_identities"
    __table_args__ = (Index("ix_user_identities_fingerprint", "fingerprint"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("directory_users.id"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(24), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))


class IdentityDecision(Base):
    """An admin's answer about one (vanished account, new MIS record) pair. ``old_mis_id`` is the MIS id
    the account had when the pair was reported."""

    __tablename__ = "directory_identity_decisions"
    __table_args__ = (
        CheckConstraint("decision IN ('same', 'distinct', 'clear')", name="ck_identity_decisions_decision"),
        Index("ix_identity_decisions_establishment", "establishment_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    person_kind: Mapped[str] = mapped_column(String(16))
    old_mis_id: Mapped[str] = mapped_column(String(64))
    new_mis_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    """same (re-key the account to the new record) | distinct (two people) | clear (withdraw)"""
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


class IdentityPending(Base):
    """The last applied run's ambiguous pairs (ids and the rule only), for ``misync identity-report``."""

    __tablename__ = "directory_identity_pending"
    __table_args__ = (Index("ix_identity_pending_establishment", "establishment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    person_kind: Mapped[str] = mapped_column(String(16))
    old_mis_id: Mapped[str] = mapped_column(String(64))
    new_mis_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(64))
    """several_candidates | account_still_in_mis"""
    run_id: Mapped[str] = mapped_column(String(250))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
