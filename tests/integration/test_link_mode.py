"""Link mode end to end through the CLI: import existing users, link, decide, refuse Link → Create."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from mis_sync.cli import main
from mis_sync.directory.db import make_engine
from mis_sync.directory.schema import AuditEntry, User
from mis_sync.generator import generate_school, write_file_drop
from tests.helpers import REPO


@pytest.fixture
def school(tmp_path: Path) -> dict:
    extract = generate_school("secondary", 11, dt.date(2026, 11, 2))
    drop = tmp_path / "drop"
    write_file_drop(extract, drop)
    pupils = extract.tables["pupils"]
    pupils = pupils[pupils["enrolment_status"] == "on_roll"].reset_index(drop=True)
    with_id = pupils.iloc[:200]
    by_upn = pupils.iloc[200:250]
    rows = (
        [
            {
                "username": f"old.{r.mis_id.lower()}",
                "first_name": r.preferred_first_name or r.legal_first_name,
                "last_name": r.preferred_last_name or r.legal_last_name,
                "role": "pupil",
                "email": "",
                "mis_id": r.mis_id,
                "upn": "",
                "date_of_birth": "",
            }
            for r in with_id.itertuples()
        ]
        + [
            {
                "username": f"u{i}.pupil",
                "first_name": r.legal_first_name,
                "last_name": r.legal_last_name,
                "role": "pupil",
                "email": "",
                "mis_id": "",
                "upn": r.upn or "",
                "date_of_birth": r.date_of_birth.date().isoformat(),
            }
            for i, r in enumerate(by_upn.itertuples())
        ]
        + [
            {
                "username": f"visitor{i}",
                "first_name": "Quentin",
                "last_name": f"Nobody{i}x",
                "role": "pupil",
                "email": "",
                "mis_id": "",
                "upn": "",
                "date_of_birth": "",
            }
            for i in range(5)
        ]
    )
    users_csv = tmp_path / "users.csv"
    pd.DataFrame(rows).to_csv(users_csv, index=False)
    text = (REPO / "include" / "establishments" / "demo-academy.yaml").read_text()
    config = tmp_path / "link-school.yaml"
    config.write_text(
        text.replace("id: demo-academy", "id: link-school").replace("mode: create", "mode: link")
    )
    url = f"sqlite:///{tmp_path / 'directory.db'}"
    return {"drop": drop, "users": users_csv, "config": config, "url": url, "tmp": tmp_path}


def _cli(school: dict, *args: str) -> int:
    """``misync COMMAND [SUBCOMMAND] CONFIG ARGS… --directory-url URL``."""
    head = 2 if args[0] == "link" else 1
    return main([*args[:head], str(school["config"]), *args[head:], "--directory-url", school["url"]])


def _run(school: dict) -> int:
    return _cli(school, "run", "--input", str(school["drop"]), "--work-dir", str(school["tmp"] / "runs"))


def _users(school: dict) -> dict[str, str]:
    with make_engine(school["url"]).connect() as connection:
        return dict(connection.execute(select(User.mis_id, User.username)).all())


def test_link_mode_links_existing_accounts_and_never_creates(school: dict, capsys) -> None:  # type: ignore[no-untyped-def]
    assert _cli(school, "import-users", "--file", str(school["users"])) == 0
    assert _run(school) == 0
    users = _users(school)
    assert len(users) == 200, "only MIS-id matches link automatically; nothing is created"
    assert all(name.startswith("old.") for name in users.values())
    with make_engine(school["url"]).connect() as connection:
        actions = set(
            connection.execute(select(AuditEntry.action).where(AuditEntry.entity == "user")).scalars()
        )
    assert actions == {"link"}

    capsys.readouterr()
    assert _cli(school, "link-report") == 0
    table = capsys.readouterr().out
    assert "200" in table and "50" in table

    assert _cli(school, "link", "decide", "confirm-likely") == 0
    assert _run(school) == 0
    assert len(_users(school)) == 250, "confirmed likely matches link on the next run"
    for username in _users(school).values():
        assert username in table or username.startswith(("old.", "u"))


def test_link_to_create_is_refused_while_matches_wait(school: dict, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY", f'{{"conn_type": "generic", "password": "{key}"}}'
    )
    _cli(school, "import-users", "--file", str(school["users"]))
    _run(school)
    school["config"].write_text(school["config"].read_text().replace("mode: link", "mode: create"))
    capsys.readouterr()
    assert _run(school) == 2
    message = capsys.readouterr().err
    assert "50 likely" in message and "5 not matched" in message
    assert len(_users(school)) == 200, "nothing was created"


def test_rename_user_keeps_the_old_name_reserved(school: dict) -> None:
    _cli(school, "import-users", "--file", str(school["users"]))
    _run(school)
    old = next(iter(_users(school).values()))
    assert _cli(school, "rename-user", old, "renamed.user", "--reason", "surname change") == 0
    assert "renamed.user" in _users(school).values()
    assert _cli(school, "rename-user", "renamed.user", old, "--reason", "undo") == 2, "old name is reserved"


def test_the_run_report_counts_link_categories_and_linked_accounts(school: dict, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    assert _cli(school, "import-users", "--file", str(school["users"])) == 0
    assert _run(school) == 0
    capsys.readouterr()
    assert _cli(school, "report", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    pupils = report["users_by_role"]["pupil"]
    assert pupils["linked"] == 200 and pupils["created"] == 0
    assert pupils["unchanged"] == 0, "only linked accounts are managed: nothing else is 'unchanged'"
    assert report["users_by_role"].get("teaching_staff", {}).get("unchanged", 0) == 0
    link = report["link"]
    assert (link["accounts_linked"], link["accounts_not_linked"]) == (200, 55)
    totals = {category: counts["total"] for category, counts in link["categories"].items()}
    assert (totals["linked"], totals["likely"], totals["not_matched"]) == (200, 50, 5)
    assert link["categories"]["linked"]["pupils"] == 200
    assert link["mis_records_not_linked"] == totals["mis_not_matched"] + totals["mis_no_account"] > 0

    assert _run(school) == 0
    capsys.readouterr()
    assert _cli(school, "report") == 0
    text = capsys.readouterr().out
    assert "200 of 255 existing accounts linked, 55 not linked" in text
    assert "Users with a likely MIS record match" in text
    pupil_row = next(line.split() for line in text.splitlines() if line.strip().startswith("pupil "))
    assert pupil_row[6:] == ["200", "0"], "second run: the 200 linked accounts unchanged, none linked anew"
