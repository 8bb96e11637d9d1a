"""What the target benchmarks share: a generated school applied into a fresh directory, then three
syncs to a fake (initial, no change, 100 pupil memberships of teaching groups dropped in the MIS)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Stopwatch


def apply_school(engine: Any, config: Any, extract: Any, run_id: str) -> None:
    from mis_sync.directory.apply import apply_plan, data_hash
    from mis_sync.directory.state import load_state
    from mis_sync.plan import make_plan
    from mis_sync.validate import on_roll_counts

    plan = make_plan(extract, load_state(engine, config.id), config)
    apply_plan(
        engine, config.id, plan, run_id=run_id, extract_hash=data_hash(extract.tables),
        extract_counts=on_roll_counts(extract),
    )  # fmt: skip


def without_100_teaching_memberships(school: Any) -> Any:
    """The same school an hour later, with 100 pupils gone from one teaching group each."""
    import pandas as pd

    from mis_sync.model import Extract

    memberships, groups = school.tables["memberships"], school.tables["groups"]
    teaching = set(groups.loc[groups["kind"] == "teaching", "mis_id"])
    candidates = memberships[(memberships["role"] == "pupil") & memberships["group_id"].isin(teaching)]
    tables = {
        **school.tables,
        "memberships": memberships.drop(index=candidates.sample(n=100, random_state=3).index),
    }
    return Extract(tables, school.snapshot_at + pd.Timedelta(hours=1), school.source)


def three_runs(
    config: Any,
    target: str,
    school: Any,
    tmp: str,
    watch: Stopwatch,
    *,
    seed_users: Callable[[Any], None] | None = None,
    around_sync: Callable[[str, bool], None] | None = None,
    sleep: Callable[[float], None] = lambda _s: None,
    clock: Callable[[], float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Summaries of the ``initial``, ``no_change`` and ``changes_100`` runs (timed under those names).

    ``seed_users(engine)`` runs once the directory holds the school; ``around_sync(run, done)`` before
    (``done=False``) and after (``done=True``) each sync, e.g. to reset or read the fake's counters.
    ``sleep`` (by default none) and ``clock`` may run the quota pacing on a virtual clock."""
    from upath import UPath

    from mis_sync.connections import ConnectionInfo
    from mis_sync.directory.db import make_engine, migrate
    from mis_sync.pipeline import RunContext
    from mis_sync.targets.stages import run_target

    engine = make_engine(f"sqlite:///{tmp}/directory.db")
    migrate(engine)
    with watch("directory"):
        apply_school(engine, config, school, "mis-1")
    if seed_users:
        seed_users(engine)

    def sync(run_id: str) -> dict[str, Any]:
        ctx = RunContext(config, run_id, UPath(Path(tmp) / run_id), ConnectionInfo("unused"), "unused")
        ctx.__dict__["engine"] = engine
        if around_sync:
            around_sync(run_id, False)
        with watch(run_id):
            timing = {"clock": clock} if clock is not None else {}
            summary = run_target(ctx, target, sleep=sleep, **timing)
        if around_sync:
            around_sync(run_id, True)
        return summary

    runs = {"initial": sync("initial"), "no_change": sync("no_change")}
    apply_school(engine, config, without_100_teaching_memberships(school), "mis-2")
    runs["changes_100"] = sync("changes_100")
    return runs


def run_metrics(runs: dict[str, dict[str, Any]], watch: Stopwatch, batch_size: int) -> dict[str, Any]:
    """The figures both target benchmarks report: write requests against ``ceil(writes / batch)``,
    the no-change run and the 100-change run."""
    import math

    initial, unchanged, changed = runs["initial"], runs["no_change"], runs["changes_100"]
    minimum = math.ceil(initial["writes"] / batch_size)
    return {
        "initial_s": round(watch["initial"], 2),
        "writes": initial["writes"],
        "write_requests": initial["write_requests"],
        "minimum_requests": minimum,
        "ratio": round(initial["write_requests"] / minimum, 3),
        "requests": initial["requests"],
        "no_change_s": round(watch["no_change"], 2),
        "no_change_writes": unchanged["writes"],
        "no_change_write_requests": unchanged["write_requests"],
        "changes_100_writes": changed["writes"],
        "changes_100_write_requests": changed["write_requests"],
        "changes_100_s": round(watch["changes_100"], 2),
        "generate_s": round(watch["generate"], 2),
        "directory_s": round(watch["directory"], 2),
    }
