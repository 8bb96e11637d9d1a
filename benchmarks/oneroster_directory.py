"""Build (once) the directories the OneRoster benchmark reads: the 90-school ``mat`` trust and a large
secondary, each planned and applied into its own SQLite file, kept in ``benchmarks/.cache/``.

Why cached: building the trust's directory takes a minute or two and is not what the benchmark
measures (the API reading it is). Delete the folder to rebuild.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MISYNC_BENCH_CACHE") or REPO / "benchmarks" / ".cache")
"""Where built directories are kept; the test suite's smoke run points it at a temporary folder."""
AS_OF = dt.date(2026, 1, 12)
TRUST_SEED = 7
SCHOOL_SEED = 2026


def _apply_school(engine, config, extract, run_id: str) -> None:  # type: ignore[no-untyped-def]
    from mis_sync.directory.apply import apply_plan, data_hash
    from mis_sync.directory.state import load_state
    from mis_sync.plan import make_plan
    from mis_sync.validate import on_roll_counts

    plan = make_plan(extract, load_state(engine, config.id), config)
    result = apply_plan(
        engine,
        config.id,
        plan,
        run_id=run_id,
        extract_hash=data_hash(extract.tables),
        extract_counts=on_roll_counts(extract),
    )
    if not result.applied:
        raise RuntimeError(f"{config.id}: not applied: {result.skipped_reason}")


def build(name: str) -> Path:
    """The SQLite file of directory ``name`` (``mat``, or a school profile such as ``large-secondary``),
    built if missing."""
    from mis_sync.config import load_establishment
    from mis_sync.directory.db import make_engine, migrate
    from mis_sync.generator import generate_school, generate_trust

    path = CACHE / f"oneroster-{name}.db"
    if path.exists():
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)  # a cache built before a newer migration gets it
        engine.dispose()
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{partial}")
    migrate(engine)
    demo = load_establishment(REPO / "include" / "establishments" / "demo-academy.yaml")
    if name == "mat":
        schools = [(slug, extract) for slug, _laestab, extract in generate_trust(TRUST_SEED, AS_OF)]
    else:
        schools = [
            ("bench-school", generate_school(name, SCHOOL_SEED, AS_OF, establishment_id="bench-school"))
        ]
    for slug, extract in schools:
        _apply_school(engine, demo.model_copy(update={"id": slug}), extract, f"bench-{name}")
    engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(path)
    return path


if __name__ == "__main__":
    for directory in sys.argv[1:] or ["large-secondary", "mat"]:
        print(build(directory))
