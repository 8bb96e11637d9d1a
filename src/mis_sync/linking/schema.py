"""Directory tables for Link mode: admin decisions (append-only) and the latest link state.

Decisions are never updated or deleted: the newest decision about a subject wins (see
``decisions.effective``), and the history is the audit trail of who decided what, when. The state
table holds the last run's outcome per user and per unmatched MIS record (ids, category, score,
agreed fields: no names), so ``misync link-report`` can print without re-running the matching.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mis_sync.directory.schema import Base

DECISIONS = ("link", "reject", "not_in_mis", "has_no_account", "clear")
PERSON_KINDS = ("pupil", "staff", "contact")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LinkDecision(Base):
    """One admin decision. ``username`` is empty for "has no account", ``mis_id`` for "not in MIS"."""

    __tablename__ = "directory_link_decisions"
    __table_args__ = (
        CheckConstraint(_one_of("decision", DECISIONS), name="ck_link_decisions_decision"),
        Index("ix_link_decisions_establishment", "establishment_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(320))
    person_kind: Mapped[str | None] = mapped_column(String(16))
    """pupil | staff | contact: which MIS entity ``mis_id`` belongs to."""
    mis_id: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    """link | reject | not_in_mis | has_no_account | clear (withdraws earlier decisions on the subject)"""
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


class LinkState(Base):
    """The last matching run's outcome: one row per existing user and per MIS record left over."""

    __tablename__ = "directory_link_state"
    __table_args__ = (Index("ix_link_state_establishment", "establishment_id", "category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(320))
    person_kind: Mapped[str | None] = mapped_column(String(16))
    mis_id: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(24))
    score: Mapped[float | None] = mapped_column(Float)
    agreed_fields: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(16))
    """admin | mis_id | likely (auto-linked) | score"""
    run_id: Mapped[str | None] = mapped_column(String(250))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
