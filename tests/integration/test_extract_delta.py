"""The extract stage keeps a delta state per establishment: the second run reads only changes, and
its extract equals what a full read of the same MIS gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from upath import UPath

from mis_sync import storage
from mis_sync.config import MisConfig
from mis_sync.fakes.wonde import running_fake_wonde
from mis_sync.generator import generate_school
from mis_sync.pipeline import RunContext, extract_stage
from tests.helpers import demo_config
from tests.unit.test_delta import assert_same, evolve_school
from tests.unit.test_wonde_xporter import wonde_connection


def context(tmp_path: Path, run_id: str, fake: object) -> RunContext:
    config = demo_config(mis=MisConfig(type="wonde", connection_id="mis_wonde"))
    return RunContext(
        config, run_id, UPath(tmp_path / "demo-academy" / run_id), wonde_connection(fake), "unused"
    )


def test_second_run_is_a_delta_equal_to_a_full_read(tmp_path: Path) -> None:
    school = generate_school("secondary", 3, dt.date(2026, 1, 15))
    with running_fake_wonde(school) as fake:
        first = extract_stage(context(tmp_path, "r1", fake), full=False)
        assert first["mode"] == "full" and first["reason"] == "no previous delta state"
        later = evolve_school(school)
        fake.publish(later)
        second = extract_stage(context(tmp_path, "r2", fake), full=False)
        assert second["mode"] == "delta"
        requested = extract_stage(context(tmp_path, "r3", fake), full=True)
        assert requested["mode"] == "full" and requested["reason"] == "a full extract was requested"
    delta = storage.read_extract(UPath(tmp_path / "demo-academy" / "r2" / "extract"))
    full = storage.read_extract(UPath(tmp_path / "demo-academy" / "r3" / "extract"))
    assert_same(delta, full)
    assert (tmp_path / "demo-academy" / "delta-state" / "delta.json").is_file()
