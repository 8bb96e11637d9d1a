"""DAG parse time with 500 establishment files: how long Airflow takes to load ``dags/mis_sync_dags.py``.

Run: ``.venv/bin/python benchmarks/bench_dag_parse.py [--scenario NAME] [--repeat N] [--profile NAME]``.

The parent writes 500 copies of ``include/establishments/demo-academy.yaml`` (ids ``school-001`` …
``school-500``) into a temporary folder. Each repeat is a fresh interpreter with
``MISYNC_ESTABLISHMENTS_DIR`` pointing there and a throwaway ``AIRFLOW_HOME``; it imports Airflow's
``DagBag`` (timed, reported apart) and then times ``DagBag(dag_folder=<repo>/dags)``:

- ``dagbag-500``: what the DAG processor does: read, validate and build all 500 DAGs;
- ``dagbag-500-task``: what a task process does (``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` set): read one
  file and build one DAG.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import SMOKE, Goal, Metrics, Scenario, Stopwatch, script_main

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
TEMPLATE = REPO / "include" / "establishments" / "demo-academy.yaml"
COUNT = 3 if SMOKE else 500
HOUSEKEEPING = "mis_sync__housekeeping"
TASK_DAG_ID = "mis_sync__school_002" if SMOKE else "mis_sync__school_250"


def write_establishments(folder: Path, count: int = COUNT) -> list[Path]:
    """``count`` valid establishment files: the demo file with its own id, name, LAESTAB and connection."""
    text = TEMPLATE.read_text(encoding="utf-8")
    paths = []
    for number in range(1, count + 1):
        slug = f"school-{number:03d}"
        copy = (
            text.replace("demo-academy", slug)
            .replace("Demo Academy", f"School {number:03d}")
            .replace("mis_demo_academy", f"mis_{slug.replace('-', '_')}")
            .replace('"8814001"', f'"88{14000 + number:05d}"')
        )
        path = folder / f"{slug}.yaml"
        path.write_text(copy, encoding="utf-8")
        paths.append(path)
    return paths


def establishments_setup() -> tuple[dict[str, str], Callable[[], None]]:
    """Parent side: the 500 files and an empty Airflow home, shared by the repeats, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="misync-bench-dags-"))
    establishments = root / "establishments"
    establishments.mkdir()
    write_establishments(establishments)
    (root / "airflow-home").mkdir()
    env = {
        "MISYNC_ESTABLISHMENTS_DIR": str(establishments),
        "AIRFLOW_HOME": str(root / "airflow-home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    return env, lambda: shutil.rmtree(root, ignore_errors=True)


def parse(expected: set[str] | None, expected_count: int) -> Metrics:
    """Child side: time the Airflow import, then the DagBag fill; check what it built."""
    watch = Stopwatch()
    with watch("import"):
        from airflow.configuration import conf
        from airflow.dag_processing.dagbag import DagBag
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    elapsed = time.perf_counter() - started
    ids = set(bag.dag_ids) - {HOUSEKEEPING}  # the one daily retention DAG, beside the schools' own
    if bag.import_errors:
        first = next(iter(bag.import_errors.values()))
        raise AssertionError(f"{len(bag.import_errors)} import error(s); first: {first[:500]}")
    if len(ids) != expected_count or (expected is not None and ids != expected):
        raise AssertionError(f"expected {expected_count} DAG(s), got {len(ids)}: {sorted(ids)[:5]} ...")
    tasks = sum(len(dag.tasks) for dag in bag.dags.values())
    metrics: Metrics = {
        "dagbag_s": round(elapsed, 4),
        "per_dag_ms": round(elapsed / max(len(ids), 1) * 1000, 2),
        "airflow_import_s": round(watch["import"], 4),
        "dags": len(ids),
        "tasks": tasks,
        "import_errors": len(bag.import_errors),
        "info": {
            "establishment_files": len(list(Path(os.environ["MISYNC_ESTABLISHMENTS_DIR"]).glob("*.yaml"))),
            "dagbag_import_timeout_s": conf.getfloat("core", "dagbag_import_timeout"),
        },
    }
    if expected is None:
        # The share of the fill spent reading and validating the YAML files, timed again on its own
        # (warm: modules imported, pydantic validators built).
        from mis_sync.config import discover
        from mis_sync.paths import establishments_dir

        started = time.perf_counter()
        discover(establishments_dir())
        metrics["discover_s"] = round(time.perf_counter() - started, 4)
    return metrics


def all_dags() -> Metrics:
    os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    return parse(None, COUNT)


def task_process() -> Metrics:
    if os.environ.get("_AIRFLOW_PARSING_CONTEXT_DAG_ID") != TASK_DAG_ID:
        raise AssertionError("the task-process scenario needs _AIRFLOW_PARSING_CONTEXT_DAG_ID set")
    return parse({TASK_DAG_ID}, 1)


COMMON_ROWS = (
    ("airflow_import_s", "import airflow DagBag (not in goal)", "s"),
    ("dags", "DAGs built", ""),
    ("import_errors", "import errors", ""),
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="dagbag-500",
            description=f"DagBag of dags/ with {COUNT} establishment files (DAG processor)",
            run=all_dags,
            report=(
                ("dagbag_s", f"DagBag fill, {COUNT} establishments", "s"),
                ("per_dag_ms", "per establishment", "ms"),
                ("discover_s", "of which YAML read + validation (timed apart)", "s"),
                *COMMON_ROWS,
                ("peak_rss_mib", "peak RSS of the process", "MiB"),
            ),
            goals=(Goal("dagbag_s", "<=", 10), Goal("dags", "==", COUNT), Goal("import_errors", "==", 0)),
            setup=establishments_setup,
        ),
        Scenario(
            name="dagbag-500-task",
            description=f"the same folder in a task process of {TASK_DAG_ID} (parsing context set)",
            run=task_process,
            report=(
                ("dagbag_s", "DagBag fill, one establishment", "s"),
                *COMMON_ROWS,
                ("peak_rss_mib", "peak RSS of the process", "MiB"),
            ),
            goals=(Goal("dags", "==", 1), Goal("import_errors", "==", 0)),
            setup=establishments_setup,
            env={"_AIRFLOW_PARSING_CONTEXT_DAG_ID": TASK_DAG_ID},
        ),
    )
}


if __name__ == "__main__":
    sys.exit(script_main(Path(__file__), SCENARIOS))
