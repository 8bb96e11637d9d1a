"""The housekeeping DAG, in the DAG integrity tests' style: it loads, follows the policy, parses clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.integration.test_dag_integrity import _dagbag, _probe

pytestmark = pytest.mark.airflow


def test_housekeeping_dag_policy() -> None:
    from airflow.timetables.trigger import CronTriggerTimetable

    bag = _dagbag()
    assert bag.import_errors == {}
    dag = bag.dags["mis_sync__housekeeping"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert str(dag.timetable._timezone.name) == "Europe/London"
    assert {"mis-sync", "housekeeping", "privacy"} <= set(dag.tags)
    assert "retention" in dag.doc_md.lower() and "airflow db clean" in dag.doc_md
    assert "dry_run" in dag.params
    [task] = dag.tasks
    assert type(task).__name__.endswith("MappedOperator"), "one mapped instance per establishment"
    assert task.retries >= 1 and task.retry_exponential_backoff


def test_housekeeping_maps_over_the_loadable_establishment_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mis_sync.privacy.housekeeping_dag import establishment_files

    good = (REPO / "include" / "establishments" / "demo-academy.yaml").read_text()
    (tmp_path / "second-school.yml").write_text(good.replace("demo-academy", "second-school"))
    (tmp_path / "broken.yaml").write_text("id: [broken\n")
    monkeypatch.setenv("MISYNC_ESTABLISHMENTS_DIR", str(tmp_path))
    assert establishment_files() == {"second-school": "second-school.yml"}


def test_housekeeping_parse_is_clean_and_skipped_in_other_dags_task_processes() -> None:
    outcome = _probe({})
    assert "mis_sync__housekeeping" in outcome["dags"] and outcome["errors"] == {}
    assert outcome["heavy"] == []
    other = _probe({"_AIRFLOW_PARSING_CONTEXT_DAG_ID": "mis_sync__demo_academy"})
    assert other["dags"] == ["mis_sync__demo_academy"]
