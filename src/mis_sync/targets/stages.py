"""The fan-out stages as the DAG calls them: prepare → sync_chunk (mapped) → finish, per target.

Change sets go to the run folder (``targets-<target>/``) as Parquet, one file per part with a
``chunk`` column; XCom carries only chunk numbers and counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mis_sync import storage
from mis_sync.directory.state import load_state
from mis_sync.targets.desired import Naming, desired_state
from mis_sync.targets.engine import CHANGE_PARTS, ChangeSet, Engine
from mis_sync.targets.store import TargetStore
from mis_sync.targets.sync import NEW_UNRESOLVED, Policy, prepare, sync_chunk
from mis_sync.targets.waiting import directory_marks, waits_for_users

if TYPE_CHECKING:
    from mis_sync.pipeline import RunContext
    from mis_sync.targets.settings import GoogleClassroomTarget, Microsoft365Target

log = logging.getLogger(__name__)
PARTS = CHANGE_PARTS
TARGETS = ("microsoft365", "google_classroom")
AdapterFactory = Callable[[Any], Iterator[Any]]


def settings_of(ctx: RunContext, target: str) -> Any:
    return getattr(ctx.establishment.targets, target)


def naming_of(ctx: RunContext, target: str) -> Naming:
    cfg = settings_of(ctx, target)
    if target == "google_classroom":
        from mis_sync.targets.classroom import classroom_naming

        return classroom_naming(ctx.establishment.id, cfg)
    return Naming(
        establishment=ctx.establishment.id,
        group_kinds=tuple(cfg.group_kinds),
        naming=cfg.naming,
        description=cfg.description,
        mail_nickname=cfg.mail_nickname,
        domain=cfg.tenant_domain,
        admins=tuple(cfg.owners.admins),
        teachers_own=cfg.owners.teachers,
        admins_are_members=cfg.kind == "education_class",
    )


def policy_of(ctx: RunContext, target: str) -> Policy:
    cfg = settings_of(ctx, target)
    return Policy(
        groups_per_task=cfg.groups_per_task,
        drift_every=timedelta(days=cfg.drift_check.every_days),
        drift_policy=cfg.drift_check.policy,
        year_end=cfg.year_end,
        archive_prefix=cfg.archive_prefix,
        teams=bool(getattr(cfg, "teams", False)),
        teachers_are_members=getattr(cfg, "kind", None) == "education_class",
    )


@contextmanager
def graph_adapter(cfg: Microsoft365Target) -> Iterator[Any]:
    from mis_sync.targets.graph import GraphAdapter, GraphTransport

    transport = GraphTransport(cfg.connection_id)
    try:
        yield GraphAdapter(transport, kind=cfg.kind, user_attribute=cfg.user_attribute)
    finally:
        transport.close()


@contextmanager
def classroom_adapter(cfg: GoogleClassroomTarget) -> Iterator[Any]:
    from mis_sync.connections import from_airflow
    from mis_sync.targets.classroom import ClassroomAdapter
    from mis_sync.targets.classroom_transport import ClassroomTransport

    transport = ClassroomTransport(from_airflow(cfg.connection_id), directory=cfg.provision_accounts)
    try:
        yield ClassroomAdapter.from_settings(transport, cfg)
    finally:
        transport.close()


ADAPTERS: dict[str, AdapterFactory] = {
    "microsoft365": graph_adapter,
    "google_classroom": classroom_adapter,
}


def _folder(ctx: RunContext, target: str) -> storage.StoragePath:
    return ctx.stage_folder(f"targets-{target}")


def _counters(adapter: Any, engine: Engine, started: float) -> dict[str, int]:
    return {**adapter.counters, **engine.stats, "seconds": round(time.monotonic() - started)}


def prepare_stage(
    ctx: RunContext,
    target: str,
    *,
    force_drift_check: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    started = time.monotonic()
    store = TargetStore(ctx.engine, ctx.establishment.id, target)
    state = load_state(ctx.engine, ctx.establishment.id)
    desired = desired_state(state, naming_of(ctx, target))
    cfg = settings_of(ctx, target)
    with ADAPTERS[target](cfg) as adapter:
        engine = Engine(adapter, sleep=sleep, clock=clock)
        accounts: dict[str, int] = {}
        if getattr(cfg, "provision_accounts", False):
            from mis_sync.targets.accounts import desired_users, graph_body, provision

            google = target == "google_classroom"
            wanted = desired_users(
                state, naming_of(ctx, target).domain, cfg.provision_roles,
                org_unit=cfg.org_units.path if google else None,
            )  # fmt: skip
            accounts = provision(
                engine, store, ctx.engine, wanted, credential_keys=ctx.credential_keys,
                body_for=adapter.account_body if google else graph_body(cfg.usage_location),
                guard_admins=google,
            )  # fmt: skip
        domain = naming_of(ctx, target).domain
        marks = directory_marks(state.users, domain) if waits_for_users(engine) else None
        changes, chunks, summary = prepare(
            engine, store, desired, policy_of(ctx, target), force_drift_check=force_drift_check, marks=marks
        )
        summary.update(accounts)
        summary["prepare"] = _counters(adapter, engine, started)
    folder = _folder(ctx, target)
    new_unresolved = summary.pop(NEW_UNRESOLVED)
    summary["unresolved_new"] = len(new_unresolved)
    if new_unresolved:  # listed once, in the run folder (principal names never reach logs or XCom)
        storage.write_json(folder, "unresolved-users.json", {"first_seen_this_run": new_unresolved})
    for part in PARTS:
        frame = getattr(changes, part)
        key = frame["key"] if "key" in frame else frame["container_key"]
        storage.write_table(folder, part, frame.assign(chunk=key.map(chunks).astype("int64")))
    storage.write_json(folder, "prepare.json", summary)
    summary["chunk_ids"] = sorted(set(chunks.values()))
    return summary


def read_chunk(ctx: RunContext, target: str, chunk: int) -> ChangeSet:
    folder = _folder(ctx, target)
    parts = {}
    for part in PARTS:
        frame = storage.read_table(folder, part)
        parts[part] = frame[frame["chunk"] == chunk].drop(columns="chunk").reset_index(drop=True)
    return ChangeSet(**parts)


def sync_chunk_stage(
    ctx: RunContext,
    target: str,
    chunk: int,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, int]:
    started = time.monotonic()
    store = TargetStore(ctx.engine, ctx.establishment.id, target)
    changes = read_chunk(ctx, target, chunk)
    with ADAPTERS[target](settings_of(ctx, target)) as adapter:
        engine = Engine(adapter, sleep=sleep, clock=clock)
        counts = sync_chunk(engine, store, changes, policy_of(ctx, target))
        result = {"chunk": chunk, **counts, **_counters(adapter, engine, started)}
    log.info("%s chunk %s: %s", target, chunk, result)
    return result


def finish_stage(
    ctx: RunContext, target: str, prepared: dict[str, Any], chunks: list[dict[str, Any]]
) -> dict[str, Any]:
    """Add up the run's requests, writes, no-ops, retries, throttles, failures and unresolved users;
    store the summary. ``failed`` counts changes whose last outcome in their task was a failure."""
    totals: dict[str, int] = {}
    for item in [prepared.get("prepare", {}), *chunks]:
        for name, value in item.items():
            if name != "chunk" and isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
    summary = {
        "target": target,
        "changes": {part: int(prepared.get(part, 0)) for part in PARTS},
        "unresolved_users": int(prepared.get("unresolved_users", 0)),
        "unresolved_new": int(prepared.get("unresolved_new", 0)),
        "accounts": {
            k: int(prepared[k])
            for k in (
                "users_created",
                "users_updated",
                "users_adopted",
                "no_initial_password",
                "users_protected",
            )
            if k in prepared
        },
        "drift_checked": bool(prepared.get("drift_checked")),
        "drift": {k: int(v) for k, v in prepared.items() if k.startswith("drift_") and isinstance(v, int)},
        "chunks": len(chunks),
        **{
            k: totals.get(k, 0)
            for k in (
                "requests",
                "write_requests",
                "writes",
                "noops",
                "retries",
                "throttles",
                "failed",
                "gone",
                "created",
                "adopted",
                "skipped_unresolved",
                "pending",
                "skipped_no_class",
                "skipped_still_teacher",
                "stale_user_ids",
                "teams_created",
                "teams_pending",
            )
        },
    }
    storage.write_json(_folder(ctx, target), "summary.json", summary)
    TargetStore(ctx.engine, ctx.establishment.id, target).record_run(
        ctx.run_id, summary, drift_checked=summary["drift_checked"]
    )
    if summary["failed"]:
        log.warning("%s: %s change(s) failed; the next run retries them", target, summary["failed"])
    return summary


def run_target(
    ctx: RunContext,
    target: str,
    *,
    force_drift_check: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """All three stages in one process, chunks one after another (the CLI, tests and benchmarks).
    ``sleep`` and ``clock`` together may run the quota pacing on a virtual clock (tests, benchmarks)."""
    prepared = prepare_stage(ctx, target, force_drift_check=force_drift_check, sleep=sleep, clock=clock)
    chunks = [
        sync_chunk_stage(ctx, target, chunk, sleep=sleep, clock=clock) for chunk in prepared["chunk_ids"]
    ]
    return finish_stage(ctx, target, prepared, chunks)
