"""What the Wonde connector checks in Wonde's answers before it trusts them (pure, no HTTP).

Why a module of its own: each check follows what Wonde documents or its official clients read, not what
the project's fake happens to serve, and each says so (sources in ``include/mis_schemas/wonde.yaml``):

- ``/counts``: the reply is ``{"data": {"<endpoint>": {"data": {"count": N}}}}``. Wonde's PHP client
  reads ``$counts->array->students->data->count`` with ``array`` set to the reply's ``data``; its .NET
  client reads ``ArrayData["students"]["data"]["count"]`` the same way. The older reading
  ``counts.<endpoint>.data.count`` (the Ruby client's readme, this project's first fake) and a count
  sent as a string (as Wonde sends ``per_page``) are accepted too. A count the reply does not carry is
  a finding (the read could not be checked), never a silent skip; fewer records than the count is a
  ``TruncatedError`` naming the endpoint and both numbers.
- Withheld fields: "without having an active scope for a property, its value will be null" (Wonde
  API docs, Scopes). ``null`` therefore does not mean "no" or "none": a member of staff whose
  ``employment_details`` (or its ``current``) is null has an unknown status, not "left". The record is
  quarantined (an ``error`` finding: held as it is in the directory); when more than
  ``max_withheld_fraction`` (default 0.5) of the school's staff, or of its pupils' year groups, are
  withheld, the run stops with an ``ApiPermissionError`` that names the Wonde permission to grant.
- Year groups: the ``year`` include (``year.data.code``, else ``year.data.name``) is what Wonde's
  sync recipes read; ``education_details.data.current_nc_year`` is the fallback. A pupil with neither
  is a finding (``warning``: applied and flagged).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from mis_sync.connectors.http_api import ApiPermissionError
from mis_sync.connectors.http_paging import TruncatedError, as_int, dig
from mis_sync.model import SOURCE_FINDING_COLUMNS

log = logging.getLogger(__name__)

COUNT_PATHS = ("data.{endpoint}.data.count", "counts.{endpoint}.data.count")
"""Where a ``/counts`` reply may hold an endpoint's total: the documented shape first."""
COUNTED_ENTITY = {
    "students": "pupils",
    "employees": "staff",
    "contacts": "contacts",
    "groups": "groups",
    "classes": "groups",
}
"""Endpoints checked against ``/counts`` → the canonical entity their records become."""
DEFAULT_MAX_WITHHELD = 0.5

COUNT_MISSING_HINT = (
    "Wonde's /counts reply did not say how many records this endpoint has, so this read could not be "
    "checked for a lost last page (it was applied). If this repeats, check in Wonde that the app may "
    "read counts for this data, or tell your MIS Sync administrator."
)
STATUS_WITHHELD_HINT = (
    "Wonde sent no employment status for this member of staff (employment_details or its 'current' "
    "is null: Wonde sends null for a field the app may not read). The account is left as it is (not "
    "treated as a leaver). Ask the school's Wonde administrator to let this app read employees' "
    "employment details, including 'current'."
)
YEAR_MISSING_HINT = (
    "Wonde sent no year group for this pupil (neither the 'year' include nor education_details "
    "current_nc_year). Check the pupil's year group (NC year) in the MIS, or ask the school's Wonde "
    "administrator to let this app read students' year and education details."
)


def findings_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=SOURCE_FINDING_COLUMNS, dtype="string")


