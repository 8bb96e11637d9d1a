"""Create mode planning: MIS extract + directory state → a plan of changes, each with its reason.

Pure and vectorised: the directory state comes in as DataFrames (``directory.state``), the plan goes
out as DataFrames that ``apply`` writes in one transaction. Computing the plan separately lets a
``dry_run`` store it for review and lets a safety brake hold the destructive part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from mis_sync.config import Establishment
from mis_sync.model import EnrolmentStatus, Extract, MemberRole
from mis_sync.usernames import allocate

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


@dataclass
class DirectoryState:
    """The establishment's directory as the planner needs it (see ``directory.state.load``)."""

    users: pd.DataFrame
    """id, person_kind, mis_id, username, status + USER_FIELDS"""
    groups: pd.DataFrame
    """id, mis_id, academic_year, status + GROUP_FIELDS"""
    memberships: pd.DataFrame
    """MEMBERSHIP_KEY columns"""
    revision: int = 0
    last_snapshot_at: pd.Timestamp | None = None
    all_usernames: set[str] = field(default_factory=set)


@dataclass
class Plan:
    users: pd.DataFrame
    groups: pd.DataFrame
    memberships: pd.DataFrame
    base_revision: int
    snapshot_at: pd.Timestamp
    skipped_reason: str | None = None
    held_reason: str | None = None

    def summary(self) -> dict[str, object]:
        """Counts only (safe for logs and XCom)."""
        users = self.users
        per_role = (
            users.groupby(["role", "action"]).size().unstack(fill_value=0).to_dict(orient="index")
            if len(users)
            else {}
        )
        return {
            "users": {str(k): int(v) for k, v in users["action"].value_counts().items()},
            "users_by_role": {
                str(role): {str(a): int(n) for a, n in actions.items()} for role, actions in per_role.items()
            },
            "users_held": int(users["held"].sum()) if len(users) else 0,
            "groups": {str(k): int(v) for k, v in self.groups["action"].value_counts().items()},
            "memberships": {str(k): int(v) for k, v in self.memberships["action"].value_counts().items()},
            "skipped_reason": self.skipped_reason,
            "held_reason": self.held_reason,
        }

    @property
    def change_count(self) -> int:
        applied_users = int((~self.users["held"]).sum()) if len(self.users) else 0
        return applied_users + len(self.groups) + len(self.memberships)


def _preferred(frame: pd.DataFrame, which: str, source: str) -> pd.Series:
    legal = frame[f"legal_{which}_name"]
    if source == "legal":
        return legal.fillna(frame[f"preferred_{which}_name"])
    return frame[f"preferred_{which}_name"].fillna(legal)


