"""Create mode planning: MIS extract + directory state → a plan of changes, each with its reason.

Pure and vectorised: the directory state comes in as DataFrames (``directory.state``), the plan goes
out as DataFrames that ``apply`` writes in one transaction. Computing the plan separately lets a
``dry_run`` store it for review and lets the deletion brake (``brake``) hold the destructive part.
Accounts and their lifecycle are planned in ``accounts``; groups and memberships here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mis_sync import brake
from mis_sync.accounts import as_of_day, desired_users, parent_notes, plan_linked_users, plan_users
from mis_sync.config import Establishment
from mis_sync.directory_state import (  # noqa: F401  (re-exported for callers of mis_sync.plan)
    GROUP_FIELDS,
    GROUP_KEY,
    GROUP_PLAN_COLUMNS,
    MEMBERSHIP_KEY,
    MEMBERSHIP_PLAN_COLUMNS,
    USER_FIELDS,
    USER_KEY,
    USER_PLAN_COLUMNS,
    DirectoryState,
    changed_fields,
    empty_frame,
)
from mis_sync.identity.plan import continue_identities
from mis_sync.model import Extract, MemberRole


@dataclass
class Plan:
    users: pd.DataFrame
    groups: pd.DataFrame
    memberships: pd.DataFrame
    base_revision: int
    snapshot_at: pd.Timestamp
    skipped_reason: str | None = None
    held_reason: str | None = None
    notes: dict[str, int] = field(default_factory=dict)
    """Counts the school should know about (e.g. parents without an email)."""
    identities: pd.DataFrame | None = None
    """Identity fingerprints to store (``identity.keys``; people whose set changed). None: leave as is."""
    identity_pending: pd.DataFrame | None = None
    """Ambiguous re-key pairs waiting for an admin (``identity.matching.AMBIGUOUS_COLUMNS``)."""
    losses: dict[str, int] = field(default_factory=dict)
    """Destructive changes this plan applies, per brake scope (the rolling window's memory)."""
    window_reset: bool = False
    """An approval let over-limit changes through: the window restarts after this run."""

    def summary(self) -> dict[str, object]:
        """Counts only (safe for logs and XCom). ``users_by_role`` counts what apply will write;
        ``held_by_role`` what waits for approval."""
        users = self.users
        held = users["held"].astype(bool) if len(users) else pd.Series(dtype=bool)
        groups_held, memberships_held = held_rows(self.groups), held_rows(self.memberships)
        return {
            "users": _counts(users.loc[~held, "action"]) if len(users) else {},
            "users_by_role": _counts_by_role(users[~held]) if len(users) else {},
            "held_by_role": _counts_by_role(users[held]) if len(users) else {},
            "users_held": int(held.sum()) if len(users) else 0,
            "groups": _counts(self.groups.loc[~groups_held, "action"]),
            "memberships": _counts(self.memberships.loc[~memberships_held, "action"]),
            "groups_held": _counts(self.groups.loc[groups_held, "action"]),
            "memberships_held": _counts(self.memberships.loc[memberships_held, "action"]),
            "held_changes": int(held.sum()) + int(groups_held.sum()) + int(memberships_held.sum()),
            "skipped_reason": self.skipped_reason,
            "held_reason": self.held_reason,
            "notes": dict(self.notes),
            "losses": dict(self.losses),
            "window_reset": self.window_reset,
        }

    @property
    def change_count(self) -> int:
        applied_users = int((~self.users["held"]).sum()) if len(self.users) else 0
        return (
            applied_users + int((~held_rows(self.groups)).sum()) + int((~held_rows(self.memberships)).sum())
        )


def held_rows(frame: pd.DataFrame) -> pd.Series:
    """The rows the brake held (plans written before groups and memberships could be held have none)."""
    if "held" not in frame or frame.empty:
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame["held"].fillna(False).astype(bool)


def _counts(actions: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in actions.value_counts().items()}


def _counts_by_role(users: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {str(role): _counts(rows["action"]) for role, rows in users.groupby("role")}


QUARANTINE_KINDS = {"pupils": "pupil", "staff": "staff", "contacts": "contact"}


def held_records(quarantined: pd.DataFrame | None) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """People and groups quarantined by data quality: (person_kind, mis_id) pairs and group ids.

    Their directory records are left as they are: a record with an error is not a leaver, and its
    groups and memberships must not be torn down until the school fixes it.
    """
    if quarantined is None or quarantined.empty:
        return frozenset(), frozenset()
    people = quarantined[quarantined["entity"].isin(list(QUARANTINE_KINDS))]
    pairs = frozenset(zip(people["entity"].map(QUARANTINE_KINDS), people["mis_id"], strict=True))
    groups = frozenset(quarantined.loc[quarantined["entity"] == "groups", "mis_id"])
    return pairs, groups


def held_membership_pairs(quarantined: pd.DataFrame | None) -> frozenset[tuple[str, str]]:
    """(group MIS id, person MIS id) of memberships quarantined for their own fault (an unknown role
    code, say): what the directory has for that pair stays as it is until the MIS is fixed."""
    if quarantined is None or quarantined.empty:
        return frozenset()
    own = quarantined[(quarantined["entity"] == "memberships") & (quarantined["cause"] == "error")]
    keys = (str(key).rsplit("/", 2) for key in own["mis_id"])  # group/person/role; group ids may hold "/"
    return frozenset((parts[0], parts[1]) for parts in keys if len(parts) == 3)


def keep_held_memberships(memberships: pd.DataFrame, held: frozenset[tuple[str, str]]) -> pd.DataFrame:
    """The membership plan without removals of held (quarantined) membership pairs."""
    if not held or memberships.empty:
        return memberships
    pairs = pd.Series(
        list(zip(memberships["group_mis_id"], memberships["person_mis_id"], strict=True)),
        index=memberships.index,
    )
    return memberships[~((memberships["action"] == "remove") & pairs.isin(held))].reset_index(drop=True)


def plan_groups(
    extract: Extract, state: DirectoryState, held_groups: frozenset[str] = frozenset()
) -> pd.DataFrame:
    desired = extract.tables["groups"][[*GROUP_KEY, *GROUP_FIELDS]].astype("string")
    current = state.groups
    merged = desired.merge(current, on=GROUP_KEY, how="outer", suffixes=("_new", "_old"), indicator=True)
    out_columns = GROUP_PLAN_COLUMNS
    merged["group_id"] = merged["id"].astype("Int64") if "id" in merged else pd.NA
    side = {name: merged[f"{name}_new"].fillna(merged[f"{name}_old"]) for name in GROUP_FIELDS}
    result = merged[[*GROUP_KEY, "group_id"]].assign(**side)
    result["changed_fields"] = changed_fields(merged, GROUP_FIELDS) if len(merged) else ""
    action = pd.Series(pd.NA, index=merged.index, dtype="string")
    reason = pd.Series(pd.NA, index=merged.index, dtype="string")
    in_mis = merged["_merge"] != "right_only"
    status = merged["status"] if "status" in merged else pd.Series(pd.NA, index=merged.index)
    action[merged["_merge"] == "left_only"], reason[merged["_merge"] == "left_only"] = "create", "new in MIS"
    archived = (merged["_merge"] == "both") & (status == "archived")
    action[archived], reason[archived] = "restore", "back in MIS"
    changed = (merged["_merge"] == "both") & ~archived & (result["changed_fields"] != "")
    action[changed], reason[changed] = "update", "MIS data changed"
    gone = ~in_mis & (status == "active") & ~merged["mis_id"].isin(held_groups)
    action[gone], reason[gone] = "archive", "no longer in MIS"
    result["action"], result["reason"] = action, reason
    out = result[result["action"].notna()][out_columns].reset_index(drop=True)
    return out.assign(held=False)


def desired_memberships(extract: Extract, users: pd.DataFrame) -> pd.DataFrame:
    """Memberships of people who hold an active account, in groups of the extract."""
    memberships = extract.tables["memberships"]
    groups = extract.tables["groups"][["mis_id", "academic_year"]].rename(columns={"mis_id": "group_id"})
    joined = memberships.merge(groups, on="group_id", how="inner")
    is_pupil = joined["role"] == MemberRole.PUPIL.value
    out = pd.DataFrame(
        {
            "group_mis_id": joined["group_id"],
            "academic_year": joined["academic_year"],
            "person_kind": is_pupil.map({True: "pupil", False: "staff"}),
            "person_mis_id": joined["person_id"],
            "role": is_pupil.map({True: "member", False: "teacher"}),
        }
    ).astype("string")
    active = users[USER_KEY].rename(columns={"mis_id": "person_mis_id"})
    return out.merge(active, on=["person_kind", "person_mis_id"], how="inner").drop_duplicates()


def plan_memberships(
    desired: pd.DataFrame,
    state: DirectoryState,
    held_people: frozenset[tuple[str, str]] = frozenset(),
    held_groups: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    merged = desired.merge(state.memberships, on=MEMBERSHIP_KEY, how="outer", indicator=True)
    if held_people or held_groups:
        person = pd.Series(
            list(zip(merged["person_kind"], merged["person_mis_id"], strict=True)), index=merged.index
        )
        held = person.isin(held_people) | merged["group_mis_id"].isin(held_groups)
        merged = merged[~(held & (merged["_merge"] == "right_only"))]
    adds = merged[merged["_merge"] == "left_only"][MEMBERSHIP_KEY].assign(action="add", reason="in MIS group")
    removes = merged[merged["_merge"] == "right_only"][MEMBERSHIP_KEY].assign(
        action="remove", reason="not in MIS group"
    )
    return pd.concat([adds, removes], ignore_index=True)[MEMBERSHIP_PLAN_COLUMNS].assign(held=False)


def older_snapshot_reason(snapshot_at: pd.Timestamp, last_applied: pd.Timestamp | None) -> str | None:
    """Why a snapshot must not be applied, or None: a backfill or late retry must not roll back."""
    if last_applied is None or snapshot_at >= last_applied:
        return None
    return (
        f"MIS snapshot {snapshot_at.isoformat()} is older than the one already applied "
        f"({last_applied.isoformat()}); nothing applied so the directory is not rolled back"
    )


def empty_plan(state: DirectoryState, snapshot_at: pd.Timestamp, reason: str) -> Plan:
    return Plan(
        users=empty_frame(USER_PLAN_COLUMNS).assign(held=pd.Series(dtype=bool)),
        groups=empty_frame(GROUP_PLAN_COLUMNS).assign(held=pd.Series(dtype=bool)),
        memberships=empty_frame(MEMBERSHIP_PLAN_COLUMNS).assign(held=pd.Series(dtype=bool)),
        base_revision=state.revision,
        snapshot_at=snapshot_at,
        skipped_reason=reason,
    )


def make_plan(
    extract: Extract,
    state: DirectoryState,
    config: Establishment,
    *,
    approve_suspensions: bool = False,
    quarantined: pd.DataFrame | None = None,
    links: pd.DataFrame | None = None,
    window: brake.Window | None = None,
) -> Plan:
    """``links`` (Link mode): the matching run's ``linked`` rows; only those accounts are managed.

    ``window``: the losses earlier runs applied within ``safety.window_days`` (``brake.window``). When
    the brake trips, every destructive change — suspensions, deletions, group archives, membership
    removals — is marked ``held`` and left untouched by apply: a person whose suspension is held keeps
    all their memberships, and a held group keeps its members. ``approve_suspensions`` applies them.
    """
    if reason := older_snapshot_reason(extract.snapshot_at, state.last_snapshot_at):
        return empty_plan(state, extract.snapshot_at, reason)
    as_of = as_of_day(extract)
    wanted_users = desired_users(extract, config)
    held_people, held_groups = held_records(quarantined)
    continuity = None
    if config.mode == "link":
        if links is None:
            raise ValueError("Link mode needs the matching run's links")
        users = plan_linked_users(wanted_users, links, state)
        wanted_users = wanted_users.merge(links[USER_KEY].astype("string"), on=USER_KEY, how="inner")
    else:
        users = plan_users(wanted_users, state, config, as_of, held_people)
        continuity = continue_identities(
            users, extract, wanted_users, state, config, held_people=held_people, approve=approve_suspensions
        )
        users, state = continuity.users, continuity.state
        held_people = held_people | continuity.held_people
        wanted_users = wanted_users[~_keys_in(wanted_users, continuity.without_account)]
    groups = plan_groups(extract, state, held_groups)
    memberships = keep_held_memberships(
        plan_memberships(desired_memberships(extract, wanted_users), state, held_people, held_groups),
        held_membership_pairs(quarantined),
    )
    years = extract.tables["groups"]["academic_year"].dropna()
    decision = brake.evaluate_plan(
        users,
        groups,
        memberships,
        state,
        as_of.date(),
        config.safety,
        country=config.country,
        current_year=str(years.max()) if len(years) else None,
        window=window,
    )
    held_reason, losses = None, decision.losses
    if decision.held and not approve_suspensions:
        users.loc[users["action"].isin(brake.DESTRUCTIVE), "held"] = True
        groups.loc[groups["action"] == "archive", "held"] = True
        memberships.loc[memberships["action"] == "remove", "held"] = True
        held_reason, losses = decision.message, {}
    notes = parent_notes(extract, as_of) if config.accounts.invite_parents else {}
    if continuity is not None:
        held_reason = " ".join(r for r in (held_reason, continuity.held_reason) if r) or None
        notes = {**notes, **continuity.notes}
    return Plan(
        users=users,
        groups=groups,
        memberships=memberships,
        base_revision=state.revision,
        snapshot_at=extract.snapshot_at,
        held_reason=held_reason,
        notes=notes,
        identities=None if continuity is None else continuity.fingerprints,
        identity_pending=None if continuity is None else continuity.ambiguous,
        losses=losses,
        window_reset=decision.held and approve_suspensions,
    )


def _keys_in(frame: pd.DataFrame, pairs: frozenset[tuple[str, str]]) -> pd.Series:
    if not pairs:
        return pd.Series(False, index=frame.index)
    keys = pd.Series(list(zip(frame["person_kind"], frame["mis_id"], strict=True)), index=frame.index)
    return keys.isin(pairs)
