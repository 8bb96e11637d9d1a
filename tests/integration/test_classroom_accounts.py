"""Account provisioning in Google Workspace (``provision_accounts: true``) against the local fake Directory.

Mirrors ``test_m365_accounts.py``: new directory users become Workspace users with their stored initial
password (changed at first sign-in) in their role's org unit, an existing account is adopted, a rerun
sends nothing, a leaver is suspended (never deleted), admins are never changed, and courses fill with
the provisioned users in the same run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select

from mis_sync.config import Establishment
from mis_sync.directory.apply import InitialPasswords, apply_plan, data_hash
from mis_sync.directory.credentials import Credential
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import User
from mis_sync.directory.state import load_state
from mis_sync.fakes import FakeClassroom, running_fake_classroom
from mis_sync.model import Extract
from mis_sync.passwords import decrypt_password
from mis_sync.plan import make_plan
from mis_sync.targets.settings import GoogleClassroomTarget, OrgUnits, TargetsConfig
from mis_sync.targets.stages import run_target
from mis_sync.validate import on_roll_counts
from tests.helpers import demo_config
from tests.integration.test_classroom_sync import CONN_ID, DOMAIN, OWNER, TARGET, context

KEY = Fernet.generate_key()
UNITS = OrgUnits(
    pupil="/Pupils/Year {year_group}", teaching_staff="/Staff", non_teaching_staff="/Staff/Support"
)


def config() -> Establishment:
    target = GoogleClassroomTarget(
        enabled=True,
        connection_id=CONN_ID,
        domain=DOMAIN,
        owner=OWNER,
        provision_accounts=True,
        org_units=UNITS,
    )
    return demo_config(targets=TargetsConfig(google_classroom=target))


def apply(engine: Engine, extract: Extract, run_id: str) -> None:
    cfg = config()
    plan = make_plan(extract, load_state(engine, cfg.id), cfg)
    apply_plan(
        engine, cfg.id, plan, run_id=run_id, extract_hash=data_hash(extract.tables),
        extract_counts=on_roll_counts(extract), passwords=InitialPasswords(cfg.passwords, [KEY]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def school() -> Extract:
    import datetime as dt

    from mis_sync.generator import generate_school

    return generate_school("small-primary", seed=7, as_of=dt.date(2026, 10, 1))


@pytest.fixture
def directory(tmp_path: Path, school: Extract) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    migrate(engine)
    apply(engine, school, "mis-1")
    return engine


def users_of(engine: Engine) -> pd.DataFrame:
    users = load_state(engine, "demo-academy").users
    return users[users["role"] != "parent"].reset_index(drop=True)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, directory: Engine) -> Iterator[FakeClassroom]:
    with running_fake_classroom(seed=5) as server:
        conn = {"conn_type": "generic", "extra": {"api_endpoint": server.base_url}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        server.add_user(f"{OWNER}@{DOMAIN}", "It", "Admin", is_admin=True)
        years = users_of(directory)["year_group"].dropna().unique()
        for path in ["/Pupils", "/Staff", "/Staff/Support", *(f"/Pupils/Year {y}" for y in years)]:
            server.add_org_unit(path)
        yield server


def run(engine: Engine, tmp_path: Path, run_id: str) -> dict[str, Any]:
    ctx = context(engine, tmp_path, config(), run_id)
    ctx.credential_keys = [KEY]
    return run_target(ctx, TARGET, sleep=lambda _s: None)


def expected_unit(row: Any) -> str:
    return UNITS.path(str(row["role"]), None if pd.isna(row["year_group"]) else str(row["year_group"]))


def test_accounts_are_created_with_passwords_and_org_units_then_left_alone(
    directory: Engine, fake: FakeClassroom, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    users = users_of(directory)
    pupils = users[users["role"] == "pupil"]
    staff = users[users["role"] == "teaching_staff"]
    existing, admin = pupils["username"].iloc[0], staff["username"].iloc[0]
    existing_id = fake.add_user(f"{existing}@{DOMAIN}", "Old", "Name")
    admin_id = fake.add_user(f"{admin}@{DOMAIN}", "Head", "Admin", is_admin=True)
    admin_before = json.dumps(fake.state.users[admin_id], sort_keys=True)
    caplog.set_level(logging.DEBUG)
    summary = run(directory, tmp_path, "r1")
    accounts = summary["accounts"]
    assert accounts["users_adopted"] == 2 and accounts["users_created"] == len(users) - 2
    assert accounts["users_protected"] == 1 and accounts["users_updated"] == 1
    assert accounts["no_initial_password"] == 0 and summary["unresolved_users"] == 0
    # a fresh domain: users.insert at once, users.get only for the two inserts answered 409
    gets = [p for m, p, s in fake.inner_requests if m == "GET" and p.startswith("/admin/directory/v1/users/")]
    conflicts = [p for m, p, s in fake.inner_requests if m == "POST" and "/users" in p and s == 409]
    assert len(conflicts) == 2 and len(gets) == 2
    for row in users.to_dict("records"):
        user = fake.state.user_by_email(f"{row['username']}@{DOMAIN}")
        assert user is not None and user["suspended"] is False
        if user["id"] == admin_id:
            continue
        assert user["orgUnitPath"] == expected_unit(row), "placed in its role's org unit"
        if user["id"] != existing_id:
            assert user["changePasswordAtNextLogin"] is True
            assert user["externalIds"] == [{"type": "organization", "value": str(row["mis_id"])}]
    adopted = fake.state.users[existing_id]
    assert adopted["name"]["givenName"] != "Old", "the adopted account was updated"
    assert adopted["orgUnitPath"].startswith("/Pupils/Year ")
    assert json.dumps(fake.state.users[admin_id], sort_keys=True) == admin_before, "admins untouched"
    assert fake.state.courses and any(fake.state.students.values()), "courses filled in the same run"
    provisioned = {u["id"] for u in fake.state.users.values()} - {admin_id}
    assert provisioned & {s for roster in fake.state.students.values() for s in roster}
    with directory.connect() as conn:
        stored = conn.execute(select(Credential.ciphertext)).scalars().all()
    passwords = {decrypt_password(token, [KEY]) for token in stored}
    state = json.dumps(fake.state.users)
    assert passwords and all(p not in state for p in passwords), "the fake never keeps passwords"
    assert all(p not in caplog.text for p in passwords), "no password in the logs"
    assert f"@{DOMAIN}" not in caplog.text, "no email address in the logs"
    assert all(f"@{DOMAIN}" not in json.dumps(v) for v in summary.values()), "no email in the summary"
    again = run(directory, tmp_path, "r2")
    assert again["writes"] == 0 and again["accounts"]["users_updated"] == 0
    assert again["accounts"]["users_created"] == 0 and again["accounts"]["users_protected"] == 1


def test_a_leaver_is_suspended_not_deleted_and_an_admin_leaver_is_left_alone(
    directory: Engine, fake: FakeClassroom, tmp_path: Path, school: Extract
) -> None:
    pupils = school.tables["pupils"]
    on_roll = pupils[pupils["enrolment_status"] == "on_roll"]["mis_id"]
    leaver, admin_leaver = on_roll.iloc[0], on_roll.iloc[1]
    with directory.connect() as conn:
        username = {
            mis_id: conn.execute(select(User.username).where(User.mis_id == mis_id)).scalar_one()
            for mis_id in (leaver, admin_leaver)
        }
    admin_id = fake.add_user(f"{username[admin_leaver]}@{DOMAIN}", "Pupil", "Admin", is_admin=True)
    run(directory, tmp_path, "r1")
    admin_before = json.dumps(fake.state.users[admin_id], sort_keys=True)
    leaving = pupils["mis_id"].isin([leaver, admin_leaver])
    changed = pupils.assign(
        enrolment_status=pupils["enrolment_status"].mask(leaving, "leaver"),
        leaving_date=pupils["leaving_date"].mask(leaving, pd.Timestamp("2026-10-01")),
    )
    apply(directory, Extract({**school.tables, "pupils": changed}, school.snapshot_at + pd.Timedelta(hours=1),
                             school.source), "mis-2")  # fmt: skip
    count = len(fake.state.users)
    summary = run(directory, tmp_path, "r2")
    assert summary["accounts"]["users_updated"] == 1 and summary["accounts"]["users_protected"] == 1
    user = fake.state.user_by_email(f"{username[leaver]}@{DOMAIN}")
    assert user is not None and user["suspended"] is True
    assert json.dumps(fake.state.users[admin_id], sort_keys=True) == admin_before, "admins untouched"
    assert len(fake.state.users) == count and not fake.state.deleted_users, "never deleted"
    again = run(directory, tmp_path, "r3")
    assert again["writes"] == 0
