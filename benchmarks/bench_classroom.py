"""Google Classroom fan-out against the local fake Classroom: requests per write, and delta runs.

Run: ``.venv/bin/python benchmarks/bench_classroom.py [--scenario NAME] [--repeat N] [--profile NAME]``.

The generated ``large-secondary`` school is planned and applied into a fresh SQLite directory (not
timed), then synced to a fresh fake Classroom through google-api-python-client (static discovery,
multipart batches of at most 50), as the DAG's ``google_classroom`` tasks do (prepare → chunks →
finish, in one process). Mirrors ``bench_targets.py`` (Microsoft 365):

- initial: every course created (by alias) and filled; ``write_requests`` are batch POSTs that carry
  writes, compared with the minimum ``ceil(writes / 50)``;
- no-change: the same directory again: nothing to send;
- 100 changes: 100 pupil memberships of teaching groups dropped in the MIS, re-planned, re-applied
  and synced: 100 removals.

The quota pacing (``requests_per_minute``, 1,000 by default) is NOT slept here: ``quota_minutes`` is
what it would add in production (every call in a batch counts against Google's per-user quota).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from common import Goal, Metrics, Scenario, Stopwatch, bench_profile, script_main
from target_runs import run_metrics, three_runs

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "bench.example"
AS_OF = dt.date(2026, 1, 15)
OWNER = "it.admin"


def _config() -> Any:
    from mis_sync.config import load_establishment
    from mis_sync.targets.settings import GoogleClassroomTarget, TargetsConfig

    config = load_establishment(REPO / "include" / "establishments" / "demo-academy.yaml")
    target = GoogleClassroomTarget(enabled=True, connection_id="google_bench", domain=DOMAIN, owner=OWNER)
    return config.model_copy(update={"targets": TargetsConfig(google_classroom=target)})


def classroom_large_secondary() -> Metrics:
    from mis_sync.directory.state import load_state
    from mis_sync.fakes import running_fake_classroom
    from mis_sync.generator import generate_school

    watch = Stopwatch()
    config = _config()
    rpm = config.targets.google_classroom.requests_per_minute
    with watch("generate"):
        school = generate_school(bench_profile("large-secondary"), 2026, AS_OF)
    calls: dict[str, int] = {}
    with TemporaryDirectory() as tmp, running_fake_classroom(seed=1) as fake:
        os.environ["AIRFLOW_CONN_GOOGLE_BENCH"] = json.dumps(
            {"conn_type": "generic", "extra": {"api_endpoint": fake.base_url}}
        )

        def seed_users(engine: Any) -> None:
            fake.add_user(f"{OWNER}@{DOMAIN}", "It", "Admin", is_admin=True)
            for username in load_state(engine, config.id).users["username"]:
                fake.add_user(f"{username}@{DOMAIN}", "Bench", "User")

        def count_calls(run_id: str, done: bool) -> None:
            if done:
                calls[run_id] = fake.counters["inner_requests"]
            else:
                fake.reset_counters()

        runs = three_runs(
            config, "google_classroom", school, tmp, watch, seed_users=seed_users, around_sync=count_calls
        )
        courses = len(fake.state.courses)
    initial_calls = calls["initial"]
    return {
        **run_metrics(runs, watch, 50),
        "courses": courses,
        "calls": initial_calls,
        "quota_minutes": round(initial_calls / rpm, 1),
    }


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="classroom-large-secondary",
            description="large-secondary to a fake Google Classroom: initial, no-change and 100-change runs",
            run=classroom_large_secondary,
            report=(
                ("initial_s", "initial sync, quota pacing not slept (prepare + chunks + finish)", "s"),
                ("courses", "courses created", ""),
                ("writes", "writes (creates + student/teacher adds)", ""),
                ("write_requests", "write requests (batch POSTs with writes)", ""),
                ("minimum_requests", "minimum: ceil(writes / 50)", ""),
                ("ratio", "write requests / minimum", "x"),
                ("requests", "all batch requests (lookups and user resolution included)", ""),
                ("calls", "API calls inside them (each counts against the quota)", ""),
                ("quota_minutes", "those calls at requests_per_minute (1,000)", "min"),
                ("no_change_writes", "no-change run: writes", ""),
                ("no_change_write_requests", "no-change run: write requests", ""),
                ("no_change_s", "no-change run", "s"),
                ("changes_100_writes", "100 changes: writes", ""),
                ("changes_100_write_requests", "100 changes: write requests", ""),
                ("changes_100_s", "100 changes run", "s"),
            ),
            goals=(
                Goal("ratio", "<=", 1.1),
                Goal("no_change_writes", "==", 0),
                Goal("no_change_write_requests", "==", 0),
                Goal("changes_100_write_requests", "<=", 3),
            ),
            repeats=1,
        ),
    )
}


if __name__ == "__main__":
    sys.exit(script_main(Path(__file__), SCENARIOS))
