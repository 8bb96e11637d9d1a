"""Lineage: the target maps match the adapters' real request bodies; a run writes lineage.json whose
counts match the extract, and dates of birth and UPNs flow nowhere."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet

from mis_sync import pipeline, storage
from mis_sync.connections import ConnectionInfo
from mis_sync.privacy.lineage import CLASS_FIELDS, DIRECTORY_TO_TARGET, build_lineage
from mis_sync.targets.accounts import graph_body
from mis_sync.targets.classroom import ClassroomAdapter
from tests.helpers import TINY, demo_config

ROW = {
    "user_key": "asmith@school.example",
    "mail_nickname": "asmith",
    "display_name": "Alex Smith",
    "given_name": "Alex",
    "surname": "Smith",
    "enabled": True,
    "mis_id": "P2",
    "org_unit": "/Pupils/Year 7",
}


def _account_attributes(target: str) -> set[str]:
    mapped = DIRECTORY_TO_TARGET[target]
    return {a for field, attrs in mapped.items() if field not in ("group.name", "membership") for a in attrs}


def _flatten(body: dict, prefix: str = "") -> set[str]:  # type: ignore[type-arg]
    keys = set()
    for key, value in body.items():
        if isinstance(value, dict):
            keys |= _flatten(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_graph_map_is_what_the_graph_adapter_sends() -> None:
    sent = _flatten(graph_body("GB")(ROW, "pw"))
    not_from_the_directory = {
        "usageLocation",
        "passwordProfile.password",
        "passwordProfile.forceChangePasswordNextSignIn",
    }
    assert sent - not_from_the_directory == _account_attributes("microsoft365")


def test_classroom_map_is_what_the_directory_api_receives() -> None:
    sent = _flatten(ClassroomAdapter.account_body(ROW, "pw"))
    assert sent - {"password", "changePasswordAtNextLogin"} == _account_attributes("google_classroom")


def test_account_attributes_only_where_accounts_are_provisioned() -> None:
    import pandas as pd

    tables = {"pupils": pd.DataFrame({"mis_id": ["P1"], "legal_first_name": ["x"], "upn": ["y"]})}
    lineage = build_lineage(tables, {"microsoft365": False, "google_classroom": True})
    assert set(lineage["directory_to_targets"]["microsoft365"]) <= set(CLASS_FIELDS)
    assert "first_name" in lineage["directory_to_targets"]["google_classroom"]
    assert lineage["not_sent_anywhere"] == {"pupils": ["upn"]}


def test_a_run_writes_lineage_json_and_the_report_shows_it(tmp_path: Path) -> None:
    ctx = pipeline.RunContext(
        establishment=demo_config(),
        run_id="r1",
        folder=tmp_path / "demo-academy" / "r1",
        source=ConnectionInfo(conn_id="t", extra={"path": str(TINY)}),
        directory_url=f"sqlite:///{tmp_path / 'd.db'}",
        credential_keys=[Fernet.generate_key()],
    )
    pipeline.extract_stage(ctx)
    pipeline.validate_stage(ctx)
    pipeline.plan_stage(ctx)
    pipeline.apply_stage(ctx)
    report = pipeline.report_stage(ctx, dry_run=False)
    lineage = json.loads((ctx.folder / "lineage.json").read_text())
    pupils = storage.read_extract(ctx.folder / "validated").tables["pupils"]
    by_field = {(e["entity"], e["mis_field"]): e for e in lineage["mis_to_directory"]}
    assert by_field[("pupils", "email")]["records_with_value"] == int(pupils["email"].notna().sum())
    assert by_field[("pupils", "email")]["directory_fields"] == ["email"]
    assert {"date_of_birth", "upn", "scn"} <= set(lineage["not_sent_anywhere"]["pupils"])
    flowing = {field for _entity, field in by_field}
    assert "date_of_birth" not in flowing and "upn" not in flowing
    assert set(lineage["directory_to_targets"]) == {"microsoft365", "google_classroom"}
    assert report["lineage"] == lineage["summary"]
    assert "lineage:" in pipeline.render_report(report)
    assert str(pupils["legal_last_name"].dropna().iloc[0]) not in json.dumps(lineage), "counts only"
