"""The console inside Airflow's real API server app: the plugin loads from ``plugins/``, Airflow's simple
auth manager signs users in, and its roles decide (viewer reads, user/admin edit). The simple auth
manager cannot grant one school and not another (its roles cover every DAG); that part of the matrix is
in ``test_console_security.py`` with an auth manager that grants per DAG."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.console.support import KEY, sqlite_copy

USERS = "admin:admin,viewer:viewer,editor:user"


@pytest.fixture
def airflow_client(console_directory_url: str, airflow_home: Path, tmp_path: Path) -> Iterator[TestClient]:
    from airflow.api_fastapi import app as airflow_app

    copy = sqlite_copy(console_directory_url, tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW__CORE__AUTH_MANAGER",
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        )
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", USERS)
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp_path / "passwords.json"))
        patch.setenv("AIRFLOW_CONN_MISYNC_DIRECTORY", json.dumps({"conn_type": "sqlite", "host": str(copy)}))
        patch.setenv(
            "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY",
            json.dumps({"conn_type": "generic", "password": KEY.decode()}),
        )
        patch.setattr(airflow_app._AuthManagerState, "instance", None)
        app = airflow_app.create_app("core")
        yield TestClient(app, follow_redirects=False)


def _sign_in(client: TestClient, username: str) -> dict[str, str]:
    """Airflow's own sign-in: the simple auth manager's generated password, then its token endpoint."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    password = SimpleAuthManager.get_passwords()[username]
    response = client.post("/auth/token", json={"username": username, "password": password})
    assert response.status_code in (200, 201), response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_the_plugin_registers_the_app_and_both_views(airflow_client: TestClient) -> None:
    plugins = airflow_client.get("/api/v2/plugins", headers=_sign_in(airflow_client, "admin")).json()
    console = next(p for p in plugins["plugins"] if p["name"] == "mis_sync_console")
    assert console["fastapi_apps"][0]["url_prefix"] == "/misync"
    views = {v["destination"]: v for v in console["external_views"]}
    assert views["nav"]["name"] == "MIS Sync" and views["nav"]["href"] == "misync/"
    assert views["dag"]["href"] == "misync/dag/{DAG_ID}"


def test_anonymous_is_401_inside_airflow(airflow_client: TestClient) -> None:
    for path in ("/misync/", "/misync/e/demo-academy", "/misync/e/demo-academy/users"):
        response = airflow_client.get(path)
        assert response.status_code == 401 and response.headers["cache-control"] == "no-store"


def test_simple_auth_manager_roles_decide(airflow_client: TestClient) -> None:
    viewer, editor = _sign_in(airflow_client, "viewer"), _sign_in(airflow_client, "editor")
    dashboard = airflow_client.get("/misync/", headers=viewer)
    assert dashboard.status_code == 200 and "Demo Academy" in dashboard.text
    assert airflow_client.get("/misync/e/demo-academy", headers=viewer).status_code == 200
    assert airflow_client.get("/misync/e/demo-academy/passwords", headers=viewer).status_code == 403
    assert airflow_client.get("/misync/e/demo-academy/passwords", headers=editor).status_code == 200
    admin = _sign_in(airflow_client, "admin")
    assert airflow_client.get("/misync/dag/mis_sync__demo_academy", headers=admin).status_code == 303


def test_a_download_inside_airflow_is_audited_with_the_signed_in_user(airflow_client: TestClient) -> None:
    import re

    editor = _sign_in(airflow_client, "editor")
    page = airflow_client.get("/misync/e/demo-academy/passwords", headers=editor)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    data = {"csrf_token": token, "output": "csv", "scope": "new"}
    response = airflow_client.post("/misync/e/demo-academy/passwords", headers=editor, data=data)
    assert response.status_code == 200 and response.content.decode("utf-8-sig").count("\n") == 9
    listed = airflow_client.get("/misync/e/demo-academy/passwords", headers=editor).text
    assert "by airflow:editor" in listed


def test_the_dashboard_shows_the_next_run_airflow_scheduled(airflow_client: TestClient) -> None:
    """Read from Airflow's own DAG table (what its UI shows), not guessed from the cron line."""
    from datetime import UTC, datetime

    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    viewer = _sign_in(airflow_client, "viewer")
    assert "not scheduled yet" in airflow_client.get("/misync/", headers=viewer).text
    next_run = datetime(2026, 12, 4, 1, 30, tzinfo=UTC)
    with create_session() as session:
        if session.get(DagBundleModel, "console-tests") is None:
            session.add(DagBundleModel(name="console-tests"))
            session.flush()
        session.merge(
            DagModel(
                dag_id="mis_sync__demo_academy",
                bundle_name="console-tests",
                is_paused=False,
                next_dagrun_create_after=next_run,
            )
        )
    try:
        assert "2026-12-04T01:30:00+00:00" in airflow_client.get("/misync/", headers=viewer).text
        with create_session() as session:
            session.get(DagModel, "mis_sync__demo_academy").is_paused = True  # type: ignore[union-attr]
        assert ">paused<" in airflow_client.get("/misync/", headers=viewer).text
    finally:
        with create_session() as session:
            session.delete(session.get(DagModel, "mis_sync__demo_academy"))
