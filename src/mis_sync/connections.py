"""Airflow Connections, seen through a small frozen record so pure code never imports Airflow.

Credentials live only in Airflow Connections (or the secrets backend behind them). Task code calls
``from_airflow`` at run time; unit tests and the CLI build ``ConnectionInfo`` directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mis_sync.errors import SetupError


@dataclass(frozen=True)
class ConnectionInfo:
    """What an Airflow Connection holds. ``password`` is kept out of ``repr`` and so out of logs."""

    conn_id: str
    conn_type: str = ""
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    schema: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def from_airflow(conn_id: str) -> ConnectionInfo:
    """Look up a connection through Airflow: env vars, secrets backend, metadata DB.

    Inside a task the Task SDK answers; the ``misync`` CLI runs outside any task, where the SDK cannot
    reach the metadata DB, so it falls back to Airflow core's lookup.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        conn = _core_connection(conn_id)
    extra = conn.extra_dejson if conn.extra else {}
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=conn.conn_type or "",
        host=conn.host,
        login=conn.login,
        password=conn.password,
        port=conn.port,
        schema=conn.schema,
        extra=extra if isinstance(extra, dict) else json.loads(extra),
    )


def _core_connection(conn_id: str) -> Any:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise SetupError(
            f"Airflow connection {conn_id!r} is not defined; create it in the Airflow UI "
            f"(Admin → Connections) or with `airflow connections add {conn_id} ...`"
        ) from None


def sqlalchemy_url(conn: ConnectionInfo) -> str:
    """The directory database URL from a connection.

    ``extra.sqlalchemy_url`` wins; ``sqlite`` connections name the file in ``host``; ``postgres``
    connections are built from host, port, login, password and schema (the database name).
    """
    if url := conn.extra.get("sqlalchemy_url"):
        return str(url)
    if conn.conn_type == "sqlite":
        if not conn.host:
            raise SetupError(f"connection {conn.conn_id!r}: sqlite needs the database file in host")
        return f"sqlite:///{conn.host}"
    if conn.conn_type in {"postgres", "postgresql"}:
        auth = ""
        if conn.login:
            auth = quote(conn.login, safe="")
            if conn.password:
                auth += ":" + quote(conn.password, safe="")
            auth += "@"
        port = f":{conn.port}" if conn.port else ""
        return f"postgresql+psycopg2://{auth}{conn.host or 'localhost'}{port}/{conn.schema or 'postgres'}"
    raise SetupError(
        f"connection {conn.conn_id!r}: type {conn.conn_type!r} is not a directory database; "
        "use sqlite, postgres, or set extra.sqlalchemy_url"
    )
