"""Microsoft 365 fan-out against the local fake Graph: requests per write, and delta runs.

Run: ``.venv/bin/python benchmarks/bench_targets.py [--scenario NAME] [--repeat N] [--profile NAME]``.

The generated ``large-secondary`` school is planned and applied into a fresh SQLite directory (not
timed), then synced to a fresh fake Graph through the provider's msgraph hook, as the DAG's
``microsoft365`` tasks do (prepare → chunks → finish, in one process):

- initial: every class created and filled; ``write_requests`` are HTTP requests that carry writes
  (``$batch`` POSTs), compared with the minimum ``ceil(writes / 20)``;
- no-change: the same directory again: nothing to send;
- 100 changes: 100 pupil memberships of teaching groups dropped in the MIS, re-planned, re-applied
  and synced: 100 removals.

``m365-teams-large-secondary`` runs the same with ``teams: true``: a team made from every class too.
``m365-throttled-large-secondary``: the initial sync with 10 % of requests (outer ``$batch`` and inner)
answered 429 ``Retry-After: 200`` (above the hook's own 180 s limit, so the engine times every retry;
its waits are recorded, not slept): nothing may be lost, ``failed`` must be 0 and no retry may come
sooner than the server asked.
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
from target_runs import apply_school, run_metrics, three_runs

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "bench.example"
AS_OF = dt.date(2026, 1, 15)


def _config(*, teams: bool = False) -> Any:
    from mis_sync.config import load_establishment
    from mis_sync.targets.settings import Microsoft365Target, OwnersPolicy, TargetsConfig

    config = load_establishment(REPO / "include" / "establishments" / "demo-academy.yaml")
    target = Microsoft365Target(
        enabled=True,
        connection_id="msgraph_bench",
        tenant_domain=DOMAIN,
        owners=OwnersPolicy(admins=("it.admin",)),
        teams=teams,
    )
    return config.model_copy(update={"targets": TargetsConfig(microsoft365=target)})


def _m365(*, teams: bool) -> Metrics:
    from mis_sync.fakes import running_fake_graph
    from mis_sync.generator import generate_school

    watch = Stopwatch()
    config = _config(teams=teams)
    with watch("generate"):
        school = generate_school(bench_profile("large-secondary"), 2026, AS_OF)
    with TemporaryDirectory() as tmp, running_fake_graph(seed=1, auto_users_domain=DOMAIN) as fake:
        extra = {"tenant_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "base_url": fake.base_url + "/",
                 "allowed_hosts": "graph.microsoft.com"}  # fmt: skip
        os.environ["AIRFLOW_CONN_MSGRAPH_BENCH"] = json.dumps(
            {"conn_type": "msgraph", "login": "c", "password": "s", "extra": extra}
        )
        runs = three_runs(config, "microsoft365", school, tmp, watch)
        classes, made = len(fake.state.classes), len(fake.state.teams)
    metrics = {**run_metrics(runs, watch, 20), "classes": classes}
    if teams:
        metrics |= {"teams": made, "teams_pending": runs["initial"]["teams_pending"]}
    return metrics


def m365_throttled_large_secondary() -> Metrics:
    from upath import UPath

    from mis_sync.connections import ConnectionInfo
    from mis_sync.directory.db import make_engine, migrate
    from mis_sync.fakes import running_fake_graph
    from mis_sync.generator import generate_school
    from mis_sync.pipeline import RunContext
    from mis_sync.targets.stages import run_target

    watch, waits = Stopwatch(), []
    config = _config()
    with watch("generate"):
        school = generate_school(bench_profile("large-secondary"), 2026, AS_OF)
    options = {"seed": 1, "auto_users_domain": DOMAIN, "throttle_rate": 0.1, "retry_after": 200}
    with TemporaryDirectory() as tmp, running_fake_graph(**options) as fake:
        extra = {"tenant_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "base_url": fake.base_url + "/",
                 "allowed_hosts": "graph.microsoft.com"}  # fmt: skip
        os.environ["AIRFLOW_CONN_MSGRAPH_BENCH"] = json.dumps(
            {"conn_type": "msgraph", "login": "c", "password": "s", "extra": extra}
        )
        engine = make_engine(f"sqlite:///{tmp}/directory.db")
        migrate(engine)
        apply_school(engine, config, school, "mis-1")
        ctx = RunContext(config, "initial", UPath(Path(tmp) / "initial"), ConnectionInfo("unused"), "unused")
        ctx.__dict__["engine"] = engine
        with watch("initial"):
            summary = run_target(ctx, "microsoft365", sleep=waits.append)
        throttled_creates = sum(
            1 for m, p, st in fake.inner_requests if m == "POST" and p == "/education/classes" and st == 429
        )
        members = sum(len(v) for v in fake.state.members.values())
        owners = sum(len(v) for v in fake.state.owners.values())
    return {
        "initial_s": round(watch["initial"], 2),
        "classes": len(fake.state.classes),
        "created": summary["created"],
        "writes": summary["writes"],
        "memberships_live": members + owners,
        "throttles": summary["throttles"],
        "throttled_creates": throttled_creates,
        "retries": summary["retries"],
        "failed": summary["failed"],
        "min_wait_s": min(waits, default=0.0),
    }


def m365_large_secondary() -> Metrics:
    return _m365(teams=False)


def m365_teams_large_secondary() -> Metrics:
    return _m365(teams=True)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="m365-large-secondary",
            description="large-secondary to a fake Graph: initial, no-change and 100-change runs",
            run=m365_large_secondary,
            report=(
                ("initial_s", "initial sync (prepare + chunks + finish)", "s"),
                ("classes", "education classes created", ""),
                ("writes", "writes (creates + member/teacher adds)", ""),
                ("write_requests", "write requests ($batch POSTs with writes)", ""),
                ("minimum_requests", "minimum: ceil(writes / 20)", ""),
                ("ratio", "write requests / minimum", "x"),
                ("requests", "all requests (lookups and user resolution included)", ""),
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
                Goal("changes_100_write_requests", "<=", 6),
            ),
            repeats=1,
        ),
        Scenario(
            name="m365-teams-large-secondary",
            description="the same with teams: true (a team made from every class)",
            run=m365_teams_large_secondary,
            report=(
                ("initial_s", "initial sync with teams", "s"),
                ("classes", "education classes created", ""),
                ("teams", "teams made", ""),
                ("teams_pending", "teams left pending", ""),
                ("writes", "writes (classes, memberships and teams)", ""),
                ("write_requests", "write requests", ""),
                ("ratio", "write requests / ceil(writes / 20)", "x"),
                ("no_change_writes", "no-change run: writes", ""),
            ),
            goals=(
                Goal("ratio", "<=", 1.1),
                Goal("no_change_writes", "==", 0),
                Goal("teams_pending", "==", 0),
            ),
            repeats=1,
        ),
        Scenario(
            name="m365-throttled-large-secondary",
            description="initial sync with 10 % of requests answered 429 Retry-After 200 s",
            run=m365_throttled_large_secondary,
            report=(
                ("initial_s", "initial sync, 10 % throttled (waits recorded, not slept)", "s"),
                ("classes", "education classes", ""),
                ("writes", "writes", ""),
                ("memberships_live", "live memberships + teachers (= writes - classes)", ""),
                ("throttles", "throttled answers", ""),
                ("throttled_creates", "class creates answered 429", ""),
                ("failed", "failed (changes still failed after all retries)", ""),
                ("min_wait_s", "shortest wait before a retry", "s"),
            ),
            goals=(Goal("failed", "==", 0), Goal("min_wait_s", "==", 200)),
            repeats=1,
        ),
    )
}


if __name__ == "__main__":
    sys.exit(script_main(Path(__file__), SCENARIOS))
