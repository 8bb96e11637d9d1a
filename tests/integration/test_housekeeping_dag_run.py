"""The housekeeping DAG end to end with ``dag.test()`` on ObjectStoragePath run storage: expired files
go, the last successful run stays, XCom holds counts only."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import insert

from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import SyncState
from tests.helpers import REPO

pytestmark = pytest.mark.airflow


def _old_run(root: Path, name: str, days: int) -> None:
    stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).timestamp()
    for relative in ("extract/pupils.parquet", "plan/users.parquet", "report.json"):
        path = root / "demo-academy" / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        os.utime(path, (stamp, stamp))


def test_housekeeping_dag_removes_expired_run_files(
    airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    establishments = tmp_path / "establishments"
    establishments.mkdir()
    shutil.copy(REPO / "include" / "establishments" / "demo-academy.yaml", establishments)
    monkeypatch.setenv("MISYNC_ESTABLISHMENTS_DIR", str(establishments))
    url = f"sqlite:///{tmp_path / 'directory.db'}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_DIRECTORY",
        json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}}),
    )
    runs = tmp_path / "runs"
    monkeypatch.setenv("AIRFLOW__MISYNC__RUN_STORAGE", f"file://{runs}")
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as c:
        c.execute(insert(SyncState).values(establishment_id="demo-academy", revision=1, last_run_id="kept"))
    _old_run(runs, "kept", 90)
    _old_run(runs, "expired", 45)
    _old_run(runs, "fresh", 2)

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["mis_sync__housekeeping"]
    dag_run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == {"housekeep": "success"}
    assert not (runs / "demo-academy" / "expired" / "extract").exists()
    assert not (runs / "demo-academy" / "expired" / "plan").exists()
    assert (runs / "demo-academy" / "expired" / "report.json").exists()
    assert (runs / "demo-academy" / "kept" / "extract" / "pupils.parquet").exists()
    assert (runs / "demo-academy" / "fresh" / "plan" / "users.parquet").exists()

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        values = session.execute(
            select(XComModel.key, XComModel.value).where(
                XComModel.dag_id == "mis_sync__housekeeping", XComModel.run_id == dag_run.run_id
            )
        ).all()
    [(key, value)] = values
    assert key == "return_value", "one XCom: the counts"
    counts = value if isinstance(value, dict) else json.loads(value)
    assert counts["extracts_files"] == 1 and counts["plans_files"] == 1
    assert all(isinstance(v, int) for v in counts.values()), "counts only"

    from mis_sync.cli import main

    args = ["housekeeping", "--directory-url", url, "--run-storage", str(runs), "--airflow-xcom-days", "0"]
    assert main([*args, "--dry-run"]) == 0
    with create_session() as session:
        assert session.execute(select(XComModel.key).where(XComModel.dag_id == dag.dag_id)).all(), "dry run"
    assert main(args) == 0
    with create_session() as session:
        assert session.execute(select(XComModel.key).where(XComModel.dag_id == dag.dag_id)).all() == []
