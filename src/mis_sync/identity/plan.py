"""Identity continuity in the plan: re-key instead of create + suspend (Create mode).

When an MIS re-keys its records, or a school moves MIS, a pupil's record comes back under a new id
with the same UPN, date of birth and names. Planned naively that is a new account (``mbrowne1``) and a
suspended one that loses its classes. Here, after ``accounts.plan_users``:

- each match (``identity.matching``) replaces the create and the suspend (or delete) with one
  **rekey** row: the account (same user id, username, password, history) takes the new MIS id and the
  new record's fields, and is active again if it was suspended;
- each ambiguous pair drops both the create and the suspend: nothing happens to either until an
  admin decides (``misync identity decide``);
- more re-keys than the brake's limits (``safety.max_suspend_count`` and ``max_suspend_fraction`` per
  role, as for suspensions) is an MIS migration: the re-keys are held for approval, with a summary;
  until then the accounts and their memberships are untouched and the new records get no account;
- memberships are keyed by the person's MIS id, so the directory's memberships of a re-keyed account
  are read under its new id: nothing is removed and added again, here or in any target (targets know
  users by username).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from mis_sync.config import Establishment
from mis_sync.directory_state import USER_KEY, DirectoryState
from mis_sync.identity.keys import FINGERPRINT_COLUMNS, changed_fingerprints, fingerprints
from mis_sync.identity.matching import AMBIGUOUS_COLUMNS, Matches, effective_decisions, match
from mis_sync.model import Extract

ELIGIBLE = ("active", "suspended")
"""Account statuses that can be re-keyed (a deleted account's fingerprints went with its data)."""


@dataclass
class Continuity:
    users: pd.DataFrame
    """The user plan with creates and suspends of matched and ambiguous pairs replaced."""
    state: DirectoryState
    """The directory state with re-keyed accounts' memberships under their new MIS ids."""
    held_people: frozenset[tuple[str, str]] = frozenset()
    """Accounts (kind, MIS id) whose memberships must not be removed (held re-keys, ambiguous pairs)."""
    without_account: frozenset[tuple[str, str]] = frozenset()
    """New records (kind, MIS id) that get no account and no memberships this run."""
    fingerprints: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FINGERPRINT_COLUMNS))
    """Fingerprints to store (people whose set changed), keyed by the MIS id after this plan."""
    ambiguous: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=AMBIGUOUS_COLUMNS))
    held_reason: str | None = None
    notes: dict[str, int] = field(default_factory=dict)


def _pairs(frame: pd.DataFrame, column: str) -> frozenset[tuple[str, str]]:
    return frozenset(zip(frame["person_kind"], frame[column], strict=True))


def _in(frame: pd.DataFrame, pairs: frozenset[tuple[str, str]], column: str = "mis_id") -> pd.Series:
    keys = pd.Series(list(zip(frame["person_kind"], frame[column], strict=True)), index=frame.index)
    return keys.isin(pairs)


def _rekey_rows(users: pd.DataFrame, state: DirectoryState, rekeys: pd.DataFrame) -> pd.DataFrame:
    """One ``rekey`` row per match: the new record's fields (from its create row) on the old account."""
    creates = users[users["action"] == "create"].drop(columns=["user_id", "username"])
    accounts = state.users[["person_kind", "mis_id", "id", "username", "status"]].rename(
        columns={"mis_id": "old_mis_id", "id": "user_id"}
    )
    rows = rekeys.merge(accounts, on=["person_kind", "old_mis_id"]).merge(
        creates.rename(columns={"mis_id": "new_mis_id"}), on=["person_kind", "new_mis_id"]
    )
    rows["previous"] = [
        json.dumps({"mis_id": old, "status": status})
        for old, status in zip(rows["old_mis_id"], rows["status"], strict=True)
    ]
    rows["mis_id"], rows["action"], rows["changed_fields"] = rows["new_mis_id"], "rekey", "mis_id"
    rows["reason"] = "same person, new MIS id (" + rows["rule"].astype(str) + ")"
    rows["held"] = False
    return rows[users.columns]


def _rekey_brake(rekeys: pd.DataFrame, state: DirectoryState, config: Establishment) -> str | None:
    """Why the automatic re-keys must wait for approval (an MIS migration), or None."""
    automatic = rekeys[rekeys["rule"] != "admin"]
    if automatic.empty:
        return None
    limits = config.safety
    roles = state.users.set_index(["person_kind", "mis_id"])["role"]
    active = state.users[state.users["status"] == "active"].groupby("role").size()
    role_of = roles.reindex(pd.MultiIndex.from_frame(automatic[["person_kind", "old_mis_id"]])).to_numpy()
    reasons = []
    for role, count in pd.Series(role_of).value_counts().items():
        base = int(active.get(role, 0))
        share = count / max(base, 1)
        if count > limits.max_suspend_count and share > limits.max_suspend_fraction:
            reasons.append(f"{role}: {count} of {base} ({share:.0%})")
    if not reasons:
        return None
    by_rule = ", ".join(f"{rule} {n}" for rule, n in automatic["rule"].value_counts().sort_index().items())
    return (
        "MIS ids changed for many accounts (an MIS migration or re-keying?): "
        + "; ".join(reasons)
        + f" would be re-keyed (matched by {by_rule}). Until approved these accounts keep their old MIS ids"
        " and classes and the new records get no account; approve in the Airflow UI (or trigger with"
        " approve_suspensions)."
    )


