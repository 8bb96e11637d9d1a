"""One target's sync, in the three steps the DAG runs: prepare → sync chunks (mapped) → finish.

``prepare`` reads the directory (the desired state) and the stored target state, runs the drift check
when it is due, resolves users and splits the change set into chunks of classes. Each mapped task
``sync_chunk`` makes its classes exist, sends its membership changes and then, with ``teams``, asks for
each new class's team (a team needs the owners in first). ``finish`` adds up the counts.

Membership changes go in three rounds: additions (with name changes and archives), then owner
(teacher) removals — after the additions, so a class never loses its last owner — then member
removals. Microsoft documents for education classes that teachers are in the members collection too
and that a member removal must first make sure the user is not a teacher: with
``Policy.teachers_are_members`` a member removal waits while the user is still a teacher of the class.
Only counts and ids reach logs and XCom; principal names stay in the database and the run folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from mis_sync.targets.containers import (
    TEAM_ROUNDS,
    TEAM_WAIT_S,
    container_ops,
    ensure_containers,
    ensure_teams,
)
from mis_sync.targets.creates import send_adds, without_implied
from mis_sync.targets.desired import MEMBERSHIP_COLUMNS, DesiredState
from mis_sync.targets.engine import ChangeSet, Engine, Op, Outcome, TransientError, diff
from mis_sync.targets.recheck import recheck
from mis_sync.targets.store import StoredState, TargetStore
from mis_sync.targets.waiting import still_unresolved, waits_for_users

__all__ = ["TEAM_ROUNDS", "TEAM_WAIT_S", "Policy", "prepare", "sync_chunk"]
log = logging.getLogger(__name__)
UNKNOWN_USER_PREFIX = "id:"
"""A live member MIS Sync does not know (a manual addition) is keyed by its remote id."""
NEW_UNRESOLVED = "new_unresolved_users"


@dataclass(frozen=True)
class Policy:
    groups_per_task: int = 200
    drift_every: timedelta = timedelta(days=7)
    drift_policy: str = "revert"
    year_end: str = "rename"
    archive_prefix: str = "(Archived) "
    teams: bool = False
    """Also make a team from every class (Microsoft 365), once it has its owners."""
    teachers_are_members: bool = False
    """Education classes: a teacher is in the members collection too, so a member removal waits until
    the user is no longer a teacher of the class (Microsoft's educationClass docs)."""


def drift_due(stored: StoredState, policy: Policy, *, now: datetime, forced: bool) -> bool:
    if forced or stored.last_drift_check_at is None:
        return bool(len(stored.containers))
    return now - stored.last_drift_check_at >= policy.drift_every


def drift_check(engine: Engine, store: TargetStore, stored: StoredState, policy: Policy) -> dict[str, int]:
    """Read live membership back and fold it into the stored state (revert or adopt manual changes)."""
    active = stored.containers[stored.containers["status"] == "active"]
    pairs = list(zip(active["key"], active["remote_id"], strict=True))
    reads = [
        Op(f"r{i}", "read", container_key=key, container_id=rid, role=role)
        for i, (key, rid, role) in enumerate((k, r, role) for k, r in pairs for role in ("member", "owner"))
    ]
    results = engine.run(reads)
    unread = sorted({str(op.container_key) for op in reads if results[op.id].status not in ("ok", "gone")})
    if unread:  # a roster that would not read, even after retries: skip that class, check the others
        log.warning("drift check: %s class(es) could not be read, left as they were: %s", len(unread), unread)
        active = active[~active["key"].isin(unread)]
        reads = [op for op in reads if op.container_key not in unread]
    gone = sorted({str(op.container_key) for op in reads if results[op.id].status == "gone"})
    if gone:  # deleted by hand in the target: forget it, so this run makes it again
        store.forget_containers(gone)
        active = active[~active["key"].isin(gone)]
        reads = [op for op in reads if op.container_key not in gone]
    live_ids = pd.DataFrame(
        [(op.container_key, uid, op.role) for op in reads for uid in results[op.id].items],
        columns=["container_key", "user_id", "role"],
        dtype="string",
    )
    by_id = dict(zip(stored.users["remote_id"], stored.users["user_key"], strict=True))
    live = pd.DataFrame(
        {
            "container_key": live_ids["container_key"],
            "user_key": [by_id.get(uid, UNKNOWN_USER_PREFIX + uid) for uid in live_ids["user_id"]],
            "role": live_ids["role"],
        },
        dtype="string",
    ).drop_duplicates()
    members = stored.memberships
    believed = members[
        members["state"].isin(["present", "adopted"]) & members["container_key"].isin(active["key"])
    ]
    extra = _minus(live, believed)
    missing = _minus(believed[MEMBERSHIP_COLUMNS], live)
    invited = getattr(engine.adapter, "invited_not_listed", None)
    if invited is not None and len(missing):
        # invited, not yet accepted (Classroom, users outside the domain): not a manual removal
        waiting = missing[[bool(invited(str(key))) for key in missing["user_key"]]]
        missing = _minus(missing, waiting)
        live = pd.concat([live, waiting], ignore_index=True).drop_duplicates()
    rows = live.assign(state="present")
    if policy.drift_policy == "adopt":
        # manual changes found now or adopted before stay as they are, until a human changes them back
        in_scope = members[members["container_key"].isin(active["key"])]
        kept = in_scope[in_scope["state"] == "adopted"][MEMBERSHIP_COLUMNS]
        adopted = pd.concat([extra, _minus(live, _minus(live, kept))], ignore_index=True).drop_duplicates()
        flags = rows.merge(adopted.assign(adopted=True), on=MEMBERSHIP_COLUMNS, how="left")["adopted"]
        rows = rows.assign(state=["adopted" if flag is True else "present" for flag in flags])
        was_excluded = in_scope[in_scope["state"] == "excluded"][MEMBERSHIP_COLUMNS]
        excluded = pd.concat([missing, _minus(was_excluded, live)], ignore_index=True).drop_duplicates()
        rows = pd.concat([rows, excluded.assign(state="excluded")], ignore_index=True)
    store.replace_memberships(list(active["key"]), rows)
    return {
        "drift_extra": len(extra),
        "drift_missing": len(missing),
        "drift_containers": len(pairs),
        "drift_gone": len(gone),
        "drift_unread": len(unread),
        **({"drift_teams_missing": _check_teams(engine, store, stored, active)} if policy.teams else {}),
    }


def _check_teams(engine: Engine, store: TargetStore, stored: StoredState, active: pd.DataFrame) -> int:
    """Read back the teams MIS Sync made; one deleted by hand (or never built) is forgotten, so the same
    run asks for it again. Returns how many were missing."""
    with_team = active[active["key"].isin(stored.teams)]
    reads = [
        Op(f"tr{i}", "read_team", container_key=key, container_id=rid)
        for i, (key, rid) in enumerate(zip(with_team["key"], with_team["remote_id"], strict=True))
    ]
    results = engine.run(reads)
    if any(results[op.id].status not in ("ok", "absent") for op in reads):
        raise TransientError("drift check: teams could not be read; the stored state is unchanged")
    missing = [str(op.container_key) for op in reads if results[op.id].status == "absent"]
    store.forget_teams(missing)
    return len(missing)


def _minus(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    merged = left[MEMBERSHIP_COLUMNS].merge(right[MEMBERSHIP_COLUMNS], how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"][MEMBERSHIP_COLUMNS].reset_index(drop=True)


def resolve_users(
    engine: Engine,
    store: TargetStore,
    known: pd.DataFrame,
    needed: set[str],
    *,
    marks: dict[str, str] | None = None,
    retry_waiting: bool = False,
) -> tuple[int, list[str]]:
    """Resolve principal names not yet known; returns how many are unresolved and which of them are
    newly so. With an adapter that ``waits_for_users``, a user found absent waits and is not looked up
    again until the directory's record of them changes (``marks``) or ``retry_waiting`` (drift check);
    a user the adapter can address without a look-up (``direct_user_id``) is never looked up."""
    direct = getattr(engine.adapter, "direct_user_id", None)
    missing = sorted(needed - set(known["user_key"]))
    missing = [k for k in missing if not k.startswith(UNKNOWN_USER_PREFIX) and not (direct and direct(k))]
    waiting: set[str] = set()
    known_waiting: set[str] = set()
    if waits_for_users(engine):
        stored_waiting = store.load_waiting()
        known_waiting = set(stored_waiting.loc[stored_waiting["reason"] == "unresolved", "user_key"])
        waiting = set() if retry_waiting else still_unresolved(stored_waiting, marks or {})
    ops = [Op(f"u{i}", "resolve", user_key=k) for i, k in enumerate(k for k in missing if k not in waiting)]
    results = engine.run(ops)
    resolved = {op.user_key: results[op.id].remote_id for op in ops if results[op.id].status == "ok"}
    store.save_users({k: v for k, v in resolved.items() if k and v})
    absent = [str(op.user_key) for op in ops if results[op.id].status == "absent"]
    if waits_for_users(engine):
        store.clear_waiting([k for k in resolved if k])
        store.save_waiting("unresolved", {k: (marks or {}).get(k) for k in absent})
    new = [key for key in absent if key not in known_waiting]
    return len(missing) - len(resolved), new


def assign_chunks(changes: ChangeSet, size: int) -> dict[str, int]:
    keys = set(changes.creates["key"]) | set(changes.updates["key"]) | set(changes.archives["key"])
    keys |= set(changes.adds["container_key"]) | set(changes.removes["container_key"])
    keys |= set(changes.teams["key"])
    return {key: index // size for index, key in enumerate(sorted(keys))}


def prepare(
    engine: Engine,
    store: TargetStore,
    desired: DesiredState,
    policy: Policy,
    *,
    force_drift_check: bool = False,
    now: datetime | None = None,
    marks: dict[str, str] | None = None,
) -> tuple[ChangeSet, dict[str, int], dict[str, Any]]:
    """The change set, its chunk numbers by container key, and a summary of counts (under
    ``NEW_UNRESOLVED`` the principal names first found unresolved: for the run folder, never XCom).
    ``marks``: the directory's hash of each user (:func:`~mis_sync.targets.waiting.directory_marks`)."""
    now = now or datetime.now(UTC)
    stored = store.load()
    summary: dict[str, Any] = {"drift_checked": False}
    if drift_due(stored, policy, now=now, forced=force_drift_check):
        summary.update(drift_check(engine, store, stored, policy), drift_checked=True)
        stored = store.load()
    changes = diff(desired, stored, teams=policy.teams)
    summary["unresolved_users"], new = resolve_users(
        engine, store, stored.users, set(changes.adds["user_key"]),
        marks=marks, retry_waiting=bool(summary["drift_checked"]),
    )  # fmt: skip
    summary[NEW_UNRESOLVED] = new
    chunks = assign_chunks(changes, policy.groups_per_task)
    summary.update(changes.counts(), chunks=len(set(chunks.values())))
    log.info(
        "change set %s; %s unresolved user(s), %s of them new", changes.counts(), summary["unresolved_users"],
        len(new),
    )  # fmt: skip
    return changes, chunks, summary


def sync_chunk(engine: Engine, store: TargetStore, changes: ChangeSet, policy: Policy) -> dict[str, int]:
    """Make this chunk's classes exist and match, then send its membership changes."""
    stored = store.load()
    container_ids = dict(zip(stored.containers["key"], stored.containers["remote_id"], strict=True))
    counts = {
        "created": 0, "adopted": 0, "skipped_unresolved": 0, "skipped_no_class": 0,
        "skipped_still_teacher": 0, "stale_user_ids": 0,
    }  # fmt: skip
    updates = changes.updates
    created: dict[str, str] = {}
    if len(changes.creates):
        found, created = ensure_containers(engine, store, changes.creates)
        container_ids.update(found | created)
        counts["created"], counts["adopted"] = len(created), len(found)
        adopted = changes.creates[changes.creates["key"].isin(list(found))]
        updates = pd.concat([updates, adopted.assign(remote_id=adopted["key"].map(found))], ignore_index=True)
    user_ids = dict(zip(stored.users["user_key"], stored.users["remote_id"], strict=True))
    ops: dict[str, list[Op]] = {"add": [], "owner": [], "member": []}
    direct = getattr(engine.adapter, "direct_user_id", lambda _key: None)
    for action, frame in (("add", without_implied(engine, store, changes.adds, created)),
                          ("remove", changes.removes)):  # fmt: skip
        for container_key, user_key, role in frame[MEMBERSHIP_COLUMNS].itertuples(index=False):
            cid = container_ids.get(container_key)
            uid = (
                user_key[len(UNKNOWN_USER_PREFIX) :]
                if user_key.startswith(UNKNOWN_USER_PREFIX)
                else user_ids.get(user_key) or direct(user_key)
            )
            if cid is None:
                counts["skipped_no_class"] += 1
                continue
            if uid is None:
                counts["skipped_unresolved"] += 1
                continue
            bucket = ops["add" if action == "add" else role if role == "owner" else "member"]
            bucket.append(
                Op(f"m{sum(map(len, ops.values()))}", action, container_key, cid, user_key, uid, role)
            )

    def record(done: Sequence[tuple[Op, Outcome]]) -> None:
        _record(store, done)

    first = [*container_ops(store, updates, changes.archives, policy), *ops["add"]]
    # a suspended user's adds wait behind one probe (Classroom); the others go at once
    results, counts["pending"] = send_adds(engine, store, first, _record)
    missing = [op for op in first if op.id in results and results[op.id].status == "absent"]
    gone, rechecked, renamed = recheck(engine, store, missing, record)
    for name, value in rechecked.items():
        counts[name] += value
    if renamed:  # a drift check saw the new id as a stranger ("id:<new>"): it is a known user now
        known = {UNKNOWN_USER_PREFIX + uid for uid in renamed.values()}
        strangers = [op for op in ops["owner"] + ops["member"] if op.user_key in known]
        store.save_memberships(
            [], [(str(op.container_key), str(op.user_key), str(op.role)) for op in strangers]
        )
        ops = {name: [op for op in bucket if op.user_key not in known] for name, bucket in ops.items()}
    owner_removes = [op for op in ops["owner"] if op.container_key not in gone]
    removed = engine.run(owner_removes, record)
    member_removes = [op for op in ops["member"] if op.container_key not in gone]
    if policy.teachers_are_members:
        teaching = _still_teaching(stored, owner_removes, removed)
        waiting = [op for op in member_removes if (op.container_key, op.user_key) in teaching]
        counts["skipped_still_teacher"] = len(waiting)
        member_removes = [op for op in member_removes if (op.container_key, op.user_key) not in teaching]
    engine.run(member_removes, record)
    if len(changes.teams):  # after the owners are in: a team needs one
        keys = [key for key in changes.teams["key"] if key not in gone]
        counts.update(ensure_teams(engine, store, keys, container_ids))
    return counts


def _still_teaching(
    stored: StoredState, owner_removes: list[Op], removed: dict[str, Outcome]
) -> set[tuple[str, str]]:
    """(class, user) pairs where the user is still a teacher after this run's teacher removals: the
    stored state (read back by the drift check) stands in for the teacher list Microsoft says to check."""
    members = stored.memberships
    owners = members[(members["role"] == "owner") & members["state"].isin(["present", "adopted"])]
    teaching = set(zip(owners["container_key"], owners["user_key"], strict=True))
    done = {
        (str(op.container_key), str(op.user_key)) for op in owner_removes if removed[op.id].status == "ok"
    }
    return teaching - done


def _record(store: TargetStore, done: Sequence[tuple[Op, Outcome]]) -> None:
    present, absent, containers, gone = [], [], [], []
    ids: dict[str, str] = {}
    for op, outcome in done:
        if outcome.status == "gone":
            gone.append(op.container_key)
        elif outcome.status != "ok":
            continue
        elif op.action in ("add", "remove"):
            if outcome.remote_id and op.user_key and outcome.remote_id != op.user_id:
                ids[op.user_key] = outcome.remote_id  # an invitation names the invited user's id
            (present if op.action == "add" else absent).append((op.container_key, op.user_key, op.role))
        elif op.action in ("update", "archive"):
            containers.append(
                {
                    "key": op.container_key,
                    "remote_id": op.container_id,
                    "attr_hash": op.attr_hash,
                    "status": "archived" if op.action == "archive" else "active",
                }
            )
    store.save_users(ids)
    store.save_memberships(present, absent)  # type: ignore[arg-type]
    store.save_containers(containers)
    store.forget_containers([k for k in gone if k])
