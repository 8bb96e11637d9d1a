"""Plan + apply outside Airflow: generated extract → validate → plan → apply into a fresh directory DB.

Run: ``.venv/bin/python benchmarks/bench_plan_apply.py [--scenario NAME] [--repeat N] [--profile NAME]``.

What is timed is what the DAG's validate, plan and apply tasks compute, called directly (no Airflow,
no run folder, no Parquet, no findings report): generation of the synthetic extract and the Alembic
migration of the empty directory are timed separately and are not part of a goal.

- validator import = ``import great_expectations`` (the quality stage's engine), once per process
- validate = ``sync_status`` (last counts) + ``quality.check_extract`` + ``apply.data_hash``
  (the trust: one ``quality.check_extracts`` call for all schools); ``validate.validate`` in
  releases before the quality stage
- plan     = ``state.load_state`` + ``plan.make_plan``
- apply    = ``apply.apply_plan`` (one transaction, audit rows included)

``plan_apply_s`` (the spine issue's goal: "plan + apply outside Airflow") = plan + apply.
``total_s`` (information; the trust's goal too) = validator import, if the timed run paid it, +
validate + plan + apply. Validation on its own has its own goals in ``bench_quality.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from common import Goal, Metrics, Scenario, Skip, Stopwatch, bench_profile, script_main

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "include" / "establishments" / "demo-academy.yaml"
AS_OF = dt.date(2026, 1, 15)
"""A term-time day (mid spring term): every year group on roll, a few leavers and pre-admissions."""
SCHOOL_SEED = 2026
TRUST_SEED = 7
PG_ADMIN_URL = os.environ.get("MISYNC_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@cache
def _demo_config() -> Any:
    from mis_sync.config import load_establishment

    return load_establishment(DEMO_CONFIG)


def _config(slug: str) -> Any:
    """The demo establishment's settings under another id (one directory tenant per school)."""
    return _demo_config().model_copy(update={"id": slug})


def _fresh_directory(url: str, watch: Stopwatch) -> Any:
    from mis_sync.directory.db import make_engine, migrate

    with watch("migrate"):
        engine = make_engine(url)
        migrate(engine)
    return engine


@dataclass
class Checked:
    """What the validate stage hands to plan and apply."""

    extract: Any
    counts: dict[str, int]
    quarantined: Any = None
    """Rows the quality stage set aside (``None`` with the legacy validator)."""


def import_validator(watch: Stopwatch) -> str:
    """Import the validate stage's engine (timed as ``validator_import``); return its name.

    The pipeline's validate stage is ``mis_sync.quality.check_extract`` (Great Expectations, whose
    import alone takes seconds; ``check_extract`` imports it lazily, so it is imported here to time it).
    """
    with watch("validator_import"):
        import great_expectations  # noqa: F401

        from mis_sync.quality import check_extract  # noqa: F401

    return "mis_sync.quality.check_extract"


def validate_one(extract: Any, config: Any, last_counts: dict[str, int]) -> Checked:
    """The validate stage's checks for one establishment, as ``pipeline.validate_stage`` runs them."""
    from mis_sync.quality import check_extract

    result = check_extract(extract, country=config.country, last_counts=last_counts, limits=config.safety)
    return Checked(result.clean_extract, result.counts, result.quarantined)


def validate_many(extracts: dict[str, Any], configs: dict[str, Any]) -> dict[str, Checked]:
    """A trust's first run: ``quality.check_extracts`` checks all schools with one GE batch per entity."""
    from mis_sync.quality import check_extracts

    results = check_extracts(
        extracts, country={slug: c.country for slug, c in configs.items()}, last_counts={}, limits=None
    )
    checked = {}
    for slug, result in results.items():
        if isinstance(result, Exception):
            raise RuntimeError(f"{slug}: validation stopped: {result}")
        checked[slug] = Checked(result.clean_extract, result.counts, result.quarantined)
    return checked


def plan_and_apply(
    engine: Any, config: Any, checked: Checked, run_id: str, watch: Stopwatch
) -> tuple[Any, Any]:
    """plan → apply for one establishment, timed into ``watch`` (``data_hash`` counts as validate)."""
    from mis_sync.directory.apply import apply_plan, data_hash
    from mis_sync.directory.state import load_state
    from mis_sync.plan import make_plan

    with watch("validate"):
        extract_hash = data_hash(checked.extract.tables)
    with watch("plan"):
        state = load_state(engine, config.id)
        extra = {} if checked.quarantined is None else {"quarantined": checked.quarantined}
        plan = make_plan(checked.extract, state, config, **extra)
    with watch("apply"):
        result = apply_plan(
            engine, config.id, plan, run_id=run_id, extract_hash=extract_hash, extract_counts=checked.counts
        )
    if not result.applied:
        raise RuntimeError(f"{config.id}: plan not applied: {result.skipped_reason}")
    return plan, result


