"""The run report: counts per role, groups, memberships, targets and times — and whether the run held
destructive changes, had them approved, or had them rejected.

A held or rejected run is not a plain success: ``hold`` (``held`` | ``rejected`` | ``approved``) and
``mark`` (e.g. ``HELD: 43 suspensions, 602 membership removals waiting for approval``) say so in the
report, the DAG's report task and the CLI's exit summary. ``losses`` and ``window_reset`` are what the
brake's rolling window reads back from ``directory_sync_runs`` (``brake.window``).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine, insert, select, update

from mis_sync import storage
from mis_sync.cli_errors import HELD
from mis_sync.directory.schema import SyncRun
from mis_sync.directory.state import sync_status

if TYPE_CHECKING:
    from mis_sync.pipeline import RunContext

log = logging.getLogger(__name__)

HELD_NOUNS = {
    "suspend": "suspensions",
    "delete": "deletions",
    "archive": "group archives",
    "remove": "membership removals",
}


def _read_optional(folder: storage.StoragePath, name: str) -> dict[str, Any] | None:
    return storage.read_json(folder, name) if (folder / name).exists() else None


def _add(*counts: dict[str, int] | None) -> dict[str, int]:
    total: dict[str, int] = {}
    for item in counts:
        for key, value in (item or {}).items():
            total[key] = total.get(key, 0) + int(value)
    return total


def held_counts(plan: dict[str, Any]) -> dict[str, int]:
    """What the brake held, by action (suspend, delete, archive, remove)."""
    by_role = [actions for actions in plan.get("held_by_role", {}).values()]
    return _add(*by_role, plan.get("groups_held"), plan.get("memberships_held"))


def hold_mark(plan: dict[str, Any], approved: bool, rejected: bool) -> tuple[str | None, str | None]:
    """(``hold``, ``mark``): None when nothing was held; else held / rejected / approved and a line."""
    held = held_counts(plan)
    if not held:
        return None, None
    what = ", ".join(f"{held[a]} {noun}" for a, noun in HELD_NOUNS.items() if held.get(a))
    if approved:
        return "approved", f"APPROVED: {what} applied after approval"
    if rejected:
        return "rejected", f"REJECTED: {what} not applied; the next run plans them again"
    return "held", f"HELD: {what} waiting for approval"


def report_stage(ctx: RunContext, *, dry_run: bool, rejected: bool = False) -> dict[str, Any]:
    """Counts per role (created / updated / restored / suspended / deleted / unchanged) and sync times.

    ``rejected``: the admin answered Reject (or did not answer) to the held changes."""
    plan = storage.read_json(ctx.folder / "plan", "plan.json")
    validation = storage.read_json(ctx.folder / "validated", "validation.json")
    applied = None if dry_run else _read_optional(ctx.folder / "plan", "apply.json")
    approved_apply = _read_optional(ctx.folder / "approved", "apply.json")
    approved = storage.read_json(ctx.folder / "approved", "plan.json") if approved_apply else None
    status = sync_status(ctx.engine, ctx.establishment.id) or {}
    by_role = _role_counts(plan, approved)
    if dry_run:
        outcome = DRY_RUN
    elif applied and applied["applied"]:
        outcome = "applied"
    else:
        outcome = "skipped"
    hold, mark = (
        hold_mark(plan, approved=bool(approved), rejected=rejected) if outcome != "skipped" else (None, None)
    )
    applied_plans = [plan, approved] if outcome == "applied" else []
    report = {
        "establishment": ctx.establishment.id,
        "run_id": ctx.run_id,
        "run_folder": str(ctx.folder),
        "outcome": outcome,
        "skipped_reason": (applied or {}).get("skipped_reason") or plan.get("skipped_reason"),
        "held_reason": None if approved else plan.get("held_reason"),
        "users_held": 0 if approved else plan["users_held"],
        "approved_after_hold": bool(approved),
        "hold": hold,
        "mark": mark,
        "held_changes": 0 if approved else int(plan.get("held_changes", plan["users_held"])),
        "losses": _add(*((p or {}).get("losses") for p in applied_plans)),
        "window_reset": any(bool((p or {}).get("window_reset")) for p in applied_plans),
        "users_by_role": by_role,
        "groups": _add(plan["groups"], (approved or {}).get("groups")),
        "memberships": _add(plan["memberships"], (approved or {}).get("memberships")),
        "writes": (applied or {}).get("writes", 0) + (approved_apply or {}).get("writes", 0),
        "quarantined": validation["quarantined"],
        "findings": validation.get("findings", {}),
        "notes": plan.get("notes", {}),
        "link": plan.get("link") or None,
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
    """Each fan-out target's counts this run (requests, writes, no-ops, retries, throttles, failures,
    unresolved users)."""
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
        changed = sum(actions.get(a, 0) for a in ("create", "update", "restore", "link"))
        by_role[role] = {
            "linked": actions.get("link", 0),
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


DRY_RUN = "dry_run"


def latest_report(engine: Engine, establishment_id: str, *, dry_run: bool = False) -> dict[str, Any] | None:
    """The newest real run's report, or with ``dry_run`` the newest dry run's: a dry run applies
    nothing, so it must never stand in for the last sync."""
    outcome = SyncRun.outcome == DRY_RUN if dry_run else SyncRun.outcome != DRY_RUN
    with engine.connect() as connection:
        row = connection.execute(
            select(SyncRun.summary)
            .where(SyncRun.establishment_id == establishment_id, outcome)
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
    if report["outcome"] == DRY_RUN:
        lines.append("  DRY RUN: planned only, nothing applied (the counts are what a run would do)")
    if report.get("skipped_reason"):
        lines.append(f"  skipped: {report['skipped_reason']}")
    if report.get("mark"):
        lines.insert(1, f"  {report['mark']}")
    if report.get("held_reason"):
        lines.append(f"  held because: {report['held_reason']}")
    link = report.get("link")
    header = (
        f"  {'role':<20}{'created':>9}{'updated':>9}{'restored':>10}{'suspended':>11}{'deleted':>9}"
        f"{'unchanged':>11}" + (f"{'linked':>9}" if link else "")
    )
    lines += ["", header]
    for role, c in report["users_by_role"].items():
        lines.append(
            f"  {role:<20}{c['created']:>9}{c['updated']:>9}{c['restored']:>10}{c['suspended']:>11}"
            f"{c.get('deleted', 0):>9}{c['unchanged']:>11}" + (f"{c.get('linked', 0):>9}" if link else "")
        )
    if link:
        from mis_sync.linking import render_run_summary

        lines += ["", *render_run_summary(link)]
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
            f"({t['requests']} requests in all), {t.get('noops', 0)} no-ops (already so), "
            f"{t['retries']} retries, {t['throttles']} throttled, "
            f"{t['failed']} failed, {t['unresolved_users']} unresolved users"
            + (f", {t['teams_created']} teams made" if t.get("teams_created") else "")
            + (f", {t['teams_pending']} teams pending" if t.get("teams_pending") else "")
            + (", drift checked" if t.get("drift_checked") else "")
        )
    return "\n".join(lines)


def exit_summary(report: dict[str, object]) -> int:
    """The last line a script or an admin sees, and the exit code: 0, or ``cli_errors.HELD`` (5) when
    held."""
    if report.get("hold") == "held" and report.get("outcome") == "applied":
        print(
            f"{report['mark']}: check the MIS export, then re-run with --approve-suspensions", file=sys.stderr
        )
        return HELD
    print(f"{report.get('mark') or 'OK'}: {report['outcome']}, {report['writes']} directory writes")
    return 0
