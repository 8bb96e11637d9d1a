"""Run the real stages (extract → validate → plan → apply) on a file drop, outside Airflow.

What the DAG's tasks call, with the file-drop connector reading a folder the test writes, a directory
the test owns (SQLite or PostgreSQL) and a run folder per run: the scenario tests of issue 12 use it to
change the MIS export between nights and look at what each stage did.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from upath import UPath

from mis_sync.config import Establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.pipeline import RunContext, apply_stage, extract_stage, plan_stage, validate_stage

KEY = Fernet.generate_key()


def context(engine: Engine, runs: Path, drop: Path, config: Establishment, run_id: str) -> RunContext:
    ctx = RunContext(
        establishment=config,
        run_id=run_id,
        folder=UPath(runs / run_id),
        source=ConnectionInfo(conn_id="mis_test", extra={"path": str(drop)}),
        directory_url="unused",
        credential_keys=[KEY],
    )
    ctx.__dict__["engine"] = engine  # the cached_property, pointed at the test's directory
    return ctx


def run_stages(
    engine: Engine, runs: Path, drop: Path, config: Establishment, run_id: str, *, approve: bool = False
) -> dict[str, Any]:
    """extract → validate → plan → apply, as one nightly run; returns each stage's XCom-sized result."""
    ctx = context(engine, runs, drop, config, run_id)
    out: dict[str, Any] = {"extract": extract_stage(ctx), "validate": validate_stage(ctx)}
    out["plan"] = plan_stage(ctx, approve_suspensions=approve)
    out["apply"] = apply_stage(ctx)
    out["ctx"] = ctx
    return out


def approve_held(
    engine: Engine, runs: Path, drop: Path, config: Establishment, run_id: str
) -> dict[str, Any]:
    """What ``apply_approved`` does after an admin's Approve: re-plan with the brake released, apply."""
    ctx = context(engine, runs, drop, config, run_id)
    summary = plan_stage(ctx, approve_suspensions=True, name="approved")
    return {"plan": summary, "apply": apply_stage(ctx, name="approved")}


def later(drop: Path, hours: int = 24) -> None:
    """Move the drop's snapshot time on (a later night's export)."""
    path = drop / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["snapshot_at"] = (pd.Timestamp(manifest["snapshot_at"]) + pd.Timedelta(hours=hours)).isoformat()
    path.write_text(json.dumps(manifest), encoding="utf-8")


def read_csv(drop: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(drop / name, dtype=str, keep_default_na=False)


def write_csv(drop: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_csv(drop / name, index=False, lineterminator="\n")


TERM_TIME = dt.date(2026, 11, 10)
"""A term-time day: nothing leaving is an expected summer departure."""


def first_night(engine: Engine, folder: Path) -> Path:
    """A generated secondary's file drop after a first, clean night into ``engine``; returns the drop."""
    from mis_sync.generator import generate_school, write_file_drop
    from tests.helpers import demo_config

    drop = folder / "drop"
    write_file_drop(generate_school("secondary", 42, TERM_TIME, establishment_id="demo-academy"), drop)
    run_stages(engine, folder / "runs", drop, demo_config(), "night-1")
    return drop
