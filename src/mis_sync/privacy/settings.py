"""Retention settings: how long each kind of stored data is kept (``retention:`` in an establishment file).

Defaults are deliberately short for the files that hold every pupil's personal data (the run folders'
extracts) and long for what holds ids and counts only (reports, findings history). The last successful
run's folder is always kept whatever its age: it is what an admin reads when the next night fails.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Days = Annotated[int, Field(ge=1, le=3650)]
HOUSEKEEPING_DAG_ID = "mis_sync__housekeeping"


class RetentionSettings(BaseModel):
    """Days after a run finished before each part of its folder is removed by housekeeping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extracts_days: Days = 30
    """``extract/`` and ``validated/`` Parquet files: every pupil's, staff member's and contact's data."""
    plans_days: Days = 30
    """``plan/`` and ``approved/``: every change with names and usernames."""
    findings_days: Days = 30
    """``validated/findings.*`` and ``quarantined``: the data manager's report (MIS ids, fields, hints)."""
    target_files_days: Days = 30
    """``targets-*/``: what was sent to Microsoft 365 / Google (principal names)."""
    delta_snapshot_days: Days = 30
    """``delta-state/``: the last full snapshot a delta source merges into, rewritten every run; removed
    only when the establishment has not synced for this long (the next run then reads in full)."""
    reports_days: Days = 400
    """``report.json`` and ``lineage.json`` (counts only), then the emptied run folder itself; also the
    directory's run reports (``directory_sync_runs``)."""
    findings_history_days: Days = 400
    """Fixed data-quality findings in the directory (MIS ids and rule names only)."""
    audit_pseudonymise_after_days: Annotated[int, Field(ge=0, le=3650)] = 0
    """Days after a leaver's account was deleted (itself ``accounts.leaver_grace_days`` after they
    left) before their audit entries' personal values (names, email, year group) are pseudonymised.
    The entries themselves, with ids, actions and reasons, are kept."""
    keep_last_successful_run: bool = True
    """Never remove any part of the last successful (applied) run's folder."""
