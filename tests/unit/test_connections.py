"""Connections without Airflow: directory database URLs, and passwords kept out of repr."""

from __future__ import annotations

import dataclasses

import pytest

from mis_sync.connections import ConnectionInfo, sqlalchemy_url
from mis_sync.errors import MisSyncError, SetupError


def test_extra_sqlalchemy_url_wins() -> None:
    conn = ConnectionInfo(
        conn_id="d", conn_type="postgres", host="db", login="u", password="p",
        extra={"sqlalchemy_url": "postgresql+psycopg://x@y/z"},
    )  # fmt: skip
    assert sqlalchemy_url(conn) == "postgresql+psycopg://x@y/z"


def test_extra_sqlalchemy_url_works_for_any_type() -> None:
    conn = ConnectionInfo(conn_id="d", conn_type="generic", extra={"sqlalchemy_url": "sqlite://"})
    assert sqlalchemy_url(conn) == "sqlite://"


def test_sqlite_host_is_the_file() -> None:
    assert sqlalchemy_url(ConnectionInfo("d", "sqlite", host="/var/lib/misync/dir.db")) == (
        "sqlite:////var/lib/misync/dir.db"
    )
    assert sqlalchemy_url(ConnectionInfo("d", "sqlite", host="dir.db")) == "sqlite:///dir.db"


def test_sqlite_without_host() -> None:
    with pytest.raises(SetupError, match=r"^connection 'dir_conn': sqlite needs the database file in host$"):
        sqlalchemy_url(ConnectionInfo("dir_conn", "sqlite"))


def test_postgres_full() -> None:
    conn = ConnectionInfo("d", "postgres", host="db.internal", login="misync", password="pw", port=5433,
                          schema="directory")  # fmt: skip
    assert sqlalchemy_url(conn) == "postgresql+psycopg2://misync:pw@db.internal:5433/directory"


def test_postgres_quotes_login_and_password() -> None:
    conn = ConnectionInfo("d", "postgresql", host="db", login="mis user@x", password="p@ss:w/rd#%?")
    assert sqlalchemy_url(conn) == "postgresql+psycopg2://mis%20user%40x:p%40ss%3Aw%2Frd%23%25%3F@db/postgres"


def test_postgres_defaults() -> None:
    assert sqlalchemy_url(ConnectionInfo("d", "postgres")) == "postgresql+psycopg2://localhost/postgres"


def test_postgres_login_without_password() -> None:
    assert sqlalchemy_url(ConnectionInfo("d", "postgres", host="db", login="u")) == (
        "postgresql+psycopg2://u@db/postgres"
    )


def test_postgres_password_without_login_is_not_used() -> None:
    assert sqlalchemy_url(ConnectionInfo("d", "postgres", host="db", password="pw")) == (
        "postgresql+psycopg2://db/postgres"
    )


@pytest.mark.parametrize("conn_type", ["mysql", "", "http"])
def test_unsupported_type_names_the_connection(conn_type: str) -> None:
    with pytest.raises(SetupError) as info:
        sqlalchemy_url(ConnectionInfo("school_dir", conn_type, host="h", password="s3cret"))
    message = str(info.value)
    assert message.startswith(f"connection 'school_dir': type {conn_type!r} is not a directory database")
    assert "s3cret" not in message
    assert isinstance(info.value, MisSyncError)


def test_repr_hides_the_password() -> None:
    conn = ConnectionInfo("d", "postgres", host="db", login="misync", password="s3cret", port=5432)
    for text in (repr(conn), str(conn), f"{conn}", f"{conn!r}"):
        assert "s3cret" not in text
        assert "password" not in text
        assert "login='misync'" in text
    assert conn.password == "s3cret"


def test_connection_info_is_frozen() -> None:
    conn = ConnectionInfo("d")
    with pytest.raises(dataclasses.FrozenInstanceError):
        conn.password = "x"  # type: ignore[misc]
    assert conn.extra == {}
    assert conn.conn_type == ""
