"""Run a local emulator in the foreground, for ``make demo`` and ``make ui`` (never for real tenants).

    python -m mis_sync.fakes.serve graph --port 18765 --auto-users-domain demo-academy.example
    python -m mis_sync.fakes.serve classroom --port 18766 --auto-users-domain demo-academy.example \\
        --admin it.admin@demo-academy.example

``--auto-users-domain`` makes any looked-up user of that domain exist, standing in for the accounts a
real tenant already has (or that ``provision_accounts`` would create). ``--admin`` seeds the Workspace
administrator the service account acts as (Classroom only). ``--state-file`` keeps the emulator's state
across restarts, so a second ``make demo`` finds what the first one wrote and sends nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from mis_sync.fakes.classroom import FakeClassroom
from mis_sync.fakes.graph import FakeGraph

LABELS = {
    "graph": "Microsoft Graph (not Microsoft 365)",
    "classroom": "Google Classroom and Admin SDK Directory (not Google Workspace)",
}


def build(service: str, port: int, auto_users_domain: str | None) -> FakeGraph | FakeClassroom:
    """The emulator for ``service`` (not yet started)."""
    fake = FakeGraph if service == "graph" else FakeClassroom
    return fake(port=port, auto_users_domain=auto_users_domain)


def load_state(state: Any, saved: dict[str, Any]) -> None:
    """Put a saved state back: dict fields are merged, sets (saved as sorted lists) and scalars replaced."""
    for item in dataclasses.fields(state):
        if item.name not in saved:
            continue
        current, value = getattr(state, item.name), saved[item.name]
        if isinstance(current, dict):
            current.update(value)
        elif isinstance(value, list) and str(item.type).startswith("set"):
            setattr(state, item.name, set(value))
        else:
            setattr(state, item.name, value)


def dump_state(state: Any) -> str:
    return json.dumps(dataclasses.asdict(state), default=lambda v: sorted(v) if isinstance(v, set) else v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mis_sync.fakes.serve", description=__doc__)
    parser.add_argument("service", choices=sorted(LABELS))
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--auto-users-domain", default=None)
    parser.add_argument("--admin", default=None, help="Classroom: the admin account to seed (email)")
    parser.add_argument("--state-file", type=Path, default=None, help="kept across restarts (JSON)")
    args = parser.parse_args(argv)
    if args.admin and args.service != "classroom":
        parser.error("--admin is for the classroom emulator only")

    fake = build(args.service, args.port, args.auto_users_domain)
    state = fake.state
    if args.state_file and args.state_file.is_file():
        load_state(state, json.loads(args.state_file.read_text(encoding="utf-8")))
    if isinstance(fake, FakeClassroom) and args.admin and fake.state.user_by_email(args.admin) is None:
        fake.add_user(args.admin, "IT", "Admin", is_admin=True)
    try:
        fake.start()
    except OSError as exc:
        # A busy port must stop the demo: its DAG would otherwise talk to whatever listens there.
        print(
            f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror}): another program uses the port; "
            "stop it or pick another port (make demo EMULATOR_PORT=… CLASSROOM_PORT=…)",
            file=sys.stderr,
        )
        return 2
    print(f"LOCAL EMULATOR of {LABELS[args.service]} on {fake.base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        if args.state_file:
            args.state_file.write_text(dump_state(state), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
