"""The safety brake through the real DAG (``dag.test()``): a term-time mass departure waits at the
Airflow human-in-the-loop approval task, and the fan-out to Microsoft 365 and Classroom follows the
answer. Its own module so ``make test``'s workers run it beside the other DAG runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from mis_sync.directory.schema import User
from tests.integration import test_dag_run as dag_runs
from tests.integration.test_dag_run import DAG_ID, FAN_OUT, _note, _personal_data, _run, _safe, _states

pytestmark = pytest.mark.airflow

# the same fixtures as the other DAG runs (function-scoped: each test gets its own school and emulators)
graph, classroom, demo = dag_runs.graph, dag_runs.classroom, dag_runs.demo


def _drop_year_group_share(drop: Path, year: str, share: float) -> int:
    """Remove a share of one year group from the file drop (pupils, their memberships and links)."""
    pupils = pd.read_csv(drop / "pupils.csv", dtype=str, keep_default_na=False)
    cohort = pupils[(pupils["YearGroup"] == year) & (pupils["EnrolmentStatus"] == "on_roll")]
    gone = set(cohort["PupilId"].head(int(len(cohort) * share)))
    pupils[~pupils["PupilId"].isin(gone)].to_csv(drop / "pupils.csv", index=False)
    for name, column in (("memberships.csv", "PersonId"), ("relationships.csv", "PupilId")):
        frame = pd.read_csv(drop / name, dtype=str, keep_default_na=False)
        frame[~frame[column].isin(gone)].to_csv(drop / name, index=False)
    manifest = json.loads((drop / "manifest.json").read_text())
    manifest["snapshot_at"] = (pd.Timestamp(manifest["snapshot_at"]) + pd.Timedelta(hours=1)).isoformat()
    (drop / "manifest.json").write_text(json.dumps(manifest))
    return len(gone)


def _gone_ids(drop: Path, extract: Any) -> set[str]:
    """Pupils of the generated school missing from the (damaged) file drop."""
    left = set(pd.read_csv(drop / "pupils.csv", dtype=str, keep_default_na=False)["PupilId"])
    return set(extract.tables["pupils"]["mis_id"]) - left


def _approve_when_asked(answers: dict[str, Any], option: str) -> None:
    """Act as the admin in the Airflow UI: wait for the approval task, then answer via the REST API."""
    import time

    from airflow.api_fastapi.app import create_app
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.task_id == "approve_held_changes",
                    TaskInstance.state == "awaiting_input",
                )
            ).first()
            run_id = ti.run_id if ti else None
        if run_id:
            client = TestClient(create_app())
            path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_held_changes/-1/hitlDetails"
            answers["detail"] = client.get(path).json()
            answers["response"] = client.patch(path, json={"chosen_options": [option]}).status_code
            return
        time.sleep(0.5)
    answers["response"] = "timed out waiting for the approval task"


def _graph_members(demo: dict[str, Any], pupils: set[str]) -> int:
    """Class memberships the given pupils (MIS ids) hold in the emulated Microsoft 365 tenant."""
    with demo["engine"].connect() as connection:
        names = connection.execute(select(User.username).where(User.mis_id.in_(sorted(pupils)))).scalars()
        upns = {f"{name}@demo-academy.example".lower() for name in names}
    state = demo["graph"].state
    ids = {uid for uid, user in state.users.items() if user["userPrincipalName"].lower() in upns}
    return sum(len(ids.intersection(members)) for members in state.members.values())


@pytest.mark.parametrize("option", ["Approve", "Reject"])
def test_term_time_mass_departure_waits_for_approval(
    demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    """Issue 12 scenario 3 through the DAG: the held pupils keep every class in the directory and in
    Microsoft 365 / Classroom until the answer; Approve applies both in the same run, Reject neither."""
    import copy
    import threading

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    assert _states(_run())["apply"] == "success"
    graph_before = copy.deepcopy((demo["graph"].state.classes, demo["graph"].state.members))
    courses_before = copy.deepcopy(demo["classroom"].state.students)
    gone = _drop_year_group_share(demo["drop"], "8", 0.35)
    pupils = _gone_ids(demo["drop"], demo["extract"])
    assert len(pupils) == gone and _graph_members(demo, pupils) > 0
    answers: dict[str, Any] = {}
    responder = threading.Thread(target=_approve_when_asked, args=(answers, option), daemon=True)
    responder.start()
    run = _run()
    responder.join(timeout=5)

    assert answers["response"] == 200, answers["response"]
    body = answers["detail"]["body"]
    assert f"year 8: {gone} of" in body, "the admin sees why, in counts"
    assert not [v for v in _personal_data(demo["extract"]) if v in body]
    states = _states(run)
    assert states["apply"] == "success" and states["report"] == "success"
    for target in FAN_OUT:  # (sync_chunk is skipped when there is nothing to send: no chunks)
        assert states[f"{target}.prepare"] == states[f"{target}.finish"] == "success", "the fan-out follows"
    with demo["engine"].connect() as connection:
        suspended = connection.execute(
            select(func.count()).select_from(User).where(User.status == "suspended")
        ).scalar_one()
    report = json.loads((demo["runs"] / "demo-academy" / _safe(run.run_id) / "report.json").read_text())
    if option == "Approve":
        assert states["apply_approved"] == "success"
        assert suspended == gone
        assert report["approved_after_hold"] and report["users_by_role"]["pupil"]["suspended"] == gone
        assert report["hold"] == "approved" and report["mark"].startswith(f"APPROVED: {gone} suspensions")
        assert _note(run).startswith(f"APPROVED: {gone} suspensions"), "the runs list says so too"
        assert _graph_members(demo, pupils) == 0, "Microsoft 365 followed the approval in the same run"
    else:
        assert states["apply_approved"] == "skipped"
        assert suspended == 0, "rejected: nothing is suspended"
        assert report["users_held"] == gone
        assert report["hold"] == "rejected" and report["mark"].startswith(f"REJECTED: {gone} suspensions")
        assert _note(run).startswith(f"REJECTED: {gone} suspensions"), "the runs list says so too"
        graph_after = (demo["graph"].state.classes, demo["graph"].state.members)
        assert graph_after == graph_before, "Microsoft 365 untouched"
        assert demo["classroom"].state.students == courses_before, "Classroom untouched"
