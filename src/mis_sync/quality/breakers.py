"""Circuit breakers: stop the run before plan and apply when the extract as a whole cannot be trusted.

Each raises ``mis_sync.errors.ValidationStop`` with a message of rules, entities, columns and counts
only (never a value from the data), so it is safe in the task log and the Airflow UI:

- **schema drift** (``check_schema``): a required column missing from a table, or empty in every row
  of a table that has rows;
- (a required value missing in one row, an unknown code, an academic year not like ``2025/26``, a value
  that cannot be read are faults of that record, not stops: ``record_faults`` quarantines the record;)
- **empty or short extract** (``check_volume``): no on-roll pupils or staff, or fewer than
  ``SafetyLimits.min_extract_fraction`` of the last successful run's (``validate.check_volume``);
- **junk references** (``check_junk_references``): more than half of the memberships or relationships
  point at records not in the export, found from the derived columns before the GE suites run, so a
  junk file stops in seconds instead of after minutes of per-record findings;
- **error rate** (``check_error_rate``): more than ``SafetyLimits.max_error_rate`` of an entity's
  records have an error finding (judged once at least ``MIN_ERRORS_FOR_RATE`` records of it do, so a
  single bad row in a tiny school is quarantined instead of stopping the run).
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd

from mis_sync.config import SafetyLimits
from mis_sync.errors import ValidationStop
from mis_sync.model import ENTITIES, Extract
from mis_sync.validate import check_volume as _check_volume


class QualityStop(ValidationStop):
    """The error-rate breaker tripped. Carries the findings (MIS ids and rules only) and the counts
    summary, so the caller can still write the findings report the data manager needs."""

    def __init__(self, message: str, findings: pd.DataFrame, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.findings = findings
        self.summary = summary or {}


MIN_ERRORS_FOR_RATE: Final = 5
"""The error-rate breaker ignores an entity with fewer records in error than this."""
QUARANTINED_KEY: Final = "mis_id"
"""Missing values of this column are quarantine errors (``mis_id_missing``), not a stop."""


def check_schema(extract: Extract) -> None:
    """Stop on schema drift: a required column missing, or all-null in a table that has rows."""
    problems = []
    for name, entity in ENTITIES.items():
        frame = extract.tables[name]
        missing = [c for c in entity.required_columns if c not in frame.columns]
        if missing:
            problems.append(f"{name}: required column(s) missing: {', '.join(missing)}")
        if len(frame):
            empty = [c for c in entity.required_columns if c in frame.columns and frame[c].isna().all()]
            if empty:
                problems.append(
                    f"{name}: required column(s) empty in all {len(frame)} rows: {', '.join(empty)}"
                )
    if problems:
        raise ValidationStop(
            "schema drift: " + " | ".join(problems) + "; the MIS export's columns changed: fix the export "
            "report or the field mapping before re-running"
        )


def check_volume(counts: dict[str, int], last_counts: dict[str, int], limits: SafetyLimits) -> None:
    """Empty extract (no on-roll pupils or staff) or short extract: ``validate.check_volume``."""
    _check_volume(counts, last_counts, limits)


def error_records(findings: pd.DataFrame) -> pd.Series:
    """Records with at least one error finding, per entity (a record counts once)."""
    errors = findings[findings["severity"] == "error"]
    return errors.drop_duplicates(["entity", "row"]).groupby("entity").size()


def check_error_rate(
    findings: pd.DataFrame, extract: Extract, limits: SafetyLimits, summary: dict[str, Any] | None = None
) -> None:
    """Stop (``QualityStop``, with the findings) when an entity's share of records in error is above
    ``limits.max_error_rate``."""
    problems = []
    for entity, count in error_records(findings).items():
        total = len(extract.tables[str(entity)])
        if count >= MIN_ERRORS_FOR_RATE and total and count > limits.max_error_rate * total:
            problems.append(f"{count} of {total} {entity} ({count / total:.1%})")
    if problems:
        raise QualityStop(
            "error rate too high: " + ", ".join(problems) + f" have errors, above the "
            f"{limits.max_error_rate:.0%} limit; nothing will be planned or applied. Check the MIS export "
            "(the findings report lists every record) before re-running",
            findings,
            summary,
        )


JUNK_REFERENCE_SHARE: Final = 0.5
REFERENCE_RULES: Final = {
    "memberships": ("unknown_group", "unknown_person"),
    "relationships": ("unknown_pupil", "unknown_contact"),
}


def check_junk_references(frames: dict[str, pd.DataFrame], limits: SafetyLimits) -> None:
    """Stop before the per-record checks when most links point nowhere: a 50 MB junk memberships file
    took 300 s of findings to reach the error-rate breaker's answer. Below this share the error-rate
    breaker judges as usual, with the findings report the data manager needs."""
    problems = []
    for entity, rules in REFERENCE_RULES.items():
        frame = frames.get(entity)
        if frame is None or not len(frame):
            continue
        broken = int(frame[list(rules)].any(axis=1).sum())
        share = max(JUNK_REFERENCE_SHARE, limits.max_error_rate)
        if broken >= MIN_ERRORS_FOR_RATE and broken > share * len(frame):
            problems.append(f"{broken} of {len(frame)} {entity} ({broken / len(frame):.1%})")
    if problems:
        raise ValidationStop(
            "most links point at records not in the export: " + ", ".join(problems) + " name a group or "
            "person that is not there (a junk, partial or other school's file?); nothing will be planned "
            "or applied. Check the MIS export before re-running"
        )
