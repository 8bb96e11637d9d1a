"""Fixtures for the console tests (helpers in ``support.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mis_sync.console.sources import ConsoleSources
from tests.console.support import (
    KEY,
    Console,
    filled_directory,
    grants_auth_manager_class,
    mounted,
    sqlite_copy,
)
from tests.helpers import demo_config


@pytest.fixture(scope="module")
def console_directory_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return filled_directory(tmp_path_factory.mktemp("console"))


@pytest.fixture
def console(console_directory_url: str, airflow_home: Path, tmp_path: Path) -> Iterator[Console]:
    """A fresh copy of the filled directory per test, the grants auth manager installed as Airflow's."""

    from airflow.api_fastapi import app as airflow_app

    from mis_sync.directory.db import make_engine

    copy = sqlite_copy(console_directory_url, tmp_path)
    engine = make_engine(f"sqlite:///{copy}")
    demo = demo_config()
    other = demo.model_copy(update={"id": "other-school", "name": "Other School"})
    sources = ConsoleSources(
        establishments=lambda: [demo, other], engine=lambda _e: engine, keys=lambda _e: [KEY]
    )
    manager = grants_auth_manager_class()()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(airflow_app._AuthManagerState, "instance", manager)
        yield Console(mounted(sources), engine, demo, other, manager)
    engine.dispose()
