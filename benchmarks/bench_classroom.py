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

The fake enforces Google's documented quotas (1,200 calls a minute per user, 3,000 per project, on a
60-second moving window; every call in a batch counts) on a **virtual clock** that the sync's quota
pacing (``requests_per_minute``) also sleeps on: the run takes real seconds, and ``first_sync_minutes``
is how long the pacing makes the first sync in production (network time excluded). It is compared
with the bound the quota sets: the calls a first sync cannot do without (one per course, per roster
entry other than the owner, per user looked up) at 1,200 a minute. ``refused`` counts every call the
server refused in the first sync (quota 429s, ALREADY_EXISTS, PERMISSION_DENIED, ...).
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
    from mis_sync.fakes.classroom_quota import PER_USER_PER_MINUTE, ClassroomQuota
    from mis_sync.generator import generate_school

    watch = Stopwatch()
    config = _config()
    rpm = config.targets.google_classroom.requests_per_minute
    with watch("generate"):
        school = generate_school(bench_profile("large-secondary"), 2026, AS_OF)
    calls: dict[str, int] = {}
    needed: dict[str, int] = {}
    refused: dict[str, int] = {}
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def clock() -> float:
        return now[0]

    quota = ClassroomQuota(clock=clock)
    with TemporaryDirectory() as tmp, running_fake_classroom(seed=1, quota=quota) as fake:
        os.environ["AIRFLOW_CONN_GOOGLE_BENCH"] = json.dumps(
            {"conn_type": "generic", "extra": {"api_endpoint": fake.base_url}}
        )

        def seed_users(engine: Any) -> None:
            fake.add_user(f"{OWNER}@{DOMAIN}", "It", "Admin", is_admin=True)
            for username in load_state(engine, config.id).users["username"]:
                fake.add_user(f"{username}@{DOMAIN}", "Bench", "User")

        def count_calls(run_id: str, done: bool) -> None:
            if not done:
                fake.reset_counters()
                started[run_id] = now[0]
                return
            took[run_id] = now[0] - started[run_id]
            calls[run_id] = fake.counters["inner_requests"]
            refused[run_id] = sum(1 for _m, _p, status in fake.inner_requests if status >= 400)
            looked_up = sum(
                1 for m, p, s in fake.inner_requests if p.startswith("/v1/userProfiles/") and s == 200
            )
            needed[run_id] = fake.counters["writes"] + looked_up

        runs = three_runs(
            config, "google_classroom", school, tmp, watch, seed_users=seed_users, around_sync=count_calls,
            sleep=sleep, clock=clock,
        )  # fmt: skip
        courses = len(fake.state.courses)
    first_minutes = took["initial"] / 60
    bound_minutes = needed["initial"] / PER_USER_PER_MINUTE
    return {
        **run_metrics(runs, watch, 50),
        "courses": courses,
        "calls": calls["initial"],
        "needed_calls": needed["initial"],
        "refused": refused["initial"],
        "quota_refusals": quota.refused,
        "peak_window": quota.user.peak,
        "first_sync_minutes": round(first_minutes, 1),
        "bound_minutes": round(bound_minutes, 1),
        "time_vs_bound": round(first_minutes / bound_minutes, 3),
        "requests_per_minute": rpm,
    }


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="classroom-large-secondary",
            description="large-secondary to a fake Google Classroom: initial, no-change and 100-change runs",
            run=classroom_large_secondary,
            report=(
                ("initial_s", "initial sync, real seconds (pacing on a virtual clock)", "s"),
                ("courses", "courses created", ""),
                ("writes", "writes (creates + student/teacher adds)", ""),
                ("write_requests", "write requests (batch POSTs with writes)", ""),
                ("minimum_requests", "minimum: ceil(writes / 50)", ""),
                ("ratio", "write requests / minimum", "x"),
                ("requests", "all batch requests (lookups and user resolution included)", ""),
                ("calls", "API calls inside them (each counts against the quota)", ""),
                ("needed_calls", "calls a first sync cannot do without", ""),
                ("refused", "calls the server refused in the first sync", ""),
                ("peak_window", "most calls in one 60 s window (quota 1,200)", ""),
                ("first_sync_minutes", "first sync at the default pacing (virtual clock)", "min"),
                ("bound_minutes", "bound: needed calls at 1,200 a minute", "min"),
                ("time_vs_bound", "first sync / bound", "x"),
                ("no_change_writes", "no-change run: writes", ""),
                ("no_change_write_requests", "no-change run: write requests", ""),
                ("no_change_s", "no-change run", "s"),
                ("changes_100_writes", "100 changes: writes", ""),
                ("changes_100_write_requests", "100 changes: write requests", ""),
                ("changes_100_s", "100 changes run", "s"),
            ),
            goals=(
                Goal("ratio", "<=", 1.1),
                Goal("refused", "==", 0),
                Goal("time_vs_bound", "<=", 1.2),
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
