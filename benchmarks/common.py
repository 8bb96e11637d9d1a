"""Shared helpers for the benchmark scripts: scenarios, timing, fresh-subprocess runs, machine facts.

Every scenario runs in a fresh Python subprocess (``python bench_x.py --child NAME``) so that

- peak memory is the scenario's own: the child reads ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the
  end and nothing that an earlier scenario allocated counts;
- import time and caches start cold, as in an Airflow task process.

The child prints one line ``@@MISYNC-BENCH@@ {json}``; everything else it prints (logs) is ignored.
Timings use ``time.perf_counter``. These are scripts, not pytest tests.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = "@@MISYNC-BENCH@@"
CHILD_TIMEOUT_S = 900
"""A scenario taking longer than this is reported as failed (far beyond every goal)."""

Metrics = dict[str, Any]

SMOKE = os.environ.get("MISYNC_BENCH_SMOKE") == "1"
"""Set by the test suite's smoke run: every script runs end to end on the smallest school, so a
benchmark that no longer runs (a renamed module, a changed signature) fails ``make test``. Its
timings mean nothing and are never written to the results table."""


def bench_profile(name: str) -> str:
    """The generator profile a scenario uses: ``name``, or the smallest school in a smoke run."""
    return "small-primary" if SMOKE else name


# --------------------------------------------------------------------------------------------- timing


class Stopwatch:
    """Named ``time.perf_counter`` laps that add up: ``with watch("plan"): ...`` twice sums both."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0.0) + time.perf_counter() - start

    def __getitem__(self, name: str) -> float:
        return self.laps.get(name, 0.0)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# ------------------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Goal:
    """A target from the issue: ``metric op limit``, judged on the worst repeat."""

    metric: str
    op: str  # "<=" or "=="
    limit: float

    def met_by(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value == self.limit

    def worst(self, values: list[float]) -> float:
        if self.op == "<=":
            return max(values)
        return next((v for v in values if v != self.limit), values[0])

    def describe(self, unit: str) -> str:
        limit = f"{self.limit:g}"
        return f"{self.op} {limit} {unit}".strip()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[], Metrics]
    """Runs in the child process; returns metrics (numbers) plus an optional ``info`` dict."""
    report: tuple[tuple[str, str, str], ...]
    """(metric, label, unit) rows shown in the Markdown table, in order."""
    goals: tuple[Goal, ...] = ()
    repeats: int = 3
    setup: Callable[[], tuple[dict[str, str], Callable[[], None]]] | None = None
    """Runs in the parent once per scenario: returns extra child environment and a cleanup function."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the child (merged with ``setup``'s)."""


class Skip(Exception):
    """Raised by a scenario that cannot run here (e.g. no PostgreSQL server): reported, not failed."""


# ------------------------------------------------------------------------------------------ child side


