"""Shared fixtures. Airflow's environment is set here, before anything imports Airflow.

Every test session gets its own Airflow home (SQLite metadata DB) in a temporary folder, so tests never
touch a developer's ``.airflow/``. Directory tests run twice: on SQLite and on the local PostgreSQL
server, each in a throwaway database.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).with_name("fixtures")
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="misync-test-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
os.environ.pop("MISYNC_ESTABLISHMENTS_DIR", None)

PG_ADMIN_URL = os.environ.get("MISYNC_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _postgres_available() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(
                f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI must run the directory tests on it)"
            )
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    return PG_ADMIN_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'directory.db'}"


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped after the test."""
    from sqlalchemy import create_engine, text

    name = f"misync_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def directory_url(request: pytest.FixtureRequest) -> str:
    """Runs a directory test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """A migrated Airflow metadata DB for this test session."""
    import subprocess
    import sys

    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail("airflow db migrate failed:\n" + result.stdout[-2000:] + result.stderr[-2000:])
    return _AIRFLOW_HOME
