"""Housekeeping against a directory (SQLite and PostgreSQL): run reports, fixed findings, leavers'
audit values, and the run folders, through ``misync housekeeping``; counts only in the output."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from sqlalchemy import insert, select

from mis_sync.cli import main
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import AuditEntry, SyncRun, SyncState, User
from mis_sync.privacy.directory_retention import PSEUDONYMISED
from mis_sync.quality.schema import QualityFinding

NOW = dt.datetime.now(dt.UTC)
EST = "demo-academy"


def _ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def _user(mis_id: str, status: str, updated_days_ago: int) -> dict:  # type: ignore[type-arg]
    return {
        "establishment_id": EST,
        "person_kind": "pupil",
        "mis_id": mis_id,
        "role": "pupil",
        "username": f"user{mis_id.lower()}",
        "status": status,
        "created_at": _ago(900),
        "updated_at": _ago(updated_days_ago),
    }


def _audit(mis_id: str, field: str, old: str, new: str) -> dict:  # type: ignore[type-arg]
    return {
        "establishment_id": EST,
        "run_id": "r",
        "at": _ago(800),
        "entity": "user",
        "entity_key": f"user:pupil:{mis_id}",
        "action": "update",
        "field": field,
        "old_value": old,
        "new_value": new,
        "reason": "changed in MIS",
    }


def _finding(mis_id: str, fixed_days_ago: int | None) -> dict:  # type: ignore[type-arg]
    return {
        "establishment_id": EST,
        "entity": "pupils",
        "mis_id": mis_id,
        "rule": "upn_check_letter",
        "field": "upn",
        "severity": "error",
        "first_seen_run": "r",
        "first_seen_at": _ago(900),
        "last_seen_run": "r",
        "last_seen_at": _ago(800),
        "fixed_at": None if fixed_days_ago is None else _ago(fixed_days_ago),
    }


def _run_folder(root: Path, name: str, age_days: int) -> None:
    stamp = _ago(age_days).timestamp()
    for relative in ("extract/pupils.parquet", "report.json"):
        path = root / EST / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        os.utime(path, (stamp, stamp))


def test_housekeeping_applies_directory_and_storage_retention(
    tmp_path: Path, directory_url: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(directory_url)
    migrate(engine)
    with engine.begin() as c:
        c.execute(
            insert(User),
            [_user("P1", "deleted", 10), _user("P2", "suspended", 10), _user("P3", "active", 10)],
        )
        c.execute(
            insert(AuditEntry),
            [
                _audit("P1", "last_name", "Oldname", "Newname"),
                _audit("P1", "username", "", "userp1"),
                _audit("P2", "last_name", "Keptold", "Keptnew"),
            ],
        )
        c.execute(
            insert(SyncRun),
            [
                {
                    "establishment_id": EST,
                    "run_id": rid,
                    "outcome": "applied",
                    "finished_at": _ago(age),
                    "summary": "{}",
                }
                for rid, age in (("ancient", 500), ("last", 450), ("recent", 40), ("fresh", 1))
            ],
        )
        c.execute(insert(SyncState).values(establishment_id=EST, revision=3, last_run_id="last"))
        c.execute(insert(QualityFinding), [_finding("P1", 500), _finding("P2", 10), _finding("P3", None)])
    runs = tmp_path / "runs"
    for name, age in (("ancient", 500), ("last", 450), ("recent", 40), ("fresh", 1)):
        _run_folder(runs, name, age)

    args = ["housekeeping", EST, "--directory-url", directory_url, "--run-storage", str(runs)]
    assert main([*args, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "would remove" in dry and "run_reports 1" in dry and "audit_values 1" in dry
    assert (runs / EST / "ancient" / "extract" / "pupils.parquet").exists()

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "run_reports 1" in out and "fixed_findings 1" in out and "run_folders_removed 1" in out
    assert "Oldname" not in out and "Keptold" not in out
    with engine.connect() as c:
        assert set(c.execute(select(SyncRun.run_id)).scalars()) == {"last", "recent", "fresh"}
        assert sorted(c.execute(select(QualityFinding.mis_id)).scalars()) == ["P2", "P3"]
        audit = {
            (k, f): (o, n)
            for k, f, o, n in c.execute(
                select(AuditEntry.entity_key, AuditEntry.field, AuditEntry.old_value, AuditEntry.new_value)
            ).all()
        }
    assert audit[("user:pupil:P1", "last_name")] == (PSEUDONYMISED, PSEUDONYMISED)
    assert audit[("user:pupil:P1", "username")] == ("", "userp1"), "usernames stay (reserved)"
    assert audit[("user:pupil:P2", "last_name")] == ("Keptold", "Keptnew"), "not deleted yet: untouched"
    assert not (runs / EST / "ancient").exists()
    assert (runs / EST / "last" / "extract" / "pupils.parquet").exists(), "the last successful run stays"
    assert (
        not (runs / EST / "recent" / "extract").exists() and (runs / EST / "recent" / "report.json").exists()
    )
    assert (runs / EST / "fresh" / "extract" / "pupils.parquet").exists()

    assert main(args) == 0, "a second pass converges"
    assert "audit_values 0" in capsys.readouterr().out