def desired_users(extract: Extract, config: Establishment) -> pd.DataFrame:
    """Who should hold an active account, with the fields the directory keeps."""
    as_of = extract.snapshot_at.tz_convert("Europe/London").tz_localize(None).normalize()
    wanted = [EnrolmentStatus.ON_ROLL.value]
    if config.accounts.create_pre_admission:
        wanted.append(EnrolmentStatus.PRE_ADMISSION.value)

    frames = []
    for kind, table, policy in (
        ("pupil", extract.tables["pupils"], config.usernames.pupil),
        ("staff", extract.tables["staff"], config.usernames.staff),
    ):
        current = table["enrolment_status"].isin(wanted) & ~(table["leaving_date"] <= as_of).fillna(False)
        people = table[current]
        if kind == "pupil":
            role = pd.Series("pupil", index=people.index)
            year_group = people["year_group"]
        else:
            teaching = people["is_teaching"].fillna(False).astype(bool)
            role = teaching.map({True: "teaching_staff", False: "non_teaching_staff"})
            if not config.accounts.include_non_teaching_staff:
                people, role = people[teaching], role[teaching]
            year_group = pd.Series(pd.NA, index=people.index, dtype="string")
        first = _preferred(people, "first", policy.name_source)
        last = _preferred(people, "last", policy.name_source)
        frames.append(
            pd.DataFrame(
                {
                    "person_kind": kind,
                    "mis_id": people["mis_id"],
                    "role": role,
                    "first_name": first,
                    "last_name": last,
                    "display_name": (first.fillna("") + " " + last.fillna("")).str.strip(),
                    "email": people["email"],
                    "year_group": year_group,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype("string")


def _changed_fields(merged: pd.DataFrame, fields: list[str]) -> pd.Series:
    """Comma-separated list of fields whose ``_new`` differs from ``_old`` (nulls compare equal)."""
    flags = {}
    for name in fields:
        new, old = merged[f"{name}_new"].astype("string"), merged[f"{name}_old"].astype("string")
        flags[name] = ~((new == old).fillna(False) | (new.isna() & old.isna()))
    flag_frame = pd.DataFrame(flags, index=merged.index)
    if flag_frame.empty:
        return pd.Series("", index=merged.index, dtype="string")
    return flag_frame.apply(lambda row: ",".join(row.index[row.to_numpy()]), axis=1).astype("string")


def plan_users(desired: pd.DataFrame, state: DirectoryState, config: Establishment) -> pd.DataFrame:
    current = state.users
    merged = desired.merge(current, on=USER_KEY, how="outer", suffixes=("_new", "_old"), indicator=True)
    columns = USER_PLAN_COLUMNS
    parts = []

    new = merged[merged["_merge"] == "left_only"].sort_values(USER_KEY)
    if len(new):
        taken = set(state.all_usernames)
        usernames = []
        for kind, rows in new.groupby("person_kind", sort=True):
            policy = config.usernames.pupil if kind == "pupil" else config.usernames.staff
            names = zip(rows["first_name_new"].fillna(""), rows["last_name_new"].fillna(""), strict=True)
            usernames.append(pd.Series(allocate(names, policy, taken), index=rows.index))
        creates = _take(new, "new")
        creates["username"] = pd.concat(usernames)
        creates["action"], creates["reason"] = "create", "new in MIS"
        parts.append(creates)

    both = merged[merged["_merge"] == "both"]
    if len(both):
        changed = _changed_fields(both, USER_FIELDS)
        suspended = both["status"] == "suspended"
        restores = _take(both[suspended], "new")
        restores["action"], restores["reason"] = "restore", "back in MIS"
        restores["changed_fields"] = changed[suspended]
        updates_mask = ~suspended & (changed != "")
        updates = _take(both[updates_mask], "new")
        updates["action"], updates["reason"] = "update", "MIS data changed"
        updates["changed_fields"] = changed[updates_mask]
        updates["previous"] = _previous_values(both[updates_mask], changed[updates_mask], USER_FIELDS)
        parts += [restores, updates]

    gone = merged[(merged["_merge"] == "right_only") & (merged["status"] == "active")]
    if len(gone):
        suspends = _take(gone, "old")
        suspends["action"], suspends["reason"] = "suspend", "left or no longer in MIS"
        parts.append(suspends)

    if not parts:
        return _empty(columns).assign(held=pd.Series(dtype=bool))
    plan = pd.concat(parts, ignore_index=True)
    plan["user_id"] = plan["user_id"].astype("Int64")
    plan["changed_fields"] = plan["changed_fields"].fillna("")
    plan["previous"] = plan["previous"].fillna("{}") if "previous" in plan else "{}"
    plan["held"] = False
    return plan[[*columns, "held"]]


def _previous_values(rows: pd.DataFrame, changed: pd.Series, fields: list[str]) -> pd.Series:
    """JSON of the old value of each changed field, for the audit log's old → new."""
    previous = []
    for record, names in zip(rows.to_dict(orient="records"), changed, strict=True):
        values = {n: record[f"{n}_old"] for n in str(names).split(",") if n}
        previous.append(json.dumps({k: None if pd.isna(v) else str(v) for k, v in values.items()}))
    return pd.Series(previous, index=rows.index, dtype="string")


def _take(rows: pd.DataFrame, side: str) -> pd.DataFrame:
    """Rows with the chosen side's field values under plain names."""
    out = rows[USER_KEY].copy()
    out["user_id"] = rows.get("id", pd.NA)
    out["username"] = rows.get("username", pd.NA)
    for name in USER_FIELDS:
        out[name] = rows[f"{name}_{side}"]
    out["changed_fields"] = ""
    out["previous"] = "{}"
    return out


def apply_brake(
    users: pd.DataFrame, state: DirectoryState, config: Establishment, approved: bool
) -> str | None:
    """Hold suspensions when a run would suspend too many of a role's active users.

    Both limits must be exceeded (count and share) so a small school losing three pupils is not
    blocked. Held rows stay in the plan, marked, and are applied only by a run with approval.
    """
    if approved or not len(users):
        return None
    suspends = users[users["action"] == "suspend"]
    active = state.users[state.users["status"] == "active"].groupby("role").size()
    reasons = []
    for role, count in suspends.groupby("role").size().items():
        share = count / max(int(active.get(role, 0)), 1)
        if count > config.safety.max_suspend_count and share > config.safety.max_suspend_fraction:
            reasons.append(f"{role}: {count} of {int(active.get(role, 0))} ({share:.0%})")
    if not reasons:
        return None
    users.loc[users["action"] == "suspend", "held"] = True
    return (
        "suspensions held for approval, over the safety limit: "
        + "; ".join(reasons)
        + ". Check the MIS extract, then trigger a run with approve_suspensions=true."
    )


def plan_groups(extract: Extract, state: DirectoryState) -> pd.DataFrame:
    desired = extract.tables["groups"][[*GROUP_KEY, *GROUP_FIELDS]].astype("string")
    current = state.groups
    merged = desired.merge(current, on=GROUP_KEY, how="outer", suffixes=("_new", "_old"), indicator=True)
    out_columns = GROUP_PLAN_COLUMNS
    merged["group_id"] = merged["id"].astype("Int64") if "id" in merged else pd.NA
    side = {name: merged[f"{name}_new"].fillna(merged[f"{name}_old"]) for name in GROUP_FIELDS}
    result = merged[[*GROUP_KEY, "group_id"]].assign(**side)
    result["changed_fields"] = _changed_fields(merged, GROUP_FIELDS) if len(merged) else ""
    action = pd.Series(pd.NA, index=merged.index, dtype="string")
    reason = pd.Series(pd.NA, index=merged.index, dtype="string")
    in_mis = merged["_merge"] != "right_only"
    status = merged["status"] if "status" in merged else pd.Series(pd.NA, index=merged.index)
    action[merged["_merge"] == "left_only"], reason[merged["_merge"] == "left_only"] = "create", "new in MIS"
    archived = (merged["_merge"] == "both") & (status == "archived")
    action[archived], reason[archived] = "restore", "back in MIS"
    changed = (merged["_merge"] == "both") & ~archived & (result["changed_fields"] != "")
    action[changed], reason[changed] = "update", "MIS data changed"
    gone = ~in_mis & (status == "active")
    action[gone], reason[gone] = "archive", "no longer in MIS"
    result["action"], result["reason"] = action, reason
    return result[result["action"].notna()][out_columns].reset_index(drop=True)


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


def plan_memberships(desired: pd.DataFrame, state: DirectoryState) -> pd.DataFrame:
    merged = desired.merge(state.memberships, on=MEMBERSHIP_KEY, how="outer", indicator=True)
    adds = merged[merged["_merge"] == "left_only"][MEMBERSHIP_KEY].assign(action="add", reason="in MIS group")
    removes = merged[merged["_merge"] == "right_only"][MEMBERSHIP_KEY].assign(
        action="remove", reason="not in MIS group"
    )
    return pd.concat([adds, removes], ignore_index=True)[MEMBERSHIP_PLAN_COLUMNS]


def older_snapshot_reason(snapshot_at: pd.Timestamp, last_applied: pd.Timestamp | None) -> str | None:
    """Why a snapshot must not be applied, or None: a backfill or late retry must not roll back."""
    if last_applied is None or snapshot_at >= last_applied:
        return None
    return (
        f"MIS snapshot {snapshot_at.isoformat()} is older than the one already applied "
        f"({last_applied.isoformat()}); nothing applied so the directory is not rolled back"
    )


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


def empty_plan(state: DirectoryState, snapshot_at: pd.Timestamp, reason: str) -> Plan:
    return Plan(
        users=_empty(USER_PLAN_COLUMNS).assign(held=pd.Series(dtype=bool)),
        groups=_empty(GROUP_PLAN_COLUMNS),
        memberships=_empty(MEMBERSHIP_PLAN_COLUMNS),
        base_revision=state.revision,
        snapshot_at=snapshot_at,
        skipped_reason=reason,
    )


def make_plan(
    extract: Extract, state: DirectoryState, config: Establishment, *, approve_suspensions: bool = False
) -> Plan:
    if reason := older_snapshot_reason(extract.snapshot_at, state.last_snapshot_at):
        return empty_plan(state, extract.snapshot_at, reason)
    wanted_users = desired_users(extract, config)
    users = plan_users(wanted_users, state, config)
    held_reason = apply_brake(users, state, config, approve_suspensions)
    return Plan(
        users=users,
        groups=plan_groups(extract, state),
        memberships=plan_memberships(desired_memberships(extract, wanted_users), state),
        base_revision=state.revision,
        snapshot_at=extract.snapshot_at,
        held_reason=held_reason,
    )
