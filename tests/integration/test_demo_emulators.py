"""``tools/demo-emulators.sh``, which ``make demo`` and ``make ui`` use: both emulators start and stop
together, and a busy port stops the demo at once instead of letting its DAG talk to whatever listens."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "demo-emulators.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BIN": str(Path(sys.executable).parent),
        "AIRFLOW_HOME": str(tmp_path),
        "EMULATOR_PORT": str(free_port()),
        "CLASSROOM_PORT": str(free_port()),
        "DEMO_DOMAIN": "demo-academy.example",
        "DEMO_ADMIN": "it.admin@demo-academy.example",
    }


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def run(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=90)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_then_stop_runs_both_and_saves_their_state(env: dict[str, str], tmp_path: Path) -> None:
    started = run("start", env)
    assert started.returncode == 0, started.stderr
    pids = [int(line) for line in (tmp_path / "emulators.pid").read_text().split()]
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    stopped = run("stop", env)
    assert stopped.returncode == 0 and stopped.stderr == ""
    assert not any(alive(pid) for pid in pids)
    assert (tmp_path / "graph-emulator-state.json").is_file()
    assert (tmp_path / "classroom-emulator-state.json").is_file()


def test_a_busy_port_fails_fast_and_leaves_nothing_running(
    env: dict[str, str], tmp_path: Path, busy_port: int
) -> None:
    env["CLASSROOM_PORT"] = str(busy_port)
    started = run("start", env)
    assert started.returncode == 1
    assert f"cannot listen on 127.0.0.1:{busy_port}" in started.stderr
    assert "Traceback" not in started.stderr
    graph_log = (tmp_path / "graph-emulator.log").read_text()
    assert graph_log.startswith("LOCAL EMULATOR")
    assert not (tmp_path / "emulators.pid").exists()
    # the Graph emulator that did start was stopped again: its port is free
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", int(env["EMULATOR_PORT"])))


def _make_dry_run(*settings: str) -> str:
    """``make -n demo``: the commands it would run, with the Makefile's variables expanded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    command = ["make", "-n", "demo", f"BIN={Path(sys.executable).parent}", *settings]
    return subprocess.run(
        command, cwd=SCRIPT.parents[1], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_passes_both_ports_to_the_emulators_and_their_connections() -> None:
    """The Makefile's settings reach the script and the demo's Connections (a variable lost in an edit
    once started the Classroom emulator with ``--port ''``); both ports can be changed."""
    default = _make_dry_run()
    assert "tools/demo-emulators.sh start" in default
    assert '"base_url": "http://127.0.0.1:18765/v1.0/"' in default and "(port 18765)" in default
    assert '"api_endpoint": "http://127.0.0.1:18766/"' in default and "(port 18766)" in default
    moved = _make_dry_run("EMULATOR_PORT=19001", "CLASSROOM_PORT=19002")
    assert '"base_url": "http://127.0.0.1:19001/v1.0/"' in moved
    assert '"api_endpoint": "http://127.0.0.1:19002/"' in moved
