"""The ``mis_sync__housekeeping`` DAG: daily retention for every establishment (counts only).

Parse time reads the establishment files only (no database, no storage); each establishment is one
mapped task instance, so one school's unreachable directory fails only its own instance.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pendulum

from mis_sync.config import TIMEZONE, discover
from mis_sync.paths import establishments_dir
from mis_sync.privacy.settings import HOUSEKEEPING_DAG_ID

if TYPE_CHECKING:
    from airflow.sdk import DAG

SCHEDULE = "15 5 * * *"
"""05:15 Europe/London: after the nightly syncs (01:30 by default), before the school day."""

DOC_MD = """
# MIS Sync — housekeeping

Daily retention for every establishment, per its `retention:` settings (defaults in `docs/privacy.md`):

- **run folders**: extracts, plans, findings and target files after 30 days, reports after 400; the
  last successful run's folder is always kept; the delta snapshot only when a school stopped syncing;
- **directory**: run reports and fixed findings after 400 days; audit entries are kept, but the
  personal values in a deleted leaver's entries are pseudonymised.

Logs and XCom carry counts per kind only. Trigger with `dry_run` to see what would go.
Airflow's own XCom and task logs: `airflow db clean` and log retention (see `docs/privacy.md`).
"""


def establishment_files() -> dict[str, str]:
    """Establishment id → file name, for the files that load (a broken file is reported elsewhere)."""
    return {
        item.establishment.id: item.path.name for item in discover(establishments_dir()) if item.establishment
    }


def build_housekeeping_dag() -> DAG:
    from airflow.sdk import DAG, Param, get_current_context, task
    from airflow.timetables.trigger import CronTriggerTimetable

    with DAG(
        dag_id=HOUSEKEEPING_DAG_ID,
        description="Retention of MIS Sync run folders and directory history (counts only)",
        schedule=CronTriggerTimetable(SCHEDULE, timezone=TIMEZONE),
        start_date=pendulum.datetime(2025, 9, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=timedelta(hours=2),
        default_args={
            "owner": "school-it",
            "retries": 2,
            "retry_delay": timedelta(minutes=5),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30),
        },
        tags=["mis-sync", "housekeeping", "privacy"],
        doc_md=DOC_MD,
        params={"dry_run": Param(False, type="boolean", description="Count what would go; remove nothing.")},
    ) as dag:

        @task(max_active_tis_per_dagrun=2, multiple_outputs=False)
        def housekeep(file_name: str) -> dict[str, int]:
            from datetime import UTC, datetime

            from mis_sync.config import load_establishment
            from mis_sync.privacy.housekeeping import housekeep_from_airflow

            config = load_establishment(establishments_dir() / file_name)
            dry_run = bool(get_current_context()["params"]["dry_run"])
            return housekeep_from_airflow(config, datetime.now(UTC), dry_run=dry_run)

        housekeep.expand(file_name=sorted(establishment_files().values()))
    return dag


def register(namespace: dict[str, Any]) -> None:
    """Build the DAG into a DAG file's ``globals()``, unless a task process of another DAG is parsing."""
    from airflow.sdk import get_parsing_context

    wanted = get_parsing_context().dag_id
    if wanted and wanted != HOUSEKEEPING_DAG_ID:
        return
    namespace[HOUSEKEEPING_DAG_ID] = build_housekeeping_dag()
