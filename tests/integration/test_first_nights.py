"""First nights on PostgreSQL (issue 13 item 11): runs that start together on a fresh directory.

Each race is forced, not hoped for: the first run is held inside its critical section until the second
has reached the same point (a barrier, or PostgreSQL reporting the second waiting on a lock), so the old
code (read "absent", then insert) fails every time and the fixed code must let both runs finish.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

from mis_sync.directory import db as directory_db
from mis_sync.directory.apply import _lock_state
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import SyncState
from mis_sync.quality import history
from mis_sync.quality.schema import QualityFinding

NOW = dt.datetime(2026, 9, 2, 1, 30, tzinfo=dt.UTC)
HOLD = 3.0
"""Seconds the first run waits at the barrier for the second (which, with the fix, waits on a lock)."""


def _held_at_barrier(real: Callable[..., Any], barrier: threading.Barrier) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):  # the other run waits on our lock
            barrier.wait(timeout=HOLD)
        return real(*args, **kwargs)

    return wrapper


def _together(*runs: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(run: Callable[[], None]) -> None:
        try:
            run()
        except BaseException as exc:  # collected and asserted on in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a run hung"
    return errors


def test_two_migrations_of_an_empty_database_take_turns(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    barrier = threading.Barrier(2)
    monkeypatch.setattr(
        directory_db.command, "upgrade", _held_at_barrier(directory_db.command.upgrade, barrier)
    )
    engines = [make_engine(postgres_url) for _ in range(2)]
    try:
        errors = _together(*(lambda engine=engine: migrate(engine) for engine in engines))
        assert errors == []
        with engines[0].connect() as connection:
            version = connection.execute(text("SELECT version_num FROM directory_alembic_version")).all()
        assert len(version) == 1
    finally:
        for engine in engines:
            engine.dispose()


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar())


def test_two_first_applies_of_one_school_share_the_new_sync_state(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    migrate(engine)
    try:
        errors: list[BaseException] = []
        revisions: list[int] = []

        def second() -> None:
            try:
                with engine.begin() as connection:
                    revisions.append(_lock_state(connection, "school-a").revision)
            except BaseException as exc:
                errors.append(exc)

        with engine.begin() as first:
            revisions.append(_lock_state(first, "school-a").revision)  # inserted, not yet committed
            thread = threading.Thread(target=second)
            thread.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(engine):  # the second run is blocked on our new row
                assert time.monotonic() < deadline, "the second apply never reached the sync state"
                time.sleep(0.05)
        thread.join(timeout=60)
        assert errors == []
        assert revisions == [0, 0]
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(SyncState)).scalar() == 1
    finally:
        engine.dispose()


def _findings() -> pd.DataFrame:
    rows = [
        ("pupils", "P1", "upn", "upn_check_letter", "error"),
        ("pupils", "P2", "email", "email_invalid", "warning"),
        ("staff", "S1", "staff_code", "staff_code_missing", "warning"),
    ]
    frame = pd.DataFrame(rows, columns=["entity", "mis_id", "field", "rule", "severity"])
    return frame.assign(hint="fix it in the MIS", row=range(len(rows)))


def test_two_runs_recording_the_same_new_findings_both_finish(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(postgres_url)
    migrate(engine)
    barrier = threading.Barrier(2)
    monkeypatch.setattr(history, "_existing", _held_at_barrier(history._existing, barrier))
    try:
        results: dict[str, pd.DataFrame] = {}

        def run(run_id: str) -> None:
            results[run_id] = history.update_history(engine, "school-a", run_id, _findings(), NOW)

        errors = _together(lambda: run("scheduled"), lambda: run("manual"))
        assert errors == []
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(QualityFinding)).scalar()
        assert stored == 3
        assert {len(frame) for frame in results.values()} == {3}
    finally:
        engine.dispose()


def _first_run_process(argv: list[str], meet: Any, upgrade_barrier: Any) -> None:
    """A child process: one school's ``misync run``; its first migrate() meets the other run's."""
    import sys

    from mis_sync.cli import main

    real_config, real_upgrade = directory_db.alembic_config, directory_db.command.upgrade
    first = [True]

    def config_after_meeting() -> Any:
        if first[0]:  # only the run's first migrate() waits for the other run
            first[0] = False
            with contextlib.suppress(threading.BrokenBarrierError):
                meet.wait(timeout=180)
        return real_config()

    directory_db.alembic_config = config_after_meeting  # type: ignore[assignment]
    directory_db.command.upgrade = _held_at_barrier(real_upgrade, upgrade_barrier)  # type: ignore[assignment]
    sys.exit(main(argv))


def test_two_schools_first_runs_at_once_on_a_fresh_directory(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schools' whole first runs (``misync run``, two processes as two DAG runs are) side by side
    on one empty PostgreSQL directory, their migrations made to meet: before the fix one run died on
    ``DuplicateTable`` (exit 4, an unexpected error)."""
    import multiprocessing

    from cryptography.fernet import Fernet

    from tests.helpers import REPO, TINY

    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY",
        json.dumps({"conn_type": "generic", "password": Fernet.generate_key().decode()}),
    )
    template = (REPO / "include" / "establishments" / "demo-academy.yaml").read_text(encoding="utf-8")
    processes = multiprocessing.get_context("fork")
    meet, upgrade_barrier = processes.Barrier(2), processes.Barrier(2)
    runs = {}
    for school in ("north-academy", "south-academy"):
        config = tmp_path / f"{school}.yaml"
        config.write_text(template.replace("demo-academy", school), encoding="utf-8")
        work = tmp_path / f"work-{school}"
        argv = [
            "run",
            str(config),
            "--input",
            str(TINY),
            "--directory-url",
            postgres_url,
            "--work-dir",
            str(work),
        ]
        runs[school] = processes.Process(target=_first_run_process, args=(argv, meet, upgrade_barrier))
    for process in runs.values():
        process.start()
    for process in runs.values():
        process.join(timeout=600)
    assert {school: process.exitcode for school, process in runs.items()} == {
        "north-academy": 0,
        "south-academy": 0,
    }
    engine = make_engine(postgres_url)
    with engine.connect() as connection:
        schools = connection.execute(select(SyncState.establishment_id).order_by(SyncState.establishment_id))
        assert list(schools.scalars()) == ["north-academy", "south-academy"]
    engine.dispose()
