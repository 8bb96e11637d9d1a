"""The demo establishment's DAG end to end with ``dag.test()``: green, idempotent, no personal data leaked."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from mis_sync.directory.credentials import Credential
from mis_sync.directory.db import make_engine
from mis_sync.directory.schema import AuditEntry, User
from mis_sync.fakes import FakeClassroom, FakeGraph, running_fake_classroom, running_fake_graph
from mis_sync.generator import generate_school, write_file_drop
from mis_sync.passwords import decrypt_password
from tests.helpers import REPO

pytestmark = pytest.mark.airflow

DAG_ID = "mis_sync__demo_academy"
FAN_OUT = ("microsoft365", "google_classroom")


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    """The local Graph emulator the demo's Microsoft 365 target points at (as in `make demo`)."""
    with running_fake_graph(seed=5, auto_users_domain="demo-academy.example") as fake:
        extra = {
            "tenant_id": "00000000-0000-0000-0000-000000000000",
            "base_url": fake.base_url + "/",
            "allowed_hosts": "graph.microsoft.com",
        }
        conn = {"conn_type": "msgraph", "login": "client", "password": "secret", "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_MSGRAPH_DEMO", json.dumps(conn))
        yield fake


@pytest.fixture
def classroom(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClassroom]:
    """The local Classroom emulator the demo's Google Classroom target points at (as in `make demo`)."""
    with running_fake_classroom(seed=5, auto_users_domain="demo-academy.example") as fake:
        fake.add_user("it.admin@demo-academy.example", "IT", "Admin", is_admin=True)
        conn = {"conn_type": "generic", "extra": {"api_endpoint": fake.base_url}}
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_DEMO", json.dumps(conn))
        yield fake


@pytest.fixture
def fan_out_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo establishment without its Microsoft 365 and Classroom fan-out, for tests about the spine
    only (the fan-out has its own dag.test run above and its own tests): keeps the suite fast."""
    folder = tmp_path / "establishments"
    folder.mkdir()
    text = (REPO / "include" / "establishments" / "demo-academy.yaml").read_text(encoding="utf-8")
    head, targets = text.split("\ntargets:", 1)
    assert targets.count("enabled: true") == 2, "both demo targets are on"
    (folder / "demo-academy.yaml").write_text(
        head + "\ntargets:" + targets.replace("enabled: true", "enabled: false"), encoding="utf-8"
    )
    monkeypatch.setenv("MISYNC_ESTABLISHMENTS_DIR", str(folder))


@pytest.fixture
def demo(
    airflow_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    graph: FakeGraph,
    classroom: FakeClassroom,
) -> dict[str, Any]:
    """The demo school as `make demo` generates it, wired to this test's connections and folders."""
    drop = tmp_path / "drop"
    extract = generate_school(
        "secondary", 42, pd.Timestamp.now().date(), establishment_id="demo-academy", laestab="8814001"
    )
    write_file_drop(extract, drop)
    directory = tmp_path / "directory.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIS_DEMO_ACADEMY", json.dumps({"conn_type": "fs", "extra": {"path": str(drop)}})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_DIRECTORY",
        json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": f"sqlite:///{directory}"}}),
    )
    monkeypatch.setenv("AIRFLOW__MISYNC__RUN_STORAGE", f"file://{tmp_path / 'runs'}")
    key = Fernet.generate_key()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY", json.dumps({"conn_type": "generic", "password": key.decode()})
    )
    return {
        "drop": drop,
        "extract": extract,
        "engine": make_engine(f"sqlite:///{directory}"),
        "runs": tmp_path / "runs",
        "key": key,
        "graph": graph,
        "classroom": classroom,
    }