def sync_once(engine: Any, config: Any, extract: Any, run_id: str, watch: Stopwatch) -> tuple[Any, Any]:
    """validate → plan → apply for one establishment, each stage timed into ``watch``."""
    from mis_sync.directory.state import sync_status

    with watch("validate"):
        last_counts = (sync_status(engine, config.id) or {}).get("last_counts", {})
        checked = validate_one(extract, config, last_counts)
    return plan_and_apply(engine, config, checked, run_id, watch)


def _plan_counts(plan: Any) -> dict[str, int]:
    summary = plan.summary()
    return {
        "users_changed": sum(summary["users"].values()),
        "groups_changed": sum(summary["groups"].values()),
        "memberships_changed": sum(summary["memberships"].values()),
    }


def _stage_metrics(watch: Stopwatch) -> Metrics:
    """Stage times; ``total_s`` (the goal) adds the validator import when this run paid it."""
    stages: Metrics = {f"{name}_s": round(watch[name], 4) for name in ("validate", "plan", "apply")}
    sync = sum(watch[name] for name in ("validate", "plan", "apply"))
    stages["sync_s"] = round(sync, 4)
    stages["validator_import_s"] = round(watch["validator_import"], 4)
    stages["total_s"] = round(sync + watch["validator_import"], 4)
    stages["plan_apply_s"] = round(watch["plan"] + watch["apply"], 4)
    return stages


def _large_secondary(watch: Stopwatch) -> Any:
    from mis_sync.generator import generate_school

    with watch("generate"):
        return generate_school(
            bench_profile("large-secondary"), SCHOOL_SEED, AS_OF, establishment_id="large-secondary"
        )


def _sizes(extract: Any) -> dict[str, int]:
    return {f"rows_{name}": len(frame) for name, frame in extract.tables.items()}


def first_run_on(url: str) -> Metrics:
    watch = Stopwatch()
    extract = _large_secondary(watch)
    config = _config("large-secondary")
    engine = _fresh_directory(url, watch)
    validator = import_validator(watch)
    plan, result = sync_once(engine, config, extract, "bench-first", watch)
    engine.dispose()
    return {
        **_stage_metrics(watch),
        "generate_s": round(watch["generate"], 4),
        "migrate_s": round(watch["migrate"], 4),
        "writes": result.writes,
        **_plan_counts(plan),
        **_sizes(extract),
        "info": {"validator": validator},
    }


def large_secondary_first() -> Metrics:
    with TemporaryDirectory(prefix="misync-bench-") as folder:
        return first_run_on(f"sqlite:///{folder}/directory.db")


def large_secondary_rerun() -> Metrics:
    import pandas as pd

    from mis_sync.model import Extract

    watch = Stopwatch()
    extract = _large_secondary(watch)
    config = _config("large-secondary")
    with TemporaryDirectory(prefix="misync-bench-") as folder:
        engine = _fresh_directory(f"sqlite:///{folder}/directory.db", watch)
        first = Stopwatch()
        validator = import_validator(first)  # paid by the first run, as in one long-lived process
        sync_once(engine, config, extract, "bench-first", first)
        later = Extract(extract.tables, extract.snapshot_at + pd.Timedelta(hours=1), extract.source)
        plan, result = sync_once(engine, config, later, "bench-rerun", watch)
        engine.dispose()
    return {
        **_stage_metrics(watch),
        "first_run_total_s": round(sum(first.laps.values()), 4),
        "generate_s": round(watch["generate"], 4),
        "writes": result.writes,
        "plan_changes": plan.change_count,
        **_sizes(extract),
        "info": {"validator": validator},
    }


