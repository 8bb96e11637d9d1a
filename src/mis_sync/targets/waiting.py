"""Users a target cannot take yet, so their memberships wait instead of failing (or costing calls)
every night. For adapters that say so (``waits_for_users``: Google Classroom):

- **unresolved**: the look-up found no account (Classroom's ``userProfiles.get`` answers 403
  PERMISSION_DENIED when no profile exists). Listed once in the run folder when first seen; looked up
  again only when the directory's record of the user changes (``directory_marks``: a new status, role,
  name or year group, e.g. the account was just provisioned or reinstated), or at the weekly drift
  check (an account made outside MIS Sync, e.g. by Google Cloud Directory Sync, is seen within a week).
- **suspended**: an add was answered "the account is disabled". Counted ``pending``, not failed. Each
  night one of the user's adds is sent as a probe; when it goes through, the account is active again and
  the user's other adds follow in the same run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from mis_sync.targets.desired import principals
from mis_sync.targets.engine import Engine, Op, Outcome

MARK_FIELDS = ["status", "role", "first_name", "last_name", "display_name", "year_group", "suspended_at"]


def waits_for_users(engine: Engine) -> bool:
    return bool(getattr(engine.adapter, "waits_for_users", False))


def directory_marks(users: pd.DataFrame, domain: str) -> dict[str, str]:
    """Principal name → a short hash of what the directory says about the user (no names leave it)."""
    if not len(users):
        return {}
    parts = users[MARK_FIELDS].astype("string").fillna("").agg("\x1f".join, axis=1)
    digests = [hashlib.sha256(p.encode()).hexdigest()[:16] for p in parts]
    return dict(zip(principals(users["username"], domain), digests, strict=True))


def still_unresolved(waiting: pd.DataFrame, marks: dict[str, str]) -> set[str]:
    """Waiting unresolved users the directory says nothing new about: not looked up again."""
    unresolved = waiting[waiting["reason"] == "unresolved"]
    return {
        str(key)
        for key, mark in zip(unresolved["user_key"], unresolved["directory_hash"], strict=True)
        if marks.get(str(key)) == (None if pd.isna(mark) else str(mark))
    }


@dataclass
class PendingAdds:
    """A chunk's adds split by the users' suspension: everyone else's go at once, with one probe per
    suspended user; the rest of a suspended user's adds follow only if the probe goes through."""

    now: list[Op] = field(default_factory=list)
    held: dict[str, list[Op]] = field(default_factory=dict)

    @classmethod
    def split(cls, ops: Sequence[Op], suspended: set[str]) -> PendingAdds:
        out = cls()
        for op in ops:
            key = str(op.user_key)
            if op.action == "add" and key in out.held:
                out.held[key].append(op)
                continue
            out.now.append(op)  # other changes, everyone's adds, and a suspended user's first (the probe)
            if op.action == "add" and key in suspended:
                out.held[key] = []
        return out

    def settle(
        self,
        engine: Engine,
        results: dict[str, Outcome],
        record: Callable[[list[tuple[Op, Outcome]]], None],
    ) -> tuple[set[str], set[str], int]:
        """After the first round: send the held adds of users whose probe went through.
        Returns (users pending now, suspended users active again, adds pending or held back)."""
        pending = {str(op.user_key) for op in self.now if results[op.id].status == "pending"}
        if not self.held and not pending:
            return set(), set(), 0
        active = set(self.held) - pending
        follow = [op for key in sorted(active) for op in self.held[key]]
        more = engine.run(follow, record) if follow else {}
        pending |= {str(op.user_key) for op in follow if more[op.id].status == "pending"}
        answered = sum(results[op.id].status == "pending" for op in self.now)
        answered += sum(outcome.status == "pending" for outcome in more.values())
        held_back = sum(len(ops) for key, ops in self.held.items() if key not in active)
        return pending, active - pending, answered + held_back
