"""Retention on local run storage: exactly what expired goes; the last successful run always stays."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mis_sync.privacy.retention import carry_out, kind_of, plan_run_storage
from mis_sync.privacy.settings import RetentionSettings

NOW = datetime(2026, 12, 3, 5, 15, tzinfo=UTC)
RUN_FILES = (
    "extract/pupils.parquet",
    "extract/extract.json",
    "validated/pupils.parquet",
    "validated/validation.json",
    "validated/findings.parquet",
    "validated/findings.csv",
    "validated/quarantined.parquet",
    "plan/users.parquet",
    "plan/plan.json",
    "targets-microsoft365/prepare.json",
    "report.json",
)


def make_run(root: Path, name: str, age_days: float) -> Path:
    folder = root / name
    stamp = (NOW - timedelta(days=age_days)).timestamp()
    for relative in RUN_FILES:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        os.utime(path, (stamp, stamp))
    return folder


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_kinds_follow_where_the_pipeline_writes() -> None:
    assert kind_of("extract/pupils.parquet") == "extracts"
    assert kind_of("validated/staff.parquet") == "extracts"
    assert kind_of("validated/findings.html") == "findings"
    assert kind_of("validated/quarantined.parquet") == "findings"
    assert kind_of("validated/validation.json") == "reports"
    assert kind_of("approved/users.parquet") == "plans"
    assert kind_of("targets-google_classroom/summary.json") == "target_files"
    assert kind_of("report.json") == "reports"


def test_removes_exactly_what_expired_and_keeps_the_last_successful_run(tmp_path: Path) -> None:
    root = tmp_path / "demo-academy"
    make_run(root, "fresh", 29)
    make_run(root, "expired", 31)
    make_run(root, "ancient", 500)
    make_run(root, "last_success", 900)  # older than everything, but the last applied run
    before = files(tmp_path)
    plan = plan_run_storage(
        root, "demo-academy", RetentionSettings(), NOW, last_successful_run="last_success"
    )
    counts = carry_out(plan, dry_run=False)
    after = files(tmp_path)

    kept_of_expired = {"validated/validation.json", "report.json"}  # counts only: 400 days
    expected = (
        {f"demo-academy/fresh/{f}" for f in RUN_FILES}
        | {f"demo-academy/last_success/{f}" for f in RUN_FILES}
        | {f"demo-academy/expired/{f}" for f in kept_of_expired}
    )
    assert after == expected
    assert before - after == {f"demo-academy/expired/{f}" for f in set(RUN_FILES) - kept_of_expired} | {
        f"demo-academy/ancient/{f}" for f in RUN_FILES
    }
    assert not (root / "ancient").exists(), "an emptied run folder goes too"
    assert not (root / "expired" / "extract").exists()
    assert counts["extracts_files"] == 2 * 3 and counts["findings_files"] == 2 * 3
    assert counts["plans_files"] == 2 * 2 and counts["target_files_files"] == 2
    assert counts["reports_files"] == 2 and counts["run_folders_removed"] == 1
    assert counts["run_folders_kept"] == 3


def test_directory_finish_time_wins_over_file_times_and_dry_run_removes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "demo-academy"
    make_run(root, "touched_recently", 1)  # e.g. files rewritten by an erasure
    before = files(tmp_path)
    plan = plan_run_storage(
        root,
        "demo-academy",
        RetentionSettings(),
        NOW,
        finished_at={"touched_recently": NOW - timedelta(days=45)},
    )
    assert carry_out(plan, dry_run=True)["extracts_files"] == 3
    assert files(tmp_path) == before
    carry_out(plan, dry_run=False)
    assert not (root / "touched_recently" / "extract").exists()


@pytest.mark.parametrize(("age", "gone"), [(29, False), (31, True)])
def test_delta_snapshot_expires_only_when_the_school_stopped_syncing(
    tmp_path: Path, age: int, gone: bool
) -> None:
    root = tmp_path / "demo-academy"
    state = root / "delta-state"
    state.mkdir(parents=True)
    stamp = (NOW - timedelta(days=age)).timestamp()
    for name in ("pupils.parquet", "delta.json"):
        (state / name).write_text("x")
        os.utime(state / name, (stamp, stamp))
    counts = carry_out(plan_run_storage(root, "demo-academy", RetentionSettings(), NOW), dry_run=False)
    assert counts["delta_snapshot_files"] == (2 if gone else 0)
    assert state.exists() is not gone


def test_settings_are_per_kind_and_refuse_nonsense() -> None:
    from pydantic import ValidationError

    custom = RetentionSettings(extracts_days=7, reports_days=90)
    assert custom.plans_days == 30
    with pytest.raises(ValidationError):
        RetentionSettings(extracts_days=0)
    with pytest.raises(ValidationError):
        RetentionSettings(runs_days=3)  # type: ignore[call-arg]


def test_object_storage_path_on_local_files(tmp_path: Path) -> None:
    """The DAG's run storage is an ObjectStoragePath; the same plan works through it."""
    from airflow.sdk import ObjectStoragePath

    make_run(tmp_path / "demo-academy", "old", 40)
    make_run(tmp_path / "demo-academy", "new", 2)
    base = ObjectStoragePath(f"file://{tmp_path}")
    counts = carry_out(plan_run_storage(base / "demo-academy", "x", RetentionSettings(), NOW), dry_run=False)
    assert counts["extracts_files"] == 3
    assert not (tmp_path / "demo-academy" / "old" / "extract").exists()
    assert (tmp_path / "demo-academy" / "old" / "report.json").exists()
    assert files(tmp_path / "demo-academy" / "new") == set(RUN_FILES)
