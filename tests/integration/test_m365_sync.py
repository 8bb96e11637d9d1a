"""Microsoft 365 sync against the local fake Graph, through the provider's msgraph hook.

Convergence (every selected group is a class whose members and teachers equal the directory), a
second run with zero writes, convergence under 20 % injected 429/5xx, and a crash after N writes
followed by a rerun (no duplicate classes or memberships).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine
from upath import UPath

from mis_sync.config import Establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.state import load_state
from mis_sync.fakes import FakeGraph, running_fake_graph
from mis_sync.generator import generate_school
from mis_sync.model import Extract
from mis_sync.pipeline import RunContext
from mis_sync.targets.settings import Microsoft365Target, OwnersPolicy, TargetsConfig
from mis_sync.targets.stages import run_target
from tests.helpers import demo_config, sync

DOMAIN = "school.example"
TENANT = "00000000-0000-0000-0000-000000000000"
CONN_ID = "msgraph_fake"
ADMIN = "it.admin"


def config(**m365: Any) -> Establishment:
    m365.setdefault("owners", OwnersPolicy(admins=(ADMIN,)))
    target = Microsoft365Target(enabled=True, connection_id=CONN_ID, tenant_domain=DOMAIN, **m365)
    return demo_config(targets=TargetsConfig(microsoft365=target))


@pytest.fixture(scope="module")
def school() -> Any:
    return generate_school("small-primary", seed=7, as_of=dt.date(2026, 10, 1))


def make_directory(tmp_path: Path, school: Any) -> Engine:
    """A directory on SQLite holding the school after one MIS sync."""
    engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    migrate(engine)
    sync(engine, config(), school, "mis-run-1")
    return engine


@contextlib.contextmanager
def graph_for(monkeypatch: pytest.MonkeyPatch, directory: Engine, **options: Any) -> Iterator[FakeGraph]:
    """The fake Graph with the directory's users, and the msgraph Connection pointing at it."""
    options.setdefault("seed", 3)
    with running_fake_graph(**options) as server:
        extra = {
            "tenant_id": TENANT,
            "base_url": server.base_url + "/",
            "allowed_hosts": "graph.microsoft.com",
        }
        conn = {"conn_type": "msgraph", "login": "client-id", "password": "secret", "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        seed_users(server, directory)
        yield server


@pytest.fixture
def directory(tmp_path: Path, school: Any) -> Engine:
    return make_directory(tmp_path, school)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, directory: Engine) -> Iterator[FakeGraph]:
    with graph_for(monkeypatch, directory) as server:
        yield server


def seed_users(server: FakeGraph, directory: Engine) -> None:
    for username in [*load_state(directory, "demo-academy").users["username"], ADMIN]:
        server.add_user(f"{username}@{DOMAIN}")


def context(engine: Engine, tmp_path: Path, cfg: Establishment, run_id: str) -> RunContext:
    ctx = RunContext(
        establishment=cfg,
        run_id=run_id,
        folder=UPath(tmp_path / "runs" / run_id),
        source=ConnectionInfo(conn_id="unused"),
        directory_url="unused",
    )
    ctx.__dict__["engine"] = engine  # the cached_property, pointed at the test's directory
    return ctx


def run(engine: Engine, tmp_path: Path, cfg: Establishment, run_id: str, **kw: Any) -> dict[str, Any]:
    return run_target(context(engine, tmp_path, cfg, run_id), "microsoft365", sleep=lambda _s: None, **kw)


def expected(
    engine: Engine, kinds: tuple[str, ...] = ("registration", "teaching")
) -> dict[str, tuple[set, set]]:
    """externalId → (member UPNs, teacher UPNs), straight from the directory tables."""
    state = load_state(engine, "demo-academy")
    groups = state.groups[(state.groups["status"] == "active") & state.groups["kind"].isin(kinds)]
    users = state.users[state.users["status"] == "active"][["person_kind", "mis_id", "username"]]
    joined = state.memberships.merge(
        users.rename(columns={"mis_id": "person_mis_id"}), on=["person_kind", "person_mis_id"]
    )
    out = {}
    for mis_id, year in zip(groups["mis_id"], groups["academic_year"], strict=True):
        rows = joined[(joined["group_mis_id"] == mis_id) & (joined["academic_year"] == year)]
        admin = f"{ADMIN}@{DOMAIN}"
        upns = {f"{u}@{DOMAIN}" for u in rows["username"]} | {admin}  # teachers (the admin too) included
        teachers = {f"{u}@{DOMAIN}" for u in rows.loc[rows["role"] == "teacher", "username"]}
        out[f"misync:demo-academy:{mis_id}:{year}"] = (upns, teachers | {admin})
    return out


