"""Finding one person's rows in every run-file shape, and rewriting files without them (local and
ObjectStoragePath), keeping everyone else's rows and the files' schemas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mis_sync.config import load_establishment
from mis_sync.privacy.person_files import person_mask, rewrite_run_storage
from mis_sync.privacy.subject_access import Person
from tests.helpers import REPO

PUPIL = Person("demo-academy", 7, "pupil", "P1", "jdoe", "suspended")


def test_every_file_shape() -> None:
    cases = {
        "pupils": (pd.DataFrame({"mis_id": ["P1", "P2"]}), [True, False]),
        "staff": (pd.DataFrame({"mis_id": ["P1", "S2"]}), [False, False]),  # another kind's P1
        "memberships": (pd.DataFrame({"group_id": ["G", "G"], "person_id": ["P1", "P2"]}), [True, False]),
        "relationships": (
            pd.DataFrame({"contact_id": ["C1", "P1"], "pupil_id": ["P1", "P9"]}),
            [True, False],
        ),
        "users": (
            pd.DataFrame(
                {
                    "person_kind": ["pupil", "staff", "pupil"],
                    "mis_id": ["P1", "P1", "P3"],
                    "username": ["jdoe", "x", "y"],
                }
            ),
            [True, False, False],
        ),
        "plan_memberships": (
            pd.DataFrame({"person_kind": ["pupil", "staff"], "person_mis_id": ["P1", "P1"]}),
            [True, False],
        ),
        "findings": (
            pd.DataFrame(
                {"entity": ["pupils", "staff", "memberships"], "mis_id": ["P1", "P1", "G/P1/member"]}
            ),
            [True, False, True],
        ),
        "members": (
            pd.DataFrame({"user_key": ["jdoe@school.example", "jdoe2@school.example"]}),
            [True, False],
        ),
    }
    for stem, (frame, expected) in cases.items():
        assert person_mask(frame, stem, PUPIL).tolist() == expected, stem


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def test_rewrite_keeps_everyone_else_and_the_schema(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    root = tmp_path / "demo-academy"
    pupils = pd.DataFrame({"mis_id": ["P1", "P2", "P3"], "upn": ["A1", "B2", "C3"]})
    _write(root / "r1" / "extract" / "pupils.parquet", pupils)
    _write(root / "delta-state" / "pupils.parquet", pupils)
    (root / "r1" / "validated").mkdir(parents=True)
    (root / "r1" / "validated" / "findings.csv").write_text("entity,mis_id,rule\npupils,P1,x\npupils,P2,y\n")
    (root / "r1" / "validated" / "findings.html").write_text("<td>P1</td>")
    counts = rewrite_run_storage(ObjectStoragePath(f"file://{root}"), PUPIL)
    assert counts == {"files_rewritten": 3, "rows_removed": 3, "reports_removed": 1, "files_checked": 3}
    for path in (root / "r1" / "extract" / "pupils.parquet", root / "delta-state" / "pupils.parquet"):
        table = pq.read_table(path)
        assert table.column("mis_id").to_pylist() == ["P2", "P3"] and table.schema.names == ["mis_id", "upn"]
    assert "P1" not in (root / "r1" / "validated" / "findings.csv").read_text()
    assert not (root / "r1" / "validated" / "findings.html").exists()
    again = rewrite_run_storage(root, PUPIL)
    assert again["rows_removed"] == 0, "a second erasure converges"


def test_retention_settings_load_from_an_establishment_file(tmp_path: Path) -> None:
    text = (REPO / "include" / "establishments" / "demo-academy.yaml").read_text()
    path = tmp_path / "demo-academy.yaml"
    path.write_text(text + "\nretention:\n  extracts_days: 14\n  reports_days: 200\n")
    config = load_establishment(path)
    assert config.retention.extracts_days == 14 and config.retention.reports_days == 200
    assert config.retention.plans_days == 30
