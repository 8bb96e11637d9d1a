"""Guarding the switch from Link mode to Create mode.

Create mode makes an account for every MIS record without one. Switching while users still wait in
"likely", "possible" or "not matched" would create second accounts for people who already have one,
so the switch is refused until an admin has linked, rejected or marked every such user.
"""

from __future__ import annotations

from typing import Any

from mis_sync.errors import DataError
from mis_sync.linking.categories import LinkCategory, report_counts

BLOCKING = (LinkCategory.LIKELY, LinkCategory.POSSIBLE, LinkCategory.NOT_MATCHED)


class LinkToCreateRefused(DataError):
    """Link → Create while users are still unresolved. Carries the counts (never names)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        parts = [f"{counts[c.value]} {c.value.replace('_', ' ')}" for c in BLOCKING if counts[c.value]]
        super().__init__(
            "switching from Link to Create mode is refused: users still waiting for a decision: "
            + ", ".join(parts)
            + " (link, reject or mark them 'not in MIS' with `misync link decide`, then run the link"
            " report again)"
        )


def check_link_to_create(report: Any) -> None:
    """Raise ``LinkToCreateRefused`` unless the likely, possible and not-matched counts are all zero.

    ``report`` is a ``link_report`` frame, a ``LinkResult``, its ``links`` frame, a saved link state
    or a ``{category: count}`` mapping.
    """
    counts = report_counts(report)
    if any(counts[c.value] for c in BLOCKING):
        raise LinkToCreateRefused(counts)