def live(fake: FakeGraph) -> dict[str, tuple[set, set]]:
    upn = {uid: u["userPrincipalName"] for uid, u in fake.state.users.items()}
    out = {}
    for cid, cls in fake.state.classes.items():
        members = [upn[u] for u in fake.state.members.get(cid, [])]
        teachers = [upn[u] for u in fake.state.owners.get(cid, [])]
        assert len(members) == len(set(members)) and len(teachers) == len(set(teachers)), "duplicates"
        out[cls["externalId"]] = (set(members), set(teachers))
    return out


def assert_converged(engine: Engine, fake: FakeGraph) -> None:
    want, have = expected(engine), live(fake)
    externals = [c["externalId"] for c in fake.state.classes.values()]
    assert len(externals) == len(set(externals)), "duplicate classes"
    assert set(have) == set(want)
    for key, (members, teachers) in want.items():
        assert have[key] == (members, teachers), key
        assert teachers <= members, "teachers are members too, as Microsoft's docs ask (the admin too)"
    assert fake.state.teachers_not_members() == []
    assert fake.state.teachers_removed_from_members == [], "never a member removal of a teacher"


def test_initial_sync_converges_and_second_run_sends_no_writes(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    cfg = config()
    first = run(directory, tmp_path, cfg, "r1")
    assert_converged(directory, fake)
    assert first["created"] == len(expected(directory)) > 0
    assert first["unresolved_users"] == 0 and first["failed"] == 0
    writes = first["writes"]
    assert fake.counters["writes"] == writes
    # batches are full: write requests within 10 % of ceil(writes / 20) (+1 for the create round)
    assert first["write_requests"] <= -(-writes // 20) * 1.1 + 1
    fake.reset_counters()
    second = run(directory, tmp_path, cfg, "r2")
    assert second["writes"] == second["write_requests"] == 0
    assert fake.counters["write_attempts"] == fake.counters["writes"] == 0


def test_converges_with_20_percent_throttling_and_faults(
    directory: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_fake_graph(seed=11, throttle_rate=0.1, fault_rate=0.1, fault_statuses=(500, 502)) as server:
        extra = {
            "tenant_id": TENANT,
            "base_url": server.base_url + "/",
            "allowed_hosts": "graph.microsoft.com",
        }
        conn = {"conn_type": "msgraph", "login": "client-id", "password": "secret", "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        seed_users(server, directory)
        summary = run(directory, tmp_path, config(), "r1")
        assert summary["throttles"] > 0 and summary["retries"] > 0
        assert server.counters["faults"] > 0
        assert_converged(directory, server)
        server.throttle_rate = server.fault_rate = 0.0
        again = run(directory, tmp_path, config(), "r2")
        assert again["writes"] == 0


class Killed(BaseException):
    """Stands for the worker being killed: not an Exception, so nothing in the sync catches it."""


def test_crash_after_n_writes_then_rerun_converges_without_duplicates(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    """The fake refuses every write after 150; the first retry wait kills the run mid-flight."""
    fake.fail_after_writes = 150

    def killed(_seconds: float) -> None:
        raise Killed

    with pytest.raises(Killed):
        run_target(context(directory, tmp_path, config(), "r1"), "microsoft365", sleep=killed)
    assert fake.counters["writes"] == 150
    fake.fail_after_writes = None
    run(directory, tmp_path, config(), "r2")
    assert_converged(directory, fake)
    fake.reset_counters()
    assert run(directory, tmp_path, config(), "r3")["writes"] == 0


def test_a_run_that_gives_up_reports_failures_and_the_next_run_finishes(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    fake.fail_after_writes = 40
    summary = run(directory, tmp_path, config(), "r1")
    assert summary["failed"] > 0 and summary["writes"] == 40
    fake.fail_after_writes = None
    again = run(directory, tmp_path, config(), "r2")
    assert again["failed"] == 0
    assert_converged(directory, fake)


def test_drift_check_reverts_manual_changes(directory: Engine, fake: FakeGraph, tmp_path: Path) -> None:
    run(directory, tmp_path, config(), "r1")
    assert run(directory, tmp_path, config(), "r1b")["drift_checked"], "the first check, finding nothing"
    cid = next(iter(fake.state.classes))
    stranger = fake.add_user(f"stranger@{DOMAIN}")
    removed = fake.state.members[cid].pop(0)
    fake.state.members[cid].append(stranger)
    assert run(directory, tmp_path, config(), "r2")["writes"] == 0, "no drift check yet: delta only"
    summary = run(directory, tmp_path, config(), "r3", force_drift_check=True)
    assert summary["drift"]["drift_extra"] == 1 and summary["drift"]["drift_missing"] == 1
    assert summary["writes"] == 2
    assert stranger not in fake.state.members[cid] and removed in fake.state.members[cid]
    assert_converged(directory, fake)


def test_drift_check_adopts_manual_changes_when_configured(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    from mis_sync.targets.settings import DriftCheck

    cfg = config(drift_check=DriftCheck(policy="adopt"))
    run(directory, tmp_path, cfg, "r1")
    cid = next(iter(fake.state.classes))
    stranger = fake.add_user(f"stranger@{DOMAIN}")
    removed = fake.state.members[cid].pop(0)
    fake.state.members[cid].append(stranger)
    summary = run(directory, tmp_path, cfg, "r2", force_drift_check=True)
    assert summary["writes"] == 0
    assert stranger in fake.state.members[cid] and removed not in fake.state.members[cid]
    assert run(directory, tmp_path, cfg, "r3", force_drift_check=True)["writes"] == 0


def test_a_class_deleted_by_hand_is_made_again_at_the_drift_check(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    run(directory, tmp_path, config(), "r1")
    cid, cls = next(iter(fake.state.classes.items()))
    fake.store.handle("DELETE", f"education/classes/{cid}", {}, None)
    summary = run(directory, tmp_path, config(), "r2", force_drift_check=True)
    assert summary["drift"]["drift_gone"] == 1 and summary["created"] == 1
    assert fake.state.class_by_external_id(cls["externalId"]) is not None
    assert_converged(directory, fake)


def test_drift_check_is_weekly_by_default(directory: Engine, fake: FakeGraph, tmp_path: Path) -> None:
    first = run(directory, tmp_path, config(), "r1")
    assert not first["drift_checked"], "nothing to check before the first sync"
    assert run(directory, tmp_path, config(), "r2")["drift_checked"], "first check once classes exist"
    assert not run(directory, tmp_path, config(), "r3")["drift_checked"], "then not again for 7 days"


def test_classes_gone_from_the_mis_are_renamed_not_deleted(
    directory: Engine, fake: FakeGraph, tmp_path: Path, school: Any
) -> None:
    run(directory, tmp_path, config(), "r1")
    groups = school.tables["groups"]
    gone = groups[groups["kind"] == "registration"]["mis_id"].iloc[0]
    tables = {
        **school.tables,
        "groups": groups[groups["mis_id"] != gone],
        "memberships": school.tables["memberships"][school.tables["memberships"]["group_id"] != gone],
    }
    sync(
        directory,
        config(),
        Extract(tables, school.snapshot_at + pd.Timedelta(hours=1), school.source),
        "mis-2",
    )
    count = len(fake.state.classes)
    summary = run(directory, tmp_path, config(), "r2")
    assert summary["changes"]["archives"] == 1
    assert len(fake.state.classes) == count, "never deleted"
    archived = [c for c in fake.state.classes.values() if c["displayName"].startswith("(Archived) ")]
    assert len(archived) == 1 and archived[0]["externalId"].split(":")[2] == gone
    assert run(directory, tmp_path, config(), "r3")["writes"] == 0


def test_unresolved_users_are_reported_not_fatal(directory: Engine, fake: FakeGraph, tmp_path: Path) -> None:
    victim = next(iter(fake.state.users))
    del fake.state.users[victim]
    summary = run(directory, tmp_path, config(), "r1")
    assert summary["unresolved_users"] == 1 and summary["failed"] == 0
    assert summary["skipped_unresolved"] >= 1


def test_users_can_be_resolved_by_mail(directory: Engine, fake: FakeGraph, tmp_path: Path) -> None:
    for user in fake.state.users.values():  # UPNs differ from the addresses MIS Sync knows
        user["userPrincipalName"] = user["userPrincipalName"].replace("@", "@upn.")
    summary = run(directory, tmp_path, config(user_attribute="mail"), "r1")
    assert summary["unresolved_users"] == 0 and summary["failed"] == 0
    assert any(fake.state.members.values())
    assert any(p == "/users" and s == 200 for _m, p, s in fake.inner_requests)


def test_microsoft_365_groups_kind(directory: Engine, fake: FakeGraph, tmp_path: Path) -> None:
    cfg = config(kind="group", group_kinds=("year", "registration", "teaching"))
    first = run(directory, tmp_path, cfg, "r1")
    assert not fake.state.classes and len(fake.state.groups) == first["created"] > 0
    for gid, group in fake.state.groups.items():
        assert group["groupTypes"] == ["Unified"] and fake.state.owners[gid], "never ownerless"
    assert run(directory, tmp_path, cfg, "r2")["writes"] == 0


def test_mis_changes_are_sent_as_deltas(
    directory: Engine, fake: FakeGraph, tmp_path: Path, school: Any
) -> None:
    run(directory, tmp_path, config(), "r1")
    memberships = school.tables["memberships"]
    pupils = memberships[memberships["role"] == "pupil"]
    dropped = pupils.sample(n=30, random_state=1).index
    tables = {**school.tables, "memberships": memberships.drop(index=dropped)}
    changed = Extract(tables, school.snapshot_at + pd.Timedelta(hours=1), school.source)
    sync(directory, config(), changed, "mis-run-2")
    fake.reset_counters()
    summary = run(directory, tmp_path, config(), "r2")
    assert_converged(directory, fake)
    assert 0 < summary["writes"] <= 30
    assert summary["write_requests"] <= 2