def _run(conf: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags[DAG_ID]
    return dag.test(run_conf=conf or {})


def _states(dag_run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _xcom_values(dag_run) -> list[str]:  # type: ignore[no-untyped-def]
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(XComModel.value).where(XComModel.dag_id == DAG_ID, XComModel.run_id == dag_run.run_id)
        ).all()
    return [json.dumps(row[0], default=str) for row in rows]


def _audit_rows(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def _personal_data(extract) -> set[str]:  # type: ignore[no-untyped-def]
    """Every name pair, long surname, UPN, date of birth and email in the demo data."""
    values: set[str] = set()
    for name in ("pupils", "staff", "contacts"):
        frame = extract.tables[name]
        for kind in ("legal", "preferred"):
            first, last = frame[f"{kind}_first_name"], frame[f"{kind}_last_name"]
            values |= set((first + " " + last).dropna())
            values |= {s for s in last.dropna() if len(s) >= 8}
        values |= set(frame["email"].dropna())
        if "date_of_birth" in frame:
            values |= set(frame["date_of_birth"].dropna().dt.strftime("%Y-%m-%d"))
    pupils = extract.tables["pupils"]
    values |= set(pupils["upn"].dropna()) | set(pupils["former_upn"].dropna())
    return values


def test_demo_dag_runs_green_then_makes_no_changes_and_leaks_nothing(
    demo: dict[str, Any], capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # the package's records reach caplog whatever an earlier test did to the root logger's handlers
    # (Airflow's logging set-up, run outside a task, swaps them for a stream bound to that test's capture)
    caplog.set_level(logging.INFO, logger="mis_sync")
    first = _run()
    assert _states(first) == {
        **dict.fromkeys(
            ["extract", "validate", "plan", "apply", "brake", "changes_settled", "report"], "success"
        ),
        **dict.fromkeys(["approve_held_changes", "apply_approved"], "skipped"),
        **{
            f"{target}.{task}": "success"
            for target in FAN_OUT
            for task in ("prepare", "sync_chunk", "finish")
        },
    }
    with demo["engine"].connect() as connection:
        users = connection.execute(select(func.count()).select_from(User)).scalar_one()
    assert users > 1000
    audit_after_first = _audit_rows(demo["engine"])
    report = json.loads(
        (next(demo["runs"].glob(f"demo-academy/{_safe(first.run_id)}")) / "report.json").read_text()
    )
    assert report["outcome"] == "applied" and report["users_by_role"]["pupil"]["created"] > 900
    m365 = report["targets"]["microsoft365"]
    assert m365["created"] == len(demo["graph"].state.classes) > 400 and m365["failed"] == 0
    assert m365["teams_created"] == m365["created"] == len(demo["graph"].state.teams), "a team per class"
    assert m365["chunks"] == 3, "481 groups minus 6 year groups, 200 per mapped task"
    google = report["targets"]["google_classroom"]
    courses = demo["classroom"].state.courses
    assert google["created"] == len(courses) == len(demo["classroom"].state.aliases) > 30
    assert google["failed"] == google["unresolved_users"] == 0

    second = _run()
    assert _states(second)["apply"] == "success"
    assert _audit_rows(demo["engine"]) == audit_after_first, "a no-change run writes no audit rows"
    report = json.loads((demo["runs"] / "demo-academy" / _safe(second.run_id) / "report.json").read_text())
    assert report["writes"] == 0
    assert report["targets"]["microsoft365"]["writes"] == 0, "no MIS change: nothing sent to Graph"
    assert report["targets"]["google_classroom"]["writes"] == 0, "nor to Classroom"
    assert all(c["created"] == c["updated"] == c["suspended"] == 0 for c in report["users_by_role"].values())

    with demo["engine"].connect() as connection:
        tokens = connection.execute(select(Credential.ciphertext)).scalars().all()
    assert len(tokens) == users, "every new account has an encrypted initial password"
    passwords = {decrypt_password(token, [demo["key"]]) for token in tokens}
    assert not any(token in passwords for token in tokens)

    logs = capfd.readouterr()
    text = "\n".join([logs.out, logs.err, caplog.text, *_xcom_values(first), *_xcom_values(second)])
    text += "\n".join(p.read_text(errors="replace") for p in Path(demo["runs"]).parent.rglob("*.log"))
    assert "MIS Sync report" in text, "the scan must see the task logs"
    secrets = _personal_data(demo["extract"]) | passwords
    leaked = sorted(v for v in secrets if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text))
    assert leaked == [], f"{len(leaked)} personal values found in logs or XCom"


def _safe(run_id: str) -> str:
    from mis_sync.storage import safe_segment

    return safe_segment(run_id)


def test_dry_run_stores_the_plan_and_applies_nothing(demo: dict[str, Any]) -> None:
    run = _run({"dry_run": True})
    states = _states(run)
    assert states["apply"] == "skipped" and states["report"] == "success"
    fan_out = {t: s for t, s in states.items() if t.startswith(FAN_OUT)}
    assert len(fan_out) == 6 and set(fan_out.values()) == {"skipped"}, "a dry run writes to no target"
    assert demo["graph"].counters["requests"] == demo["classroom"].counters["requests"] == 0
    folder = demo["runs"] / "demo-academy" / _safe(run.run_id)
    plan = json.loads((folder / "plan" / "plan.json").read_text())
    assert plan["users"]["create"] > 1000
    assert (folder / "plan" / "users.parquet").exists()
    assert _audit_rows(demo["engine"]) == 0
    assert json.loads((folder / "report.json").read_text())["outcome"] == "dry_run"
    assert _note(run).startswith("DRY RUN: planned only"), "the runs list tells a dry run apart"


def test_empty_extract_stops_before_plan(demo: dict[str, Any]) -> None:
    pupils = demo["drop"] / "pupils.csv"
    pupils.write_text(pupils.read_text().splitlines()[0] + "\n")
    run = _run()
    states = _states(run)
    assert states["extract"] == "success" and states["validate"] == "failed"
    assert states["plan"] == states["apply"] == "upstream_failed"
    assert _audit_rows(demo["engine"]) == 0


@pytest.mark.usefixtures("fan_out_off")
def test_backfill_or_late_retry_never_applies_an_older_snapshot(demo: dict[str, Any]) -> None:
    first = _run()
    assert _states(first)["apply"] == "success"
    audit_before = _audit_rows(demo["engine"])
    manifest_path = demo["drop"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["snapshot_at"] = (pd.Timestamp(manifest["snapshot_at"]) - pd.Timedelta(days=3)).isoformat()
    manifest_path.write_text(json.dumps(manifest))
    pupils = demo["drop"] / "pupils.csv"
    pupils.write_text("\n".join(pupils.read_text().splitlines()[:-50]) + "\n")  # older export: fewer pupils

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags[DAG_ID]
    backfill = dag.test(logical_date=pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3))
    states = _states(backfill)
    assert states["apply"] == "skipped" and states["report"] == "success"
    assert _audit_rows(demo["engine"]) == audit_before, "the directory was not rolled back"
    report = json.loads((demo["runs"] / "demo-academy" / _safe(backfill.run_id) / "report.json").read_text())
    assert report["outcome"] == "skipped"
    assert "older than the one already applied" in report["skipped_reason"]


def _note(run: Any) -> str:
    """The DAG run's note as the UI shows it (``plugins/mis_sync_run_notes.py`` writes it)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return str(session.scalars(select(DagRun).where(DagRun.run_id == run.run_id)).one().note or "")
