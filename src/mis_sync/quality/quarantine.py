"""Quarantine: split an extract into what may be applied and what is held back.

Rules (``severity`` from the suites):

- a row with at least one **error** finding is removed from its table;
- rows that hang off a removed record go with it: memberships of a removed pupil (role ``pupil``),
  staff member (role ``teacher``) or group; relationships of a removed pupil or contact;
- a pupil whose registration group is removed, or unknown (``registration_group_unknown``, a
  warning), stays but loses the reference (``registration_group_id`` becomes empty);
- **warnings** change nothing else: the record is applied and the field flagged in the report.

The result lists every removed row (``QUARANTINE_COLUMNS``) so the plan can hold those records as they
are in the directory instead of treating them as gone.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from mis_sync.model import ENTITIES, Extract, MemberRole
from mis_sync.quality.rules import derive_keys

QUARANTINE_COLUMNS: Final = ["entity", "mis_id", "row", "cause"]
"""``cause`` is ``error`` (the row's own finding) or ``follows <entity>`` (removed with a record)."""


def _rows_with_errors(findings: pd.DataFrame, entity: str, size: int) -> np.ndarray:
    errors = findings[(findings["entity"] == entity) & (findings["severity"] == "error")]
    mask = np.zeros(size, dtype=bool)
    mask[errors["row"].to_numpy(dtype=np.int64)] = True
    return mask


def _removed_ids(frame: pd.DataFrame, mask: np.ndarray) -> set[str]:
    return set(frame.loc[mask, "mis_id"].dropna())


def _listing(name: str, frame: pd.DataFrame, mask: np.ndarray, cause: np.ndarray) -> pd.DataFrame:
    rows = np.flatnonzero(mask)
    keys = derive_keys(name, frame, rows)
    return pd.DataFrame({"entity": name, "mis_id": keys, "row": rows, "cause": cause[rows]})


def _hits(series: pd.Series, ids: set[str]) -> np.ndarray:
    if not ids:
        return np.zeros(len(series), dtype=bool)
    return series.astype(object).isin(ids).to_numpy(dtype=bool)


def quarantine(extract: Extract, findings: pd.DataFrame) -> tuple[Extract, pd.DataFrame]:
    """Return the clean extract (rows renumbered from 0) and the removed rows (``QUARANTINE_COLUMNS``).

    ``findings`` must come from this extract (its ``row`` numbers index the extract's tables).
    The input extract is not modified.
    """
    t = extract.tables
    own = {name: _rows_with_errors(findings, name, len(t[name])) for name in ENTITIES}
    removed = {name: _removed_ids(t[name], own[name]) for name in ("pupils", "staff", "contacts", "groups")}

    follows: dict[str, np.ndarray] = {name: np.full(len(t[name]), "", dtype=object) for name in ENTITIES}
    memberships, relationships = t["memberships"], t["relationships"]
    pupil_role = (memberships["role"] == MemberRole.PUPIL.value).fillna(False).to_numpy(dtype=bool)
    teacher_role = (memberships["role"] == MemberRole.TEACHER.value).fillna(False).to_numpy(dtype=bool)
    cascades = {
        "memberships": (
            ("follows groups", _hits(memberships["group_id"], removed["groups"])),
            ("follows pupils", pupil_role & _hits(memberships["person_id"], removed["pupils"])),
            ("follows staff", teacher_role & _hits(memberships["person_id"], removed["staff"])),
        ),
        "relationships": (
            ("follows pupils", _hits(relationships["pupil_id"], removed["pupils"])),
            ("follows contacts", _hits(relationships["contact_id"], removed["contacts"])),
        ),
    }
    for name, rules in cascades.items():
        for cause, hit in rules:
            follows[name][hit & (follows[name] == "")] = cause

    tables: dict[str, pd.DataFrame] = {}
    listings = []
    for name in ENTITIES:
        frame = t[name]
        drop = own[name] | (follows[name] != "")
        if drop.any():
            listings.append(_listing(name, frame, drop, np.where(own[name], "error", follows[name])))
            frame = frame.loc[~drop].reset_index(drop=True)
        tables[name] = frame

    tables["pupils"] = _clear_registration_groups(t["pupils"], own["pupils"], findings, removed["groups"])
    clean = Extract(tables=tables, snapshot_at=extract.snapshot_at, source=extract.source)
    if listings:
        listing = pd.concat(listings, ignore_index=True)
    else:
        listing = pd.DataFrame({c: pd.Series([], dtype=object) for c in QUARANTINE_COLUMNS})
    listing = listing.astype({"entity": "string", "mis_id": "string", "cause": "string", "row": "int64"})
    return clean, listing


def _clear_registration_groups(
    pupils: pd.DataFrame, dropped: np.ndarray, findings: pd.DataFrame, removed_groups: set[str]
) -> pd.DataFrame:
    """The kept pupils, with registration groups that are unknown or quarantined cleared."""
    unknown = findings[(findings["entity"] == "pupils") & (findings["rule"] == "registration_group_unknown")]
    clear = np.zeros(len(pupils), dtype=bool)
    clear[unknown["row"].to_numpy(dtype=np.int64)] = True
    clear |= _hits(pupils["registration_group_id"], removed_groups)
    clear &= ~dropped
    if not dropped.any() and not clear.any():
        return pupils
    kept = pupils.loc[~dropped].reset_index(drop=True)
    if clear.any():
        kept.loc[clear[~dropped], "registration_group_id"] = pd.NA
    return kept
