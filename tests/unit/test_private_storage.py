"""Run folders are private on local disks (0700 folders, 0600 files) whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from mis_sync import storage


@pytest.fixture
def open_umask():  # type: ignore[no-untyped-def]
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("kind", ["pathlib", "upath", "object_storage"])
def test_folders_and_files_are_owner_only(tmp_path: Path, kind: str, open_umask) -> None:  # type: ignore[no-untyped-def]
    from upath import UPath

    if kind == "object_storage":
        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(f"file://{tmp_path}") / "runs"
    else:
        root = (UPath if kind == "upath" else Path)(str(tmp_path)) / "runs"
    folder = root / "school" / "run-1" / "extract"
    storage.make_private_dir(folder)
    storage.write_table(folder, "pupils", pd.DataFrame({"a": ["x"]}))
    storage.write_json(folder, "extract.json", {"rows": 1})
    for path in (tmp_path / "runs", tmp_path / "runs/school", tmp_path / "runs/school/run-1/extract"):
        assert _mode(path) == 0o700, path
    for name in ("pupils.parquet", "extract.json"):
        assert _mode(tmp_path / "runs/school/run-1/extract" / name) == 0o600, name


def test_an_existing_file_is_made_private_when_rewritten(tmp_path: Path) -> None:
    loose = tmp_path / "report.json"
    loose.write_text("{}")
    loose.chmod(0o644)
    storage.write_json(tmp_path, "report.json", {"a": 1})
    assert _mode(loose) == 0o600


def test_the_sqlite_directory_is_created_owner_only(tmp_path: Path, open_umask) -> None:  # type: ignore[no-untyped-def]
    from mis_sync.directory.db import make_engine, migrate

    migrate(make_engine(f"sqlite:///{tmp_path / 'directory.db'}"))
    assert _mode(tmp_path / "directory.db") == 0o600
    for extra in ("directory.db-wal", "directory.db-shm"):
        if (tmp_path / extra).exists():
            assert _mode(tmp_path / extra) & 0o077 == 0, extra
