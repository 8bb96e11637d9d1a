"""Retention: what in an establishment's run storage and directory has expired, and removing it.

Run storage holds one folder per run (``<root>/<establishment>/<run>/``) plus ``delta-state/``. Each file
belongs to one kind of data (``kind_of``) with its own retention (``RetentionSettings``); a run's age is
when its report was recorded in the directory, else its newest file's modification time. The last
successful run's folder is never touched. Everything is reported as counts per kind: no file names
reach logs or XCom (run ids are not personal, but counts are all an admin needs).
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mis_sync.privacy.files import (
    modified_at,
    newest_modification,
    relative,
    remove_empty_folders,
    walk_files,
)
from mis_sync.privacy.settings import RetentionSettings

log = logging.getLogger(__name__)

DELTA_STATE = "delta-state"
KINDS = ("extracts", "plans", "findings", "target_files", "reports")
_FINDINGS_FILES = ("validated/findings.", "validated/quarantined.")


def kind_of(path_in_run: str) -> str:
    """The kind of data a file in a run folder holds, by where the pipeline writes it."""
    top = path_in_run.split("/", 1)[0]
    if path_in_run.startswith(_FINDINGS_FILES):
        return "findings"
    if path_in_run == "validated/validation.json":
        return "reports"  # counts and a hash only
    if top in ("extract", "validated"):
        return "extracts"
    if top in ("plan", "approved"):
        return "plans"
    if top.startswith("targets-"):
        return "target_files"
    return "reports"  # report.json, lineage.json and anything unknown: kept longest


def days_for(kind: str, retention: RetentionSettings) -> int:
    return int(getattr(retention, f"{kind}_days"))


@dataclass
class RunFolder:
    name: str
    path: Any
    finished_at: datetime | None


@dataclass
class HousekeepingPlan:
    """Files to remove, by kind, and the run folders that become empty."""

    establishment_id: str
    removals: list[tuple[str, Any]] = field(default_factory=list)
    """(kind, file path)"""
    emptied_runs: list[Any] = field(default_factory=list)
    kept_runs: int = 0
    protected_run: str | None = None

    def counts(self) -> dict[str, int]:
        by_kind = Counter(kind for kind, _ in self.removals)
        return {
            **{f"{k}_files": by_kind.get(k, 0) for k in (*KINDS, "delta_snapshot")},
            "run_folders_removed": len(self.emptied_runs),
            "run_folders_kept": self.kept_runs,
        }


def plan_run_storage(
    establishment_root: Any,
    establishment_id: str,
    retention: RetentionSettings,
    now: datetime,
    *,
    finished_at: dict[str, datetime] | None = None,
    last_successful_run: str | None = None,
) -> HousekeepingPlan:
    """Decide what has expired under ``establishment_root`` (nothing is removed here).

    ``finished_at`` maps run folder names to when their report was recorded; ``last_successful_run`` is
    the folder name of the last applied run, protected when ``keep_last_successful_run``.
    """
    plan = HousekeepingPlan(establishment_id)
    if not establishment_root.exists():
        return plan
    finished_at = finished_at or {}
    protected = last_successful_run if retention.keep_last_successful_run else None
    plan.protected_run = protected
    for child in sorted(establishment_root.iterdir(), key=lambda p: p.name):
        if not child.is_dir():
            continue
        if child.name == DELTA_STATE:
            _plan_delta_state(plan, child, retention, now)
            continue
        if child.name == protected:
            plan.kept_runs += 1
            continue
        run = RunFolder(child.name, child, finished_at.get(child.name) or newest_modification(child))
        if run.finished_at is None:  # an empty folder or a store that gives no times: leave it
            plan.kept_runs += 1
            continue
        age = now - run.finished_at
        files = list(walk_files(child))
        expired = [
            (kind, f)
            for f in files
            if age >= timedelta(days=days_for(kind := kind_of(relative(f, child)), retention))
        ]
        plan.removals += expired
        if len(expired) == len(files):
            plan.emptied_runs.append(child)
        else:
            plan.kept_runs += 1
    return plan


def _plan_delta_state(
    plan: HousekeepingPlan, folder: Any, retention: RetentionSettings, now: datetime
) -> None:
    """The delta snapshot is rewritten every run; it expires only when the school stopped syncing."""
    marker = folder / "delta.json"
    written = modified_at(marker) if marker.exists() else newest_modification(folder)
    if written is not None and now - written >= timedelta(days=retention.delta_snapshot_days):
        plan.removals += [("delta_snapshot", f) for f in walk_files(folder)]


def carry_out(plan: HousekeepingPlan, *, dry_run: bool) -> dict[str, int]:
    """Remove the planned files (unless ``dry_run``) and the folders left empty; return the counts."""
    if not dry_run:
        for _kind, path in plan.removals:
            with contextlib.suppress(FileNotFoundError):  # gone in an interrupted run: converges
                path.unlink()
        for run in plan.emptied_runs:
            remove_empty_folders(run)
        touched = {str(p.parent): p.parent for _k, p in plan.removals}
        for folder in touched.values():
            remove_empty_folders(folder)
    counts = plan.counts()
    log.info("housekeeping %s%s: %s", plan.establishment_id, " (dry run)" if dry_run else "", counts)
    return counts
