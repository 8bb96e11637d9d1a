"""DAG integrity and policy: every establishment loads, broken files stay contained, parse time is clean."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.airflow

ESTABLISHMENTS = REPO / "include" / "establishments"
HOUSEKEEPING = "mis_sync__housekeeping"
"""Loaded beside the establishments' DAGs by dags/mis_sync_housekeeping.py (see test_housekeeping_dag)."""


def _dagbag(establishments: Path | None = None, monkeypatch: pytest.MonkeyPatch | None = None):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    if establishments is not None and monkeypatch is not None:
        monkeypatch.setenv("MISYNC_ESTABLISHMENTS_DIR", str(establishments))
    return DagBag(dag_folder=str(REPO / "dags"))


def test_every_shipped_establishment_loads_without_import_errors() -> None:
    bag = _dagbag()
    assert bag.import_errors == {}
    expected = {f"mis_sync__{p.stem.replace('-', '_')}" for p in ESTABLISHMENTS.glob("*.yaml")}
    assert expected and set(bag.dag_ids) == expected | {HOUSEKEEPING}


def test_broken_file_breaks_only_its_own_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ESTABLISHMENTS / "demo-academy.yaml", tmp_path / "demo-academy.yaml")
    good = (ESTABLISHMENTS / "demo-academy.yaml").read_text().replace("demo-academy", "second-school")
    (tmp_path / "second-school.yaml").write_text(good)
    (tmp_path / "broken-school.yaml").write_text(
        "id: broken-school\nname: Broken\nlaestab: '123'\nmis: {type: file_drop, connection_id: x}\n"
    )
    bag = _dagbag(tmp_path, monkeypatch)
    assert set(bag.dag_ids) == {"mis_sync__demo_academy", "mis_sync__second_school", HOUSEKEEPING}
    [message] = bag.import_errors.values()
    assert "broken-school.yaml" in message and "laestab" in message and "pattern" in message


def test_a_latin1_file_breaks_only_its_own_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ESTABLISHMENTS / "demo-academy.yaml", tmp_path / "demo-academy.yaml")
    text = (ESTABLISHMENTS / "demo-academy.yaml").read_text().replace("demo-academy", "ecole-school")
    (tmp_path / "ecole-school.yaml").write_bytes(text.replace("Demo Academy", "\u00c9cole").encode("cp1252"))
    bag = _dagbag(tmp_path, monkeypatch)
    assert set(bag.dag_ids) == {"mis_sync__demo_academy", HOUSEKEEPING}
    [message] = bag.import_errors.values()
    assert "ecole-school.yaml" in message and "not UTF-8" in message


def test_yaml_and_yml_for_one_school_is_an_import_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(ESTABLISHMENTS / "demo-academy.yaml", tmp_path / "demo-academy.yaml")
    text = (ESTABLISHMENTS / "demo-academy.yaml").read_text().replace("demo-academy", "twin-school")
    (tmp_path / "twin-school.yaml").write_text(text)
    (tmp_path / "twin-school.yml").write_text(text.replace("mode: create", "mode: link"))
    bag = _dagbag(tmp_path, monkeypatch)
    assert set(bag.dag_ids) == {"mis_sync__demo_academy", HOUSEKEEPING}
    [message] = bag.import_errors.values()
    assert "twin-school.yaml" in message and "twin-school.yml" in message


