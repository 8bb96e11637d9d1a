"""What the planner compares the MIS against: the directory's state, and the plan's column layout.

Kept apart from ``plan`` and ``accounts`` so both can use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

USER_FIELDS = ["role", "first_name", "last_name", "display_name", "email", "year_group"]
GROUP_FIELDS = ["kind", "name", "code", "subject", "year_group"]
USER_KEY = ["person_kind", "mis_id"]
GROUP_KEY = ["mis_id", "academic_year"]
MEMBERSHIP_KEY = ["group_mis_id", "academic_year", "person_kind", "person_mis_id", "role"]
USER_PLAN_COLUMNS = [
    "action",
    *USER_KEY,
    "user_id",
    "username",
    *USER_FIELDS,
    "changed_fields",
    "previous",
    "reason",
]
GROUP_PLAN_COLUMNS = ["action", *GROUP_KEY, "group_id", *GROUP_FIELDS, "changed_fields", "reason"]
MEMBERSHIP_PLAN_COLUMNS = ["action", *MEMBERSHIP_KEY, "reason"]
IDENTITY_COLUMNS = ["person_kind", "mis_id", "rule", "fingerprint"]
DECISION_COLUMNS = ["id", "person_kind", "old_mis_id", "new_mis_id", "decision", "decided_at"]


@dataclass
class DirectoryState:
    """The establishment's directory as the planner needs it (see ``directory.state.load_state``)."""

    users: pd.DataFrame
    """id, person_kind, mis_id, username, status, suspended_at + USER_FIELDS"""
    groups: pd.DataFrame
    """id, mis_id, academic_year, status + GROUP_FIELDS"""
    memberships: pd.DataFrame
    """MEMBERSHIP_KEY columns"""
    revision: int = 0
    last_snapshot_at: pd.Timestamp | None = None
    all_usernames: set[str] = field(default_factory=set)
    """Every username the establishment ever issued, deleted accounts' included: never reissued."""
    identities: pd.DataFrame = field(default_factory=lambda: empty_frame(IDENTITY_COLUMNS))
    """Fingerprints of accounts' people (``identity.keys``): person_kind, mis_id, rule, fingerprint."""
    identity_decisions: pd.DataFrame = field(default_factory=lambda: empty_frame(DECISION_COLUMNS))
    """Admin decisions about re-key pairs, in the order made (``identity.matching.effective_decisions``)."""


def empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


def changed_fields(merged: pd.DataFrame, fields: list[str]) -> pd.Series:
    """Comma-separated list of fields whose ``_new`` differs from ``_old`` (nulls compare equal).

    Built column by column on a NumPy object array: a row-wise ``DataFrame.apply`` cost ~0.1 ms a row,
    about half of a no-change re-run's planning time.
    """
    joined = np.full(len(merged), "", dtype=object)
    for name in fields:
        new, old = merged[f"{name}_new"].astype("string"), merged[f"{name}_old"].astype("string")
        changed = ~((new == old).fillna(False) | (new.isna() & old.isna()))
        flag = changed.to_numpy(dtype=bool)
        if flag.any():
            current = joined[flag]
            joined[flag] = np.where(current == "", name, current + ("," + name))
    return pd.Series(joined, index=merged.index, dtype="string")
