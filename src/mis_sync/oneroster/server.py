"""The ASGI application: token endpoint, rostering paths, error payloads and the access log.

Every request is logged as one line with the app's client id, the path *template* (never the query
string: a filter may hold a child's name), the status and the number of records returned.
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from mis_sync.oneroster import BASE_PATH
from mis_sync.oneroster.apps import check_credentials
from mis_sync.oneroster.auth import granted_scopes, issue_token
from mis_sync.oneroster.errors import OneRosterError, status_info
from mis_sync.oneroster.ratelimit import retry_after_header
from mis_sync.oneroster.routes import build_router
from mis_sync.oneroster.service import Service

ACCESS_LOG = logging.getLogger("mis_sync.oneroster.access")
TOKEN_PATH = "/oauth/token"
TOKEN_REQUESTS_PER_MINUTE = 30


def _error(
    status: int, code_minor: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_info(code_minor, description), status_code=status, headers=headers)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """RFC 6749 §5.2: the token endpoint answers in OAuth's own error format."""
    headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers={**(headers or {}), "Cache-Control": "no-store"})


def _client_from_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return client_id, secret


def create_app(
    engine: Engine, establishments_dir: Path | None = None, service: Service | None = None
) -> FastAPI:
    """The OneRoster service over ``engine`` (the directory); ``establishments_dir`` names schools."""
    service = service or Service(engine, establishments_dir)
    app = FastAPI(
        title="MIS Sync OneRoster 1.2 Rostering Service",
        version="1.2",
        description="Read-only OneRoster 1.2 rostering from the MIS Sync directory (docs/oneroster-api.md).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(OneRosterError)
    async def _oneroster_error(request: Request, exc: OneRosterError) -> JSONResponse:
        return _error(exc.status, exc.code_minor, exc.description, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "invaliddata", "the request's parameters are not valid")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(404, "unknownobject", "no such path")
        if exc.status_code == 405:
            return _error(405, "invaliddata", "this service is read-only: only GET is allowed")
        return _error(exc.status_code, "invaliddata", "the request was refused")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ACCESS_LOG.error("unexpected %s on %s", type(exc).__name__, _route_template(request))
        return _error(500, "internal_server_error", "the service failed to answer; the error is logged")

    @app.middleware("http")
    async def _access_log(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        ACCESS_LOG.info(
            "app=%s endpoint=%s %s status=%s records=%s ms=%.1f",
            getattr(request.state, "client_id", "-"),
            request.method,
            _route_template(request),
            response.status_code,
            getattr(request.state, "records", 0),
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.post(TOKEN_PATH, summary="OAuth 2.0 client credentials token endpoint")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
        credentials = _client_from_basic(request.headers.get("authorization"))
        if credentials is None and form.get("client_id"):
            credentials = (str(form.get("client_id")), str(form.get("client_secret") or ""))
        if credentials is None:
            return _oauth_error(401, "invalid_client", "client authentication is required")
        # Checking a secret costs a deliberate ~0.1 s of scrypt: cap attempts per client id, so guessing
        # secrets (or burning the server's CPU) is slow.
        wait = service.limiter.try_acquire("token:" + credentials[0][:64], TOKEN_REQUESTS_PER_MINUTE)
        if wait > 0:
            answer = _oauth_error(429, "slow_down", "too many token requests for this client")
            answer.headers["Retry-After"] = retry_after_header(wait)
            return answer
        registered = check_credentials(service.engine, *credentials)
        if registered is None:
            return _oauth_error(401, "invalid_client", "unknown client, wrong secret or revoked app")
        request.state.client_id = registered.client_id
        try:
            scopes = granted_scopes(registered, str(form.get("scope") or "") or None)
        except ValueError as exc:
            return _oauth_error(400, "invalid_scope", str(exc))
        return JSONResponse(
            issue_token(service.token_key, registered, scopes), headers={"Cache-Control": "no-store"}
        )

    app.include_router(build_router(service), prefix=BASE_PATH)
    return app


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(no route)"
