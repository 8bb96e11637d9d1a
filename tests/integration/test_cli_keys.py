"""Keys (issue 13 item 12) and how the CLI ends (item 11): a wrong key stops the run before apply,
``misync rotate-keys`` re-encrypts under the first key, and no command prints a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from mis_sync import cli_errors
from mis_sync.cli import main
from mis_sync.directory.credentials import Credential
from mis_sync.directory.db import make_engine
from mis_sync.directory.schema import AuditEntry
from mis_sync.passwords import decrypt_password
from tests.helpers import REPO, TINY

CONFIG = str(REPO / "include" / "establishments" / "demo-academy.yaml")


def _use_keys(monkeypatch: pytest.MonkeyPatch, *keys: bytes) -> None:
    password = ",".join(key.decode() for key in keys)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY", json.dumps({"conn_type": "generic", "password": password})
    )


def _run(url: str, work: Path, source: Path = TINY) -> int:
    return main(["run", CONFIG, "--input", str(source), "--directory-url", url, "--work-dir", str(work)])


def _tokens(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        tokens = list(
            connection.execute(select(Credential.ciphertext).order_by(Credential.user_id)).scalars()
        )
    engine.dispose()
    return tokens


def test_a_wrong_key_stops_the_run_before_apply_and_rotation_moves_to_the_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    old, new, wrong = Fernet.generate_key(), Fernet.generate_key(), Fernet.generate_key()
    _use_keys(monkeypatch, old)
    assert _run(url, tmp_path / "w1") == 0
    stored = _tokens(url)
    assert len(stored) == 8

    # a wrong key: the run stops before apply, nothing is encrypted under it, no key in the message
    _use_keys(monkeypatch, wrong)
    capsys.readouterr()
    assert _run(url, tmp_path / "w2") == cli_errors.USAGE
    err = capsys.readouterr().err
    assert "cannot decrypt 8 of 8 stored initial password(s)" in err and "misync: hint:" in err
    assert "Traceback" not in err
    assert not any(key.decode() in err for key in (old, new, wrong))
    assert _tokens(url) == stored

    # rotation: the new key first, the old one after it; one audit row with the count
    _use_keys(monkeypatch, new, old)
    capsys.readouterr()
    assert main(["rotate-keys", CONFIG, "--directory-url", url, "--actor", "it-admin"]) == 0
    assert "re-encrypted 8 initial password(s)" in capsys.readouterr().out
    rotated = _tokens(url)
    assert all(decrypt_password(token, [new]) for token in rotated)
    engine = make_engine(url)
    with engine.connect() as connection:
        audit = connection.execute(
            select(AuditEntry.new_value, AuditEntry.reason).where(AuditEntry.action == "rotate")
        ).all()
    engine.dispose()
    assert len(audit) == 1 and audit[0][0] == "8" and "it-admin" in audit[0][1]

    # the old key can go: runs and exports work with the new key alone
    _use_keys(monkeypatch, new)
    assert _run(url, tmp_path / "w3") == 0
    out = tmp_path / "passwords.csv"
    assert main(["passwords", CONFIG, "--out", str(out), "--directory-url", url]) == 0

    # rotating with a key that opens nothing changes nothing
    _use_keys(monkeypatch, wrong)
    capsys.readouterr()
    assert main(["rotate-keys", CONFIG, "--directory-url", url]) == cli_errors.USAGE
    assert "nothing was rotated" in capsys.readouterr().err
    assert _tokens(url) == rotated


def test_check_data_on_a_missing_folder_is_one_line_and_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-data", "--input", str(tmp_path / "nowhere")]) == cli_errors.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("misync: error: ") and err[1].startswith("misync: hint: ")


def test_an_unreachable_directory_is_exit_3_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:1/nothing"
    assert main(["report", CONFIG, "--directory-url", url]) == cli_errors.SOURCE_UNAVAILABLE
    err = capsys.readouterr().err
    assert "directory database could not be reached" in err and "Traceback" not in err


def test_an_unexpected_error_is_exit_4_and_never_prints_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("Zoë Ødegaard")  # stands for any value deep in a library

    monkeypatch.setattr("mis_sync.quality.check_extract", broken)
    drop = tmp_path / "drop"
    shutil.copytree(TINY, drop)
    assert main(["check-data", "--input", str(drop)]) == cli_errors.UNEXPECTED
    err = capsys.readouterr().err
    assert "unexpected KeyError" in err and "Zoë" not in err and "Traceback" not in err


def test_every_exit_code_is_in_the_help_and_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for code in cli_errors.EXIT_CODES:
        assert f"\n  {code} " in text
        assert f"| {code} |" in readme


def test_rotate_keys_all_rotates_every_school_in_one_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from mis_sync.directory.credentials import store_initial_passwords
    from mis_sync.directory.db import migrate
    from mis_sync.directory.schema import User

    folder = tmp_path / "establishments"
    folder.mkdir()
    template = (REPO / "include" / "establishments" / "demo-academy.yaml").read_text(encoding="utf-8")
    schools = ("north-academy", "south-academy")
    for school in schools:
        (folder / f"{school}.yaml").write_text(template.replace("demo-academy", school), encoding="utf-8")
    monkeypatch.setenv("MISYNC_ESTABLISHMENTS_DIR", str(folder))
    url = f"sqlite:///{tmp_path / 'd.db'}"
    old, new = Fernet.generate_key(), Fernet.generate_key()
    now = datetime(2026, 9, 1, tzinfo=UTC)
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as connection:
        for n, school in enumerate(schools):
            rows = [
                {"establishment_id": school, "person_kind": "pupil", "mis_id": f"P{i}", "role": "pupil",
                 "username": f"u{n}{i}", "display_name": "x", "status": "active", "created_at": now,
                 "updated_at": now}
                for i in range(n + 2)
            ]  # fmt: skip
            connection.execute(insert(User), rows)
        ids = list(connection.execute(select(User.id).order_by(User.id)).scalars())
        store_initial_passwords(connection, ids, [f"pw{i}" for i in ids], [old], "run-1", now)
    engine.dispose()

    _use_keys(monkeypatch, new, old)
    assert main(["rotate-keys", "--all", "--directory-url", url, "--actor", "it-admin"]) == 0
    out = capsys.readouterr().out
    assert "north-academy: re-encrypted 2" in out and "south-academy: re-encrypted 3" in out
    assert all(decrypt_password(token, [new]).startswith("pw") for token in _tokens(url))
