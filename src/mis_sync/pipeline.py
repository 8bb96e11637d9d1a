"""The five stages — extract, validate, plan, apply, report — as plain functions.

The DAG's tasks and the ``misync`` CLI both call these, so what runs in Airflow is what the CLI and the
tests exercise. Each stage reads its input from the run folder and writes its output there; each
returns a small dict of counts, paths and hashes (what Airflow puts in XCom). Personal data stays in
the run folder and the directory database.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, select, update

from mis_sync import storage
from mis_sync.accounts import desired_users
from mis_sync.config import Establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.delta import DeltaConnector, load_delta_state, save_delta_state
from mis_sync.directory.apply import InitialPasswords, apply_plan, data_hash
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import SyncRun
from mis_sync.directory.state import load_state, sync_status
from mis_sync.errors import SetupError
from mis_sync.model import Extract
from mis_sync.plan import Plan, make_plan

log = logging.getLogger(__name__)

PLAN_TABLES = ("users", "groups", "memberships")


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
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def extract_stage(ctx: RunContext, *, full: bool = True) -> dict[str, Any]:
    mis = ctx.establishment.mis
    connector = connector_for(mis.source, ctx.source, mis.options)
    mode = {"mode": "full", "reason": "the source has no delta"}
    if isinstance(connector, DeltaConnector):
        # the last complete snapshot and the source's cursor live beside the run folders, per school
        state_folder = ctx.folder.parent / "delta-state"
        state_folder.mkdir(parents=True, exist_ok=True)
        result = connector.extract_delta(None if full else load_delta_state(state_folder), full=full)
        extract = result.extract
        save_delta_state(state_folder, result.state)
        mode = {"mode": result.mode, "reason": result.reason}
    else:
        extract = connector.extract(full=full)
    manifest = storage.write_extract(ctx.stage_folder("extract"), extract)
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
    plan = make_plan(
        extract,
        state,
        ctx.establishment,
        approve_suspensions=approve_suspensions,
        quarantined=quarantined,
        links=links,
    )
    out = ctx.stage_folder(name)
    tables = [storage.write_table(out, table, getattr(plan, table)) for table in PLAN_TABLES]
    desired = desired_users(extract, ctx.establishment)["role"].value_counts()
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
        summary["users_held"],
    )
    if plan.skipped_reason:
        log.warning("plan skipped: %s", plan.skipped_reason)
    if plan.held_reason:
        log.warning("%s", plan.held_reason)
    return summary


def _link(ctx: RunContext, extract: Extract) -> tuple[pd.DataFrame, dict[str, int]]:
    """Link mode: match the imported existing users to the extract, honouring admin decisions."""
    from mis_sync.directory.identity_store import load_existing_users
    from mis_sync.linking import load_decisions, report_counts, run_matching, save_link_state

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
    counts = report_counts(result)
    log.info("link: %s", counts)
    return result.links[result.links["category"] == "linked"], counts


def _refuse_unlinked(ctx: RunContext) -> tuple[None, dict[str, int]]:
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
    frames["users"]["held"] = frames["users"]["held"].astype(bool)
    return Plan(
        **frames,
        base_revision=int(meta["base_revision"]),
        snapshot_at=pd.Timestamp(meta["snapshot_at"]),
        skipped_reason=meta.get("skipped_reason"),
        held_reason=meta.get("held_reason"),
    )


def apply_stage(ctx: RunContext, *, name: str = "plan") -> dict[str, Any]:
    plan = read_plan(ctx.folder / name)
    validation = storage.read_json(ctx.folder / "validated", "validation.json")
    result = apply_plan(
        ctx.engine,
        ctx.establishment.id,
        plan,
        run_id=ctx.run_id,
        extract_hash=validation["data_hash"],
        extract_counts=validation["counts"],
        passwords=_initial_passwords(ctx),
    )
    outcome = result.as_dict()
    storage.write_json(ctx.folder / name, "apply.json", outcome)
    log.info("apply: applied=%s writes=%s revision=%s", result.applied, result.writes, result.revision)
    if result.skipped_reason:
        log.warning("apply skipped: %s", result.skipped_reason)
    return outcome


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


def report_stage(ctx: RunContext, *, dry_run: bool) -> dict[str, Any]:
    """Counts per role (created / updated / restored / suspended / deleted / unchanged) and sync times."""
    plan = storage.read_json(ctx.folder / "plan", "plan.json")
    validation = storage.read_json(ctx.folder / "validated", "validation.json")
    applied = None if dry_run else _read_optional(ctx.folder / "plan", "apply.json")
    approved_apply = _read_optional(ctx.folder / "approved", "apply.json")
    approved = storage.read_json(ctx.folder / "approved", "plan.json") if approved_apply else None
    status = sync_status(ctx.engine, ctx.establishment.id) or {}
    by_role = _role_counts(plan, approved)
    if dry_run:
        outcome = "dry_run"
    elif applied and applied["applied"]:
        outcome = "applied"
    else:
        outcome = "skipped"
    report = {
        "establishment": ctx.establishment.id,
        "run_id": ctx.run_id,
        "run_folder": str(ctx.folder),
        "outcome": outcome,
        "skipped_reason": (applied or {}).get("skipped_reason") or plan.get("skipped_reason"),
        "held_reason": None if approved else plan.get("held_reason"),
        "users_held": 0 if approved else plan["users_held"],
        "approved_after_hold": bool(approved),
        "users_by_role": by_role,
        "groups": plan["groups"],
        "memberships": plan["memberships"],
        "writes": (applied or {}).get("writes", 0) + (approved_apply or {}).get("writes", 0),
        "quarantined": validation["quarantined"],
        "findings": validation.get("findings", {}),
        "notes": plan.get("notes", {}),
        "extract_counts": validation["counts"],
        "snapshot_at": plan["snapshot_at"],
        "last_successful_sync": status.get("last_success_at"),
        "last_sync_from_mis": status.get("data_changed_at"),
        "targets": _target_summaries(ctx),
        "source_limits": source_limits(ctx.establishment.mis.type, ctx.establishment.mis.source),
    }
    report["lineage"] = _lineage(ctx)
    storage.write_json(ctx.folder, "report.json", report)
    _record_run(ctx.engine, report)
    for line in render_report(report).splitlines():
        log.info("%s", line)
    return report


def _lineage(ctx: RunContext) -> dict[str, Any]:
    """``lineage.json``: which MIS fields flowed to which directory fields and target attributes."""
    from mis_sync.privacy.lineage import write_lineage

    configured = {t: getattr(ctx.establishment.targets, t) for t in ("microsoft365", "google_classroom")}
    targets = {t: bool(getattr(c, "provision_accounts", False)) for t, c in configured.items() if c.enabled}
    return write_lineage(ctx.folder, storage.read_extract(ctx.folder / "validated").tables, targets)


def source_limits(mis_type: str, source: str) -> list[str]:
    """What this MIS or route cannot provide, so the report says why e.g. no teaching groups synced."""
    from mis_sync.connectors.catalog import CATALOGUE
    from mis_sync.connectors.routes import MIS_CATALOGUE

    limits = []
    entry = CATALOGUE.get(source)
    if entry is not None and entry.missing_group_kinds():
        kinds = ", ".join(sorted(entry.missing_group_kinds()))
        limits.append(
            f"{entry.type} provides no {kinds} groups: none are synced"
            + (f" ({entry.notes})" if entry.notes else "")
        )
    mis = MIS_CATALOGUE.get(mis_type)
    if mis is not None and not mis.has_teaching_groups and source != mis_type:
        limits.append(f"{mis.title} keeps no teaching groups: none are synced ({mis.note})")
    return limits


def _target_summaries(ctx: RunContext) -> dict[str, Any]:
    """Each fan-out target's counts this run (requests, writes, retries, throttles, unresolved users)."""
    from mis_sync.targets.stages import TARGETS

    found = {}
    for target in TARGETS:
        summary = _read_optional(ctx.folder / f"targets-{target}", "summary.json")
        if summary is not None:
            found[target] = summary
    return found


