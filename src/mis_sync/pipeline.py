"""The five stages — extract, validate, plan, apply, report — as plain functions.

The DAG's tasks and the ``misync`` CLI both call these, so what runs in Airflow is what the CLI and the
tests exercise. Each stage reads its input from the run folder and writes its output there; each
returns a small dict of counts, paths and hashes (what Airflow puts in XCom). Personal data stays in
the run folder and the directory database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from mis_sync import storage
from mis_sync.accounts import desired_users
from mis_sync.brake.window import load_window
from mis_sync.config import Establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.csv_reading import ReadLimits
from mis_sync.connectors.delta import DeltaConnector, load_delta_state, save_delta_state
from mis_sync.directory.apply import InitialPasswords, apply_plan, data_hash
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.keys import verify_credential_keys
from mis_sync.directory.state import load_state, sync_status
from mis_sync.directory_state import USER_KEY
from mis_sync.errors import SetupError
from mis_sync.identity.plan import describe_pending
from mis_sync.model import Extract
from mis_sync.plan import Plan, make_plan
from mis_sync.run_report import (  # noqa: F401  (re-exported: the DAG and the CLI call them here)
    latest_report,
    render_report,
    report_stage,
    source_limits,
)

log = logging.getLogger(__name__)

PLAN_TABLES = ("users", "groups", "memberships")
IDENTITY_TABLES = ("identities", "identity_pending")


@dataclass
class RunContext:
    """Everything a stage needs, resolved at run time (never at DAG parse time)."""

    establishment: Establishment
    run_id: str
    folder: storage.StoragePath
    source: ConnectionInfo
    directory_url: str
    credential_keys: list[bytes] | None = None
    """Fernet keys for stored initial passwords (from an Airflow Connection, never the repository)."""

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.directory_url)
        migrate(engine)
        return engine

    def stage_folder(self, name: str) -> storage.StoragePath:
        folder = self.folder / name
        storage.make_private_dir(folder)
        return folder


SOURCE_SIZES = "source-files.json"
"""Beside the run folders, per school: each source file's size in the last extract that passed
validation, the baseline of ``safety.max_source_file_growth``."""


def _read_limits(ctx: RunContext) -> ReadLimits:
    safety = ctx.establishment.safety
    baseline = _read_optional(ctx.folder.parent, SOURCE_SIZES) or {}
    return ReadLimits(
        max_bytes=None if safety.max_source_file_mb is None else int(safety.max_source_file_mb * 1_000_000),
        growth_factor=safety.max_source_file_growth,
        baseline={str(k): int(v) for k, v in baseline.items()},
    )


def extract_stage(ctx: RunContext, *, full: bool = True) -> dict[str, Any]:
    mis = ctx.establishment.mis
    connector = connector_for(mis.source, ctx.source, mis.options, country=ctx.establishment.country)
    connector.read_limits = _read_limits(ctx)
    mode = {"mode": "full", "reason": "the source has no delta"}
    if isinstance(connector, DeltaConnector):
        # the last complete snapshot and the source's cursor live beside the run folders, per school
        state_folder = ctx.folder.parent / "delta-state"
        storage.make_private_dir(state_folder)
        result = connector.extract_delta(None if full else load_delta_state(state_folder), full=full)
        extract = result.extract
        save_delta_state(state_folder, result.state)
        mode = {"mode": result.mode, "reason": result.reason}
    else:
        extract = connector.extract(full=full)
    manifest = storage.write_extract(ctx.stage_folder("extract"), extract)
    storage.write_json(ctx.folder / "extract", SOURCE_SIZES, connector.read_limits.sizes)
    log.info(
        "extracted %s (%s read%s)",
        extract.counts(),
        mode["mode"],
        f": {mode['reason']}" if mode["reason"] else "",
    )
    return {
        "folder": str(ctx.folder),
        "snapshot_at": manifest["snapshot_at"],
        "tables": manifest["tables"],
        **mode,
    }


def validate_stage(ctx: RunContext) -> dict[str, Any]:
    """Data quality: circuit breakers stop the run; error rows are quarantined; every finding goes to
    the data manager's report (CSV + HTML in the run folder) and into the findings history."""
    from mis_sync.quality import QualityStop, check_extract
    from mis_sync.quality.history import update_history
    from mis_sync.quality.report import write_report

    est = ctx.establishment
    extract = storage.read_extract(ctx.folder / "extract")
    status = sync_status(ctx.engine, est.id) or {}
    out = ctx.stage_folder("validated")
    try:
        result = check_extract(
            extract, country=est.country, last_counts=status.get("last_counts", {}), limits=est.safety
        )
    except QualityStop as stop:  # too many errors: still tell the data manager what to fix
        _record_findings(ctx, out, stop.findings, stop.summary, update_history, write_report)
        raise
    summary = result.summary
    _record_findings(ctx, out, result.findings, summary, update_history, write_report)
    storage.write_extract(out, result.clean_extract)
    storage.write_table(out, "quarantined", result.quarantined)
    summary = {**summary, "data_hash": data_hash(result.clean_extract.tables), "counts": result.counts}
    storage.write_json(out, "validation.json", summary)
    if (sizes := _read_optional(ctx.folder / "extract", SOURCE_SIZES)) is not None:
        storage.write_json(ctx.folder.parent, SOURCE_SIZES, sizes)  # passed validation: the new baseline
    log.info(
        "validation: %s; findings %s; quarantined %s",
        summary["counts"],
        summary.get("findings"),
        summary.get("quarantined"),
    )
    return {k: summary[k] for k in ("counts", "findings", "quarantined", "data_hash") if k in summary}


