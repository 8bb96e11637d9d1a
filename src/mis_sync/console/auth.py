"""Who is signed in and what they may do: Airflow's own authentication and authorisation.

Airflow mounts plugin apps without any authentication, so every console route depends on
``signed_in_user`` (Airflow's ``get_user``: the JWT from the ``Authorization: Bearer`` header or the UI's
``_token`` cookie, validated and revocation-checked by the auth manager). Access to an establishment is
the auth manager's access to that establishment's DAG: ``GET`` to read, ``PUT`` (edit) for any action,
so an Airflow admin grants a school's IT staff the console exactly as they grant its DAG.

Cross-site requests: every action is a POST that must carry a double-submit token (a random cookie,
``SameSite=Strict``, and the same value in the form) and, when the browser sends one, an ``Origin`` of
this server. A page on another site can neither read the cookie nor forge the matching field.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

    from mis_sync.config import Establishment

CSRF_COOKIE = "misync_csrf"
CSRF_FIELD = "csrf_token"
Access = Literal["GET", "PUT"]


async def signed_in_user(request: Request) -> BaseUser:
    """The Airflow user of this request, or 401 (Airflow's own resolver, so tokens mean the same)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials) if credentials else None
    return await get_user(request, None, bearer)


def _team_name(dag_id: str) -> str | None:
    """The DAG's team in multi-team deployments (None otherwise, without touching the metadata DB)."""
    from airflow.configuration import conf

    if not conf.getboolean("core", "multi_team", fallback=False):
        return None
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(dag_id)


def may(user: BaseUser, establishment: Establishment, access: Access) -> bool:
    """Whether the auth manager gives ``user`` this access to the establishment's DAG."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    details = DagDetails(id=establishment.dag_id, team_name=_team_name(establishment.dag_id))
    return bool(get_auth_manager().is_authorized_dag(method=access, details=details, user=user))


def require(user: BaseUser, establishment: Establishment, access: Access) -> None:
    if not may(user, establishment, access):
        verb = "change" if access == "PUT" else "see"
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not {verb} {establishment.id}")


def user_name(user: BaseUser) -> str:
    """The name the audit log records: the auth manager's, never one typed into a form."""
    return f"airflow:{user.get_name()}"


def browser_form_token(request: Request) -> str:
    """This browser's double-submit token (the cookie's value, or a new one the page will set)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    return existing if len(existing) >= 32 else secrets.token_urlsafe(32)


def check_same_site(request: Request, form_token: str | None) -> None:
    """Refuse a POST that another site could have made: wrong Origin, or a token not matching the cookie."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
    elif origin == "null":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not form_token or not hmac.compare_digest(cookie, form_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong form token: reload the page")
