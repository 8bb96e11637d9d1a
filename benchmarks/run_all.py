"""Run every benchmark scenario, write ``benchmarks/results.json`` and print a Markdown table.

Run: ``.venv/bin/python benchmarks/run_all.py [--repeat N] [--only NAME ...] [--out PATH]``
(``make benchmark`` does the same). Exit status 1 if a scenario failed or a goal was missed; a
scenario that cannot run here (no PostgreSQL server) is reported as skipped and does not fail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import bench_classroom
import bench_connectors
import bench_dag_parse
import bench_plan_apply
import bench_quality
import bench_targets
from common import all_good, busy_warning, machine, machine_line, markdown_table, run_scenario

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    bench_plan_apply.__file__: bench_plan_apply.SCENARIOS,
    bench_dag_parse.__file__: bench_dag_parse.SCENARIOS,
    bench_quality.__file__: bench_quality.SCENARIOS,
    bench_targets.__file__: bench_targets.SCENARIOS,
    bench_classroom.__file__: bench_classroom.SCENARIOS,
    bench_connectors.__file__: bench_connectors.SCENARIOS,
}


def main(argv: list[str] | None = None) -> int:
    every = {
        name: (Path(script), scenario)
        for script, group in SCRIPTS.items()
        for name, scenario in group.items()
    }
    if len(every) != sum(len(group) for group in SCRIPTS.values()):
        raise SystemExit("two benchmark scripts define a scenario with the same name")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="repeats per scenario (default: 3, the trust 1)")
    parser.add_argument("--only", action="append", choices=sorted(every), help="run only these scenarios")
    parser.add_argument("--out", type=Path, default=HERE / "results.json", help="where to write the JSON")
    args = parser.parse_args(argv)

    info = machine()
    print(f"Machine: {machine_line(info)}", file=sys.stderr)
    started = time.perf_counter()
    results = []
    for name in args.only or every:
        script, scenario = every[name]
        print(f"{name}: {scenario.description}", file=sys.stderr, flush=True)
        results.append(run_scenario(script, scenario, args.repeat))
    elapsed = time.perf_counter() - started

    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "total_runtime_s": round(elapsed, 1),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "all_goals_met": all_good(results),
        "busy_warning": busy_warning(results, info["usable_cores"]),
        "scenarios": results,
    }
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")

    table = markdown_table(results, {name: scenario for name, (_, scenario) in every.items()})
    print(f"Machine: {machine_line(info)}\n")
    print(table)
    verdict = "all goals met" if document["all_goals_met"] else "GOAL MISSED OR SCENARIO FAILED"
    print(f"\n{verdict}; {elapsed:.0f} s in all; results in {args.out}")
    warning = busy_warning(results, info["usable_cores"])
    if warning:
        print(warning)
    return 0 if document["all_goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
