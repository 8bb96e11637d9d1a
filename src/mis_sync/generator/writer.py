"""Write extracts as the CSV "file-drop" format (``include/mis_schemas/file_drop.yaml``).

Why headers come from the YAML and not from code: the YAML is the single definition of the format the
file-drop connector reads, so writing through its inverted mapping keeps generator and connector in
step. Cells: UTF-8, ISO dates, ``true``/``false``, empty for null; whole columns are formatted at once
and written with ``DataFrame.to_csv``.

Read the files back with ``dtype=str, keep_default_na=False`` (as the round-trip test does): pandas'
default NA parsing would turn a surname like ``Null`` or ``NA`` into a missing value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mis_sync.model import ENTITIES, Extract
from mis_sync.paths import mis_schemas_dir

FORMAT = "mis-sync-file-drop"
VERSION = 1


def file_drop_spec() -> dict[str, Any]:
    """The parsed ``file_drop.yaml`` mapping (entities -> file and header -> canonical column)."""
    with (mis_schemas_dir() / "file_drop.yaml").open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


def headers_for(entity: str, spec: dict[str, Any] | None = None) -> tuple[str, dict[str, str]]:
    """(file name, canonical column -> CSV header) for one entity."""
    entry = (spec or file_drop_spec())["entities"][entity]
    inverted = {canonical: header for header, canonical in entry["columns"].items()}
    return entry["file"], inverted


def _cells(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Format every column as text in the file-drop conventions (vectorised per column)."""
    out = {}
    for column in ENTITIES[entity].columns:
        series = frame[column.name]
        if column.type == "date":
            out[column.name] = series.dt.strftime("%Y-%m-%d").astype("string")
        elif column.type == "boolean":
            out[column.name] = series.map({True: "true", False: "false"}, na_action="ignore").astype("string")
        else:
            out[column.name] = series.astype("string")
    return pd.DataFrame(out, index=frame.index)


def write_file_drop(extract: Extract, out_dir: Path) -> None:
    """Write ``extract`` to ``out_dir`` (created if needed): one CSV per entity plus ``manifest.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = file_drop_spec()
    counts: dict[str, int] = {}
    for entity in ENTITIES:
        file_name, headers = headers_for(entity, spec)
        frame = extract.tables[entity]
        cells = _cells(frame, entity)[[c for c in headers if c in frame.columns]]
        cells.rename(columns=headers).to_csv(
            out_dir / file_name, index=False, encoding="utf-8", na_rep="", lineterminator="\n"
        )
        counts[entity] = len(frame)
    snapshot = extract.snapshot_at.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "snapshot_at": snapshot,
        "source": extract.source,
        "counts": counts,
    }
    (out_dir / spec.get("manifest", "manifest.json")).write_text(
        json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
    )


def write_trust(trust: list[tuple[str, str, Extract]], out_dir: Path) -> None:
    """Write each school of a trust to ``out_dir/<establishment slug>/`` and list them in
    ``out_dir/trust.json`` (slug and LAESTAB), so a loader can find every school without guessing."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for slug, _laestab, extract in trust:
        write_file_drop(extract, out_dir / slug)
    listing = {"establishments": [{"id": slug, "laestab": laestab} for slug, laestab, _ in trust]}
    (out_dir / "trust.json").write_text(json.dumps(listing, indent=2) + "\n", encoding="utf-8")
