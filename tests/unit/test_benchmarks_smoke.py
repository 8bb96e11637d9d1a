"""Every benchmark script still runs: its first scenario, end to end, on the smallest school.

``make benchmark`` is not part of ``make test`` (it takes many minutes and its goals are judged on a
quiet machine), so without this a renamed module or a changed signature breaks a benchmark unnoticed.
``MISYNC_BENCH_SMOKE=1`` makes the scripts use the ``small-primary`` profile; the timings are ignored.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("bench_*.py"))


@pytest.fixture(scope="module")
def common():  # type: ignore[no-untyped-def]
    """The benchmarks' ``common`` module in smoke mode (set before import: setups run in this process)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MISYNC_BENCH_SMOKE", "1")
    # a loaded machine (the rest of the suite runs beside this) must not time the DAG file out
    patch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "600")
    patch.syspath_prepend(str(BENCHMARKS))
    try:
        yield importlib.import_module("common")
    finally:
        patch.undo()


SMOKE_ARGUMENTS = {
    "bench_junk_files": ["--mb", "0.2", "--kinds", "oneline", "--timeout", "120"],
    "bench_oneroster": ["--directory", "small-primary", "--pages", "5"],
}
"""Scripts that are not built on ``common.Scenario``: their own command line, at the smallest size."""


def test_every_benchmark_script_is_smoke_tested() -> None:
    assert len(SCRIPTS) >= 8, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_runs_its_first_scenario(common, script: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if script in SMOKE_ARGUMENTS:
        env = {**os.environ, "MISYNC_BENCH_CACHE": str(tmp_path)}
        command = [sys.executable, str(BENCHMARKS / f"{script}.py"), *SMOKE_ARGUMENTS[script]]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, f"{script}: exit {done.returncode}\n{done.stderr[-3000:]}"
        # these scripts print each case's answer rather than fail on it: a broken import, a changed
        # signature or a timeout must show as one here, not pass as a row of the table
        broken = (
            "ModuleNotFoundError",
            "ImportError",
            "TypeError",
            "AttributeError",
            "NameError",
            "no answer",
        )
        assert not [word for word in broken if word in done.stdout], done.stdout[-3000:]
        assert done.stdout.strip(), f"{script} printed nothing"
        return
    module = importlib.import_module(script)
    name, scenario = next(iter(module.SCENARIOS.items()))
    result = common.run_scenario(BENCHMARKS / f"{script}.py", scenario, repeats=1, log=False)
    assert result["status"] == "ok", (
        f"{script} {name}: {result.get('error')}\n{result['runs'][-1].get('stderr_tail', '')}"
    )
