"""What the run-notes listener writes into a MIS Sync DAG run's note (counts only, never replacing an
admin's note, never touching other DAGs' runs)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mis_sync import run_notes


@pytest.mark.parametrize(
    ("report", "note"),
    [
        ({"outcome": "applied", "mark": "REJECTED: 43 suspensions"}, "REJECTED: 43 suspensions"),
        ({"outcome": "applied", "mark": "APPROVED: 2 group archives"}, "APPROVED: 2 group archives"),
        ({"outcome": "applied", "mark": None}, None),
        ({"outcome": "dry_run", "mark": None}, "DRY RUN: planned only, nothing applied"),
        ({"outcome": "dry_run", "mark": "HELD: 3 suspensions waiting for approval"},
         "DRY RUN: planned only, nothing applied (HELD: 3 suspensions waiting for approval)"),
        (None, None),
        ("not a report", None),
    ],
)  # fmt: skip
def test_note_for_a_report(report: Any, note: str | None) -> None:
    assert run_notes.note_for(report) == note


def run(dag_id: str, note: str | None = None) -> Any:
    return SimpleNamespace(dag_id=dag_id, run_id="r1", id=1, note=note)


@pytest.fixture
def attached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs as the scheduler hands them over: inside its open session."""
    import sqlalchemy.orm

    monkeypatch.setattr(sqlalchemy.orm, "object_session", lambda _run: object())


@pytest.mark.usefixtures("attached")
def test_only_mis_sync_runs_without_a_note_are_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    report = {"outcome": "applied", "mark": "REJECTED: 1 suspensions"}
    monkeypatch.setattr(run_notes, "_report_xcom", lambda _run, _session: report)
    ours, other, noted = run("mis_sync__demo_academy"), run("etl_nightly"), run("mis_sync__x", "admin's note")
    for dag_run in (ours, other, noted):
        run_notes.mark_run(dag_run)
    assert ours.note == "REJECTED: 1 suspensions"
    assert other.note is None and noted.note == "admin's note"


@pytest.mark.usefixtures("attached")
def test_a_failing_read_never_disturbs_the_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_run: Any, _session: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(run_notes, "_report_xcom", broken)
    dag_run = run("mis_sync__demo_academy")
    run_notes.mark_run(dag_run)
    assert dag_run.note is None
