"""The console's pages and actions over a directory filled by a real run of the tiny school."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select

from mis_sync.directory.credentials import Credential
from mis_sync.directory.identity_store import ReservedUsername
from mis_sync.directory.schema import AuditEntry, User
from tests.console.support import (
    ADMIN,
    DEMO_EDITOR,
    DEMO_VIEWER,
    Console,
    form_token,
)


def _user_id(console: Console, username: str) -> int:
    with console.engine.connect() as connection:
        return int(connection.execute(select(User.id).where(User.username == username)).scalar_one())


def _search(console: Console, headers: dict[str, str], **fields: str) -> str:
    page = console.client.get("/misync/e/demo-academy/users", headers=headers)
    response = console.client.post(
        "/misync/e/demo-academy/users", headers=headers, data={"csrf_token": form_token(page.text), **fields}
    )
    assert response.status_code == 200
    return response.text


def test_dashboard_shows_sync_times_accounts_and_state(console: Console) -> None:
    html = console.client.get("/misync/", headers=console.headers("tech", DEMO_VIEWER)).text
    row = html[html.index("Demo Academy") :]
    assert "create" in row and "file_drop" in row
    assert re.search(r"<td>20\d\d-\d\d-\d\dT", row), "last sync from MIS and last success are shown"
    assert "pupil " in row and "teaching_staff " in row
    assert re.search(r'class="state-(ok|needs-attention|failing)"', row)


def test_establishment_page_shows_report_and_history(console: Console) -> None:
    html = console.client.get("/misync/e/demo-academy", headers=console.headers("tech", DEMO_VIEWER)).text
    assert "Latest report" in html and "Run history" in html
    assert "cli__" in html, "the run of the fixture is listed"
    assert "applied" in html


def test_the_findings_page_of_the_latest_run_is_served(console: Console) -> None:
    headers = console.headers("tech", DEMO_VIEWER)
    establishment = console.client.get("/misync/e/demo-academy", headers=headers).text
    assert 'href="/misync/e/demo-academy/findings"' in establishment
    page = console.client.get("/misync/e/demo-academy/findings", headers=headers)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert page.headers["content-type"].startswith("text/html") and "<table" in page.text


def test_the_dag_page_view_opens_its_establishment(console: Console) -> None:
    headers = console.headers("tech", DEMO_VIEWER)
    response = console.client.get("/misync/dag/mis_sync__demo_academy", headers=headers)
    assert response.status_code == 303 and response.headers["location"] == "/misync/e/demo-academy"
    assert console.client.get("/misync/dag/some_other_dag", headers=headers).status_code == 404


def test_search_by_name_username_and_mis_id_with_filters(console: Console) -> None:
    headers = console.headers("tech", DEMO_VIEWER)
    assert "asmith" in _search(console, headers, text="Alex")
    assert "zobrien" in _search(console, headers, text="zobrien")
    by_mis_id = _search(console, headers, text="P1")
    assert "zobrien" in by_mis_id and "asmith" not in by_mis_id
    staff_only = _search(console, headers, role="teaching_staff")
    assert "zobrien" not in staff_only and "1 user(s)" not in staff_only
    year7 = _search(console, headers, year_group="7")
    assert "zobrien" in year7
    assert "0 user(s)" in _search(console, headers, text="%"), "a typed wildcard matches only itself"


def test_search_filters_by_registration_group(console: Console) -> None:
    headers = console.headers("tech", DEMO_VIEWER)
    page = console.client.get("/misync/e/demo-academy/users", headers=headers).text
    groups = re.findall(
        r"<option>([^<]+)</option>", page.split('name="registration_group"')[1].split("</select>")[0]
    )
    assert groups, "the registration groups of the school are offered"
    found = _search(console, headers, registration_group=groups[0])
    rows = re.findall(r"<tr><td><a href", found)
    assert rows and all(groups[0] in line for line in found.split("<tr><td><a href")[1:])


def test_user_page_shows_groups_and_a_timeline_with_reasons(console: Console) -> None:
    headers = console.headers("tech", DEMO_VIEWER)
    html = console.client.get(f"/misync/e/demo-academy/users/{_user_id(console, 'zobrien')}", headers=headers)
    assert html.status_code == 200
    assert "Timeline" in html.text and "new in MIS" in html.text, "the creation and its reason"
    assert "membership add" in html.text, "class memberships appear on the timeline"
    assert "Change the username" not in html.text, "a viewer gets no rename form"
    assert "asmith" not in html.text.split("Timeline")[1], "only this user's changes"


def test_rename_through_the_console_keeps_the_old_name_reserved(console: Console) -> None:
    headers = console.headers("it.tech", DEMO_EDITOR)
    user_id = _user_id(console, "zobrien")
    page = console.client.get(f"/misync/e/demo-academy/users/{user_id}", headers=headers)
    assert "Change the username" in page.text
    data = {"csrf_token": form_token(page.text), "new_username": "zwalsh", "reason": "name change"}
    response = console.client.post(
        f"/misync/e/demo-academy/users/{user_id}/rename", headers=headers, data=data
    )
    assert (
        response.status_code == 303
        and response.headers["location"] == f"/misync/e/demo-academy/users/{user_id}"
    )
    with console.engine.connect() as connection:
        assert connection.execute(select(User.username).where(User.id == user_id)).scalar_one() == "zwalsh"
        reserved = connection.execute(select(ReservedUsername.username)).scalars().all()
        audit = connection.execute(
            select(AuditEntry.reason).where(AuditEntry.action == "rename")
        ).scalar_one()
    assert "zobrien" in reserved
    assert "by airflow:it.tech" in audit, "the Airflow user, not a typed name"
    timeline = console.client.get(f"/misync/e/demo-academy/users/{user_id}", headers=headers).text
    assert "user rename username" in timeline and "zobrien → zwalsh" in timeline
    back = {**data, "new_username": "zobrien"}
    refused = console.client.post(
        f"/misync/e/demo-academy/users/{user_id}/rename", headers=headers, data=back
    )
    assert refused.status_code == 409 and "taken or reserved" in refused.text


def test_rename_refuses_an_invalid_username_and_changes_nothing(console: Console) -> None:
    headers = console.headers("it.tech", DEMO_EDITOR)
    user_id = _user_id(console, "asmith")
    page = console.client.get(f"/misync/e/demo-academy/users/{user_id}", headers=headers)
    data = {"csrf_token": form_token(page.text), "new_username": "Not Valid!", "reason": "x"}
    response = console.client.post(
        f"/misync/e/demo-academy/users/{user_id}/rename", headers=headers, data=data
    )
    assert response.status_code == 409 and "not a valid username" in response.text
    with console.engine.connect() as connection:
        assert connection.execute(select(User.username).where(User.id == user_id)).scalar_one() == "asmith"


def _download(console: Console, headers: dict[str, str], **fields: str):  # type: ignore[no-untyped-def]
    page = console.client.get("/misync/e/demo-academy/passwords", headers=headers)
    assert page.status_code == 200
    data = {"csrf_token": form_token(page.text), "output": "csv", "scope": "new", **fields}
    return console.client.post("/misync/e/demo-academy/passwords", headers=headers, data=data)


def test_download_passwords_csv_new_since_last_download_and_audited(console: Console) -> None:
    headers = console.headers("it.tech", DEMO_EDITOR)
    page = console.client.get("/misync/e/demo-academy/passwords", headers=headers).text
    assert "8 new user(s)" in page
    first = _download(console, headers)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert first.headers["content-disposition"].startswith('attachment; filename="passwords-demo-academy-')
    rows = list(csv.DictReader(io.StringIO(first.content.decode("utf-8-sig"))))
    assert len(rows) == 8 and all(row["initial_password"] for row in rows)
    again = list(csv.DictReader(io.StringIO(_download(console, headers).content.decode("utf-8-sig"))))
    assert again == [], "new since the last download: nothing is new now"
    everyone = _download(console, headers, scope="all")
    assert len(list(csv.DictReader(io.StringIO(everyone.content.decode("utf-8-sig"))))) == 8
    with console.engine.connect() as connection:
        reasons = (
            connection.execute(
                select(AuditEntry.reason).where(AuditEntry.action == "export").order_by(AuditEntry.id)
            )
            .scalars()
            .all()
        )
        counts = connection.execute(select(Credential.exported_count)).scalars().all()
    assert len(reasons) == 3 and all("by airflow:it.tech" in r for r in reasons)
    assert set(counts) == {2}
    listed = console.client.get("/misync/e/demo-academy/passwords", headers=headers).text
    assert "0 new user(s)" in listed and listed.count("by airflow:it.tech") == 3


def test_download_passwords_filters_by_role_and_year(console: Console) -> None:
    headers = console.headers("it.tech", DEMO_EDITOR)
    staff = _download(console, headers, role="teaching_staff")
    staff_rows = list(csv.DictReader(io.StringIO(staff.content.decode("utf-8-sig"))))
    assert staff_rows and {row["role"] for row in staff_rows} == {"teaching_staff"}
    year7 = _download(console, headers, year_group="7", scope="all")
    year_rows = list(csv.DictReader(io.StringIO(year7.content.decode("utf-8-sig"))))
    assert year_rows and {row["year_group"] for row in year_rows} == {"7"}


def test_password_slips_are_grouped_by_registration_group(console: Console) -> None:
    headers = console.headers("it.tech", DEMO_EDITOR)
    response = _download(console, headers, output="slips", role="pupil")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    sections = re.findall(r"<h2>Demo Academy — ([^<]+)</h2>", response.text)
    assert sections and response.text.count('class="slip"') >= 1
    assert "Initial password" in response.text


def test_a_viewer_cannot_download_passwords(console: Console) -> None:
    headers = console.headers("tech", DEMO_VIEWER)
    assert console.client.get("/misync/e/demo-academy/passwords", headers=headers).status_code == 403


def test_admin_sees_every_page(console: Console) -> None:
    headers = console.headers("admin", ADMIN)
    for path in ("/misync/", "/misync/e/other-school", "/misync/e/other-school/users"):
        assert console.client.get(path, headers=headers).status_code == 200