def test_dag_policy() -> None:
    from airflow.timetables.trigger import CronTriggerTimetable

    dag = _dagbag().dags["mis_sync__demo_academy"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert str(dag.timetable._timezone.name) == "Europe/London"
    assert {"mis-sync", "mis:file_drop", "mode:create", "demo"} <= set(dag.tags)
    assert "Demo Academy" in dag.doc_md and "8814001" in dag.doc_md
    assert {"dry_run", "full_sync", "approve_suspensions"} <= set(dag.params.keys())
    order = [t.task_id for t in dag.topological_sort()]
    spine = [
        "extract",
        "validate",
        "plan",
        "apply",
        "brake",
        "approve_held_changes",
        "apply_approved",
        "changes_settled",
        "report",
    ]
    assert [t for t in order if t in spine] == spine
    for target, pool in (("microsoft365", "misync_graph"), ("google_classroom", "misync_google")):
        fan_out = [f"{target}.prepare", f"{target}.sync_chunk", f"{target}.finish"]
        assert [t for t in order if t.startswith(f"{target}.")] == fan_out
        assert dag.get_task(fan_out[0]).upstream_task_ids == {"changes_settled"}, "after the approval"
        assert fan_out[2] in dag.get_task("report").upstream_task_ids
        for task_id in fan_out[:2]:
            assert dag.get_task(task_id).pool == pool
        assert type(dag.get_task(fan_out[1])).__name__.endswith("MappedOperator")
    assert "drift_check" in dag.params
    approval = dag.get_task("approve_held_changes")
    assert type(approval).__name__ == "ApprovalOperator"
    assert approval.defaults == ["Reject"], "no answer means nothing is removed"
    for task in dag.tasks:
        if task is approval:
            continue  # a human answer is not retried
        assert task.retries >= 1 and task.retry_exponential_backoff
        assert task.max_retry_delay is not None
        assert task.retry_policy is not None
    assert dag.get_task("report").trigger_rule == "none_failed_min_one_success"
    settled = dag.get_task("changes_settled")
    assert settled.upstream_task_ids == {"brake", "apply_approved"}, "both paths of the brake join here"
    assert settled.trigger_rule == "none_failed_min_one_success", "runs after Approve and after Reject"


PARSE_PROBE = """
import json, socket, sys
from airflow.dag_processing.dagbag import DagBag
import sqlalchemy
def refuse(*a, **k):
    raise RuntimeError("I/O at DAG parse time")
socket.socket.connect = refuse
sqlalchemy.create_engine = refuse
from airflow.sdk import BaseHook, Variable
BaseHook.get_connection = classmethod(refuse)
Variable.get = staticmethod(refuse)
watched = ("pandas", "pyarrow", "faker", "mis_sync.directory.db", "mis_sync.pipeline")
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": bag.import_errors,
                  "heavy": sorted(m for m in watched if m in sys.modules)}))
"""


def _probe(env_extra: dict[str, str]) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, **env_extra}
    result = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(REPO / "dags")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_parsing_needs_no_network_database_connections_or_heavy_imports() -> None:
    outcome = _probe({})
    assert outcome["errors"] == {}
    assert "mis_sync__demo_academy" in outcome["dags"]
    assert outcome["heavy"] == [], "pandas/pyarrow/faker must be imported inside tasks, not at parse time"


def test_task_process_builds_only_its_own_dag(tmp_path: Path) -> None:
    for school in ("alpha-school", "beta-school"):
        text = (ESTABLISHMENTS / "demo-academy.yaml").read_text().replace("demo-academy", school)
        (tmp_path / f"{school}.yaml").write_text(text)
    (tmp_path / "broken-school.yaml").write_text("id: [not valid\n")
    everything = _probe({"MISYNC_ESTABLISHMENTS_DIR": str(tmp_path)})
    assert everything["dags"] == ["mis_sync__alpha_school", "mis_sync__beta_school", HOUSEKEEPING]
    assert everything["errors"]
    only_beta = _probe(
        {
            "MISYNC_ESTABLISHMENTS_DIR": str(tmp_path),
            "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "mis_sync__beta_school",
        }
    )
    assert only_beta == {"dags": ["mis_sync__beta_school"], "errors": {}, "heavy": []}


def test_task_process_refuses_a_school_with_two_files(tmp_path: Path) -> None:
    text = (ESTABLISHMENTS / "demo-academy.yaml").read_text().replace("demo-academy", "twin-school")
    (tmp_path / "twin-school.yaml").write_text(text)
    (tmp_path / "twin-school.yml").write_text(text)
    outcome = _probe(
        {
            "MISYNC_ESTABLISHMENTS_DIR": str(tmp_path),
            "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "mis_sync__twin_school",
        }
    )
    assert outcome["dags"] == []
    [message] = outcome["errors"].values()
    assert "twin-school.yaml" in message and "twin-school.yml" in message
