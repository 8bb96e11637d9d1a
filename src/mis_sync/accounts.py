"""Accounts: who should have one, and each account's lifecycle (create, update, suspend, delete, restore).

- New MIS people get an account; usernames come from the establishment's policy per role and are
  never reissued (every username ever used, including deleted accounts', counts as taken).
- MIS name changes update display names, never usernames.
- A leaver (leaving date passed, or gone from the MIS) is suspended; after the grace period the account
  is deleted: its personal fields are cleared and only the username stays, reserved. A person who
  comes back is restored with the same username.
- Protected usernames (admins, named exceptions) are never suspended or deleted.
- With ``accounts.invite_parents``, contacts with parental responsibility for an on-roll pupil get one
  parent account each (username: their email), which goes when their last child has left.
"""

from __future__ import annotations

import json

import pandas as pd

from mis_sync.config import Establishment
from mis_sync.directory_state import (
    USER_FIELDS,
    USER_KEY,
    USER_PLAN_COLUMNS,
    DirectoryState,
    changed_fields,
    empty_frame,
)
from mis_sync.display_names import display_names
from mis_sync.model import EnrolmentStatus, Extract
from mis_sync.usernames import allocate_usernames

LONDON = "Europe/London"


def as_of_day(extract: Extract) -> pd.Timestamp:
    """The snapshot's date in school time: leaving dates and grace periods are judged against it."""
    return extract.snapshot_at.tz_convert(LONDON).tz_localize(None).normalize()


def _name_columns(people: pd.DataFrame) -> dict[str, pd.Series]:
    legal_first, legal_last = people["legal_first_name"], people["legal_last_name"]
    return {
        "first_name": people["preferred_first_name"].fillna(legal_first),
        "last_name": people["preferred_last_name"].fillna(legal_last),
        "legal_first_name": legal_first,
        "legal_last_name": legal_last,
    }


def _current(table: pd.DataFrame, statuses: list[str], as_of: pd.Timestamp) -> pd.Series:
    left = (table["leaving_date"] <= as_of).fillna(False).astype(bool)
    return table["enrolment_status"].isin(statuses) & ~left


def desired_users(extract: Extract, config: Establishment) -> pd.DataFrame:
    """Who should hold an active account: USER_KEY + USER_FIELDS, plus what username allocation needs."""
    as_of = as_of_day(extract)
    statuses = [EnrolmentStatus.ON_ROLL.value]
    if config.accounts.create_pre_admission:
        statuses.append(EnrolmentStatus.PRE_ADMISSION.value)
    frames = []

    pupils = extract.tables["pupils"]
    pupils = pupils[_current(pupils, statuses, as_of)]
    frames.append(
        pd.DataFrame(
            {
                "person_kind": "pupil",
                "mis_id": pupils["mis_id"],
                "role": "pupil",
                **_name_columns(pupils),
                "title": pd.NA,
                "email": pupils["email"],
                "year_group": pupils["year_group"],
                "admission_date": pupils["admission_date"],
                "enrolment_status": pupils["enrolment_status"],
            }
        )
    )

    staff = extract.tables["staff"]
    staff = staff[_current(staff, statuses, as_of)]
    teaching = staff["is_teaching"].fillna(False).astype(bool)
    if not config.accounts.include_non_teaching_staff:
        staff, teaching = staff[teaching], teaching[teaching]
    frames.append(
        pd.DataFrame(
            {
                "person_kind": "staff",
                "mis_id": staff["mis_id"],
                "role": teaching.map({True: "teaching_staff", False: "non_teaching_staff"}),
                **_name_columns(staff),
                "title": staff["title"],
                "email": staff["email"],
                "year_group": pd.NA,
                "admission_date": staff["start_date"],
                "enrolment_status": staff["enrolment_status"],
            }
        )
    )
    if config.accounts.invite_parents:
        frames.append(desired_parents(extract, as_of))

    people = pd.concat(frames, ignore_index=True)
    for column in people.columns:
        if column != "admission_date":
            people[column] = people[column].astype("string")
    people["display_name"] = pd.Series(pd.NA, index=people.index, dtype="string")
    for role, rows in people.groupby("role", sort=False):
        people.loc[rows.index, "display_name"] = display_names(rows, config.display_names.for_role(str(role)))
    return people


