"""Walking and removing run-storage files on a ``pathlib.Path`` or an Airflow ``ObjectStoragePath``.

Only ``iterdir``, ``is_dir``, ``stat``, ``unlink`` and ``rmdir`` are used, which both provide (local
disks, ``s3://``, ``abfs://``, ``gs://``). Object stores have no real folders: a "folder" vanishes
with its last file, so removing an already-absent folder is not an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any


def walk_files(folder: Any) -> Iterator[Any]:
    """Every file under ``folder``, depth first."""
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        if child.is_dir():
            yield from walk_files(child)
        else:
            yield child


def relative(path: Any, base: Any) -> str:
    return str(path).removeprefix(str(base)).lstrip("/")


def modified_at(path: Any) -> datetime | None:
    """The file's last modification time (UTC), or None when the store does not say."""
    try:
        stamp = path.stat().st_mtime
    except (OSError, AttributeError, KeyError, TypeError):
        return None
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(stamp), UTC)


def newest_modification(folder: Any) -> datetime | None:
    stamps = [s for s in (modified_at(p) for p in walk_files(folder)) if s is not None]
    return max(stamps) if stamps else None


def remove_empty_folders(folder: Any) -> None:
    """Remove ``folder`` and its sub-folders if they hold no files (deepest first)."""
    try:
        children = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for child in children:
        if child.is_dir():
            remove_empty_folders(child)
    try:
        if not any(True for _ in folder.iterdir()):
            folder.rmdir()
    except (FileNotFoundError, OSError):
        pass
