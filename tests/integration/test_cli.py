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