def child_main(scenarios: dict[str, Scenario], name: str, profile: bool = False) -> int:
    """Run one scenario in this (fresh) process and print its result line."""
    scenario = scenarios[name]
    try:
        if profile:
            profiler = cProfile.Profile()
            metrics = profiler.runcall(scenario.run)
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)
        else:
            metrics = scenario.run()
        result: dict[str, Any] = {"status": "ok", "metrics": metrics}
    except Skip as exc:
        result = {"status": "skipped", "error": str(exc)}
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    result["load_average_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    sys.stdout.flush()
    print(f"{MARKER} {json.dumps(result, default=str)}", flush=True)
    return 0


# ----------------------------------------------------------------------------------------- parent side


def run_child(script: Path, name: str, env: dict[str, str]) -> dict[str, Any]:
    """One repeat of a scenario in a fresh interpreter; its result dict (``status`` ok/skipped/failed)."""
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            [sys.executable, str(script.resolve()), "--child", name],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=REPO,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {CHILD_TIMEOUT_S} s"}
    wall = time.perf_counter() - started
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        tail = (completed.stderr or completed.stdout)[-3000:]
        last = tail.strip().splitlines()[-1] if tail.strip() else ""
        return {
            "status": "failed",
            "error": f"child exited {completed.returncode} without a result: {last}",
            "stderr_tail": tail,
        }
    result = json.loads(lines[-1][len(MARKER) :])
    result["process_wall_s"] = round(wall, 3)
    if result["status"] == "failed":
        result["stderr_tail"] = completed.stderr[-3000:]
    return result


def run_scenario(script: Path, scenario: Scenario, repeats: int | None = None, log: bool = True) -> dict:
    """All repeats of one scenario, each in its own subprocess, summarised with its goals."""
    count = repeats or scenario.repeats
    env = dict(scenario.env)
    cleanup = None
    if scenario.setup is not None:
        extra, cleanup = scenario.setup()
        env.update(extra)
    runs = []
    try:
        for index in range(count):
            if log:
                print(f"  {scenario.name}: run {index + 1}/{count} ...", file=sys.stderr, flush=True)
            outcome = run_child(script, scenario.name, env)
            runs.append(outcome)
            if outcome["status"] != "ok":
                break
    finally:
        if cleanup is not None:
            cleanup()
    return summarise(scenario, runs)


def summarise(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "repeats": len(runs),
        "runs": runs,
    }
    bad = [r for r in runs if r["status"] != "ok"]
    if bad:
        result["status"] = bad[0]["status"]
        result["error"] = bad[0].get("error")
        if result["status"] == "failed":
            result["goals"] = [
                {"metric": g.metric, "op": g.op, "limit": g.limit, "worst": None, "met": False}
                for g in scenario.goals
            ]
        return result
    result["status"] = "ok"
    metrics = [{**r["metrics"], "peak_rss_mib": r["peak_rss_mib"]} for r in runs]
    numeric = sorted({k for m in metrics for k, v in m.items() if isinstance(v, int | float)})
    result["summary"] = {
        key: {
            "median": statistics.median(m[key] for m in metrics),
            "min": min(m[key] for m in metrics),
            "max": max(m[key] for m in metrics),
        }
        for key in numeric
    }
    result["info"] = metrics[-1].get("info", {})
    result["goals"] = []
    for goal in scenario.goals:
        worst = goal.worst([m[goal.metric] for m in metrics])
        result["goals"].append(
            {
                "metric": goal.metric,
                "op": goal.op,
                "limit": goal.limit,
                "worst": worst,
                "met": goal.met_by(worst),
            }
        )
    return result


# --------------------------------------------------------------------------------------------- output


def _number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f}" if value >= 1 else f"{value:.3f}"
    if unit == "MiB":
        return f"{value:.0f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.2f}"


def markdown_table(results: list[dict[str, Any]], scenarios: dict[str, Scenario]) -> str:
    """One row per reported metric: median, range over repeats, goal and whether the worst repeat met it."""
    rows = [
        "| Scenario | Measure | Median | Min – max (runs) | Goal | Met |",
        "|---|---|---:|---:|---|:---:|",
    ]
    for result in results:
        scenario = scenarios[result["name"]]
        if result["status"] != "ok":
            targets = "; ".join(f"{g.metric} {g.describe('')}" for g in scenario.goals) or "—"
            verdict = "—" if result["status"] == "skipped" else "**no**"
            rows.append(
                f"| `{result['name']}` | {result['status']}: {_one_line(result.get('error'))} | | | "
                f"{targets} | {verdict} |"
            )
            continue
        goals = {g.metric: g for g in scenario.goals}
        verdicts = {g["metric"]: g["met"] for g in result["goals"]}
        first = True
        for metric, label, unit in scenario.report:
            stats = result["summary"].get(metric)
            if stats is None:
                continue
            goal = goals.get(metric)
            spread = f"{_number(stats['min'], unit)} – {_number(stats['max'], unit)} ({result['repeats']})"
            met = "—" if goal is None else ("yes" if verdicts[metric] else "**no**")
            name = f"`{result['name']}`" if first else ""
            measure = f"{label} ({unit})" if unit else label
            target = goal.describe(unit) if goal else ""
            rows.append(
                f"| {name} | {measure} | {_number(stats['median'], unit)} | {spread} | {target} | {met} |"
            )
            first = False
    return "\n".join(rows)


