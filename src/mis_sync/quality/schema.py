"""Directory table for data-quality findings across runs (new / still open / fixed).

Uses the directory's ``Base`` so Alembic's ``env.py`` sees it; created by migration ``0002``. Holds
MIS ids, rule names and run ids only: no names or values from the data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mis_sync.directory.schema import Base


class QualityFinding(Base):
    """One (establishment, entity, record, rule, field): when first and last seen, and when fixed."""

    __tablename__ = "directory_quality_findings"
    __table_args__ = (
        UniqueConstraint(
            "establishment_id", "entity", "mis_id", "rule", "field", name="uq_quality_findings_key"
        ),
        Index("ix_quality_findings_open", "establishment_id", "fixed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    establishment_id: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(16))
    mis_id: Mapped[str] = mapped_column(String(200))
    """The record key as text (``group/person/role`` for a membership)."""
    rule: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    """error | warning, as last seen."""
    first_seen_run: Mapped[str] = mapped_column(String(250))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_run: Mapped[str] = mapped_column(String(250))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fixed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set by the first run that no longer finds it; cleared (and first_seen reset) if it comes back."""
