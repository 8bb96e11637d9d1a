"""Subject access and erasure round trips on a generated school (SQLite and PostgreSQL), through the
real stages so the run folders hold real Parquet files; logs and output carry no personal data."""

from __future__ import annotations

import datetime as dt
import json
import logging
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from mis_sync import pipeline
from mis_sync.cli import main
from mis_sync.connections import ConnectionInfo
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import AuditEntry, Membership, TargetUser, User
from mis_sync.generator import generate_school, write_file_drop
from mis_sync.model import Extract
from tests.helpers import REPO, demo_config

CONFIG = str(REPO / "include" / "establishments" / "demo-academy.yaml")
AS_OF = dt.date(2026, 11, 2)


def _run(tmp: Path, url: str, drop: Path, run_id: str, keys: list[bytes]) -> None:
    ctx = pipeline.RunContext(
        establishment=demo_config(),
        run_id=run_id,
        folder=tmp / "runs" / "demo-academy" / run_id,
        source=ConnectionInfo(conn_id="test", extra={"path": str(drop)}),
        directory_url=url,
        credential_keys=keys,
    )
    pipeline.extract_stage(ctx)
    pipeline.validate_stage(ctx)
    pipeline.plan_stage(ctx, approve_suspensions=True)
    pipeline.apply_stage(ctx)
    pipeline.report_stage(ctx, dry_run=False)


def _without_pupil(extract: Extract, mis_id: str) -> Extract:
    tables = dict(extract.tables)
    tables["pupils"] = tables["pupils"][tables["pupils"]["mis_id"] != mis_id].reset_index(drop=True)
    tables["memberships"] = tables["memberships"][tables["memberships"]["person_id"] != mis_id]
    tables["relationships"] = tables["relationships"][tables["relationships"]["pupil_id"] != mis_id]
    return Extract(tables, extract.snapshot_at + pd.Timedelta(days=1), extract.source)


@pytest.fixture
def school(tmp_path: Path, directory_url: str):  # type: ignore[no-untyped-def]
    """Two nights of a small primary: the chosen pupil on roll, then gone from the MIS (suspended)."""
    extract = generate_school("small-primary", 7, AS_OF)
    pupils = extract.tables["pupils"]
    pupil = pupils[pupils["enrolment_status"] == "on_roll"].iloc[3]
    write_file_drop(extract, tmp_path / "night1")
    write_file_drop(_without_pupil(extract, str(pupil["mis_id"])), tmp_path / "night2")
    keys = [Fernet.generate_key()]
    _run(tmp_path, directory_url, tmp_path / "night1", "night1", keys)
    return tmp_path, directory_url, pupil, keys


def _personal_values(pupil: pd.Series) -> list[str]:
    values = [pupil["legal_first_name"], pupil["legal_last_name"], pupil["upn"], pupil["email"]]
    return [str(v) for v in values if isinstance(v, str) and len(v) > 3]


def _cli(*args: str) -> list[str]:
    return [args[0], CONFIG, *args[1:]]