def _one_line(text: str | None) -> str:
    return (text or "").splitlines()[0][:160].replace("|", "/") if text else ""


# -------------------------------------------------------------------------------------------- machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on. Cheap: reads /proc and package metadata, imports nothing heavy."""
    import sqlite3

    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    meminfo = {
        line.split(":")[0]: line.split(":")[1].strip()
        for line in _read("/proc/meminfo").splitlines()
        if ":" in line
    }
    total_kib = int(meminfo.get("MemTotal", "0 kB").split()[0])
    cpu_max = _read("/sys/fs/cgroup/cpu.max").strip()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "cgroup_cpu_max": cpu_max or None,
        "memory_gib": round(total_kib / 1024 / 1024, 1) if total_kib else None,
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "sqlalchemy": _version("sqlalchemy"),
        "apache_airflow": _version("apache-airflow"),
        "pydantic": _version("pydantic"),
        "great_expectations": _version("great-expectations"),
        "sqlite": sqlite3.sqlite_version,
        "tmpdir": os.environ.get("TMPDIR") or "/tmp",
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu_model']}, {info['usable_cores']} usable of {info['logical_cores']} logical cores, "
        f"{info['memory_gib']} GiB RAM, {info['os']} {info['arch']}; Python {info['python']}, "
        f"pandas {info['pandas']}, pyarrow {info['pyarrow']}, SQLAlchemy {info['sqlalchemy']}, "
        f"SQLite {info['sqlite']}, Airflow {info['apache_airflow']}, "
        f"Great Expectations {info['great_expectations']}"
    )


# ------------------------------------------------------------------------------------------ script CLI


def script_main(script: Path, scenarios: dict[str, Scenario], argv: list[str] | None = None) -> int:
    """Entry point of a ``bench_*.py``: run its scenarios in subprocesses, or (``--child``) one in-process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--child", metavar="SCENARIO", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", action="append", choices=sorted(scenarios), help="run only these")
    parser.add_argument("--repeat", type=int, help="repeats per scenario (default: the scenario's own)")
    parser.add_argument(
        "--profile",
        metavar="SCENARIO",
        choices=sorted(scenarios),
        help="run one scenario in this process under cProfile and print the hot spots to stderr",
    )
    args = parser.parse_args(argv)
    if args.child:
        return child_main(scenarios, args.child)
    if args.profile:
        for key, value in scenarios[args.profile].env.items():
            os.environ.setdefault(key, value)
        if scenarios[args.profile].setup is not None:
            extra, cleanup = scenarios[args.profile].setup()
            os.environ.update(extra)
        else:
            cleanup = None
        try:
            return child_main(scenarios, args.profile, profile=True)
        finally:
            if cleanup:
                cleanup()
    chosen = [scenarios[name] for name in (args.scenario or scenarios)]
    results = [run_scenario(script, scenario, args.repeat) for scenario in chosen]
    print(markdown_table(results, scenarios))
    return 0 if all_good(results) else 1


def busy_warning(results: list[dict[str, Any]], usable_cores: int | None) -> str | None:
    """A warning when other work competed for the CPU during the runs (so timings are inflated)."""
    loads = [r.get("load_average_1m") or 0.0 for result in results for r in result.get("runs", [])]
    if not loads or not usable_cores or max(loads) <= usable_cores:
        return None
    return (
        f"warning: the 1-minute load average reached {max(loads):.1f} on {usable_cores} usable cores "
        "during the runs: other processes competed for the CPU, so timings may be inflated"
    )


def all_good(results: list[dict[str, Any]]) -> bool:
    """No failed scenario and no missed goal (a skipped scenario, e.g. no PostgreSQL, is fine)."""
    return all(r["status"] != "failed" and all(g["met"] for g in r.get("goals", [])) for r in results)