def _record_findings(ctx, out, findings, summary, update_history, write_report) -> None:  # type: ignore[no-untyped-def]
    tracked = update_history(ctx.engine, ctx.establishment.id, ctx.run_id, findings, datetime.now(UTC))
    storage.write_table(out, "findings", tracked)
    write_report(out, tracked, establishment_id=ctx.establishment.id, run_id=ctx.run_id, summary=summary)


def plan_stage(ctx: RunContext, *, approve_suspensions: bool = False, name: str = "plan") -> dict[str, Any]:
    """Plan into ``name/`` of the run folder: ``plan`` first, ``approved`` after a human approved the
    changes the brake held (re-planned against the directory as the first apply left it)."""
    extract = storage.read_extract(ctx.folder / "validated")
    quarantined = storage.read_table(ctx.folder / "validated", "quarantined")
    links, link_counts = _link(ctx, extract) if ctx.establishment.mode == "link" else _refuse_unlinked(ctx)
    state = load_state(ctx.engine, ctx.establishment.id)
    window = load_window(
        ctx.engine, ctx.establishment.id, extract.snapshot_at, ctx.establishment.safety.window_days
    )
    plan = make_plan(
        extract,
        state,
        ctx.establishment,
        approve_suspensions=approve_suspensions,
        quarantined=quarantined,
        links=links,
        window=window,
    )
    out = ctx.stage_folder(name)
    tables = [storage.write_table(out, table, getattr(plan, table)) for table in PLAN_TABLES]
    for table in IDENTITY_TABLES:  # Create mode: fingerprints to store, re-key pairs waiting for an admin
        if getattr(plan, table) is not None:
            storage.write_table(out, table, getattr(plan, table))
    wanted = desired_users(extract, ctx.establishment)
    if links is not None:  # Link mode manages linked accounts only: "unchanged" counts those
        wanted = wanted.merge(links[USER_KEY].astype("string"), on=USER_KEY, how="inner")
    desired = wanted["role"].value_counts()
    summary = plan.summary() | {
        "base_revision": plan.base_revision,
        "snapshot_at": plan.snapshot_at.isoformat(),
        "desired_by_role": {str(k): int(v) for k, v in desired.items()},
        "link": link_counts,
        "tables": tables,
    }
    storage.write_json(out, "plan.json", summary)
    log.info(
        "plan: users %s, groups %s, memberships %s, held %s",
        summary["users"],
        summary["groups"],
        summary["memberships"],
        summary["held_changes"],
    )
    if plan.skipped_reason:
        log.warning("plan skipped: %s", plan.skipped_reason)
    if plan.held_reason:
        log.warning("%s", plan.held_reason)
    if pending := describe_pending(plan.identity_pending):
        log.warning("%s", pending)
    return summary


