"""The shared sync engine's pure parts: the diff, batching, Retry-After, giving up, recording."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mis_sync.targets.desired import CONTAINER_COLUMNS, DesiredState, nickname
from mis_sync.targets.engine import Engine, Op, Outcome, TransientError, diff
from mis_sync.targets.store import STORED_CONTAINER_COLUMNS, STORED_MEMBERSHIP_COLUMNS, StoredState


def frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype="string")


def desired(containers: list[tuple], members: list[tuple]) -> DesiredState:
    rows = [(key, name, desc, nick, None, None, digest) for key, name, desc, nick, digest in containers]
    return DesiredState(frame(rows, CONTAINER_COLUMNS), frame(members, ["container_key", "user_key", "role"]))


def stored(containers: list[tuple], members: list[tuple]) -> StoredState:
    return StoredState(
        frame(containers, STORED_CONTAINER_COLUMNS),
        frame(members, STORED_MEMBERSHIP_COLUMNS),
        frame([], ["user_key", "remote_id"]),
    )


def test_diff_sends_only_the_difference() -> None:
    want = desired(
        [("A", "7A", "d", "a", "h1"), ("B", "7B", "d", "b", "h2"), ("C", "7C", "d", "c", "h3")],
        [("A", "u1", "member"), ("A", "t1", "member"), ("A", "t1", "owner"), ("C", "u2", "member")],
    )
    have = stored(
        [("A", "ra", "h1", "active"), ("B", "rb", "old", "active"), ("D", "rd", "h4", "active")],
        [
            ("A", "u1", "member", "present"),
            ("A", "gone", "member", "present"),
            ("A", "kept", "member", "adopted"),
            ("D", "u9", "member", "present"),
        ],
    )
    changes = diff(want, have)
    assert list(changes.creates["key"]) == ["C"]
    assert list(changes.updates["key"]) == ["B"] and list(changes.updates["remote_id"]) == ["rb"]
    assert list(changes.archives["key"]) == ["D"]
    assert sorted(map(tuple, changes.adds.to_numpy())) == [
        ("A", "t1", "member"),
        ("A", "t1", "owner"),
        ("C", "u2", "member"),
    ]
    # removed: ours only (not the adopted one), never in an archived class
    assert [tuple(r) for r in changes.removes.to_numpy()] == [("A", "gone", "member")]


def test_teams_are_wanted_for_every_wanted_class_without_one_and_only_when_asked() -> None:
    want = desired(
        [("A", "7A", "d", "a", "h1"), ("B", "7B", "d", "b", "h2"), ("C", "7C", "d", "c", "h3")], []
    )
    have = stored([("A", "ra", "h1", "active"), ("D", "rd", "h4", "active")], [])
    have.teams = frozenset({"A", "D"})
    assert diff(want, have).teams.empty, "off unless the target asks for teams"
    changes = diff(want, have, teams=True)
    assert sorted(changes.teams["key"]) == ["B", "C"], "new classes too; never an archived one"
    assert changes.counts()["teams"] == 2


def test_graph_team_request_and_answers() -> None:
    from mis_sync.targets.graph import GRAPH_ROOT, GraphAdapter

    op = Op("t1", "create_team", container_key="A", container_id="g-1")
    for kind, template in (("education_class", "educationClass"), ("group", "standard")):
        request = GraphAdapter(None, kind=kind).request(op)
        assert request == {
            "method": "POST",
            "url": "/teams",
            "body": {
                "template@odata.bind": f"{GRAPH_ROOT}/teamsTemplates('{template}')",
                "group@odata.bind": f"{GRAPH_ROOT}/groups('g-1')",
            },
        }
    adapter = GraphAdapter(None)
    accepted = {"status": 202, "headers": {"Location": "/teams('g-1')/operations('o')"}}
    assert adapter.outcome(op, accepted) == Outcome("ok", remote_id="g-1")
    conflict = {"status": 409, "body": {"error": {"code": "Conflict", "message": "team exists"}}}
    assert adapter.outcome(op, conflict) == Outcome("ok", remote_id="g-1", noop=True), "a team already"
    too_new = {"status": 404, "body": {"error": {"code": "NotFound", "message": "no group"}}}
    assert adapter.outcome(op, too_new).status == "absent", "tried again later, not a failure"
    no_owner = {"status": 400, "body": {"error": {"code": "BadRequest", "message": "needs an owner"}}}
    assert adapter.outcome(op, no_owner) == Outcome("failed", error="BadRequest")
    read = Op("r1", "read_team", container_key="A", container_id="g-1")
    assert adapter.request(read) == {"method": "GET", "url": "/teams/g-1?$select=id"}
    assert adapter.outcome(read, {"status": 200, "body": {"id": "g-1"}}).status == "ok"
    assert adapter.outcome(read, too_new).status == "absent", "deleted by hand: made again"


def test_excluded_memberships_are_not_re_added() -> None:
    want = desired([("A", "7A", "d", "a", "h1")], [("A", "u1", "member")])
    have = stored([("A", "ra", "h1", "active")], [("A", "u1", "member", "excluded")])
    assert diff(want, have).adds.empty


def test_nickname_is_graph_safe() -> None:
    assert nickname("Demo Academy:7A (2025/26)") == "demo-academy-7a-2025-26"
    assert len(nickname("x" * 100)) == 64
    assert nickname("@@@") == "misync-class"


class ScriptedAdapter:
    """Answers each op from a script of outcomes (then ok), recording batch sizes."""

    target = "test"
    max_batch = 3

    def __init__(self, script: dict[str, list[Outcome]]) -> None:
        self.script = script
        self.batches: list[list[str]] = []
        self.counters: dict[str, int] = {}

    def send(self, ops: Sequence[Op]) -> dict[str, Outcome]:
        self.batches.append([op.id for op in ops])
        if "boom" in self.script and len(self.batches) == 1:
            raise TransientError("outer 503")
        return {op.id: (self.script.get(op.id) or [Outcome("ok")]).pop(0) for op in ops}


def ops(n: int) -> list[Op]:
    return [Op(f"o{i}", "add", "A", "ra", f"u{i}", f"r{i}", "member") for i in range(n)]


def test_batches_retry_after_and_recording() -> None:
    adapter = ScriptedAdapter(
        {"o1": [Outcome("retry", retry_after=7, throttled=True)], "o4": [Outcome("retry")]}
    )
    slept: list[float] = []
    recorded: list[list[str]] = []
    engine = Engine(adapter, sleep=slept.append)
    results = engine.run(ops(5), lambda done: recorded.append([op.id for op, _ in done]))
    assert all(o.status == "ok" for o in results.values())
    assert adapter.batches == [["o0", "o1", "o2"], ["o3", "o4"], ["o1", "o4"]]
    assert slept == [7.0], "the longest Retry-After of the round, not the backoff"
    assert recorded == [["o0", "o2"], ["o3"], ["o1", "o4"]], "each batch recorded as it answers"
    assert engine.stats["throttles"] == 1 and engine.stats["retries"] == 2 and engine.stats["writes"] == 5


def test_gives_up_after_max_attempts_and_reports_failure() -> None:
    adapter = ScriptedAdapter({"o0": [Outcome("retry")] * 10})
    slept: list[float] = []
    engine = Engine(adapter, sleep=slept.append, max_attempts=3, base_delay=1)
    results = engine.run(ops(1))
    assert results["o0"].status == "failed" and engine.stats["failed"] == 1
    assert slept == [1.0, 2.0], "exponential backoff without Retry-After"


def test_outer_transient_error_retries_the_whole_batch() -> None:
    adapter = ScriptedAdapter({"boom": []})
    engine = Engine(adapter, sleep=lambda _s: None)
    results = engine.run(ops(2))
    assert adapter.batches == [["o0", "o1"], ["o0", "o1"]]
    assert all(o.status == "ok" for o in results.values())


def test_op_repr_never_shows_the_body() -> None:
    op = Op("n1", "create_user", user_key="k", body={"passwordProfile": {"password": "Secret-123"}})
    assert "Secret-123" not in repr(op)
