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