def mat_trust() -> Metrics:
    """~90 schools of one trust: validated together (``quality.check_extracts``, one GE batch per
    entity), then planned and applied one after the other into one directory database."""
    from mis_sync.generator import generate_trust

    watch = Stopwatch()
    with watch("generate"):
        trust = generate_trust(TRUST_SEED, AS_OF)
    configs = {slug: _config(slug) for slug, _, _ in trust}
    per_school = []
    writes = 0
    with TemporaryDirectory(prefix="misync-bench-") as folder:
        engine = _fresh_directory(f"sqlite:///{folder}/directory.db", watch)
        validator = import_validator(watch)
        with watch("validate"):
            checked = validate_many({slug: extract for slug, _, extract in trust}, configs)
        for slug, _laestab, _extract in trust:
            school = Stopwatch()
            _, result = plan_and_apply(engine, configs[slug], checked[slug], "bench-mat", school)
            for name, seconds in school.laps.items():
                watch.laps[name] = watch[name] + seconds
            per_school.append((sum(school.laps.values()), slug))
            writes += result.writes
        engine.dispose()
    slowest, slowest_slug = max(per_school)
    tables = [extract.tables for _, _, extract in trust]
    return {
        **_stage_metrics(watch),
        "generate_s": round(watch["generate"], 4),
        "migrate_s": round(watch["migrate"], 4),
        "schools": len(trust),
        "writes": writes,
        "slowest_school_s": round(slowest, 4),
        **{f"rows_{name}": sum(len(t[name]) for t in tables) for name in tables[0]},
        "info": {"slowest_school": slowest_slug, "validator": validator},
    }


def large_secondary_first_postgres() -> Metrics:
    """The large-secondary first run on PostgreSQL, in a database created and dropped here."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
    except Exception as exc:
        raise Skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}") from None
    name = f"misync_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        metrics = first_run_on(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    metrics["info"]["postgresql"] = version
    return metrics


STAGES = (
    ("validate_s", "validate (quality checks + data hash)", "s"),
    ("plan_s", "plan (load state + make_plan)", "s"),
    ("apply_s", "apply", "s"),
)
IMPORT_ROWS = (
    ("validator_import_s", "import of Great Expectations (in total)", "s"),
    ("sync_s", "validate + plan + apply, import excluded", "s"),
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="large-secondary-first",
            description="large-secondary (~1,800 pupils), first run into an empty SQLite directory",
            run=large_secondary_first,
            report=(
                ("plan_apply_s", "plan + apply (the issue's goal)", "s"),
                ("total_s", "validate + plan + apply, cold process", "s"),
                *IMPORT_ROWS,
                *STAGES,
                ("generate_s", "generate extract (not in goal)", "s"),
                ("writes", "directory writes", ""),
                ("peak_rss_mib", "peak RSS of the process", "MiB"),
            ),
            goals=(Goal("plan_apply_s", "<=", 5),),
        ),
        Scenario(
            name="large-secondary-rerun",
            description="large-secondary, same extract 1 hour later: nothing to change",
            run=large_secondary_rerun,
            report=(
                ("plan_apply_s", "plan + apply (the issue's goal)", "s"),
                ("total_s", "validate + plan + apply (validator already imported)", "s"),
                *STAGES,
                ("writes", "directory writes", ""),
                ("plan_changes", "planned changes", ""),
            ),
            goals=(Goal("plan_apply_s", "<=", 2), Goal("writes", "==", 0)),
        ),
        Scenario(
            name="mat",
            description="multi-academy trust: ~90 schools, ~50k pupils, one SQLite directory",
            run=mat_trust,
            report=(
                ("plan_apply_s", "plan + apply, all schools (the issue's goal)", "s"),
                ("total_s", "validate + plan + apply, all schools", "s"),
                *IMPORT_ROWS,
                *STAGES,
                ("slowest_school_s", "slowest school, plan + apply", "s"),
                ("generate_s", "generate trust (not in goal)", "s"),
                ("schools", "schools", ""),
                ("rows_pupils", "pupils", ""),
                ("rows_memberships", "memberships", ""),
                ("writes", "directory writes", ""),
                ("peak_rss_mib", "peak RSS of the process", "MiB"),
            ),
            goals=(
                Goal("plan_apply_s", "<=", 60),
                Goal("total_s", "<=", 60),
                Goal("peak_rss_mib", "<=", 2048),
            ),
            repeats=1,
        ),
        Scenario(
            name="large-secondary-first-postgres",
            description="large-secondary first run into an empty PostgreSQL directory (for information)",
            run=large_secondary_first_postgres,
            report=(
                ("total_s", "validate + plan + apply, cold process", "s"),
                *IMPORT_ROWS,
                *STAGES,
                ("writes", "directory writes", ""),
            ),
        ),
    )
}


if __name__ == "__main__":
    sys.exit(script_main(Path(__file__), SCENARIOS))
