"""Volume checks and code tables shared by the data-quality stage (``mis_sync.quality``).

An empty or short extract is an error, never "everyone left": ``check_volume`` compares on-roll pupils,
current staff, groups per kind and memberships with the last applied extract. The rest of validation —
Great Expectations suites, quarantine, the other circuit breakers and the findings report — lives in
``mis_sync.quality``.
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


GROUP_MEASURES = {f"groups_{kind.value}": kind.value for kind in GroupKind}
"""Groups per kind (year, registration, teaching): a short timetable export is as wrong as a short roll."""
SHORT_MEASURES = ("pupils_on_roll", "staff_current", *GROUP_MEASURES, "memberships")
"""What ``check_volume`` compares with the last applied extract."""


def on_roll_counts(extract: Extract) -> dict[str, int]:
    pupils, staff = extract.tables["pupils"], extract.tables["staff"]
    kinds = extract.tables["groups"]["kind"].value_counts()
    return {
        "pupils_on_roll": int((pupils["enrolment_status"] == EnrolmentStatus.ON_ROLL).sum()),
        "staff_current": int((staff["enrolment_status"] == EnrolmentStatus.ON_ROLL).sum()),
        **{name: int(kinds.get(kind, 0)) for name, kind in GROUP_MEASURES.items()},
        **{name: len(frame) for name, frame in extract.tables.items()},
    }


def check_volume(counts: dict[str, int], last_counts: dict[str, int], limits: SafetyLimits) -> None:
    """An empty or short extract is an error, never "everyone left" or "the classes were dissolved".

    Every measure of ``SHORT_MEASURES`` is compared with the last applied extract (a measure the last
    run did not record, or recorded as 0, is not judged); all the short ones are named in one message.
    """
    for measure in ("pupils_on_roll", "staff_current"):
        if counts[measure] == 0:
            raise ValidationStop(f"empty extract: {measure} is 0; nothing will be planned or applied")
    short = []
    for measure in SHORT_MEASURES:
        previous = last_counts.get(measure)
        if previous and counts.get(measure, 0) < limits.min_extract_fraction * previous:
            short.append(
                f"{measure} is {counts.get(measure, 0)}, below {limits.min_extract_fraction:.0%} of the "
                f"{previous} in the last applied extract"
            )
    if short:
        raise ValidationStop(
            "short extract: "
            + "; ".join(short)
            + "; nothing will be planned or applied. Check the MIS export (a missing year group, a failed "
            "report, a file cut short) before re-running"
        )
