"""OneRoster API benchmark: page latency and a full crawl, over real HTTP, against the ``mat`` trust.

Goals (issue 17): a page of 100 users p50 <= 30 ms and p99 <= 100 ms; a full crawl of every user,
class and enrollment of the 90-school ``mat`` directory <= 30 s.

How: the directory is built once (``oneroster_directory.py``, cached in ``benchmarks/.cache/``), then
``misync serve-oneroster``'s application runs under uvicorn in a child process on SQLite, and this
process is a plain OAuth client (httpx): a token, then GETs. Page latency: ``--pages`` requests of
100 users at random offsets (seeded), after 20 warm-up requests. Crawl: each collection from offset 0
with ``limit=5000``, following ``rel="next"`` links, as an app's nightly sync would.

    PYTHONPATH=src python benchmarks/bench_oneroster.py [--directory mat] [--pages 300]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from oneroster_directory import CACHE, build  # noqa: E402

BASE = "/ims/oneroster/rostering/v1p2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _register(url: str) -> tuple[str, str]:
    from mis_sync.directory.db import make_engine
    from mis_sync.oneroster.apps import add_app

    engine = make_engine(url)
    app, secret = add_app(
        engine, "benchmark", schools=None, scopes=["roster.readonly"], rate_limit_per_minute=10**6
    )
    engine.dispose()
    return app.client_id, secret


def _serve(url: str, port: int, access_log: Path) -> subprocess.Popen[bytes]:
    """The service in a child process; its access log (one line per request, with the time the
    server spent) goes to ``access_log``, so server time and client time can be told apart."""
    code = (
        "import logging, uvicorn; from mis_sync.directory.db import make_engine; "
        f"logging.basicConfig(filename={str(access_log)!r}, level=logging.INFO, format='%(message)s'); "
        "from mis_sync.oneroster.server import create_app; "
        f"uvicorn.run(create_app(make_engine({url!r})), host='127.0.0.1', port={port}, log_level='warning')"
    )
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def _wait(client: httpx.Client) -> None:
    for _ in range(200):
        try:
            client.get("/ims/oneroster/rostering/v1p2/orgs")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the service did not start")


def crawl(client: httpx.Client, collection: str, limit: int = 5000) -> tuple[int, float, int]:
    started = time.perf_counter()
    answer = client.get(f"{BASE}/{collection}", params={"limit": limit})
    records = pages = 0
    while True:
        answer.raise_for_status()
        records += len(answer.json()[collection])
        pages += 1
        following = re.search(r'<([^>]+)>; rel="next"', answer.headers["Link"])
        if following is None:
            break
        answer = client.get(following.group(1))
    return records, time.perf_counter() - started, pages


def _server_times(access_log: Path) -> dict[str, float]:
    """Median server-side milliseconds of the crawl's full pages (5,000 records), per collection."""
    times: dict[str, list[float]] = {}
    for line in access_log.read_text().splitlines():
        match = re.search(r"endpoint=GET \S+/(\w+) status=200 records=5000 ms=([\d.]+)", line)
        if match:
            times.setdefault(match.group(1), []).append(float(match.group(2)))
    return {name: round(statistics.median(values), 1) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--directory", default="mat", choices=["mat", "large-secondary", "small-primary"])
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    path = build(args.directory)
    url = f"sqlite:///{path}"
    client_id, secret = _register(url)
    port = _free_port()
    access_log = CACHE / "bench-oneroster-access.log"
    access_log.unlink(missing_ok=True)
    server = _serve(url, port, access_log)
    results: dict[str, object] = {"directory": args.directory, "load_average_at_start": os.getloadavg()}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            _wait(client)
            token = client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            total = int(client.get(f"{BASE}/users", params={"limit": 1}).headers["X-Total-Count"])
            rng = random.Random(17)
            for _ in range(20):
                client.get(f"{BASE}/users", params={"limit": 100, "offset": rng.randrange(total - 100)})
            timings = []
            for _ in range(args.pages):
                offset = rng.randrange(total - 100)
                started = time.perf_counter()
                answer = client.get(f"{BASE}/users", params={"limit": 100, "offset": offset})
                timings.append((time.perf_counter() - started) * 1000)
                assert len(answer.json()["users"]) == 100
            timings.sort()
            results["users_total"] = total
            results["page100_p50_ms"] = round(statistics.median(timings), 1)
            results["page100_p99_ms"] = round(timings[int(len(timings) * 0.99) - 1], 1)
            crawl_total = 0.0
            for collection in ("users", "classes", "enrollments"):
                records, seconds, pages = crawl(client, collection)
                results[f"crawl_{collection}"] = {
                    "records": records,
                    "seconds": round(seconds, 2),
                    "pages": pages,
                }
                crawl_total += seconds
            results["crawl_total_s"] = round(crawl_total, 2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["load_average_at_end"] = os.getloadavg()
    results["server_ms_per_crawl_page"] = _server_times(access_log)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
