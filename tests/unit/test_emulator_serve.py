"""The demo emulators (``python -m mis_sync.fakes.serve``): users made on demand for the demo domain, and
state kept across restarts so a second ``make demo`` finds what the first one wrote."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from mis_sync.fakes import FakeClassroom, FakeGraph
from mis_sync.fakes.classroom_state import ClassroomState
from mis_sync.fakes.serve import dump_state, load_state


def _get(fake: FakeClassroom, path: str) -> tuple[int, dict[str, Any]]:
    status, _, payload = fake.handle("GET", path)
    return status, json.loads(payload) if payload else {}


def test_classroom_auto_users_only_for_the_demo_domain() -> None:
    fake = FakeClassroom(auto_users_domain="Demo.Example")
    status, found = _get(fake, "/v1/userProfiles/jsmith@demo.example")
    assert status == 200 and found["emailAddress"] == "jsmith@demo.example"
    assert _get(fake, "/v1/userProfiles/jsmith@demo.example")[1]["id"] == found["id"], "made once"
    assert _get(fake, "/admin/directory/v1/users/ajones@demo.example")[0] == 200
    # no profile: 403 PERMISSION_DENIED, as userProfiles.get documents (not 404)
    assert _get(fake, "/v1/userProfiles/jsmith@other.example")[0] == 403
    assert _get(fake, "/v1/userProfiles/not-an-email")[0] == 403
    assert _get(fake, "/admin/directory/v1/users/jsmith@other.example")[0] == 404
    assert len(fake.state.users) == 2
    assert _get(FakeClassroom(), "/v1/userProfiles/jsmith@demo.example")[0] == 403, "off by default"


def test_state_round_trip_keeps_sets_and_merges_dicts() -> None:
    state = ClassroomState(org_units={"/Pupils/Year 7", "/Staff"})
    state.aliases["d:x"] = "1"
    assert _round_trip(state) == state
    seeded = ClassroomState()
    seeded.aliases["d:seeded"] = "2"  # already held when the file is loaded: kept
    load_state(seeded, json.loads(dump_state(state)))
    assert seeded.aliases == {"d:seeded": "2", "d:x": "1"} and seeded.org_units == state.org_units
    assert ClassroomState().org_units is None and _round_trip(ClassroomState()).org_units is None
    graph = FakeGraph()
    graph.add_user("a@demo.example")
    again = FakeGraph()
    load_state(again.state, json.loads(dump_state(graph.state)))
    assert again.state == graph.state


def _round_trip(state: ClassroomState) -> ClassroomState:
    out = ClassroomState()
    load_state(out, json.loads(dump_state(state)))
    return out


def _serve(state_file: Path) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable, "-m", "mis_sync.fakes.serve", "classroom", "--port", "0",
        "--auto-users-domain", "demo.example", "--admin", "it.admin@demo.example",
        "--state-file", str(state_file),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    banner = process.stdout.readline()
    assert banner.startswith("LOCAL EMULATOR of Google Classroom"), "labelled as an emulator"
    return process, banner.rsplit(" on ", 1)[1].strip()


def _call(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_classroom_emulator_keeps_its_state_across_restarts(tmp_path: Path) -> None:
    state_file = tmp_path / "classroom-state.json"
    process, url = _serve(state_file)
    try:
        course = {
            "id": "d:demo-7A",
            "name": "7A",
            "ownerId": "it.admin@demo.example",
            "courseState": "ACTIVE",
        }
        assert _call(url + "v1/courses", "POST", course)[0] == 200
        student = {"userId": "pupil1@demo.example"}
        assert _call(url + "v1/courses/d:demo-7A/students", "POST", student)[0] == 200
    finally:
        _stop(process)
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    assert len(saved["courses"]) == 1 and len(saved["users"]) == 2

    process, url = _serve(state_file)
    try:
        assert _call(url + "v1/courses", "POST", course)[0] == 409, "the alias survived the restart"
        status, roster = _call(url + "v1/courses/d:demo-7A/students")
        assert status == 200 and [s["profile"]["emailAddress"] for s in roster["students"]] == [
            "pupil1@demo.example"
        ]
    finally:
        _stop(process)
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    assert sum(bool(u.get("isAdmin")) for u in saved["users"].values()) == 1, "the admin is seeded once"
