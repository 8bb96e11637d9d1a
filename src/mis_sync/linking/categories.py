"""The seven Link-mode categories and the counts-only report an admin reads.

Users (one row per existing account) fall in exactly one of the first five; MIS records that have
no user row fall in one of the last two (linked or suggested records appear on their user's row).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pandas as pd


class LinkCategory(StrEnum):
    LINKED = "linked"
    NOT_IN_MIS = "not_in_mis"
    LIKELY = "likely"
    POSSIBLE = "possible"
    NOT_MATCHED = "not_matched"
    MIS_NO_ACCOUNT = "mis_no_account"
    MIS_NOT_MATCHED = "mis_not_matched"


LABELS: dict[LinkCategory, str] = {
    LinkCategory.LINKED: "Users linked to their MIS record",
    LinkCategory.NOT_IN_MIS: "Users not in MIS",
    LinkCategory.LIKELY: "Users with a likely MIS record match",
    LinkCategory.POSSIBLE: "Users with a possible MIS record match",
    LinkCategory.NOT_MATCHED: "Users not matched to an MIS record",
    LinkCategory.MIS_NO_ACCOUNT: "MIS records for people without an account",
    LinkCategory.MIS_NOT_MATCHED: "MIS records not matched to a user",
}
USER_CATEGORIES = (
    LinkCategory.LINKED,
    LinkCategory.NOT_IN_MIS,
    LinkCategory.LIKELY,
    LinkCategory.POSSIBLE,
    LinkCategory.NOT_MATCHED,
)
MIS_CATEGORIES = (LinkCategory.MIS_NO_ACCOUNT, LinkCategory.MIS_NOT_MATCHED)
KIND_COLUMNS = {"pupil": "pupils", "staff": "staff", "contact": "parents"}


def link_report(result: Any) -> pd.DataFrame:
    """Counts per category (rows, in the seven-category order) and person kind (columns + total).

    Accepts a ``LinkResult``, its ``links`` frame, or a saved link state (``load_link_state``).
    """
    links = result.links if hasattr(result, "links") else result
    kinds = links["person_kind"].astype("object").fillna("unknown")
    table = pd.crosstab(links["category"].astype("object"), kinds)
    table = table.reindex(index=[c.value for c in LinkCategory], fill_value=0)
    extra = [k for k in table.columns if k not in KIND_COLUMNS]
    table = table.reindex(columns=[*KIND_COLUMNS, *extra], fill_value=0).fillna(0).astype(int)
    table = table.rename(columns=KIND_COLUMNS)
    table["total"] = table.sum(axis=1)
    table.insert(0, "label", [LABELS[LinkCategory(c)] for c in table.index])
    table.index.name = "category"
    table.columns.name = None
    return table


def report_counts(report: Any) -> dict[str, int]:
    """``{category: total}`` from a report frame, a ``LinkResult``, its links, or a counts mapping."""
    if isinstance(report, Mapping):
        return {c.value: int(report.get(c.value, 0)) for c in LinkCategory}
    if isinstance(report, pd.DataFrame) and "total" in report.columns:
        return {c.value: int(report["total"].get(c.value, 0)) for c in LinkCategory}
    return report_counts(link_report(report))


def render_link_report(report: pd.DataFrame, title: str | None = None) -> str:
    """A plain-text table of the counts (no names, usernames or ids): what ``misync link-report`` prints."""
    numbers = [c for c in report.columns if c != "label"]
    width = max(len(label) for label in report["label"])
    lines = [title] if title else []
    lines.append(f"{'#':>2}  {'Category':<{width}}  " + "  ".join(f"{c:>8}" for c in numbers))
    lines.append("-" * len(lines[-1]))
    for position, (_, row) in enumerate(report.iterrows(), start=1):
        counts = "  ".join(f"{int(row[c]):>8}" for c in numbers)
        lines.append(f"{position:>2}  {row['label']:<{width}}  {counts}")
    return "\n".join(lines)


def run_summary(result: Any) -> dict[str, Any]:
    """What a run's report says about Link mode: counts per category and person kind, the existing
    accounts linked and not linked, and the MIS records no account is linked to (counts only).

    Accepts what ``link_report`` accepts, or its report frame.
    """
    table = result if isinstance(result, pd.DataFrame) and "label" in result.columns else link_report(result)
    numbers = [c for c in table.columns if c != "label"]
    categories = {str(cat): {c: int(table.at[cat, c]) for c in numbers} for cat in table.index}
    totals = {cat: counts["total"] for cat, counts in categories.items()}
    return {
        "categories": categories,
        "accounts_linked": totals[LinkCategory.LINKED.value],
        "accounts_not_linked": sum(totals[c.value] for c in USER_CATEGORIES if c != LinkCategory.LINKED),
        "mis_records_not_linked": sum(totals[c.value] for c in MIS_CATEGORIES),
    }


def render_run_summary(summary: Mapping[str, Any]) -> list[str]:
    """The Link-mode lines of the run report: linked / not linked, then one line per category."""
    categories = summary["categories"]
    present = {c for counts in categories.values() for c in counts}
    known = [*KIND_COLUMNS.values(), "total"]  # the report is stored with sorted keys: restore the order
    extra = sorted(present - set(known))
    columns = [c for c in known[:-1] if c in present] + extra + [c for c in known[-1:] if c in present]
    linked, not_linked = summary["accounts_linked"], summary["accounts_not_linked"]
    width = max(len(label) for label in LABELS.values())
    lines = [
        f"  Link mode: {linked} of {linked + not_linked} existing accounts linked, {not_linked} not linked; "
        f"{summary['mis_records_not_linked']} MIS records without a linked account",
        f"  {'#':>2}  {'link category':<{width}}" + "".join(f"{c:>9}" for c in columns),
    ]
    for position, category in enumerate(LinkCategory, start=1):
        counts = categories.get(category.value, {})
        cells = "".join(f"{counts.get(c, 0):>9}" for c in columns)
        lines.append(f"  {position:>2}  {LABELS[category]:<{width}}{cells}")
    return lines