def _role_counts(plan: dict[str, Any], approved: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    roles = sorted(set(plan["desired_by_role"]) | set(plan["users_by_role"]) | set(plan["held_by_role"]))
    by_role = {}
    for role in roles:
        actions = dict(plan["users_by_role"].get(role, {}))
        for action, count in ((approved or {}).get("users_by_role", {}).get(role, {})).items():
            actions[action] = actions.get(action, 0) + count
        changed = sum(actions.get(a, 0) for a in ("create", "update", "restore"))
        by_role[role] = {
            "created": actions.get("create", 0),
            "updated": actions.get("update", 0),
            "restored": actions.get("restore", 0),
            "suspended": actions.get("suspend", 0),
            "deleted": actions.get("delete", 0),
            "unchanged": plan["desired_by_role"].get(role, 0) - changed,
        }
    return by_role


def _record_run(engine: Engine, report: dict[str, Any]) -> None:
    values = {
        "outcome": report["outcome"],
        "snapshot_at": pd.Timestamp(report["snapshot_at"]).to_pydatetime(),
        "finished_at": datetime.now(UTC),
        "summary": json.dumps(report, sort_keys=True),
    }
    key = (SyncRun.establishment_id == report["establishment"]) & (SyncRun.run_id == report["run_id"])
    with engine.begin() as connection:
        if connection.execute(select(SyncRun.run_id).where(key)).first():
            connection.execute(update(SyncRun).where(key).values(**values))
        else:
            connection.execute(
                insert(SyncRun).values(
                    establishment_id=report["establishment"], run_id=report["run_id"], **values
                )
            )


def latest_report(engine: Engine, establishment_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(SyncRun.summary)
            .where(SyncRun.establishment_id == establishment_id)
            .order_by(SyncRun.finished_at.desc())
            .limit(1)
        ).first()
    return json.loads(row[0]) if row else None


def render_report(report: dict[str, Any]) -> str:
    """A readable summary for the task log and the terminal: counts and times only."""
    lines = [
        f"MIS Sync report: {report['establishment']} ({report['outcome']})",
        f"  run:                   {report['run_id']}",
        f"  MIS snapshot:          {report['snapshot_at']}",
        f"  last successful sync:  {report['last_successful_sync'] or 'never'}",
        f"  last sync from MIS:    {report['last_sync_from_mis'] or 'never'}  (when MIS data last changed)",
    ]
    if report.get("skipped_reason"):
        lines.append(f"  skipped: {report['skipped_reason']}")
    if report.get("held_reason"):
        lines.append(f"  HELD: {report['held_reason']}")
    header = (
        f"  {'role':<20}{'created':>9}{'updated':>9}{'restored':>10}{'suspended':>11}{'deleted':>9}"
        f"{'unchanged':>11}"
    )
    lines += ["", header]
    for role, c in report["users_by_role"].items():
        lines.append(
            f"  {role:<20}{c['created']:>9}{c['updated']:>9}{c['restored']:>10}{c['suspended']:>11}"
            f"{c.get('deleted', 0):>9}{c['unchanged']:>11}"
        )
    fmt = lambda d: ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "no changes"  # noqa: E731
    lines += [
        "",
        f"  groups:       {fmt(report['groups'])}",
        f"  memberships:  {fmt(report['memberships'])}",
        f"  quarantined:  {fmt(report['quarantined'])}",
        f"  findings:     {fmt(report.get('findings', {}))}",
        f"  data manager's report: {report.get('run_folder', 'the run folder')}/validated/findings.html",
        *([f"  notes:        {fmt(report['notes'])}"] if report.get("notes") else []),
        f"  directory writes: {report['writes']}",
    ]
    if lineage := report.get("lineage"):
        lines.append(
            f"  lineage: {lineage['mis_fields_used']} MIS fields → {lineage['directory_fields_fed']} "
            f"directory fields → target attributes {fmt(lineage['target_attributes'])} (lineage.json)"
        )
    for limit in report.get("source_limits", []):
        lines.append(f"  note: {limit}")
    for target, t in report.get("targets", {}).items():
        lines.append(
            f"  {target}: {t['writes']} writes in {t['write_requests']} write requests "
            f"({t['requests']} requests in all), {t['retries']} retries, {t['throttles']} throttled, "
            f"{t['failed']} failed, {t['unresolved_users']} unresolved users"
            + (f", {t['teams_created']} teams made" if t.get("teams_created") else "")
            + (f", {t['teams_pending']} teams pending" if t.get("teams_pending") else "")
            + (", drift checked" if t.get("drift_checked") else "")
        )
    return "\n".join(lines)
