"""What a target should look like, computed from the directory after apply (pure pandas).

The directory, not the MIS extract, is the source: it holds the usernames, knows who is suspended and
which groups are archived, so every target sees the same decisions the directory apply made.

Target-neutral shapes:
- containers: ``key`` (the idempotency key: the class's externalId), ``display_name``,
  ``description``, ``mail_nickname``, ``section`` and ``room`` (Classroom; empty when not managed),
  ``attr_hash`` (what an update compares);
- memberships: ``container_key``, ``user_key`` (the principal name), ``role`` (member | owner).
Teachers are members and owners (Teams needs both); configured admins are owners of everything, and
members too where every owner must be (``admins_are_members``: Microsoft education classes, whose
docs say teachers must be in both the teachers and members collections).
A target that refuses one user in both roles (Classroom) sets ``owners_are_members=False``.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass

import pandas as pd

from mis_sync.directory_state import DirectoryState

CONTAINER_COLUMNS = ["key", "display_name", "description", "mail_nickname", "section", "room", "attr_hash"]
MEMBERSHIP_COLUMNS = ["container_key", "user_key", "role"]
MAX_DISPLAY_NAME = 256
MAX_NICKNAME = 64
_NICK_DROP = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class Naming:
    """The templates and selection a target applies (see ``targets.settings``)."""

    establishment: str
    group_kinds: tuple[str, ...]
    naming: str
    description: str
    mail_nickname: str
    domain: str
    admins: tuple[str, ...] = ()
    teachers_own: bool = True
    section: str = ""
    room: str = ""
    owners_are_members: bool = True
    """False: an owner is not also listed as a member (Classroom: a teacher cannot also be a student)."""
    admins_are_members: bool = False
    """True: the configured admins are members as well as owners (education classes: "teachers must
    be members of both the teachers and members collections")."""


@dataclass
class DesiredState:
    containers: pd.DataFrame
    memberships: pd.DataFrame
    names: pd.DataFrame | None = None
    """key, display_name of every group of the selected kinds, archived ones too (for renaming)."""


def principal(username: str, domain: str) -> str:
    return username if "@" in username else f"{username}@{domain}"


def principals(usernames: pd.Series, domain: str) -> pd.Series:
    """``principal`` for a whole column at once (a school has thousands of memberships)."""
    names = usernames.astype("string")
    return names.where(names.str.contains("@", regex=False), names + "@" + domain)


def nickname(value: str) -> str:
    """Graph's mailNickname rules: ASCII, no spaces or ``@()\\[]";:<>,``, at most 64 characters."""
    cleaned = _NICK_DROP.sub("-", value.lower()).strip("-.")
    return cleaned[:MAX_NICKNAME].rstrip("-.") or "misync-class"


def attr_hash(display_name: pd.Series, description: pd.Series, *extra: pd.Series) -> pd.Series:
    """Hash of what an update sends. ``extra`` fields count only where set, so adding optional fields
    (Classroom's section and room) leaves every existing hash as it was."""
    joined = display_name.astype(str) + "\x1f" + description.astype(str)
    for field in extra:
        text = field.astype("string").fillna("")
        joined = joined.where(text == "", joined + "\x1f" + text.astype(str))
    return joined.map(lambda text: hashlib.sha256(text.encode()).hexdigest()[:16]).astype("string")


def _render(template: str, frame: pd.DataFrame, establishment: str) -> pd.Series:
    """Vectorised ``str.format`` over the group columns (missing values render as empty text)."""
    parts = string.Formatter().parse(template)
    out = pd.Series("", index=frame.index, dtype="string")
    for literal, field, _spec, _conv in parts:
        out = out + literal
        if field is None:
            continue
        if field == "establishment":
            out = out + establishment
        else:
            out = out + frame[field].astype("string").fillna("")
    return out.str.replace(r"\s+", " ", regex=True).str.strip()


def desired_state(state: DirectoryState, naming: Naming) -> DesiredState:
    groups = state.groups
    of_kind = groups[groups["kind"].isin(list(naming.group_kinds))].reset_index(drop=True)
    # the idempotency key (externalId / alias): per establishment, MIS group and academic year, so next
    # year's 7A is a new class
    every_key = (
        f"misync:{naming.establishment}:"
        + of_kind["mis_id"].astype("string")
        + ":"
        + of_kind["academic_year"].astype("string")
    )
    every_name = _render(naming.naming, of_kind, naming.establishment).str.slice(0, MAX_DISPLAY_NAME)
    names = pd.DataFrame({"key": every_key, "display_name": every_name})
    active = (of_kind["status"] == "active").to_numpy()
    selected = of_kind[active].reset_index(drop=True)
    keys = every_key[active].reset_index(drop=True)
    display = _render(naming.naming, selected, naming.establishment).str.slice(0, MAX_DISPLAY_NAME)
    description = _render(naming.description, selected, naming.establishment).str.slice(0, 1024)
    nick_source = _render(naming.mail_nickname, selected, naming.establishment)
    section = _render(naming.section, selected, naming.establishment).str.slice(0, MAX_DISPLAY_NAME)
    room = _render(naming.room, selected, naming.establishment).str.slice(0, MAX_DISPLAY_NAME)
    containers = pd.DataFrame(
        {
            "key": keys,
            "display_name": display,
            "description": description,
            "mail_nickname": nick_source.map(nickname).astype("string"),
            "section": section,
            "room": room,
            "attr_hash": attr_hash(display, description, section, room),
        }
    )
    return DesiredState(containers, _memberships(state, selected, keys, naming), names)


def _memberships(
    state: DirectoryState, selected: pd.DataFrame, keys: pd.Series, naming: Naming
) -> pd.DataFrame:
    users = state.users
    active = users[users["status"] == "active"][["person_kind", "mis_id", "username"]]
    active = active.rename(columns={"mis_id": "person_mis_id"})
    group_keys = pd.DataFrame(
        {
            "group_mis_id": selected["mis_id"],
            "academic_year": selected["academic_year"],
            "container_key": keys,
        }
    )
    joined = state.memberships.merge(group_keys, on=["group_mis_id", "academic_year"], how="inner")
    joined = joined.merge(active, on=["person_kind", "person_mis_id"], how="inner")
    user_key = principals(joined["username"], naming.domain)
    frames = [
        pd.DataFrame({"container_key": joined["container_key"], "user_key": user_key, "role": "member"})
    ]
    teachers = joined["role"] == "teacher"
    if naming.teachers_own:
        frames.append(
            pd.DataFrame(
                {
                    "container_key": joined.loc[teachers, "container_key"],
                    "user_key": user_key[teachers],
                    "role": "owner",
                }
            )
        )
    for admin in naming.admins:
        roles = ("owner", "member") if naming.admins_are_members else ("owner",)
        frames.extend(
            pd.DataFrame({"container_key": keys, "user_key": principal(admin, naming.domain), "role": role})
            for role in roles
        )
    out = pd.concat(frames, ignore_index=True).astype("string").drop_duplicates(ignore_index=True)
    if not naming.owners_are_members:
        owners = out.loc[out["role"] == "owner", ["container_key", "user_key"]].assign(_owner=True)
        flagged = out.merge(owners, on=["container_key", "user_key"], how="left")
        keep = (flagged["role"] == "owner") | flagged["_owner"].isna()
        out = out[keep.to_numpy()].reset_index(drop=True)
    return out
