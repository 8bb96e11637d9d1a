"""Data-quality validation time: ``mis_sync.quality.check_extract`` on generated extracts.

Run: ``.venv/bin/python benchmarks/bench_quality.py [--scenario NAME] [--repeat N] [--profile NAME]``;
prints a Markdown table. Each repeat runs in a fresh process (see ``common.py``), so the first check
pays what an Airflow task pays: importing Great Expectations (~3 s of it) and building the six
validation definitions. Generating the synthetic data is timed separately and is not part of a goal.

Scenarios:

- ``quality-large-secondary``: one ~1,800-pupil school. ``validate_s`` = the first ``check_extract`` in the
  process (GE import and set-up included; goal <= 5 s); ``warm_s`` = the median of three more calls
  (a long-lived worker, or the second school of a process).
- ``quality-mat``: the trust's 90 schools (~50k pupils, ~400k memberships) in one ``check_extracts`` call:
  rules per school, then ONE Great Expectations batch per entity for all schools (GE's fixed cost
  per expectation, ~10 ms, is paid once instead of 90 times). Goal <= 60 s, GE import included.
- ``quality-mat-one-by-one``: the same 90 schools through ``check_extract`` one after the other in one
  process, for comparison (no goal; GE's per-run overhead dominates). Each school's own DAG run does
  this once, in its own task.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

from common import Goal, Metrics, Scenario, Stopwatch, bench_profile, script_main

AS_OF = dt.date(2026, 1, 15)
"""A term-time day (the spring term): every year group on roll, a few leavers and pre-admissions."""
SCHOOL_SEED = 2026
TRUST_SEED = 7


def _summary_counts(results: list) -> dict[str, int]:  # type: ignore[type-arg]
    errors = sum(r.summary["findings"]["error"] for r in results)
    warnings = sum(r.summary["findings"]["warning"] for r in results)
    return {"findings_error": errors, "findings_warning": warnings}


def large_secondary() -> Metrics:
    from mis_sync.generator import generate_school
    from mis_sync.quality import check_extract

    watch = Stopwatch()
    with watch("generate"):
        extract = generate_school(
            bench_profile("large-secondary"), SCHOOL_SEED, AS_OF, establishment_id="large-secondary"
        )
    with watch("validate"):
        result = check_extract(extract, country="england", last_counts={})
    warm = []
    for _ in range(3):
        started = time.perf_counter()
        check_extract(extract, country="england", last_counts=result.counts)
        warm.append(time.perf_counter() - started)
    return {
        "validate_s": round(watch["validate"], 4),
        "warm_s": round(statistics.median(warm), 4),
        "generate_s": round(watch["generate"], 4),
        **_summary_counts([result]),
        **{f"rows_{name}": len(frame) for name, frame in extract.tables.items()},
    }


def _trust(watch: Stopwatch) -> dict:  # type: ignore[type-arg]
    from mis_sync.generator import generate_trust

    with watch("generate"):
        return {slug: extract for slug, _laestab, extract in generate_trust(TRUST_SEED, AS_OF)}


def mat_batched() -> Metrics:
    from mis_sync.quality import check_extracts

    watch = Stopwatch()
    extracts = _trust(watch)
    with watch("validate"):
        results = check_extracts(extracts, country="england")
    failed = [slug for slug, r in results.items() if isinstance(r, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} school(s) stopped by a circuit breaker")
    return {
        "validate_s": round(watch["validate"], 4),
        "generate_s": round(watch["generate"], 4),
        "schools": len(extracts),
        **_summary_counts(list(results.values())),
        **{f"rows_{n}": sum(len(x.tables[n]) for x in extracts.values()) for n in ("pupils", "memberships")},
    }


def mat_one_by_one() -> Metrics:
    from mis_sync.quality import check_extract

    watch = Stopwatch()
    extracts = _trust(watch)
    per_school = []
    results = []
    with watch("validate"):
        for extract in extracts.values():
            started = time.perf_counter()
            results.append(check_extract(extract, country="england"))
            per_school.append(time.perf_counter() - started)
    return {
        "validate_s": round(watch["validate"], 4),
        "median_school_s": round(statistics.median(per_school), 4),
        "generate_s": round(watch["generate"], 4),
        "schools": len(extracts),
        **_summary_counts(results),
    }


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="quality-large-secondary",
            description="large-secondary (~1,800 pupils): check_extract in a fresh process",
            run=large_secondary,
            report=(
                ("validate_s", "check_extract, first call (GE import included)", "s"),
                ("warm_s", "check_extract, later calls (median of 3)", "s"),
                ("generate_s", "generate extract (not in goal)", "s"),
                ("findings_warning", "warnings found", ""),
                ("findings_error", "errors found", ""),
                ("peak_rss_mib", "peak RSS of the process", "MiB"),
            ),
            goals=(Goal("validate_s", "<=", 5),),
        ),
        Scenario(
            name="quality-mat",
            description="trust of 90 schools: check_extracts, one GE batch per entity for all schools",
            run=mat_batched,
            report=(
                ("validate_s", "check_extracts, 90 schools (GE import included)", "s"),
                ("generate_s", "generate trust (not in goal)", "s"),
                ("rows_pupils", "pupils", ""),
                ("rows_memberships", "memberships", ""),
                ("findings_warning", "warnings found", ""),
                ("peak_rss_mib", "peak RSS of the process", "MiB"),
            ),
            goals=(Goal("validate_s", "<=", 60),),
        ),
        Scenario(
            name="quality-mat-one-by-one",
            description="the same 90 schools through check_extract one after the other (comparison)",
            run=mat_one_by_one,
            report=(
                ("validate_s", "check_extract x 90, in turn", "s"),
                ("median_school_s", "median school", "s"),
            ),
            repeats=1,
        ),
    )
}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.exit(script_main(Path(__file__), SCENARIOS))
