"""The file-drop source: a folder of UTF-8 CSV files, one per canonical entity, plus ``manifest.json``.

The format is documented for data managers in ``docs/file-drop-format.md``; the column mapping lives
in ``include/mis_schemas/file_drop.yaml``. The folder may be local or any fsspec URL (``s3://``,
``abfs://``, ``gs://``) with ``storage_options`` from the Airflow Connection's extra.
"""

from __future__ import annotations

import json

import pandas as pd
from upath import UPath

from mis_sync.connectors.base import Connector, ExtractError
from mis_sync.connectors.csv_reading import ReadLimits, read_csv_bounded
from mis_sync.connectors.mapping import apply_mapping, load_mapping
from mis_sync.model import Extract

OPTIONAL_ENTITIES = frozenset({"contacts", "relationships"})
"""A school may export no contacts; every other file must be present (a missing file is not "empty")."""


class FileDropConnector(Connector):
    type = "file_drop"

    def extract(self, *, full: bool = True) -> Extract:
        mapping = load_mapping(self.type)
        folder = self.folder()
        if not folder.is_dir():
            raise ExtractError(
                f"file drop folder not found: {folder} (connection {self.connection.conn_id!r})"
            )
        raw: dict[str, pd.DataFrame] = {}
        where: dict[str, str] = {}
        for entity, entity_mapping in mapping.entities.items():
            file_name = entity_mapping.file or f"{entity}.csv"
            where[entity] = file_name
            path = folder / file_name
            if not path.exists():
                if entity in OPTIONAL_ENTITIES:
                    continue
                raise ExtractError(f"{file_name}: required file is missing from the drop folder")
            raw[entity] = _read_csv(path, file_name, self.read_limits)
        tables = apply_mapping(raw, mapping, where)
        snapshot_at = self._snapshot_at(folder, mapping.manifest)
        return Extract(tables=tables, snapshot_at=snapshot_at, source=self.type)

    def _snapshot_at(self, folder: UPath, manifest_name: str | None) -> pd.Timestamp:
        """The MIS's own time for the data: the manifest's ``snapshot_at``, else the newest file time."""
        manifest_path = folder / (manifest_name or "manifest.json")
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
                stamp = pd.Timestamp(manifest["snapshot_at"])
            except (ValueError, KeyError, TypeError):
                raise ExtractError(
                    f"{manifest_path.name}: snapshot_at is missing or not an ISO 8601 time"
                ) from None
            if stamp.tzinfo is None:
                raise ExtractError(f"{manifest_path.name}: snapshot_at must include a UTC offset")
            return stamp.tz_convert("UTC")
        times = [pd.Timestamp(p.stat().st_mtime, unit="s", tz="UTC") for p in folder.iterdir() if p.is_file()]
        return max(times).floor("s")


def _read_csv(path: UPath, file_name: str, limits: ReadLimits | None = None) -> pd.DataFrame:
    """Every cell as text, read with bounded time and memory (``connectors.csv_reading``)."""
    return read_csv_bounded(path, file_name, limits)
