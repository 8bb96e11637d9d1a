"""Helpers for the console tests: a directory filled by a real ``misync run`` and an honest test auth
manager (Airflow's ``BaseAuthManager`` with per-DAG grants, real JWTs) that the simple auth manager
cannot replace, because its roles apply to every DAG alike."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mis_sync.config import Establishment
from mis_sync.console.app import create_app
from mis_sync.console.sources import ConsoleSources
from tests.helpers import REPO, TINY

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "console-tests-" + "x" * 60)
KEY = base64.urlsafe_b64encode(b"console-tests-fernet-key-32bytes")
"""Fixed, so every import of this module and every worker agrees (a test key, never a real one)."""


def filled_directory(folder: Path) -> str:
    """A directory DB after one real ``misync run`` of the tiny school (users, groups, audit, passwords)."""
    from mis_sync.cli import main

    url = f"sqlite:///{folder / 'directory.db'}"
    config = str(REPO / "include" / "establishments" / "demo-academy.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW_CONN_MISYNC_CREDENTIALS_KEY",
            json.dumps({"conn_type": "generic", "password": KEY.decode()}),
        )
        args = ["run", config, "--input", str(TINY), "--directory-url", url, "--work-dir", str(folder)]
        assert main(args) == 0
    return url


def grants_auth_manager_class() -> type:
    """An auth manager whose users are granted methods per DAG id (e.g. an IT technician of one school)."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

    class GrantsUser(BaseUser):
        def __init__(self, username: str, grants: dict[str, list[str]]) -> None:
            self.username, self.grants = username, grants

        def get_id(self) -> str:
            return self.username

        def get_name(self) -> str:
            return self.username

    class GrantsAuthManager(BaseAuthManager[GrantsUser]):
        user_class = GrantsUser

        def deserialize_user(self, token: dict[str, Any]) -> GrantsUser:
            return GrantsUser(token["sub"], token["grants"])

        def serialize_user(self, user: GrantsUser) -> dict[str, Any]:
            return {"sub": user.username, "grants": user.grants}

        def get_url_login(self, **kwargs: Any) -> str:
            return "/auth/login"

        def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:  # type: ignore[no-untyped-def]
            if details is None or details.id is None:
                return False
            return method in user.grants.get(details.id, [])

        def _no(self, **_: Any) -> bool:
            return False

        is_authorized_configuration = is_authorized_connection = is_authorized_asset = _no
        is_authorized_asset_alias = is_authorized_pool = is_authorized_variable = _no
        is_authorized_view = is_authorized_custom_view = _no

        def filter_authorized_menu_items(self, menu_items, *, user):  # type: ignore[no-untyped-def]
            return []

    return GrantsAuthManager


@dataclass
class Console:
    client: TestClient
    engine: Engine
    demo: Establishment
    other: Establishment
    auth_manager: Any

    def token(self, username: str, grants: dict[str, list[str]]) -> str:
        user = self.auth_manager.deserialize_user({"sub": username, "grants": grants})
        return str(self.auth_manager.generate_jwt(user))

    def headers(self, username: str, grants: dict[str, list[str]]) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username, grants)}"}


def mounted(sources: ConsoleSources) -> TestClient:
    """The console mounted under /misync in a parent app, as Airflow's API server mounts plugin apps."""
    parent = FastAPI()
    parent.mount("/misync", create_app(sources))
    return TestClient(parent, follow_redirects=False)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries a form token"
    return found.group(1)


DEMO_DAG = "mis_sync__demo_academy"
OTHER_DAG = "mis_sync__other_school"
ADMIN = {DEMO_DAG: ["GET", "PUT"], OTHER_DAG: ["GET", "PUT"]}
DEMO_EDITOR = {DEMO_DAG: ["GET", "PUT"]}
DEMO_VIEWER = {DEMO_DAG: ["GET"]}
NOBODY: dict[str, list[str]] = {}


def sqlite_copy(url: str, folder: Path) -> Path:
    """A copy through SQLite's backup API, so it includes what is still in the write-ahead log."""
    copy = folder / "directory.db"
    source, target = sqlite3.connect(url.removeprefix("sqlite:///")), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    return copy
