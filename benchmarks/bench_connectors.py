"""MIS API connectors: a full extract of the generated ``large-secondary`` school through each HTTP
connector, against its local fake (loopback HTTP, in the same process as the connector).

Run: ``.venv/bin/python benchmarks/bench_connectors.py [--scenario NAME] [--repeat N]``: prints one
table row per connector (seconds, HTTP requests, canonical rows out, records the fake served). Each
repeat runs in a fresh process (``common.py``); generating the school and starting the fake are not
timed. Scenarios (no goals: information for admins choosing a route, and a regression signal):

- ``connector-wonde`` / ``connector-xporter``: aggregators, full reads (``extract_delta(None)``);
- ``connector-arbor`` (22 normalised resources, 500 per page), ``connector-bromcom`` (flat entities,
  one 100,000-row page each), ``connector-isams-rest`` (one request per set and per pupil: setLists and
  contacts), ``connector-scholarpack`` (100 per page; no teaching groups), ``connector-oneroster-rest``
  (100 per page, X-Total-Count);
- ``connector-isams-batch``: the iSAMS Batch API's one XML document over HTTP.

What the numbers mean: the fakes answer from memory on 127.0.0.1, so the time is the connector's own
work (HTTP client, JSON, reshaping, mapping) plus the fake's; a real MIS adds its latency per request
(``requests`` × round trip) and its own rate limits. Rows and records differ by source shape: a
normalised source (Arbor) serves many small records for the same school.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from common import Metrics, Scenario, bench_profile, child_main, run_scenario

AS_OF = dt.date(2026, 1, 15)
SEED = 1


def _connection(name: str, fake: Any) -> tuple[Any, str, dict[str, Any]]:
    """(ConnectionInfo, mis type, options) pointing the connector at its fake."""
    from mis_sync.connections import ConnectionInfo

    base = fake.base_url
    if name == "wonde":
        return (
            ConnectionInfo(
                "bench", login=fake.school_id, password=fake.token, extra={"base_url": base + "/v1.0"}
            ),
            "wonde",
            {},
        )
    if name == "xporter":
        extra = {"base_url": base + "/api/v1", "token_url": fake.token_url, "estab": fake.estab}
        return (
            ConnectionInfo("bench", login=fake.relying_party, password=fake.secret, extra=extra),
            "xporter",
            {},
        )
    if name == "arbor":
        return (
            ConnectionInfo(
                "bench", login=fake.user, password=fake.password, extra={"base_url": base + "/rest-v2"}
            ),
            "arbor",
            {},
        )
    if name == "bromcom":
        extra = {"base_url": base + "/v2", "school_id": fake.school_id}
        return (
            ConnectionInfo("bench", login=fake.application_id, password=fake.secret, extra=extra),
            "bromcom",
            {},
        )
    if name == "scholarpack":
        extra = {
            "base_url": base + "/api/v1",
            "token_url": fake.token_url,
            "refresh_token": fake.refresh_token,
        }
        conn = ConnectionInfo("bench", login=fake.client_id, password=fake.client_secret, extra=extra)
        return conn, "scholarpack", {}
    if name == "isams-rest":
        conn = ConnectionInfo(
            "bench", login=fake.client_id, password=fake.client_secret, extra={"base_url": base}
        )
        return conn, "isams_rest", {}
    if name == "oneroster-rest":
        extra = {"base_url": base + "/ims/oneroster/v1p1", "token_url": fake.token_url}
        conn = ConnectionInfo("bench", login=fake.client_id, password=fake.client_secret, extra=extra)
        return conn, "oneroster_rest", {}
    conn = ConnectionInfo("bench", password=fake.api_key, extra={"base_url": base})
    return conn, "isams_batch", {"backoff_seconds": 0}


def _fake(name: str, extract: Any) -> contextlib.AbstractContextManager[Any]:
    if name == "isams-batch":
        from mis_sync.fakes.isams_batch import running_fake_isams_batch
        from mis_sync.generator.shapes.isams_batch import render_isams_batch

        return running_fake_isams_batch(document=render_isams_batch(extract))
    module = import_module(f"mis_sync.fakes.{name.replace('-', '_')}")
    starter = {"oneroster-rest": "running_fake_oneroster"}.get(name, f"running_fake_{name.replace('-', '_')}")
    return getattr(module, starter)(extract)  # type: ignore[no-any-return]


def _run(name: str) -> Callable[[], Metrics]:
    def run() -> Metrics:
        from mis_sync.connectors import connector_for
        from mis_sync.connectors.delta import DeltaConnector
        from mis_sync.generator import generate_school

        started = time.perf_counter()
        extract = generate_school(bench_profile("large-secondary"), SEED, AS_OF)
        generate_s = time.perf_counter() - started
        with _fake(name, extract) as fake:
            connection, mis_type, options = _connection(name, fake)
            connector = connector_for(mis_type, connection, options)
            started = time.perf_counter()
            if isinstance(connector, DeltaConnector):
                got = connector.extract_delta(None).extract
            else:
                got = connector.extract()
            extract_s = time.perf_counter() - started
            counters = dict(fake.counters)
        served = counters.get("records", counters.get("served", 0))
        return {
            "extract_s": round(extract_s, 4),
            "requests": counters["requests"],
            "rows": sum(got.counts().values()),
            "records_served": served,
            "generate_s": round(generate_s, 4),
            "info": {"counts": got.counts()},
        }

    return run


CONNECTORS = (
    "wonde",
    "xporter",
    "arbor",
    "bromcom",
    "isams-rest",
    "scholarpack",
    "oneroster-rest",
    "isams-batch",
)
SCENARIOS: dict[str, Scenario] = {
    f"connector-{name}": Scenario(
        name=f"connector-{name}",
        description=f"large-secondary: full extract through the {name} connector against its local fake",
        run=_run(name),
        report=(
            ("extract_s", "full extract", "s"),
            ("requests", "HTTP requests", ""),
            ("rows", "canonical rows out", ""),
            ("records_served", "records served by the fake", ""),
            ("peak_rss_mib", "peak RSS of the process", "MiB"),
        ),
    )
    for name in CONNECTORS
}


def table(results: list[dict[str, Any]]) -> str:
    """One row per connector: median seconds (range), requests, rows, records, peak RSS."""
    lines = [
        "| Connector | Extract s (median) | min – max (runs) | HTTP requests | Canonical rows "
        "| Records served | Peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        name = result["name"].removeprefix("connector-")
        if result["status"] != "ok":
            lines.append(f"| {name} | {result['status']}: {(result.get('error') or '')[:80]} | | | | | |")
            continue
        s = result["summary"]
        spread = f"{s['extract_s']['min']:.2f} – {s['extract_s']['max']:.2f} ({result['repeats']})"
        lines.append(
            f"| {name} | {s['extract_s']['median']:.2f} | {spread} | {s['requests']['median']:,.0f} | "
            f"{s['rows']['median']:,.0f} | {s['records_served']['median']:,.0f} | "
            f"{s['peak_rss_mib']['median']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--child", metavar="SCENARIO", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="run only these")
    parser.add_argument("--repeat", type=int, help="repeats per scenario (default: 3)")
    args = parser.parse_args(argv)
    if args.child:
        return child_main(SCENARIOS, args.child)
    chosen = [SCENARIOS[name] for name in (args.scenario or SCENARIOS)]
    results = [run_scenario(Path(__file__), scenario, args.repeat) for scenario in chosen]
    print(table(results))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
