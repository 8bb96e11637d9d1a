"""The ``misync`` commands a data manager or IT admin runs outside Airflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mis_sync.cli import main
from tests.helpers import REPO, TINY


def test_check_data_on_a_clean_export_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-data", "--input", str(TINY)]) == 0
    out = capsys.readouterr().out
    assert "errors: 0" in out


def test_check_data_reports_errors_as_json_and_exits_1(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    drop = tmp_path / "drop"
    shutil.copytree(TINY, drop)
    pupils = drop / "pupils.csv"
    pupils.write_text(pupils.read_text().replace("B801200005001", "A801200005001"))  # wrong check letter
    assert main(["check-data", "--input", str(drop), "--json"]) == 1
    findings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"entity", "mis_id", "field", "rule", "severity"} <= set(findings[0])
    wrong = [f for f in findings if f["rule"] == "upn_check_letter"]
    assert wrong == [{**wrong[0], "entity": "pupils", "mis_id": "P1", "field": "upn", "severity": "error"}]
    assert not any("A801200005001" in json.dumps(f) for f in findings), "values are never printed"


def test_check_data_stops_on_an_empty_export(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    drop = tmp_path / "drop"
    shutil.copytree(TINY, drop)
    (drop / "pupils.csv").write_text((drop / "pupils.csv").read_text().splitlines()[0] + "\n")
    assert main(["check-data", "--input", str(drop)]) == 1
    assert "empty extract" in capsys.readouterr().err


def test_plan_prints_every_change_with_its_reason(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = str(REPO / "include" / "establishments" / "demo-academy.yaml")
    assert (
        main(
            [
                "plan",
                config,
                "--input",
                str(TINY),
                "--directory-url",
                url,
                "--details",
                "--work-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "create   pupil" in out and "asmith1" in out and "new in MIS" in out


def test_check_config_flags_a_broken_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nname: B\nlaestab: '1'\nmis: {type: file_drop, connection_id: x}\n")
    assert main(["check-config", str(broken), str(REPO / "include/establishments/demo-academy.yaml")]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "laestab" in out and "ok    " in out


def test_check_config_names_a_file_that_is_not_utf8(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = (REPO / "include/establishments/demo-academy.yaml").read_text()
    latin1 = text.replace("demo-academy", "ecole").replace("Demo", "\u00c9cole")
    (tmp_path / "ecole.yaml").write_bytes(latin1.encode("cp1252"))
    shutil.copy(REPO / "include/establishments/demo-academy.yaml", tmp_path)
    monkeypatch.setenv("MISYNC_ESTABLISHMENTS_DIR", str(tmp_path))
    assert main(["check-config"]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {tmp_path / 'ecole.yaml'}: not UTF-8" in out and "ok    " in out


def test_passwords_export_writes_every_new_account_and_is_audited(
    tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import csv

    from cryptography.fernet import Fernet
    from sqlalchemy import select

    from mis_sync.directory.db import make_engine
    from mis_sync.directory.schema import AuditEntry

    key = Fernet.generate_key().decode()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY", json.dumps({"conn_type": "generic", "password": key})
    )
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = str(REPO / "include" / "establishments" / "demo-academy.yaml")
    assert (
        main(["run", config, "--input", str(TINY), "--directory-url", url, "--work-dir", str(tmp_path)]) == 0
    )
    out_file = tmp_path / "passwords.csv"
    capsys.readouterr()
    assert (
        main(["passwords", config, "--out", str(out_file), "--directory-url", url, "--actor", "it-admin"])
        == 0
    )
    assert "exported 8 initial password(s)" in capsys.readouterr().out
    rows = list(csv.DictReader(out_file.open(encoding="utf-8")))
    assert len(rows) == 8
    assert (out_file.stat().st_mode & 0o077) == 0, "owner-only file"
    with make_engine(url).connect() as connection:
        exports = (
            connection.execute(select(AuditEntry.reason).where(AuditEntry.action == "export")).scalars().all()
        )
    assert len(exports) == 1 and "it-admin" in exports[0]

    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY",
        json.dumps({"conn_type": "generic", "password": Fernet.generate_key().decode()}),
    )
    assert main(["passwords", config, "--out", str(tmp_path / "x.csv"), "--directory-url", url]) == 2
    assert not (tmp_path / "x.csv").exists(), "a wrong key writes nothing"


@pytest.fixture
def open_umask():  # type: ignore[no-untyped-def]
    """The loosest umask: whatever is private must be so by the code, not the environment."""
    import os

    previous = os.umask(0)
    yield
    os.umask(previous)


def test_run_folders_and_the_sqlite_directory_are_private_whatever_the_umask(
    tmp_path: Path, monkeypatch, open_umask
) -> None:  # type: ignore[no-untyped-def]
    import stat

    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY", json.dumps({"conn_type": "generic", "password": key})
    )
    work = tmp_path / "runs"
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = str(REPO / "include" / "establishments" / "demo-academy.yaml")
    assert main(["run", config, "--input", str(TINY), "--directory-url", url, "--work-dir", str(work)]) == 0
    made = [p for p in work.rglob("*")]
    assert any(p.name == "findings.csv" for p in made) and any(p.suffix == ".parquet" for p in made)
    loose = {
        str(p.relative_to(work)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in made
        if p.stat().st_mode & 0o077
    }
    assert loose == {}, "run folders 0700, their files 0600"
    for name in ("d.db", "d.db-wal"):
        if (tmp_path / name).exists():
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_cli_temporary_run_folders_are_removed(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = str(REPO / "include" / "establishments" / "demo-academy.yaml")
    assert main(["plan", config, "--input", str(TINY), "--directory-url", url]) == 0
    assert main(["run", config, "--input", str(TINY), "--directory-url", url, "--dry-run"]) == 0
    assert list(temp.iterdir()) == []
    assert "removed now" in capsys.readouterr().out


def test_a_dry_run_does_not_replace_the_latest_real_report(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY", json.dumps({"conn_type": "generic", "password": key})
    )
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = str(REPO / "include" / "establishments" / "demo-academy.yaml")
    common = ["--input", str(TINY), "--directory-url", url, "--work-dir", str(tmp_path)]
    assert main(["report", config, "--directory-url", url]) == 1
    assert main(["run", config, *common, "--run-id", "real-1"]) == 0
    assert main(["run", config, *common, "--run-id", "dry-1", "--dry-run"]) == 0
    capsys.readouterr()

    assert main(["report", config, "--directory-url", url, "--json"]) == 0
    real = json.loads(capsys.readouterr().out)
    assert (real["run_id"], real["outcome"]) == ("real-1", "applied")
    assert real["users_by_role"]["pupil"]["created"] > 0, "the real run's numbers, not the dry run's"

    assert main(["report", config, "--directory-url", url]) == 0
    text = capsys.readouterr().out
    assert "(applied)" in text and "real-1" in text and "--dry-run" in text

    assert main(["report", config, "--directory-url", url, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "(dry_run)" in text and "dry-1" in text and "DRY RUN" in text


def test_a_source_file_far_larger_than_the_last_good_extract_stops_the_run(
    tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY", json.dumps({"conn_type": "generic", "password": key})
    )
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = str(REPO / "include" / "establishments" / "demo-academy.yaml")
    work = tmp_path / "runs"
    common = ["--directory-url", url, "--work-dir", str(work)]
    assert main(["run", config, "--input", str(TINY), *common]) == 0
    baseline = json.loads((work / "demo-academy" / "source-files.json").read_text())
    assert baseline["memberships.csv"] == (TINY / "memberships.csv").stat().st_size

    drop = tmp_path / "drop"
    shutil.copytree(TINY, drop)
    with (drop / "memberships.csv").open("a") as handle:
        handle.write("G1,P1,Pupil\n" * 150_000)  # 1.8 MB: a runaway export
    capsys.readouterr()
    assert main(["run", config, "--input", str(drop), *common]) == 2
    error = capsys.readouterr().err
    assert "memberships.csv: 1.8 MB is" in error and "the last good extract's" in error
    assert "safety.max_source_file_growth" in error


def test_a_school_with_a_yaml_and_a_yml_file_is_refused_naming_both(
    tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    text = (REPO / "include/establishments/demo-academy.yaml").read_text().replace("demo-academy", "twin")
    (tmp_path / "twin.yaml").write_text(text)
    (tmp_path / "twin.yml").write_text(text)
    monkeypatch.setenv("MISYNC_ESTABLISHMENTS_DIR", str(tmp_path))
    assert main(["report", "twin", "--directory-url", f"sqlite:///{tmp_path / 'd.db'}"]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "twin.yaml") in error and str(tmp_path / "twin.yml") in error
    assert main(["check-config"]) == 1
    assert "two files for the same establishment" in capsys.readouterr().out


def test_identity_decisions_are_recorded_and_reported(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from mis_sync.directory.db import make_engine
    from mis_sync.identity.store import load_identity_decisions

    url = f"sqlite:///{tmp_path / 'directory.db'}"
    base = ["--directory-url", url]
    assert main(["identity-report", "demo-academy", *base]) == 0
    assert "no identity pairs wait" in capsys.readouterr().out
    pair = ["--person-kind", "pupil", "--old-mis-id", "P1", "--new-mis-id", "NEW1", "--actor", "it.admin"]
    assert main(["identity", "decide", "demo-academy", "same", *pair, *base]) == 0
    assert main(["identity", "decide", "demo-academy", "clear", *pair, *base]) == 0
    assert main(["identity", "decide", "demo-academy", "same", "--person-kind", "pupil", "--old-mis-id",
                 "P1", "--new-mis-id", "", *base]) == 2  # fmt: skip
    with make_engine(url).connect() as connection:
        decisions = load_identity_decisions(connection, "demo-academy")
    assert list(decisions["decision"]) == ["same", "clear"]
    assert set(decisions["new_mis_id"]) == {"NEW1"} and isinstance(decisions, pd.DataFrame)


def test_check_data_on_a_missing_folder_names_it(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "no-such-export"
    assert main(["check-data", "--input", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"folder not found: {missing}" in err and "Traceback" not in err


def test_output_cut_short_by_its_reader_ends_quietly() -> None:
    """``misync report | head``: the reader closing the pipe early is no error and no traceback."""
    import subprocess
    import sys

    # more output than a pipe holds, through the same guard every misync command runs under
    script = (
        "import sys; from mis_sync.cli_errors import run_guarded;"
        "sys.exit(run_guarded(lambda: [print('x' * 100) for _ in range(20000)] and 0))"
    )
    reader = "import sys; sys.stdin.readline()"  # reads one line, then closes the pipe
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with subprocess.Popen([sys.executable, "-c", script], **pipes) as cli:  # type: ignore[call-overload]
        first = subprocess.run([sys.executable, "-c", reader], stdin=cli.stdout, check=True)
        cli.stdout.close()
        err = cli.stderr.read().decode()
        code = cli.wait(timeout=60)
    assert first.returncode == 0
    assert code == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "error" not in err
