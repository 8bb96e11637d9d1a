"""Run-scoped storage: Parquet tables in a folder per establishment and run.

Tasks hand each other data through these files so they can run on different workers; XCom carries only
the folder, row counts and content hashes. The folder is any path object with ``/``, ``open``,
``mkdir`` and ``exists``: a ``pathlib.Path`` in the CLI and tests, Airflow's ``ObjectStoragePath``
(local, ``s3://``, ``abfs://``, ``gs://``) in the DAG.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mis_sync.model import ENTITIES, SOURCE_FINDING_COLUMNS, Entity, Extract


class StoragePath(Protocol):
    def __truediv__(self, other: str) -> StoragePath: ...
    def open(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any: ...
    def mkdir(self, *args: Any, **kwargs: Any) -> None: ...
    def exists(self) -> bool: ...


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
"""Run folders hold children's data: owner-only on local disks, whatever the process umask."""


def local_path(path: Any) -> str | None:
    """The OS path of a local ``pathlib.Path`` or ``file://`` ``ObjectStoragePath``; ``None`` when remote
    (object stores have no POSIX modes: their access is the bucket's policy)."""
    if isinstance(path, os.PathLike) and not hasattr(path, "protocol"):
        return os.fspath(path)
    if getattr(path, "protocol", None) in ("", "file", "local"):  # "": a local UPath
        return str(path.path)
    return None


def make_private_dir(folder: StoragePath) -> None:
    """``mkdir -p`` where every folder it creates is 0700 (folders that exist are left as they are: the
    admin's ``--work-dir`` or ``$AIRFLOW_HOME`` is not ours to change)."""
    where = local_path(folder)
    if where is None:
        folder.mkdir(parents=True, exist_ok=True)
        return
    missing = []
    current = Path(where)
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another task made it meanwhile
            continue
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask; chmod is not


@contextmanager
def open_private(path: StoragePath, mode: str = "wb") -> Iterator[Any]:
    """Open a file for writing, created 0600 on a local disk (never readable by others, not even
    briefly); remote stores open as usual."""
    where = local_path(path)
    if where is None:
        with path.open(mode) as handle:
            yield handle
        return
    fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
        yield handle


def safe_segment(value: str) -> str:
    """A run id like ``manual__2026-11-28T01:30:00+00:00`` as a portable folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("_")


def write_table(
    folder: StoragePath, name: str, frame: pd.DataFrame, entity: Entity | None = None
) -> dict[str, Any]:
    """Write one table as Parquet; return its reference (name, rows, sha256) for XCom.

    With ``entity`` the file gets the canonical Arrow schema, so every run's files look alike.
    """
    table = (
        pa.Table.from_pandas(frame, schema=entity.arrow_schema(), preserve_index=False)
        if entity is not None
        else pa.Table.from_pandas(frame, preserve_index=False)
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    payload = buffer.getvalue()
    with open_private(folder / f"{name}.parquet", "wb") as handle:
        handle.write(payload)
    return {"name": name, "rows": len(frame), "sha256": hashlib.sha256(payload).hexdigest()}


def read_table(folder: StoragePath, name: str, entity: Entity | None = None) -> pd.DataFrame:
    with (folder / f"{name}.parquet").open("rb") as handle:
        frame = pq.read_table(handle).to_pandas()
    if entity is not None:
        return entity.coerce(frame)
    return frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})


def write_json(folder: StoragePath, name: str, payload: dict[str, Any]) -> None:
    with open_private(folder / name, "w") as handle:
        handle.write(json.dumps(payload, indent=2, sort_keys=True, default=str))


def read_json(folder: StoragePath, name: str) -> dict[str, Any]:
    with (folder / name).open("r") as handle:
        return json.loads(handle.read())


def write_extract(folder: StoragePath, extract: Extract) -> dict[str, Any]:
    make_private_dir(folder)
    tables = [write_table(folder, name, frame, ENTITIES[name]) for name, frame in extract.tables.items()]
    manifest: dict[str, Any] = {
        "snapshot_at": extract.snapshot_at.isoformat(),
        "source": extract.source,
        "tables": tables,
    }
    if len(extract.source_findings):
        found = extract.source_findings[SOURCE_FINDING_COLUMNS].astype(object)
        manifest["source_findings"] = found.where(found.notna(), None).to_dict("records")
    write_json(folder, "extract.json", manifest)
    return manifest


def read_extract(folder: StoragePath) -> Extract:
    manifest = read_json(folder, "extract.json")
    tables = {name: read_table(folder, name, entity) for name, entity in ENTITIES.items()}
    found = pd.DataFrame(
        manifest.get("source_findings") or [], columns=SOURCE_FINDING_COLUMNS, dtype="string"
    )
    return Extract(
        tables=tables,
        snapshot_at=pd.Timestamp(manifest["snapshot_at"]),
        source=manifest["source"],
        source_findings=found,
    )
