"""Two shortcuts for targets whose answers make a look-up unnecessary (Google Classroom):

- a create that carries its own idempotency key (Classroom's ``d:`` alias) is sent without looking the
  container up first: a repeat is answered "already exists", which the adapter turns into a no-op with
  the container's id (``idempotent_create``);
- members a create already brings (Classroom makes the course owner a teacher) are recorded as present,
  not sent only to be refused (``creator_members``).

And the send step of a chunk, where a suspended user's adds wait behind one probe
(:class:`~mis_sync.targets.waiting.PendingAdds`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from mis_sync.targets.desired import MEMBERSHIP_COLUMNS
from mis_sync.targets.engine import Engine, Op, Outcome
from mis_sync.targets.store import TargetStore
from mis_sync.targets.waiting import PendingAdds, waits_for_users

Recorder = Callable[[TargetStore, Sequence[tuple[Op, Outcome]]], None]


def create_directly(
    engine: Engine, store: TargetStore, rows: dict[str, dict[str, Any]], make_op: Callable[[int, Any], Op]
) -> tuple[dict[str, str], dict[str, str]]:
    """Send every create at once, retried like any call. Returns (found, created) ids by key: one
    answered "already exists" (a no-op) was made earlier and is adopted, so the next step brings its
    fields into line."""
    ops = [make_op(i, row) for i, row in enumerate(rows.values())]
    results = engine.run(ops)
    found: dict[str, str] = {}
    created: dict[str, str] = {}
    for op in ops:
        outcome = results[op.id]
        if outcome.status == "ok" and outcome.remote_id:
            (found if outcome.noop else created)[str(op.container_key)] = outcome.remote_id
    store.save_containers(
        [{"key": k, "remote_id": v, "attr_hash": None, "status": "active"} for k, v in found.items()]
        + [
            {"key": k, "remote_id": v, "attr_hash": rows[k]["attr_hash"], "status": "active"}
            for k, v in created.items()
        ]
    )
    return found, created


def without_implied(
    engine: Engine, store: TargetStore, adds: pd.DataFrame, created: dict[str, str]
) -> pd.DataFrame:
    """``adds`` minus the members the containers just created already have; those are recorded."""
    implied = getattr(engine.adapter, "creator_members", ())
    made = [(key, user_key, role) for key in created for user_key, role in implied]
    if not made:
        return adds
    store.save_memberships(made, [])
    known = pd.DataFrame(made, columns=MEMBERSHIP_COLUMNS, dtype="string").assign(_made=True)
    flagged = adds[MEMBERSHIP_COLUMNS].astype("string").merge(known, on=MEMBERSHIP_COLUMNS, how="left")
    return adds[flagged["_made"].isna().to_numpy()].reset_index(drop=True)


def send_adds(
    engine: Engine, store: TargetStore, ops: list[Op], record: Recorder
) -> tuple[dict[str, Outcome], int]:
    """Send a chunk's container changes and adds, each batch recorded as it answers. A user already
    known to be suspended gets one probe add; the rest follow if it goes through. Returns the first
    round's outcomes by op id (held-back adds have none) and the adds answered pending or held back."""
    suspended: set[str] = set()
    if waits_for_users(engine):
        waiting = store.load_waiting()
        suspended = set(waiting.loc[waiting["reason"] == "suspended", "user_key"])
    split = PendingAdds.split(ops, suspended)

    def recorder(done: list[tuple[Op, Outcome]]) -> None:
        record(store, done)

    results = engine.run(split.now, recorder)
    pending, active, held = split.settle(engine, results, recorder)
    if waits_for_users(engine):
        store.clear_waiting(sorted(active))
        store.save_waiting("suspended", dict.fromkeys(sorted(pending - suspended)))
    return results, held
