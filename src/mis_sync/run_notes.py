"""The run's note in the Airflow UI says what the report's headline says: ``REJECTED: 43 suspensions,
602 membership removals``, ``APPROVED: …`` or ``DRY RUN …``, so a run the brake held never looks like a
plain success in the runs list.

Why a listener: a task cannot set its DAG run's note (the Task SDK has no call for it, and tasks have no
database access in Airflow 3). A DAG-run listener runs in the scheduler (or ``dag.test``), where the
run is an ORM object in an open session: setting ``dag_run.note`` there is saved with the run's new
state. A note an admin already wrote is never replaced. Only counts reach the note (the report's
``mark`` is built from counts), never personal data.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

DAG_ID_PREFIX = "mis_sync__"
REPORT_TASK = "report"


def note_for(report: Any) -> str | None:
    """The note for a run whose report task returned ``report`` (its XCom), or None to leave it."""
    if not isinstance(report, dict):
        return None
    if report.get("outcome") == "dry_run":
        mark = f" ({report['mark']})" if report.get("mark") else ""
        return f"DRY RUN: planned only, nothing applied{mark}"
    mark = report.get("mark")
    return str(mark) if mark else None


def _report_xcom(dag_run: Any, session: Any) -> Any:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.execute(
        select(XComModel.value).where(
            XComModel.dag_run_id == dag_run.id,
            XComModel.task_id == REPORT_TASK,
            XComModel.key == "return_value",
            XComModel.map_index == -1,
        )
    ).first()
    return None if row is None else XComModel.deserialize_value(row)


def _write_note(dag_run: Any, session: Any) -> None:
    if dag_run.note:  # an admin's note stays
        return
    note = note_for(_report_xcom(dag_run, session))
    if note:
        dag_run.note = note
        log.info("MIS Sync: run %s of %s noted: %s", dag_run.run_id, dag_run.dag_id, note)


def mark_run(dag_run: Any) -> None:
    """In the scheduler the run is in the scheduler's open session: the note is written with the run's
    new state (a second session would wait on the run row the scheduler holds). Where the run comes
    detached (``dag.test``), the note is written in a session of its own."""
    if not str(dag_run.dag_id).startswith(DAG_ID_PREFIX):
        return
    try:
        from sqlalchemy.orm import object_session

        session = object_session(dag_run)
        if session is not None:
            _write_note(dag_run, session)
            return
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as own:
            _write_note(own.get(DagRun, dag_run.id), own)
    except Exception:  # a note is a courtesy: never let it disturb the scheduler
        log.exception("MIS Sync: could not note run %s", dag_run.run_id)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    mark_run(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    mark_run(dag_run)
