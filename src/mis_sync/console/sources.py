"""Where the console finds establishments, their directory and their password keys.

In Airflow these are the establishment YAMLs (``MISYNC_ESTABLISHMENTS_DIR`` / ``include/establishments``)
and the Airflow Connections each YAML names, looked up the way the ``misync`` CLI does. Tests pass their
own ``ConsoleSources`` with throwaway databases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from mis_sync.config import Establishment, discover
from mis_sync.paths import establishments_dir


def airflow_schedules(dag_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Next scheduled run and paused flag per DAG, from Airflow's metadata DB (what its UI shows)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(DagModel.dag_id, DagModel.next_dagrun_create_after, DagModel.is_paused).where(
        DagModel.dag_id.in_(dag_ids)
    )
    with create_session() as session:
        rows = session.execute(query).all()
    return {row.dag_id: {"next_run": row.next_dagrun_create_after, "paused": row.is_paused} for row in rows}


def read_findings_page(run_folder: str) -> bytes | None:
    """The data manager's findings page a run wrote (local folder or the run storage's object store)."""
    from mis_sync.quality.report import HTML_NAME

    folder: Any
    if "://" in run_folder:
        from airflow.sdk import ObjectStoragePath
        from airflow.sdk.configuration import conf

        conn_id = conf.get("misync", "run_storage_conn_id", fallback=None) or None
        folder = ObjectStoragePath(run_folder, conn_id=conn_id)
    else:
        folder = Path(run_folder)
    page = folder / "validated" / HTML_NAME
    if not page.exists():
        return None
    with page.open("rb") as handle:
        return bytes(handle.read())


@dataclass
class ConsoleSources:
    establishments: Callable[[], list[Establishment]]
    engine: Callable[[Establishment], Engine]
    keys: Callable[[Establishment], list[bytes] | None]
    schedules: Callable[[list[str]], dict[str, dict[str, datetime | bool | None]]] = airflow_schedules
    findings_page: Callable[[str], bytes | None] = read_findings_page

    def find(self, establishment_id: str) -> Establishment | None:
        return next((e for e in self.establishments() if e.id == establishment_id), None)


@dataclass
class _EngineCache:
    """One engine per directory URL, migrated once (the console never runs a migration per request)."""

    engines: dict[str, Engine] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, establishment: Establishment) -> Engine:
        from mis_sync.connections import from_airflow, sqlalchemy_url
        from mis_sync.directory.db import make_engine, migrate

        url = sqlalchemy_url(from_airflow(establishment.directory.connection_id))
        with self.lock:
            if url not in self.engines:
                engine = make_engine(url)
                migrate(engine)
                self.engines[url] = engine
            return self.engines[url]


def _configured_establishments() -> list[Establishment]:
    """Establishments whose files load; a broken file is the DAG loader's error to show, not ours."""
    return [item.establishment for item in discover(establishments_dir()) if item.establishment is not None]


def _keys(establishment: Establishment) -> list[bytes] | None:
    """The initial-password keys (None when the establishment issues no passwords), as the CLI reads them."""
    from mis_sync.connections import from_airflow
    from mis_sync.passwords import keys_from_connection

    if not establishment.passwords.issue_initial or establishment.mode == "link":
        return None
    return keys_from_connection(from_airflow(establishment.passwords.key_connection_id))


def airflow_sources() -> ConsoleSources:
    return ConsoleSources(establishments=_configured_establishments, engine=_EngineCache(), keys=_keys)