def continue_identities(
    users: pd.DataFrame,
    extract: Extract,
    desired: pd.DataFrame,
    state: DirectoryState,
    config: Establishment,
    *,
    held_people: frozenset[tuple[str, str]] = frozenset(),
    approve: bool = False,
) -> Continuity:
    """Replace create + suspend of the same person with a re-key (see the module docstring)."""
    wanted_prints = fingerprints(extract, config.id, desired[USER_KEY])
    stored = state.identities
    current = state.users[["person_kind", "mis_id", "status", "username"]]
    in_mis = _pairs(desired, "mis_id")
    accounts = _pairs(current, "mis_id")
    new = wanted_prints[~_in(wanted_prints, accounts)]
    protected = set(config.accounts.protected_usernames)
    gone = current[
        ~_in(current, in_mis) & current["status"].isin(ELIGIBLE) & ~current["username"].isin(protected)
    ]
    gone = gone[~_in(gone, held_people)]
    vanished = stored.merge(gone[USER_KEY], on=USER_KEY)
    present = stored.merge(current[_in(current, in_mis)][USER_KEY], on=USER_KEY)
    found: Matches = match(new, vanished, present, effective_decisions(state.identity_decisions))

    rekeys, ambiguous = found.rekeys, found.ambiguous
    held_reason = None if approve else _rekey_brake(rekeys, state, config)
    rows = _rekey_rows(users, state, rekeys)
    if held_reason:
        rows["held"] = ~rows["reason"].str.endswith("(admin)")  # an admin's "same" is already a decision
    held_rekeys = rows[rows["held"]]
    rekey_old = _pairs(rekeys, "old_mis_id")
    rekey_new = _pairs(rekeys, "new_mis_id")
    unclear_old = _pairs(ambiguous, "old_mis_id") - _pairs(present, "mis_id")
    unclear_new = _pairs(ambiguous, "new_mis_id")

    drop_create = (users["action"] == "create") & _in(users, rekey_new | unclear_new)
    drop_leaver = users["action"].isin(["suspend", "delete"]) & _in(users, rekey_old | unclear_old)
    planned = pd.concat([users[~(drop_create | drop_leaver)], rows], ignore_index=True)
    planned["user_id"] = planned["user_id"].astype("Int64")
    planned["held"] = planned["held"].astype(bool)

    applied = rows[~rows["held"]]
    old_keys = zip(applied["person_kind"], json_old(applied), strict=True)
    renamed = dict(zip(old_keys, applied["mis_id"], strict=True))
    memberships = state.memberships.copy()
    if renamed:
        keys = list(zip(memberships["person_kind"], memberships["person_mis_id"], strict=True))
        memberships["person_mis_id"] = pd.Series(
            [renamed.get(k, m) for k, m in zip(keys, memberships["person_mis_id"], strict=True)],
            index=memberships.index,
            dtype="string",
        )
    held_old = frozenset(zip(held_rekeys["person_kind"], json_old(held_rekeys), strict=True))
    held_new = _pairs(held_rekeys, "mis_id")
    stored_now = _stored_under_new_ids(stored, renamed)
    return Continuity(
        users=planned.reset_index(drop=True),
        state=_with_memberships(state, memberships),
        held_people=held_old | unclear_old,
        without_account=held_new | unclear_new,
        fingerprints=changed_fingerprints(
            wanted_prints[~_in(wanted_prints, held_new | unclear_new)], stored_now
        ),
        ambiguous=ambiguous,
        held_reason=held_reason,
        notes={  # only what happened: a quiet night adds nothing to the report
            name: count
            for name, count in (
                ("identity_rekeyed", len(applied)),
                ("identity_rekeys_held", len(held_rekeys)),
                ("identity_ambiguous_pairs", len(ambiguous)),
            )
            if count
        },
    )


def json_old(rows: pd.DataFrame) -> list[str]:
    """The old MIS id of each rekey row (kept in its ``previous`` JSON for the audit log)."""
    return [json.loads(previous)["mis_id"] for previous in rows["previous"]]


def _stored_under_new_ids(stored: pd.DataFrame, renamed: dict[tuple[str, str], str]) -> pd.DataFrame:
    if not renamed or stored.empty:
        return stored
    keys = zip(stored["person_kind"], stored["mis_id"], strict=True)
    return stored.assign(mis_id=[renamed.get(k, k[1]) for k in keys])


def _with_memberships(state: DirectoryState, memberships: pd.DataFrame) -> DirectoryState:
    return DirectoryState(
        users=state.users,
        groups=state.groups,
        memberships=memberships,
        revision=state.revision,
        last_snapshot_at=state.last_snapshot_at,
        all_usernames=state.all_usernames,
        identities=state.identities,
        identity_decisions=state.identity_decisions,
    )


def describe_pending(pending: pd.DataFrame | None, limit: int = 20) -> str | None:
    """The ambiguous pairs for the task log, by MIS id only (the admin decides with ``misync identity``)."""
    if pending is None or pending.empty:
        return None
    columns = ["person_kind", "old_mis_id", "new_mis_id", "rule", "reason"]
    shown = [
        f"{k} {old}->{new} ({rule}, {why})"
        for k, old, new, rule, why in pending[columns].head(limit).itertuples(index=False)
    ]
    more = f" and {len(pending) - len(shown)} more" if len(pending) > len(shown) else ""
    return (
        f"identity: {len(pending)} ambiguous pair(s) wait for an admin (misync identity-report): "
        + "; ".join(shown)
        + more
    )
