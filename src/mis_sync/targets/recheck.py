"""A write answered "not found" (``absent``): find out which object is missing before acting on it.

Microsoft Graph answers an add, an update or an archive with the same 404 (``Request_ResourceNotFound``,
"Resource '<id>' does not exist or one of its queried reference-property objects are not present")
whether the class is missing or the user is. Forgetting the class on such an answer would make the
next run send every write of that class again, so:

- a class is decided gone only from a read of the class itself (``read_class``, a GET on it): then it
  is forgotten (with its memberships and team) and the next run makes it again;
- an add to a class that is there had a stale user id (the account was deleted and made again): the
  user is looked up again by principal name (or mail, per ``user_attribute``), the new id is stored
  and the add is sent again with it, in this run; a user no longer in the tenant is forgotten and
  counted as unresolved (looked up again by the next run), not as a failure;
- an update or archive of a class that is there is sent once more; a second "not found" is a failure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from mis_sync.targets.engine import Engine, Op, Outcome
from mis_sync.targets.store import TargetStore

Record = Callable[[list[tuple[Op, Outcome]]], None]


def recheck(
    engine: Engine, store: TargetStore, missing: Sequence[Op], record: Record
) -> tuple[set[str], dict[str, int], dict[str, str]]:
    """Settle ``missing`` (ops answered ``absent``). Returns the keys of containers found gone, counts
    (``stale_user_ids``: users found under a new id; ``skipped_unresolved``) and the new ids by user."""
    counts = {"stale_user_ids": 0, "skipped_unresolved": 0}
    renamed: dict[str, str] = {}
    if not missing:
        return set(), counts, renamed
    classes = {str(op.container_key): str(op.container_id) for op in missing}
    reads = [
        Op(f"k{i}", "read_class", container_key=key, container_id=cid)
        for i, (key, cid) in enumerate(sorted(classes.items()))
    ]
    read = engine.run(reads)
    state = {str(op.container_key): read[op.id] for op in reads}
    gone = {key for key, outcome in state.items() if outcome.status == "gone"}
    there = {key for key, outcome in state.items() if outcome.status == "ok"}
    if gone:  # forgotten (with memberships and team), so the next run makes the class again
        record([(op, Outcome("gone")) for op in missing if op.container_key in gone])
    for op in missing:  # the class could not be read: nothing is decided, the next run tries again
        if op.container_key not in gone and op.container_key not in there:
            engine.settle(op, Outcome("failed", error="class not readable"))
    candidates = [op for op in missing if op.container_key in there]
    adds = [op for op in candidates if op.action == "add"]
    again = [op for op in candidates if op.action != "add"]
    new_ids, unknown = _look_up_again(engine, store, adds)
    for op in adds:
        if op.user_key in unknown:
            counts["skipped_unresolved"] += 1
            engine.settle(op, Outcome("absent", error="user not found"))
        elif op.user_key in new_ids:
            uid = new_ids[str(op.user_key)]
            if uid != op.user_id:
                renamed[str(op.user_key)] = uid
            again.append(dataclasses.replace(op, user_id=uid))
        else:
            engine.settle(op, Outcome("failed", error="user not readable"))
    if again:
        results = engine.run(again, record)
        for op in again:  # still "not found" with the class there and the user's current id
            if results[op.id].status == "absent":
                engine.settle(op, Outcome("failed", error=results[op.id].error))
    counts["stale_user_ids"] = len(renamed)
    return gone, counts, renamed


def _look_up_again(engine: Engine, store: TargetStore, adds: list[Op]) -> tuple[dict[str, str], set[str]]:
    """Current ids of the users of ``adds`` (stored at once), and the users the tenant no longer has
    (their stored ids are forgotten, so the next run looks them up again)."""
    keys = sorted({str(op.user_key) for op in adds})
    lookups = [Op(f"s{i}", "resolve", user_key=key) for i, key in enumerate(keys)]
    results = engine.run(lookups)
    found = {
        str(op.user_key): str(results[op.id].remote_id)
        for op in lookups
        if results[op.id].status == "ok" and results[op.id].remote_id
    }
    unknown = {str(op.user_key) for op in lookups if results[op.id].status == "absent"}
    store.save_users(found)
    store.forget_users(sorted(unknown))
    return found, unknown
