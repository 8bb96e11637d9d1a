"""Run a local emulator in the foreground, for ``make demo`` and ``make ui`` (never for real tenants).

    python -m mis_sync.fakes.serve graph --port 18765 --auto-users-domain demo-academy.example

``--auto-users-domain`` makes any looked-up user of that domain exist, standing in for the accounts a
real tenant already has (or that ``provision_accounts`` would create).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mis_sync.fakes.serve", description=__doc__)
    parser.add_argument("service", choices=["graph"])
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--auto-users-domain", default=None)
    parser.add_argument("--state-file", type=Path, default=None, help="kept across restarts (JSON)")
    args = parser.parse_args(argv)
    from mis_sync.fakes.graph import FakeGraph

    fake = FakeGraph(port=args.port, auto_users_domain=args.auto_users_domain)
    if args.state_file and args.state_file.is_file():
        saved = json.loads(args.state_file.read_text(encoding="utf-8"))
        for name, value in saved.items():
            getattr(fake.state, name).update(value)
    fake.start()
    print(f"LOCAL EMULATOR of Microsoft Graph (not Microsoft 365) on {fake.base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        if args.state_file:
            args.state_file.write_text(json.dumps(dataclasses.asdict(fake.state)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
