"""One person's rows in run-storage files: finding them, and rewriting files without them.

Files are recognised by their columns, as the pipeline writes them: entity tables (``pupils``,
``staff``, ``contacts``: ``mis_id``), memberships (``person_id`` or ``person_kind`` + ``person_mis_id``),
relationships (``pupil_id`` / ``contact_id``), plans (``person_kind`` + ``mis_id``, ``username``),
findings (``entity`` + ``mis_id``) and target files (``user_key``: the principal name). Parquet files keep
their schema; ``findings.csv`` is rewritten; a ``findings.html`` naming the person is removed (its CSV
twin stays).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mis_sync.csv_cells import safe_frame
from mis_sync.model import EnrolmentStatus
from mis_sync.privacy.files import walk_files

if TYPE_CHECKING:
    from mis_sync.privacy.subject_access import Person

_ENTITY = {"pupil": "pupils", "staff": "staff", "contact": "contacts"}
_RELATIONSHIP_COLUMN = {"pupil": "pupil_id", "contact": "contact_id"}


def _equals(frame: pd.DataFrame, column: str, value: str) -> pd.Series:
    return frame[column].astype("string").eq(value).fillna(False).astype(bool)


def person_mask(frame: pd.DataFrame, stem: str, person: Person) -> pd.Series:
    """True for the rows of ``frame`` (a file named ``stem``) that are about ``person``."""
    mask = pd.Series(False, index=frame.index)
    cols = set(frame.columns)
    entity = _ENTITY[person.person_kind]
    for column in ("username", "user_key", "link_username"):
        if column in cols:
            text = frame[column].astype("string")
            mask |= (
                (text.eq(person.username) | text.str.startswith(f"{person.username}@"))
                .fillna(False)
                .astype(bool)
            )
    if "person_kind" in cols:
        kind = _equals(frame, "person_kind", person.person_kind)
        for column in ("mis_id", "person_mis_id"):
            if column in cols:
                mask |= kind & _equals(frame, column, person.mis_id)
    elif "entity" in cols and "mis_id" in cols:
        mask |= _equals(frame, "entity", entity) & _equals(frame, "mis_id", person.mis_id)
        memberships = _equals(frame, "entity", "memberships")
        text = frame["mis_id"].astype("string")
        mask |= memberships & text.str.contains(f"/{person.mis_id}/", regex=False).fillna(False).astype(bool)
    elif stem == entity and "mis_id" in cols:
        mask |= _equals(frame, "mis_id", person.mis_id)
    if "person_id" in cols and "person_kind" not in cols:
        mask |= _equals(frame, "person_id", person.mis_id)
    if (column := _RELATIONSHIP_COLUMN.get(person.person_kind)) and column in cols:
        mask |= _equals(frame, column, person.mis_id)
    return mask


def on_roll_in_latest_extract(run_folder: Any, person: Person) -> bool:
    """Is the person on roll (or, for a contact, present at all) in this run's validated extract?"""
    table_path = run_folder / "validated" / f"{_ENTITY[person.person_kind]}.parquet"
    if not table_path.exists():
        table_path = run_folder / "extract" / f"{_ENTITY[person.person_kind]}.parquet"
        if not table_path.exists():
            return False
    with table_path.open("rb") as handle:
        frame = pq.read_table(handle).to_pandas()
    rows = frame[_equals(frame, "mis_id", person.mis_id)]
    if "enrolment_status" not in rows.columns:
        return not rows.empty
    return bool(rows["enrolment_status"].astype("string").eq(EnrolmentStatus.ON_ROLL.value).any())


def _rewrite_parquet(path: Any, person: Person) -> int:
    with path.open("rb") as handle:
        table = pq.read_table(handle)
    frame = table.to_pandas()
    mask = person_mask(frame, path.name.removesuffix(".parquet"), person)
    removed = int(mask.sum())
    if removed:
        kept = pa.Table.from_pandas(frame[~mask], schema=table.schema, preserve_index=False)
        buffer = io.BytesIO()
        pq.write_table(kept, buffer, compression="zstd")
        with path.open("wb") as handle:
            handle.write(buffer.getvalue())
    return removed


def _rewrite_csv(path: Any, person: Person) -> int:
    with path.open("r") as handle:
        frame = pd.read_csv(handle, dtype="string", keep_default_na=False)
    mask = person_mask(frame, path.name.removesuffix(".csv"), person)
    removed = int(mask.sum())
    if removed:
        with path.open("w") as handle:
            handle.write(safe_frame(frame[~mask]).to_csv(index=False, lineterminator="\n"))
    return removed


def rewrite_run_storage(establishment_root: Any, person: Person) -> dict[str, int]:
    """Rewrite every file under the establishment's run storage without the person; counts only."""
    counts = {"files_rewritten": 0, "rows_removed": 0, "reports_removed": 0, "files_checked": 0}
    if not establishment_root.exists():
        return counts
    for path in walk_files(establishment_root):
        name = path.name
        if name.endswith(".parquet"):
            removed = _rewrite_parquet(path, person)
        elif name == "findings.csv":
            removed = _rewrite_csv(path, person)
        elif name == "findings.html":
            with path.open("r") as handle:
                mentions = f">{person.mis_id}<" in handle.read()
            if mentions:
                path.unlink()
                counts["reports_removed"] += 1
            continue
        else:
            continue
        counts["files_checked"] += 1
        if removed:
            counts["files_rewritten"] += 1
            counts["rows_removed"] += removed
    return counts
