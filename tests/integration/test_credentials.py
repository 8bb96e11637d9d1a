"""Initial passwords at rest and the audited export, on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import csv
import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import Engine, delete, insert, inspect, select, text, update

from mis_sync.directory.credentials import (
    EXPORT_COLUMNS,
    Credential,
    export_passwords,
    store_initial_passwords,
)
from mis_sync.directory.db import alembic_config, make_engine, migrate
from mis_sync.directory.keys import rotate_credential_keys, verify_credential_keys
from mis_sync.directory.schema import AuditEntry, Base, User
from mis_sync.passwords import (
    CredentialKeyError,
    PasswordPolicies,
    decrypt_password,
    generate_password,
)

NOW = datetime(2026, 9, 1, 7, 30, tzinfo=UTC)
SCHOOL = "test-school"
KEY = Fernet.generate_key()
PEOPLE = [
    # mis_id, role, username, display name, year group, status, establishment
    ("P1", "pupil", "asmith", "Alex Smith", "7", "active", SCHOOL),
    ("P2", "pupil", "zobrien", "Zoë O'Brien", "10", "active", SCHOOL),
    ("P3", "pupil", "bjones", "=HYPERLINK(1)", "R", "active", SCHOOL),
    ("P4", "pupil", "cleaver", "Cara Leaver", "11", "suspended", SCHOOL),
    ("S1", "teaching_staff", "dlee", "Mr D. Lee", None, "active", SCHOOL),
    ("X1", "pupil", "eother", "Eve Other", "7", "active", "other-school"),
]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where exports go (tmp_path itself also holds the SQLite database)."""
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


@pytest.fixture
def engine(directory_url: str) -> Iterator[Engine]:
    engine = make_engine(directory_url)
    migrate(engine)
    yield engine
    engine.dispose()