def joined(*frames: pd.DataFrame) -> pd.DataFrame:
    """Findings frames one after another (empty ones skipped, so dtypes stay string)."""
    parts = [f for f in frames if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else findings_frame([])


def declared_count(payload: Any, endpoint: str) -> int | None:
    """The total ``/counts`` reports for ``endpoint``, in any shape accepted (module docstring)."""
    for path in COUNT_PATHS:
        value = dig(payload, path.format(endpoint=endpoint))
        if value is not None:
            return as_int(value, "count", f"Wonde counts {endpoint}")
    return None


def check_counts(payload: Any, received: dict[str, int]) -> pd.DataFrame:
    """Raise ``TruncatedError`` when an endpoint sent fewer records than ``/counts`` reports (a record
    added during the read is not truncation, so more is fine); return a finding per count missing."""
    missing = []
    for endpoint, got in received.items():
        declared = declared_count(payload, endpoint)
        if declared is None:
            missing.append(endpoint)
        elif got < declared:
            raise TruncatedError(
                f"Wonde {endpoint}: truncated: {got} records received but /counts reports {declared}"
            )
    if missing:
        log.warning("Wonde /counts reported no total for %s: those reads were not checked", missing)
    return findings_frame(
        [
            {
                "entity": COUNTED_ENTITY.get(e, e),
                "mis_id": "",
                "field": f"{e} count",
                "rule": "source_count_missing",
                "severity": "warning",
                "hint": COUNT_MISSING_HINT,
            }
            for e in missing
        ]
    )


def max_withheld(setting: Any) -> float:
    try:
        value = float(DEFAULT_MAX_WITHHELD if setting is None else setting)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 <= value <= 1:
        from mis_sync.errors import SetupError

        raise SetupError(f"Wonde option max_withheld_fraction must be a number from 0 to 1, not {setting!r}")
    return value


def stop_if_school_wide(withheld: int, total: int, limit: float, *, what: str, permission: str) -> None:
    """A pattern, not a few records: the app lacks a permission, so stop before anything is planned."""
    if total and withheld / total > limit:
        raise ApiPermissionError(
            f"Wonde {what}: withheld (null) for {withheld} of {total} records ({withheld / total:.0%}, "
            f"above the {limit:.0%} limit, option max_withheld_fraction). Wonde sends null for fields "
            f"the app is not allowed to read: ask the school's Wonde administrator to grant this app "
            f"{permission} in Wonde's data permissions, then run again. Nothing was changed."
        )


def staff_status(current: pd.Series, start: pd.Series, snapshot: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """Canonical ``enrolment_status`` per employee and a mask of those whose status Wonde withheld.

    ``current`` true → on roll; false → pre-admission when the start date is after the snapshot, else
    leaver; null (withheld) → a placeholder ``on_roll`` that never reaches the plan: the record is
    quarantined by its ``status_withheld`` finding and held as it is in the directory."""
    text = current.astype("string").str.lower()
    withheld = text.isna().to_numpy(dtype=bool)
    future = (start > snapshot.tz_convert(None).normalize()).fillna(False).to_numpy(dtype=bool)
    status = pd.Series("leaver", index=current.index, dtype=object)
    status[future] = "pre_admission"
    status[(text == "true").fillna(False).to_numpy(dtype=bool) | withheld] = "on_roll"
    return status, pd.Series(withheld, index=current.index)


def withheld_staff_findings(ids: pd.Series) -> pd.DataFrame:
    return findings_frame(
        [
            {
                "entity": "staff",
                "mis_id": str(i),
                "field": "enrolment_status",
                "rule": "status_withheld",
                "severity": "error",
                "hint": STATUS_WITHHELD_HINT,
            }
            for i in ids
        ]
    )


def pupil_year(records: list[dict[str, Any]]) -> list[Any]:
    """Each pupil's year as Wonde sent it: ``year.data.code``, else ``year.data.name``, else
    ``education_details.data.current_nc_year``; None when all are null (normalised later)."""
    out = []
    for record in records:
        year = next(
            (
                v
                for v in (
                    dig(record, "year.data.code"),
                    dig(record, "year.data.name"),
                    dig(record, "education_details.data.current_nc_year"),
                )
                if v is not None and str(v).strip()
            ),
            None,
        )
        out.append(year)
    return out


def missing_year_findings(ids: pd.Series) -> pd.DataFrame:
    return findings_frame(
        [
            {
                "entity": "pupils",
                "mis_id": str(i),
                "field": "year_group",
                "rule": "year_group_missing",
                "severity": "warning",
                "hint": YEAR_MISSING_HINT,
            }
            for i in ids
        ]
    )


__all__ = [
    "COUNTED_ENTITY",
    "check_counts",
    "declared_count",
    "joined",
    "max_withheld",
    "missing_year_findings",
    "pupil_year",
    "staff_status",
    "stop_if_school_wide",
    "withheld_staff_findings",
]
