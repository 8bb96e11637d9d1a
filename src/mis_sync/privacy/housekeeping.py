"""Housekeeping: retention for every establishment, as the ``mis_sync__housekeeping`` DAG and
``misync housekeeping`` run it. Counts only.

Airflow's own metadata (XCom, task instances, task logs) is not re-implemented here: MIS Sync puts only
ids, counts and hashes there, and ``airflow db clean`` and the log retention settings own it (see
``docs/privacy.md``).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from mis_sync.config import Establishment
from mis_sync.privacy.directory_retention import directory_retention, run_times
from mis_sync.privacy.retention import carry_out, plan_run_storage
from mis_sync.privacy.settings import HOUSEKEEPING_DAG_ID  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

RUN_STORAGE_DEFAULT = "misync-runs"


def run_storage_base() -> Any:
    """The run storage root as an ``ObjectStoragePath``: ``[misync] run_storage`` (with
    ``run_storage_conn_id``) or ``$AIRFLOW_HOME/misync-runs``, as ``dag_factory`` lays runs out."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.configuration import conf

    home = os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))
    base = conf.get("misync", "run_storage", fallback=None) or f"file://{home}/{RUN_STORAGE_DEFAULT}"
    conn_id = conf.get("misync", "run_storage_conn_id", fallback=None) or None
    return ObjectStoragePath(base, conn_id=conn_id)


def housekeep_establishment(
    config: Establishment, engine: Engine, storage_base: Any, now: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Run-folder and directory retention for one establishment; returns counts per kind."""
    finished, last_success = run_times(engine, config.id)
    plan = plan_run_storage(
        storage_base / config.id,
        config.id,
        config.retention,
        now,
        finished_at=finished,
        last_successful_run=last_success,
    )
    counts = carry_out(plan, dry_run=dry_run)
    counts |= directory_retention(engine, config.id, config.retention, now, dry_run=dry_run)
    log.info("housekeeping %s%s: %s", config.id, " (dry run)" if dry_run else "", counts)
    return counts


def housekeep_from_airflow(config: Establishment, now: datetime, *, dry_run: bool) -> dict[str, int]:
    """In a task: the establishment's directory from its Airflow Connection, the configured storage."""
    from mis_sync.connections import from_airflow, sqlalchemy_url
    from mis_sync.directory.db import make_engine, migrate

    engine = make_engine(sqlalchemy_url(from_airflow(config.directory.connection_id)))
    try:
        migrate(engine)
        return housekeep_establishment(config, engine, run_storage_base(), now, dry_run=dry_run)
    finally:
        engine.dispose()