def add_users(engine: Engine) -> dict[str, int]:
    """The PEOPLE above as directory users; returns mis_id → user id."""
    rows = [
        {
            "establishment_id": school,
            "person_kind": "staff" if role != "pupil" else "pupil",
            "mis_id": mis_id,
            "role": role,
            "username": username,
            "display_name": display,
            "year_group": year,
            "status": status,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for mis_id, role, username, display, year, status, school in PEOPLE
    ]
    with engine.begin() as connection:
        connection.execute(insert(User), rows)
        return dict(connection.execute(select(User.mis_id, User.id)).tuples().all())


def store(engine: Engine, ids: dict[str, int], mis_ids: list[str], run_id: str, keys=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    policies = PasswordPolicies()
    passwords = {
        m: generate_password(policies.for_role(next(p[1] for p in PEOPLE if p[0] == m))) for m in mis_ids
    }
    with engine.begin() as connection:
        store_initial_passwords(
            connection, [ids[m] for m in mis_ids], list(passwords.values()), keys or [KEY], run_id, NOW
        )
    return passwords


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def credentials(engine: Engine) -> dict[int, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Credential.user_id,
                Credential.ciphertext,
                Credential.created_run,
                Credential.exported_count,
                Credential.last_exported_at,
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def export_audit(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            select(
                AuditEntry.establishment_id,
                AuditEntry.run_id,
                AuditEntry.entity,
                AuditEntry.entity_key,
                AuditEntry.action,
                AuditEntry.new_value,
                AuditEntry.reason,
            ).where(AuditEntry.entity == "credentials")
        ).all()


# --------------------------------------------------------------------------------------------------
# Schema


def test_migration_creates_the_table_and_matches_the_model(engine: Engine) -> None:
    inspector = inspect(engine)
    assert "directory_credentials" in inspector.get_table_names()
    assert [c["name"] for c in inspector.get_columns("directory_credentials")] == [
        "user_id",
        "ciphertext",
        "created_at",
        "created_run",
        "exported_count",
        "last_exported_at",
    ]
    assert inspector.get_pk_constraint("directory_credentials")["constrained_columns"] == ["user_id"]
    (fk,) = inspector.get_foreign_keys("directory_credentials")
    assert (fk["referred_table"], fk["referred_columns"]) == ("directory_users", ["id"])
    with engine.connect() as connection:
        version = connection.execute(text("select version_num from directory_alembic_version")).scalar()
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    scripts = ScriptDirectory.from_config(alembic_config())
    assert version == scripts.get_current_head()  # later revisions build on 0003
    assert scripts.get_revision("0003").down_revision == "0002"
    assert "0003" in {rev.revision for rev in scripts.iterate_revisions(version, "base")}
    mine = [d for d in diffs if "directory_credentials" in repr(d)]
    assert mine == [], mine


def test_migration_downgrades_and_upgrades_again(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert "directory_credentials" not in inspect(engine).get_table_names()
    migrate(engine)
    assert "directory_credentials" in inspect(engine).get_table_names()


# --------------------------------------------------------------------------------------------------
# Storing


def test_ciphertext_is_not_the_password_and_only_the_key_opens_it(engine: Engine) -> None:
    ids = add_users(engine)
    passwords = store(engine, ids, ["P1", "S1"], "run-1")
    stored = credentials(engine)
    assert set(stored) == {ids["P1"], ids["S1"]}
    for mis_id, password in passwords.items():
        ciphertext, created_run, exported, last_exported = stored[ids[mis_id]]
        assert password not in ciphertext
        assert created_run == "run-1" and exported == 0 and last_exported is None
        assert decrypt_password(ciphertext, [KEY]) == password
        with pytest.raises(CredentialKeyError):
            decrypt_password(ciphertext, [Fernet.generate_key()])
    with engine.connect() as connection:
        dump = "\n".join(str(row) for row in connection.execute(select(Credential)).all())
    assert not any(password in dump for password in passwords.values())


def test_store_is_idempotent_existing_passwords_are_kept(engine: Engine) -> None:
    ids = add_users(engine)
    first = store(engine, ids, ["P1"], "run-1")
    before = credentials(engine)
    with engine.begin() as connection:
        added = store_initial_passwords(
            connection,
            [ids["P1"], ids["P2"], ids["P2"]],
            ["Other-Pass-22", "Robin-Lake-23", "x"],
            [KEY],
            "run-2",
            NOW,
        )
    assert added == 1
    after = credentials(engine)
    assert after[ids["P1"]] == before[ids["P1"]]
    assert decrypt_password(after[ids["P1"]][0], [KEY]) == first["P1"]
    assert decrypt_password(after[ids["P2"]][0], [KEY]) == "Robin-Lake-23"  # first of the duplicates
    assert after[ids["P2"]][1] == "run-2"
    with engine.begin() as connection:
        assert store_initial_passwords(connection, [], [], [KEY], "run-3", NOW) == 0
        with pytest.raises(ValueError, match="2 user ids but 1 passwords"):
            store_initial_passwords(connection, [1, 2], ["a"], [KEY], "run-3", NOW)


def test_credentials_go_with_their_user(engine: Engine) -> None:
    ids = add_users(engine)
    store(engine, ids, ["P1", "P2"], "run-1")
    with engine.begin() as connection:
        connection.execute(delete(User).where(User.id == ids["P1"]))
    assert set(credentials(engine)) == {ids["P2"]}


def test_key_rotation(engine: Engine) -> None:
    ids = add_users(engine)
    old, new = KEY, Fernet.generate_key()
    passwords = store(engine, ids, ["P1", "P2", "S1"], "run-1", keys=[old])
    other = store(engine, ids, ["X1"], "run-1", keys=[old])
    # The new key goes first in the connection, the old one stays until everything is re-encrypted.
    counts = rotate_credential_keys(engine, {SCHOOL: [new, old]}, actor="it-admin", now=NOW)
    assert counts == {SCHOOL: 3}
    for mis_id, password in passwords.items():
        ciphertext = credentials(engine)[ids[mis_id]][0]
        assert decrypt_password(ciphertext, [new]) == password
        with pytest.raises(CredentialKeyError):
            decrypt_password(ciphertext, [old])
    assert decrypt_password(credentials(engine)[ids["X1"]][0], [old]) == other["X1"]  # not its school
    rotations = [row for row in export_audit(engine) if row[4] == "rotate"]
    assert rotations == [(SCHOOL, "manual", "credentials", "all", "rotate", "3", rotations[0][6])]
    assert "it-admin" in rotations[0][6]
    with pytest.raises(CredentialKeyError):
        rotate_credential_keys(engine, {SCHOOL: [Fernet.generate_key()]}, actor="x")


def test_rotation_is_one_transaction_across_establishments(engine: Engine) -> None:
    """Issue 13 item 12: a school whose keys cannot open its passwords rolls back every school's."""
    ids = add_users(engine)
    store(engine, ids, ["P1", "P2"], "run-1")
    store(engine, ids, ["X1"], "run-1")
    before = credentials(engine)
    with pytest.raises(CredentialKeyError, match=r"other-school: 1 of 1 .* nothing was rotated") as info:
        rotate_credential_keys(
            engine, {SCHOOL: [Fernet.generate_key(), KEY], "other-school": [Fernet.generate_key()]}, actor="x"
        )
    assert KEY.decode() not in str(info.value)
    assert credentials(engine) == before
    assert not [row for row in export_audit(engine) if row[4] == "rotate"]


def test_verify_keys_counts_what_a_wrong_key_cannot_open(engine: Engine) -> None:
    ids = add_users(engine)
    assert verify_credential_keys(engine, SCHOOL, [KEY], "misync_credentials_key") == 0  # first night
    store(engine, ids, ["P1", "P2", "S1"], "run-1")
    assert verify_credential_keys(engine, SCHOOL, [Fernet.generate_key(), KEY], "k") == 3
    wrong = Fernet.generate_key()
    with pytest.raises(CredentialKeyError, match="cannot decrypt 3 of 3 stored") as info:
        verify_credential_keys(engine, SCHOOL, [wrong], "misync_credentials_key")
    message = str(info.value)
    assert (
        "misync_credentials_key" in message and wrong.decode() not in message and KEY.decode() not in message
    )
    assert verify_credential_keys(engine, "other-school", [wrong], "k") == 0  # only its own school


# --------------------------------------------------------------------------------------------------
# Exporting


def test_export_writes_csv_audit_row_and_counts(
    engine: Engine, out_dir: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = add_users(engine)
    first = store(engine, ids, ["P1", "P2", "P4", "S1"], "run-1")
    later = store(engine, ids, ["P3"], "run-2")
    other = store(engine, ids, ["X1"], "run-1")
    passwords = {**first, **later, **other}
    out = out_dir / "passwords.csv"

    assert export_passwords(engine, SCHOOL, [KEY], out, actor="it-admin", now=NOW) == 4
    rows = read_csv(out)
    assert list(rows[0]) == EXPORT_COLUMNS
    # Active users of this school only (P4 is suspended, X1 another school), by role, year, username.
    assert [(r["username"], r["role"], r["year_group"]) for r in rows] == [
        ("bjones", "pupil", "R"),
        ("asmith", "pupil", "7"),
        ("zobrien", "pupil", "10"),
        ("dlee", "teaching_staff", ""),
    ]
    by_name = {r["username"]: r for r in rows}
    assert by_name["asmith"]["initial_password"] == passwords["P1"]
    assert by_name["dlee"]["initial_password"] == passwords["S1"]
    assert by_name["zobrien"]["display_name"] == "Zoë O'Brien"
    assert by_name["bjones"]["display_name"] == "'=HYPERLINK(1)"  # no spreadsheet formula
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert [p.name for p in out_dir.iterdir()] == ["passwords.csv"]  # no temporary file left

    audit = export_audit(engine)
    assert audit == [
        (
            SCHOOL,
            "manual",
            "credentials",
            "all",
            "export",
            "4",
            "4 initial password(s) exported by it-admin (all active users)",
        )
    ]
    stored = credentials(engine)
    assert [stored[ids[m]][2] for m in ("P1", "P2", "P3", "S1")] == [1, 1, 1, 1]
    assert stored[ids["P4"]][2] == 0 and stored[ids["X1"]][2] == 0
    assert stored[ids["P1"]][3] is not None

    # Only the passwords a run created; counts go up again.
    only = out_dir / "run-2.csv"
    assert export_passwords(engine, SCHOOL, [KEY], only, actor="it-admin", run_id="run-2", now=NOW) == 1
    assert [r["username"] for r in read_csv(only)] == ["bjones"]
    assert export_audit(engine)[-1][1:4] == ("run-2", "credentials", "run:run-2")
    assert "created in run run-2" in export_audit(engine)[-1][-1]
    assert credentials(engine)[ids["P3"]][2] == 2

    # Nothing secret in logs, stdout/stderr or the audit log.
    captured = capfd.readouterr()
    seen = caplog.text + captured.out + captured.err + repr(export_audit(engine))
    assert "exported 4 initial password(s)" in caplog.text
    assert not any(password in seen for password in passwords.values())
    assert KEY.decode() not in seen


def test_export_with_the_wrong_key_writes_nothing(engine: Engine, out_dir: Path) -> None:
    ids = add_users(engine)
    store(engine, ids, ["P1"], "run-1")
    out = out_dir / "passwords.csv"
    with pytest.raises(CredentialKeyError) as info:
        export_passwords(engine, SCHOOL, [Fernet.generate_key()], out, actor="it-admin")
    assert not out.exists() and list(out_dir.iterdir()) == []
    assert export_audit(engine) == []
    assert credentials(engine)[ids["P1"]][2] == 0
    assert KEY.decode() not in str(info.value)


def test_export_with_nothing_to_export_is_still_audited(engine: Engine, out_dir: Path) -> None:
    add_users(engine)
    out = out_dir / "passwords.csv"
    assert export_passwords(engine, SCHOOL, [KEY], out, actor="it-admin", run_id="run-9") == 0
    assert read_csv(out) == []
    assert out.read_text(encoding="utf-8-sig").strip() == ",".join(EXPORT_COLUMNS)
    assert export_audit(engine)[0][5] == "0"


def test_export_refuses_a_missing_folder_and_an_empty_actor(engine: Engine, out_dir: Path) -> None:
    from mis_sync.errors import SetupError

    with pytest.raises(SetupError, match="does not exist"):
        export_passwords(engine, SCHOOL, [KEY], out_dir / "nope" / "p.csv", actor="it-admin")
    with pytest.raises(ValueError, match="actor"):
        export_passwords(engine, SCHOOL, [KEY], out_dir / "p.csv", actor=" \n")


def test_export_is_rolled_back_when_the_audit_fails(engine: Engine, out_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No audit row, no file and no counter change if the transaction fails."""
    from mis_sync.directory import credentials as module

    ids = add_users(engine)
    store(engine, ids, ["P1"], "run-1")
    original = module.insert

    def failing_insert(table):  # type: ignore[no-untyped-def]
        if table is AuditEntry:
            raise RuntimeError("audit write failed")
        return original(table)

    monkeypatch.setattr(module, "insert", failing_insert)
    out = out_dir / "passwords.csv"
    with pytest.raises(RuntimeError, match="audit write failed"):
        export_passwords(engine, SCHOOL, [KEY], out, actor="it-admin")
    assert list(out_dir.iterdir()) == []
    assert credentials(engine)[ids["P1"]][2] == 0
    with engine.begin() as connection:  # the table is still writable (nothing left locked)
        connection.execute(update(Credential).values(exported_count=0))
