"""Account provisioning in Microsoft 365 (``provision_accounts: true``) against the local fake Graph.

New directory users become Entra users with their stored initial password (changed at first
sign-in), existing ones are adopted, name changes and suspensions are sent as updates, a rerun sends
nothing, and classes fill with the provisioned users in the same run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select

from mis_sync.directory.apply import InitialPasswords, apply_plan, data_hash
from mis_sync.directory.credentials import Credential
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import User
from mis_sync.directory.state import load_state
from mis_sync.fakes import FakeGraph, running_fake_graph
from mis_sync.model import Extract
from mis_sync.passwords import decrypt_password
from mis_sync.plan import make_plan
from mis_sync.targets.stages import run_target
from mis_sync.validate import on_roll_counts
from tests.integration.test_m365_sync import ADMIN, CONN_ID, DOMAIN, TENANT, config, context

KEY = Fernet.generate_key()


def apply(engine: Engine, extract: Extract, run_id: str) -> None:
    cfg = config(provision_accounts=True)
    plan = make_plan(extract, load_state(engine, cfg.id), cfg)
    apply_plan(
        engine, cfg.id, plan, run_id=run_id, extract_hash=data_hash(extract.tables),
        extract_counts=on_roll_counts(extract), passwords=InitialPasswords(cfg.passwords, [KEY]),
    )  # fmt: skip


@pytest.fixture
def directory(tmp_path: Path, school: Any) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    migrate(engine)
    apply(engine, school, "mis-1")
    return engine


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    with running_fake_graph(seed=9) as server:
        extra = {
            "tenant_id": TENANT,
            "base_url": server.base_url + "/",
            "allowed_hosts": "graph.microsoft.com",
        }
        conn = {"conn_type": "msgraph", "login": "client-id", "password": "secret", "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        server.add_user(f"{ADMIN}@{DOMAIN}")
        yield server


@pytest.fixture(scope="module")
def school() -> Extract:
    import datetime as dt

    from mis_sync.generator import generate_school

    return generate_school("small-primary", seed=7, as_of=dt.date(2026, 10, 1))


def run(engine: Engine, tmp_path: Path, run_id: str) -> dict[str, Any]:
    ctx = context(engine, tmp_path, config(provision_accounts=True), run_id)
    ctx.credential_keys = [KEY]
    return run_target(ctx, "microsoft365", sleep=lambda _s: None)


def test_accounts_are_created_with_initial_passwords_then_left_alone(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    pre_existing = load_state(directory, "demo-academy").users["username"].iloc[0]
    existing_id = fake.add_user(f"{pre_existing}@{DOMAIN}")
    summary = run(directory, tmp_path, "r1")
    users = load_state(directory, "demo-academy").users
    expected = users[users["role"] != "parent"]
    accounts = summary["accounts"]
    assert accounts["users_adopted"] == 1 and accounts["users_created"] == len(expected) - 1
    assert accounts["no_initial_password"] == 0 and summary["unresolved_users"] == 0
    for username in expected["username"]:
        user = fake.state.user_by_upn(f"{username}@{DOMAIN}")
        assert user is not None and user["accountEnabled"] is True and user["usageLocation"] == "GB"
    assert fake.state.users[existing_id]["accountEnabled"] is True, "the adopted account was updated"
    assert fake.state.classes and all(fake.state.members.values()), "classes filled in the same run"
    with directory.connect() as conn:
        stored = conn.execute(select(Credential.ciphertext)).scalars().all()
    passwords = {decrypt_password(token, [KEY]) for token in stored}
    assert all(p not in json.dumps(fake.state.users) for p in passwords), "the fake never keeps passwords"
    again = run(directory, tmp_path, "r2")
    assert again["writes"] == 0 and again["accounts"]["users_updated"] == 0


def test_suspended_and_renamed_users_are_updated_not_deleted(
    directory: Engine, fake: FakeGraph, tmp_path: Path, school: Extract
) -> None:
    run(directory, tmp_path, "r1")
    pupils = school.tables["pupils"]
    leaver = pupils[pupils["enrolment_status"] == "on_roll"]["mis_id"].iloc[0]
    changed = pupils.assign(
        enrolment_status=pupils["enrolment_status"].mask(pupils["mis_id"] == leaver, "leaver"),
        leaving_date=pupils["leaving_date"].mask(pupils["mis_id"] == leaver, pd.Timestamp("2026-10-01")),
    )
    apply(directory, Extract({**school.tables, "pupils": changed}, school.snapshot_at + pd.Timedelta(hours=1),
                             school.source), "mis-2")  # fmt: skip
    with directory.connect() as conn:
        username = conn.execute(select(User.username).where(User.mis_id == leaver)).scalar_one()
    count = len(fake.state.users)
    summary = run(directory, tmp_path, "r2")
    assert summary["accounts"]["users_updated"] == 1
    assert fake.state.user_by_upn(f"{username}@{DOMAIN}")["accountEnabled"] is False
    assert len(fake.state.users) == count, "never deleted"
