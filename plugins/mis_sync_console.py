"""Airflow plugin: the MIS Sync console (pages in ``mis_sync.console``; see docs/console.md).

Registers the console's FastAPI app under ``/misync``, an "MIS Sync" entry in the navigation and an
"MIS Sync" tab on every DAG page (it redirects to the establishment of an MIS Sync DAG, 404 on others).
The app authenticates and authorises every request itself: Airflow does not do it for plugin apps.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from mis_sync.console.app import create_app

URL_PREFIX = "/misync"


class MisSyncConsolePlugin(AirflowPlugin):
    name = "mis_sync_console"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "MIS Sync console"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "MIS Sync",
            "href": "misync/",
            "destination": "nav",
            "url_route": "mis-sync",
            "nav_top_level": True,
        },
        {
            "name": "MIS Sync",
            "href": "misync/dag/{DAG_ID}",
            "destination": "dag",
            "url_route": "mis-sync-establishment",
        },
    ]
