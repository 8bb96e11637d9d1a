"""Browser tests: Debian's Chromium driven by Playwright against a real ``airflow api-server`` with the
plugin loaded (sign in through the simple auth manager's own page, dashboard, search, timeline, rename,
Download Passwords). Skipped where Chromium or the playwright package is missing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.console.support import KEY, sqlite_copy
from tests.helpers import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Locally a machine without Debian's chromium skips; CI installs it (.ci/run), so there it must run.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's network is closed: no calls home
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def api_server(console_directory_url: str, airflow_home: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real Airflow API server on a free port; yields its URL and the admin's generated password."""
    port = _free_port()
    passwords = tmp_path / "passwords.json"
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW_CONN_MISYNC_DIRECTORY": json.dumps(
            {"conn_type": "sqlite", "host": str(sqlite_copy(console_directory_url, tmp_path))}
        ),
        "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY": json.dumps({"conn_type": "generic", "password": KEY.decode()}),
    }
    airflow = Path(sys.executable).with_name("airflow")
    # The DAGs in Airflow's DB, so the establishment's DAG page (and its MIS Sync tab) exists.
    parsed = subprocess.run(
        [str(airflow), "dags", "reserialize"], env=env, capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen(
        [str(airflow), "api-server", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                pytest.fail("the API server stopped:\n" + (tmp_path / "api-server.log").read_text()[-3000:])
            time.sleep(1)
        else:
            pytest.fail("the API server did not start in 120 s")
        yield base, json.loads(passwords.read_text())["admin"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_sign_in_search_timeline_rename_and_download(api_server: tuple[str, str], tmp_path: Path) -> None:
    from playwright import sync_api as playwright_api

    base, password = api_server
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(accept_downloads=True).new_page()
        seen_urls: list[str] = []
        page.on("request", lambda request: seen_urls.append(request.url))

        page.goto(f"{base}/misync/")
        assert "Please sign in" in page.content(), "anonymous: the console asks to sign in"
        page.goto(f"{base}/auth/login")
        page.locator('input[name="username"]').fill("admin")
        page.locator('input[name="password"]').fill(password)
        page.locator('button[type="submit"]').click()
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)

        # Airflow's own UI: the plugin's navigation entry opens the console in its page
        page.goto(f"{base}/plugin/mis-sync")
        console_frame = page.frame_locator("iframe").first
        console_frame.get_by_role("heading", name="MIS Sync").wait_for(timeout=30_000)
        assert console_frame.get_by_role("link", name="Demo Academy").is_visible()

        # the tab on the establishment's DAG page opens that establishment
        page.goto(f"{base}/dags/mis_sync__demo_academy/plugin/mis-sync-establishment")
        dag_frame = page.frame_locator("iframe").first
        dag_frame.get_by_role("heading", name="Run history").wait_for(timeout=30_000)

        page.goto(f"{base}/misync/")
        assert page.get_by_role("heading", name="MIS Sync").is_visible()
        page.get_by_role("link", name="Demo Academy").click()
        assert page.get_by_role("heading", name="Run history").is_visible()

        page.get_by_role("link", name="Users").click()
        page.get_by_label("Name, username or MIS id").fill("O'Brien")
        page.get_by_role("button", name="Search").click()
        assert "user(s)" in page.content(), page.content()[-1500:]
        page.get_by_role("link", name="zobrien").click()
        assert page.get_by_role("heading", name="Timeline").is_visible()
        assert "new in MIS" in page.content()

        page.get_by_label("New username").fill("zwalsh")
        page.get_by_label("Why").fill("name change")
        page.get_by_role("button", name="Rename").click()
        assert "zobrien → zwalsh" in page.content()

        page.get_by_role("link", name="Download Passwords").click()
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download").click()
        saved = tmp_path / "download.csv"
        download_info.value.save_as(saved)
        assert saved.read_text(encoding="utf-8-sig").splitlines()[0].endswith("initial_password")
        page.goto(f"{base}/misync/e/demo-academy/passwords")
        assert "by airflow:admin" in page.content()
        browser.close()
    for url in seen_urls:
        assert "brien" not in url.lower() and "zwalsh" not in url.lower(), url
