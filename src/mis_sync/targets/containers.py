"""Making containers and their teams exist: find before create (or, where the create carries its own
idempotency key, create directly), teams once the owners are in.

A create that failed in a way that may still have been applied (a 5xx, a timeout) is not simply
re-sent: the next round looks it up again by its key first. A create refused with a ``Retry-After``
(throttled) waits at least that long before the next round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from mis_sync.targets.creates import create_directly
from mis_sync.targets.engine import GAVE_UP, Engine, Op, Outcome
from mis_sync.targets.store import TargetStore

if TYPE_CHECKING:
    from mis_sync.targets.sync import Policy

TEAM_ROUNDS, TEAM_WAIT_S = 3, 10.0
"""Graph may answer 404 when a team is made from a group created minutes ago; its docs advise three
tries ten seconds apart. A team still not possible after that waits for the next run (pending)."""


def ensure_teams(
    engine: Engine, store: TargetStore, keys: list[str], container_ids: dict[str, str]
) -> dict[str, int]:
    """Make a team from each container; "already has a team" counts as made. A container the target
    cannot make one from yet (just created) is tried again after a pause, then left for the next run."""
    todo = {key: container_ids[key] for key in keys if key in container_ids}
    made, no_container = 0, len(keys) - len(todo)

    def record(done: Sequence[tuple[Op, Outcome]]) -> None:
        store.save_teams([str(op.container_key) for op, outcome in done if outcome.status == "ok"])

    for attempt in range(TEAM_ROUNDS):
        if not todo:
            break
        if attempt:
            engine.sleep(TEAM_WAIT_S)
        ops = [
            Op(f"t{i}", "create_team", container_key=k, container_id=c)
            for i, (k, c) in enumerate(todo.items())
        ]
        results = engine.run(ops, record)
        made += sum(results[op.id].status == "ok" for op in ops)
        todo = {
            str(op.container_key): str(op.container_id) for op in ops if results[op.id].status == "absent"
        }
    return {"teams_created": made, "teams_pending": len(todo) + no_container}


def ensure_containers(
    engine: Engine, store: TargetStore, creates: pd.DataFrame
) -> tuple[dict[str, str], dict[str, str]]:
    """Find each class by its key before creating it. A create that failed in a way that may still
    have been applied (a 5xx, a timeout) is not simply re-sent: the next round looks it up again."""
    rows = {r["key"]: r for r in creates.to_dict("records")}
    if getattr(engine.adapter, "idempotent_create", False):  # Classroom: the alias makes a repeat a 409
        return create_directly(engine, store, rows, lambda i, row: container_op(f"c{i}", "create", row))
    found: dict[str, str] = {}
    created: dict[str, str] = {}
    todo = list(rows)
    wait = 0.0
    for attempt in range(engine.max_attempts):
        if not todo:
            break
        if attempt:
            engine.sleep(wait)
        finds = [container_op(f"f{i}", "find", rows[k]) for i, k in enumerate(todo)]
        results = engine.run(finds)
        absent = []
        for op in finds:
            outcome = results[op.id]
            if outcome.status == "ok" and outcome.remote_id:
                found[op.container_key] = outcome.remote_id  # type: ignore[index]
            elif outcome.status == "absent":
                absent.append(op.container_key)
        store.save_containers(
            [
                {"key": k, "remote_id": found[k], "attr_hash": None, "status": "active"}
                for k in todo
                if k in found
            ]
        )
        create_ops = [container_op(f"c{i}", "create", rows[k]) for i, k in enumerate(absent)]
        results = engine.run(create_ops, attempts_each=1)
        done = [op for op in create_ops if results[op.id].status == "ok" and results[op.id].remote_id]
        for op in done:
            created[op.container_key] = results[op.id].remote_id  # type: ignore[index,assignment]
        store.save_containers(
            [
                {
                    "key": op.container_key,
                    "remote_id": created[op.container_key],
                    "attr_hash": rows[op.container_key]["attr_hash"],
                    "status": "active",
                }  # type: ignore[index]
                for op in done
            ]
        )
        retried = [
            op for op in create_ops if results[op.id].status == "failed" and results[op.id].error == GAVE_UP
        ]
        todo = [str(op.container_key) for op in retried]
        # at least what the server asked for (Retry-After), else backoff: 2, 4, 8 … s
        wait = max((engine.delay(results[op.id], attempt + 1) for op in retried), default=0.0)
    return found, created


def container_op(op_id: str, action: Any, row: dict[str, Any], remote_id: str | None = None) -> Op:
    return Op(
        op_id,
        action,
        container_key=row["key"],
        container_id=remote_id,
        display_name=row["display_name"],
        description=row["description"],
        mail_nickname=row["mail_nickname"],
        section=_text(row.get("section")),
        room=_text(row.get("room")),
        attr_hash=row["attr_hash"],
        restore=str(row.get("restore")) == "True",  # a bool, numpy's, or NaN for adopted classes
    )


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def container_ops(
    store: TargetStore, updates: pd.DataFrame, archives: pd.DataFrame, policy: Policy
) -> list[Op]:
    """Updates, and archives by renaming (``year_end: rename``) or only by marking (``keep``)."""
    ops = [
        container_op(f"p{i}", "update", r, r["remote_id"]) for i, r in enumerate(updates.to_dict("records"))
    ]
    if policy.year_end == "keep":
        store.save_containers(
            [
                {
                    "key": r["key"],
                    "remote_id": r["remote_id"],
                    "attr_hash": r["attr_hash"],
                    "status": "archived",
                }
                for r in archives.to_dict("records")
            ]
        )
        return ops
    for i, row in enumerate(archives.to_dict("records")):
        name = f"{policy.archive_prefix}{row.get('display_name') or row['key']}"[:256]
        ops.append(
            Op(
                f"a{i}",
                "archive",
                container_key=row["key"],
                container_id=row["remote_id"],
                display_name=name,
                attr_hash=None,
            )
        )
    return ops
