"""XCom retention for MIS Sync's DAGs through Airflow's own ``airflow db clean``.

Not re-implemented: Airflow owns its metadata database (and in Airflow 3 a task cannot reach it), so
``misync housekeeping --airflow-xcom-days N`` runs the Airflow CLI on the same machine, limited to the
``xcom`` table and to MIS Sync's DAG ids. Task logs are files: see ``docs/privacy.md``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path


def airflow_executable() -> str:
    """The ``airflow`` next to this interpreter (a virtualenv), else the one on ``PATH``."""
    beside = Path(sys.executable).with_name("airflow")
    return str(beside) if beside.exists() else (shutil.which("airflow") or "airflow")


def xcom_clean_command(dag_ids: Sequence[str], before: datetime, *, dry_run: bool) -> list[str]:
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    command = [
        airflow_executable(),
        "db",
        "clean",
        "--clean-before-timestamp",
        before.isoformat(),
        "--tables",
        "xcom",
        "--dag-ids",
        ",".join(sorted(dag_ids)),
        "--skip-archive",
        "--yes",
    ]
    return [*command, "--dry-run"] if dry_run else command


def clean_xcom(dag_ids: Sequence[str], before: datetime, *, dry_run: bool) -> int:
    """Run ``airflow db clean`` for these DAGs' XCom; returns its exit code (its output is row counts)."""
    if not dag_ids:
        return 0
    result = subprocess.run(xcom_clean_command(dag_ids, before, dry_run=dry_run), check=False)
    return result.returncode