def desired_parents(extract: Extract, as_of: pd.Timestamp) -> pd.DataFrame:
    """One parent account per contact with parental responsibility for an on-roll pupil, by email.

    Contacts without an email, or whose email another contact already uses, get no account here; the
    plan's notes count them so the school can fix the MIS.
    """
    pupils = extract.tables["pupils"]
    on_roll = pupils[_current(pupils, [EnrolmentStatus.ON_ROLL.value], as_of)]["mis_id"]
    relationships = extract.tables["relationships"]
    responsible = relationships[
        relationships["parental_responsibility"].fillna(False).astype(bool)
        & relationships["pupil_id"].isin(on_roll)
    ]
    contacts = extract.tables["contacts"]
    contacts = contacts[contacts["mis_id"].isin(responsible["contact_id"])].sort_values("mis_id")
    email = contacts["email"].str.strip().str.lower()
    contacts = contacts[email.notna()].assign(email=email[email.notna()])
    contacts = contacts[~contacts["email"].duplicated(keep="first")]
    return pd.DataFrame(
        {
            "person_kind": "contact",
            "mis_id": contacts["mis_id"],
            "role": "parent",
            **_name_columns(contacts),
            "title": contacts["title"],
            "email": contacts["email"],
            "year_group": pd.NA,
            "admission_date": pd.NaT,
            "enrolment_status": EnrolmentStatus.ON_ROLL.value,
        }
    )


def parent_notes(extract: Extract, as_of: pd.Timestamp) -> dict[str, int]:
    """Counts for the report: parents who could not be invited, and why."""
    pupils = extract.tables["pupils"]
    on_roll = pupils[_current(pupils, [EnrolmentStatus.ON_ROLL.value], as_of)]["mis_id"]
    relationships = extract.tables["relationships"]
    responsible_ids = relationships[
        relationships["parental_responsibility"].fillna(False).astype(bool)
        & relationships["pupil_id"].isin(on_roll)
    ]["contact_id"].unique()
    contacts = extract.tables["contacts"]
    contacts = contacts[contacts["mis_id"].isin(responsible_ids)]
    email = contacts["email"].str.strip().str.lower()
    return {
        "parents_without_email": int(email.isna().sum()),
        "parents_sharing_an_email": int(email.dropna().duplicated(keep="first").sum()),
    }


def _previous_values(rows: pd.DataFrame, changed: pd.Series) -> pd.Series:
    """JSON of the old value of each changed field, for the audit log's old → new."""
    previous = []
    for record, names in zip(rows.to_dict(orient="records"), changed.tolist(), strict=True):
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


def _allocate(new: pd.DataFrame, state: DirectoryState, config: Establishment, as_of) -> pd.Series:  # type: ignore[no-untyped-def]
    """Usernames for new accounts, role by role in a fixed order, sharing one set of taken names."""
    taken = set(state.all_usernames)
    names = {column: new[f"{column}_new"] if f"{column}_new" in new else new[column]
             for column in ("first_name", "last_name")}  # fmt: skip
    people = new.assign(**names)
    parts = []
    for role, rows in people.groupby("role_new", sort=True):
        if role == "parent":
            emails = rows["email_new"].str.lower()
            clash = emails.isin(taken)
            taken.update(emails[~clash])
            parts.append(emails.mask(clash, pd.NA))
            continue
        policy = config.usernames.for_role(str(role))
        parts.append(allocate_usernames(rows, policy, taken, as_of=as_of.date(), country=config.country))
    return pd.concat(parts).reindex(new.index)