def _link(ctx: RunContext, extract: Extract) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Link mode: match the imported existing users to the extract, honouring admin decisions."""
    from mis_sync.directory.identity_store import load_existing_users
    from mis_sync.linking import load_decisions, run_matching, run_summary, save_link_state

    est = ctx.establishment
    existing = load_existing_users(ctx.engine, est.id)
    if existing.empty:
        raise SetupError(f"Link mode: no existing users imported for {est.id}; run `misync import-users`")
    result = run_matching(
        existing,
        extract,
        load_decisions(ctx.engine, est.id),
        est.link.thresholds,
        weights=est.link.weights,
        auto_link_likely=est.link.auto_link_likely,
    )
    save_link_state(ctx.engine, est.id, result.links, ctx.run_id)
    summary = run_summary(result)
    log.info("link: %s", {c: v["total"] for c, v in summary["categories"].items()})
    return result.links[result.links["category"] == "linked"], summary


def _refuse_unlinked(ctx: RunContext) -> tuple[None, dict[str, Any]]:
    """Link → Create is refused while matches still wait for an admin (likely, possible, not matched)."""
    from mis_sync.linking import check_link_to_create, link_report, load_link_state

    state = load_link_state(ctx.engine, ctx.establishment.id)
    if not state.empty:
        check_link_to_create(link_report(state))
    return None, {}


def read_plan(folder: storage.StoragePath) -> Plan:
    meta = storage.read_json(folder, "plan.json")
    frames = {name: storage.read_table(folder, name) for name in PLAN_TABLES}
    frames["users"]["user_id"] = frames["users"]["user_id"].astype("Int64")
    frames["groups"]["group_id"] = frames["groups"]["group_id"].astype("Int64")
    for name in PLAN_TABLES:
        if "held" in frames[name]:
            frames[name]["held"] = frames[name]["held"].fillna(False).astype(bool)
    for name in IDENTITY_TABLES:
        frames[name] = storage.read_table(folder, name) if (folder / f"{name}.parquet").exists() else None
    return Plan(
        **frames,
        base_revision=int(meta["base_revision"]),
        snapshot_at=pd.Timestamp(meta["snapshot_at"]),
        skipped_reason=meta.get("skipped_reason"),
        held_reason=meta.get("held_reason"),
        losses=dict(meta.get("losses") or {}),
        window_reset=bool(meta.get("window_reset")),
    )


def apply_stage(ctx: RunContext, *, name: str = "plan") -> dict[str, Any]:
    plan = read_plan(ctx.folder / name)
    validation = storage.read_json(ctx.folder / "validated", "validation.json")
    passwords = _initial_passwords(ctx)
    if passwords is not None:  # a wrong key stops here, before anything is written under it
        verify_credential_keys(
            ctx.engine, ctx.establishment.id, passwords.keys, ctx.establishment.passwords.key_connection_id
        )
    result = apply_plan(
        ctx.engine,
        ctx.establishment.id,
        plan,
        run_id=ctx.run_id,
        extract_hash=validation["data_hash"],
        extract_counts=_baseline_counts(ctx, plan, validation["counts"]),
        passwords=passwords,
    )
    outcome = result.as_dict()
    storage.write_json(ctx.folder / name, "apply.json", outcome)
    log.info("apply: applied=%s writes=%s revision=%s", result.applied, result.writes, result.revision)
    if result.skipped_reason:
        log.warning("apply skipped: %s", result.skipped_reason)
    return outcome


def _baseline_counts(ctx: RunContext, plan: Plan, counts: dict[str, int]) -> dict[str, int]:
    """The counts the next run's short-extract breaker compares with. While the brake holds changes,
    the suspect extract must not lower the baseline (each measure keeps the larger of the two), so a
    second damaged export is still stopped; an approved or unheld run records its own counts."""
    if not plan.held_reason:
        return counts
    previous = (sync_status(ctx.engine, ctx.establishment.id) or {}).get("last_counts", {})
    return {name: max(int(value), int(previous.get(name, 0))) for name, value in counts.items()}


def _initial_passwords(ctx: RunContext) -> InitialPasswords | None:
    """Policies and keys for new accounts' passwords; a missing key fails before anything is written."""
    policies = ctx.establishment.passwords
    if not policies.issue_initial or ctx.establishment.mode == "link":  # Link mode creates no accounts
        return None
    if ctx.credential_keys is None:
        raise SetupError(
            f"connection {policies.key_connection_id!r} (the key that encrypts initial passwords) is "
            "not available; create it or set passwords.issue_initial: false"
        )
    return InitialPasswords(policies, ctx.credential_keys)


def _read_optional(folder: storage.StoragePath, name: str) -> dict[str, Any] | None:
    return storage.read_json(folder, name) if (folder / name).exists() else None
