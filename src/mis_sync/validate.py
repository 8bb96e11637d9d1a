"""Volume checks and code tables shared by the data-quality stage (``mis_sync.quality``).

An empty or short extract is an error, never "everyone left": ``check_volume`` compares on-roll pupils
and current staff with the last applied extract. The rest of validation — Great Expectations suites,
quarantine, the other circuit breakers and the findings report — lives in ``mis_sync.quality``.
"""

from __future__ import annotations

from mis_sync.config import SafetyLimits
from mis_sync.errors import ValidationStop
from mis_sync.model import EnrolmentStatus, Extract, GroupKind, MemberRole

ALLOWED_CODES = {
    ("pupils", "enrolment_status"): {s.value for s in EnrolmentStatus},
    ("staff", "enrolment_status"): {s.value for s in EnrolmentStatus},
    ("groups", "kind"): {k.value for k in GroupKind},
    ("memberships", "role"): {r.value for r in MemberRole},
}


def on_roll_counts(extract: Extract) -> dict[str, int]:
    pupils, staff = extract.tables["pupils"], extract.tables["staff"]
    return {
        "pupils_on_roll": int((pupils["enrolment_status"] == EnrolmentStatus.ON_ROLL).sum()),
        "staff_current": int((staff["enrolment_status"] == EnrolmentStatus.ON_ROLL).sum()),
        **{name: len(frame) for name, frame in extract.tables.items()},
    }


def check_volume(counts: dict[str, int], last_counts: dict[str, int], limits: SafetyLimits) -> None:
    """An empty or short extract is an error, never "everyone left"."""
    for measure in ("pupils_on_roll", "staff_current"):
        if counts[measure] == 0:
            raise ValidationStop(f"empty extract: {measure} is 0; nothing will be planned or applied")
        previous = last_counts.get(measure)
        if previous and counts[measure] < limits.min_extract_fraction * previous:
            raise ValidationStop(
                f"short extract: {measure} is {counts[measure]}, below "
                f"{limits.min_extract_fraction:.0%} of the {previous} in the last applied extract; "
                "check the MIS export (a missing year group or a failed report) before re-running"
            )