def plan_users(  # type: ignore[no-untyped-def]
    desired: pd.DataFrame,
    state: DirectoryState,
    config: Establishment,
    as_of,
    held_people: frozenset[tuple[str, str]] = frozenset(),
) -> pd.DataFrame:
    """``held_people``: (person_kind, mis_id) pairs quarantined by data quality this run; their
    accounts are left exactly as they are (a bad record is not a leaver)."""
    current = state.users
    merged = desired.merge(current, on=USER_KEY, how="outer", suffixes=("_new", "_old"), indicator=True)
    parts = []

    new = merged[merged["_merge"] == "left_only"].sort_values(USER_KEY)
    if len(new):
        creates = _take(new, "new")
        creates["username"] = _allocate(new, state, config, as_of)
        creates = creates[creates["username"].notna()]  # a parent whose email is another account's name
        creates["action"], creates["reason"] = "create", "new in MIS"
        parts.append(creates)

    both = merged[merged["_merge"] == "both"]
    if len(both):
        changed = changed_fields(both, USER_FIELDS)
        inactive = both["status"].isin(["suspended", "deleted"])
        restores = _take(both[inactive], "new")
        restores["action"] = "restore"
        restores["reason"] = both.loc[inactive, "status"].map(
            {"suspended": "back in MIS", "deleted": "back in MIS after the account was deleted"}
        )
        restores["changed_fields"] = changed[inactive]
        restores["previous"] = _previous_values(both[inactive], changed[inactive])
        updates_mask = ~inactive & (changed != "")
        updates = _take(both[updates_mask], "new")
        updates["action"], updates["reason"] = "update", "MIS data changed"
        updates["changed_fields"] = changed[updates_mask]
        updates["previous"] = _previous_values(both[updates_mask], changed[updates_mask])
        parts += [restores, updates]

    gone = merged[merged["_merge"] == "right_only"]
    gone = gone[~gone["username"].isin(config.accounts.protected_usernames)]
    if held_people:
        pairs = pd.Series(list(zip(gone["person_kind"], gone["mis_id"], strict=True)), index=gone.index)
        gone = gone[~pairs.isin(held_people)]
    active = gone[gone["status"] == "active"]
    if len(active):
        suspends = _take(active, "old")
        suspends["action"], suspends["reason"] = "suspend", "left or no longer in MIS"
        parts.append(suspends)
    grace = config.accounts.leaver_grace_days
    if config.accounts.delete_after_grace:
        suspended_at = (
            pd.to_datetime(gone["suspended_at"], utc=True).dt.tz_convert(LONDON).dt.tz_localize(None)
        )
        expired = (gone["status"] == "suspended") & (
            suspended_at.dt.normalize() + pd.Timedelta(days=grace) <= as_of
        )
        if expired.any():
            deletes = _take(gone[expired.fillna(False)], "old")
            deletes["action"], deletes["reason"] = (
                "delete",
                f"suspended for {grace}+ days (grace period over)",
            )
            parts.append(deletes)

    if not parts:
        return empty_frame(USER_PLAN_COLUMNS).assign(held=pd.Series(dtype=bool))
    plan = pd.concat(parts, ignore_index=True)
    plan["user_id"] = plan["user_id"].astype("Int64")
    plan["changed_fields"] = plan["changed_fields"].fillna("")
    plan["previous"] = plan["previous"].fillna("{}")
    plan["held"] = False
    return plan[[*USER_PLAN_COLUMNS, "held"]]


def plan_linked_users(desired: pd.DataFrame, links: pd.DataFrame, state: DirectoryState) -> pd.DataFrame:
    """Link mode: existing accounts linked to MIS records take names, role and groups from the MIS.

    Link mode never creates or deletes accounts: an account joins the directory under its existing
    username ("link"), is updated while linked, and is left alone when its MIS record goes.
    """
    linked = links[["person_kind", "mis_id", "username"]].rename(columns={"username": "link_username"})
    wanted = desired.merge(linked.astype("string"), on=USER_KEY, how="inner")
    merged = wanted.merge(state.users, on=USER_KEY, how="left", suffixes=("_new", "_old"), indicator=True)
    parts = []
    new = merged[merged["_merge"] == "left_only"].sort_values(USER_KEY)
    if len(new):
        joins = _take(new, "new")
        joins["username"] = new["link_username"]
        joins["action"], joins["reason"] = "link", "existing account linked to its MIS record"
        parts.append(joins)
    both = merged[merged["_merge"] == "both"]
    if len(both):
        changed = changed_fields(both, USER_FIELDS)
        mask = changed != ""
        updates = _take(both[mask], "new")
        updates["action"], updates["reason"] = "update", "MIS data changed"
        updates["changed_fields"] = changed[mask]
        updates["previous"] = _previous_values(both[mask], changed[mask])
        parts.append(updates)
    if not parts:
        return empty_frame(USER_PLAN_COLUMNS).assign(held=pd.Series(dtype=bool))
    plan = pd.concat(parts, ignore_index=True)
    plan["user_id"] = plan["user_id"].astype("Int64")
    plan["held"] = False
    return plan[[*USER_PLAN_COLUMNS, "held"]]