def test_export_then_erase_round_trip(school, capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    tmp, url, pupil, keys = school
    mis_id = str(pupil["mis_id"])
    engine = make_engine(url)
    migrate(engine)
    caplog.set_level(logging.DEBUG)
    common = ["--directory-url", url, "--actor", "dpo", "--mis-id", mis_id, "--person-kind", "pupil"]

    refused = main(_cli("erase-person", *common, "--run-storage", str(tmp / "runs")))
    assert refused == 2 and "on roll" in capsys.readouterr().err

    _run(tmp, url, tmp / "night2", "night2", keys)
    with engine.begin() as c:
        username = c.execute(select(User.username).where(User.mis_id == mis_id)).scalar_one()
        assert c.execute(select(User.status).where(User.mis_id == mis_id)).scalar_one() == "suspended"
        c.execute(
            insert(TargetUser).values(
                establishment_id="demo-academy",
                target="microsoft365",
                user_key=f"{username}@demo-academy.example",
                remote_id="0f3c-remote-id",
                resolved_at=dt.datetime.now(dt.UTC),
            )
        )

    out = tmp / "sar"
    assert main(_cli("export-person", *common, "--out", str(out))) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    document = json.loads((out / "person.json").read_text())["sections"]
    [record] = document["directory_record"]
    assert record["username"] == username and record["first_name"]
    assert record["status"] == "suspended"
    assert {e["action"] for e in document["history"]} >= {"create", "suspend"}
    assert document["target_accounts"][0]["remote_id"] == "0f3c-remote-id"
    assert len(document["stored_credentials"]) == 1
    assert not any("ciphertext" in row or "password" in row for row in document["stored_credentials"])
    assert (out / "history.csv").exists() and (out / "directory_record.csv").exists()
    assert any(e["entity"] == "membership" for e in document["history"])

    record_dir = tmp / "erasure"
    assert (
        main(_cli("erase-person", *common, "--run-storage", str(tmp / "runs"), "--record", str(record_dir)))
        == 0
    )
    erasure = json.loads((record_dir / "erasure-record.json").read_text())
    assert erasure["pending"] == [
        {"action": "delete or anonymise the account", "target": "microsoft365", "remote_id": "0f3c-remote-id"}
    ]
    assert erasure["removed"]["run_storage"]["rows_removed"] > 0
    assert erasure["removed"]["directory"]["stored_credentials"] == 1

    with engine.connect() as c:
        row = c.execute(
            select(User.id, User.username, User.status, User.first_name, User.last_name, User.email).where(
                User.mis_id == mis_id
            )
        ).one()
        assert row.username == username and row.status == "deleted"
        assert row.first_name is None and row.last_name is None and row.email is None
        assert not c.execute(select(Membership).where(Membership.user_id == row.id)).all()
        values = c.execute(select(AuditEntry.old_value, AuditEntry.new_value, AuditEntry.field)).all()
        logged = c.execute(select(AuditEntry.new_value).where(AuditEntry.entity == "erasure")).scalar_one()
    texts = " ".join(str(v) for r in values for v in r[:2] if v is not None)
    assert all(v not in texts for v in _personal_values(pupil)), "audit keeps ids, not values"
    assert json.loads(logged)["mis_id"] == mis_id

    night1 = tmp / "runs" / "demo-academy" / "night1"
    for relative in ("extract/pupils.parquet", "validated/pupils.parquet", "plan/users.parquet"):
        frame = pq.read_table(night1 / relative).to_pandas()
        assert mis_id not in set(frame["mis_id"].astype(str)), relative
        assert len(frame) > 10, "everyone else stays"
    memberships = pq.read_table(night1 / "extract" / "memberships.parquet").to_pandas()
    assert mis_id not in set(memberships["person_id"]) and len(memberships) > 10

    after = tmp / "sar-after"
    assert main(_cli("export-person", *common, "--out", str(after))) == 0
    again = json.loads((after / "person.json").read_text())["sections"]
    assert again["directory_record"][0]["first_name"] is None and again["memberships"] == []

    _run(tmp, url, tmp / "night2", "night3", keys)  # the next night does not bring them back
    with engine.connect() as c:
        assert c.execute(select(User.status, User.first_name).where(User.mis_id == mis_id)).one() == (
            "deleted",
            None,
        )

    second = tmp / "erasure-again"
    assert (
        main(_cli("erase-person", *common, "--run-storage", str(tmp / "runs"), "--record", str(second))) == 0
    )
    rerun = json.loads((second / "erasure-record.json").read_text())["removed"]
    assert rerun["run_storage"]["rows_removed"] == 0 and rerun["directory"]["stored_credentials"] == 0

    printed = capsys.readouterr()
    for value in _personal_values(pupil):
        assert value not in caplog.text and value not in printed.out and value not in printed.err


def test_erasure_refused_while_on_roll_in_the_latest_extract(school, capsys) -> None:  # type: ignore[no-untyped-def]
    """A suspended account whose pupil the latest MIS extract has on roll again is not erased."""
    tmp, url, pupil, _keys = school
    mis_id = str(pupil["mis_id"])
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(User.__table__.update().where(User.mis_id == mis_id).values(status="suspended"))
    code = main(
        _cli(
            "erase-person",
            "--directory-url",
            url,
            "--mis-id",
            mis_id,
            "--person-kind",
            "pupil",
            "--run-storage",
            str(tmp / "runs"),
        )
    )
    assert code == 2
    assert "on roll in the latest MIS extract" in capsys.readouterr().err
    with engine.connect() as c:
        assert c.execute(select(User.first_name).where(User.mis_id == mis_id)).scalar_one() is not None


def test_unknown_person_is_named_by_id_only(school, capsys) -> None:  # type: ignore[no-untyped-def]
    _tmp, url, _pupil, _keys = school
    code = main(_cli("export-person", "--directory-url", url, "--username", "nobody.here", "--out", "/tmp/x"))
    assert code == 2
    err = capsys.readouterr().err
    assert "no directory user" in err and "nobody.here" not in err


def test_export_matches_ids_literally(directory_url: str) -> None:
    """LIKE wildcards in MIS ids or usernames (``_``) never pull in someone else's history or accounts."""
    from mis_sync.privacy.subject_access import collect, find_person

    engine = make_engine(directory_url)
    migrate(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as c:
        for mis_id, username in (("P_1", "a_b"), ("PX1", "axb")):
            c.execute(
                insert(User).values(
                    establishment_id="e", person_kind="pupil", mis_id=mis_id, role="pupil", username=username,
                    status="active", created_at=now, updated_at=now,
                )
            )  # fmt: skip
            c.execute(
                insert(AuditEntry).values(
                    establishment_id="e", run_id="r", at=now, entity="membership",
                    entity_key=f"membership:G/2026 user:pupil:{mis_id}", action="add", field="role",
                    old_value=None, new_value="member", reason="in MIS",
                )
            )  # fmt: skip
            c.execute(
                insert(TargetUser).values(
                    establishment_id="e", target="microsoft365", user_key=f"{username}@x.example",
                    remote_id=f"id-{mis_id}", resolved_at=now,
                )
            )  # fmt: skip
    sections = collect(engine, find_person(engine, "e", mis_id="P_1"))
    assert [h["entity_key"] for h in sections["history"]] == ["membership:G/2026 user:pupil:P_1"]
    assert [t["remote_id"] for t in sections["target_accounts"]] == ["id-P_1"]
