"""A junk ``memberships.csv`` in an otherwise good file drop: time and peak memory until an answer.

Run: ``.venv/bin/python benchmarks/bench_junk_files.py [--mb 5 50] [--kinds …] [--src DIR]
[--timeout S]``. Each case runs ``misync check-data``'s work (extract + data-quality checks) in a fresh
process and prints one row: seconds, peak memory (ru_maxrss) and the first words of the answer.
``--src`` points at another checkout's ``src/`` to measure the code before a change; ``--baseline``
first records the tiny school's file sizes as the last good extract (so the growth limit applies).

Kinds of junk (each ``--mb`` megabytes, after a valid header):

- ``oneline``: one endless line of letters and commas (a file that lost its line ends);
- ``noheader``: the same with no header line end at all (a binary or mis-delimited file);
- ``wide``: rows of 1,000 fields;
- ``longcells``: three fields per row, each 5,000 characters;
- ``rows``: well-formed rows of random ids (only the size limits can tell it is junk).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "tiny-school"
KINDS = ("oneline", "noheader", "wide", "longcells", "rows")

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
folder, baseline = sys.argv[1], sys.argv[2]
from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
started = time.perf_counter()
answer = "ok"
try:
    connector = connector_for("file_drop", ConnectionInfo(conn_id="bench", extra={"path": folder}), {})
    if baseline and hasattr(connector, "read_limits"):
        connector.read_limits.baseline = json.loads(Path(baseline).read_text())
    extract = connector.extract()
    from mis_sync.quality import check_extract
    check_extract(extract, country="england")
except Exception as exc:
    answer = f"{type(exc).__name__}: {exc}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
seconds = round(time.perf_counter() - started, 2)
print(json.dumps({"seconds": seconds, "peak_mb": round(peak), "answer": answer}))
"""


def write_junk(path: Path, kind: str, size: int, rnd: random.Random) -> None:
    letters = string.ascii_letters
    with path.open("w", encoding="utf-8") as out:
        if kind != "noheader":
            out.write("GroupId,PersonId,Role\n")
        written = 0
        while written < size:
            if kind in ("oneline", "noheader"):
                piece = "".join(rnd.choices(letters + ",", k=100_000))
            elif kind == "wide":
                piece = ",".join("".join(rnd.choices(letters, k=4)) for _ in range(1000)) + "\n"
            elif kind == "longcells":
                piece = ",".join("".join(rnd.choices(letters, k=5000)) for _ in range(3)) + "\n"
            else:
                piece = (
                    "\n".join(
                        f"{''.join(rnd.choices(letters, k=12))},{''.join(rnd.choices(letters, k=12))},Pupil"
                        for _ in range(1000)
                    )
                    + "\n"
                )
            out.write(piece)
            written += len(piece)


def run_case(src: Path, folder: Path, baseline: Path | None, timeout: float) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(src), "MISYNC_INCLUDE_DIR": str(src.parent / "include")}
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), str(baseline or "")],
            capture_output=True, text=True, env=env, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"seconds": f">{timeout:g}", "peak_mb": "?", "answer": "no answer (killed at the timeout)"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {"seconds": "?", "peak_mb": "?", "answer": done.stderr[-200:]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, nargs="+", default=[5.0, 50.0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--src", type=Path, default=REPO / "src")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--baseline", action="store_true", help="the tiny school's sizes as the last extract")
    args = parser.parse_args()
    rnd = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="misync-junk-") as work:
        baseline = None
        if args.baseline:
            baseline = Path(work) / "baseline.json"
            baseline.write_text(json.dumps({p.name: p.stat().st_size for p in TINY.glob("*.csv")}))
        print(f"{'kind':<10}{'MB':>6}{'seconds':>10}{'peak MB':>9}  answer")
        for mb in args.mb:
            for kind in args.kinds:
                folder = Path(work) / f"{kind}-{mb:g}"
                shutil.copytree(TINY, folder)
                write_junk(folder / "memberships.csv", kind, int(mb * 1_000_000), rnd)
                result = run_case(args.src.resolve(), folder, baseline, args.timeout)
                shutil.rmtree(folder)
                answer = str(result["answer"]).replace("\n", " ")[:110]
                print(
                    f"{kind:<10}{mb:>6g}{result['seconds']!s:>10}{result['peak_mb']!s:>9}  {answer}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
