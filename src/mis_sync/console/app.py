"""The MIS Sync console: a FastAPI app the Airflow plugin mounts under ``/misync``.

Server-rendered pages (Jinja2, no JavaScript needed). Every route resolves the Airflow user first
(anonymous → 401) and then the establishment's DAG access (403); see ``console.auth``. Personal data
never travels in a URL: searches and actions are POST bodies, users are addressed by their numeric
directory id. Every response is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from mis_sync.console import queries
from mis_sync.console.auth import (
    CSRF_COOKIE,
    CSRF_FIELD,
    browser_form_token,
    check_same_site,
    may,
    require,
    signed_in_user,
    user_name,
)
from mis_sync.console.sources import ConsoleSources, airflow_sources
from mis_sync.errors import SetupError
from mis_sync.pipeline import latest_report

TEMPLATES = Path(__file__).with_name("templates")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send `Origin: null` on our own forms
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
}
User = Annotated[Any, Depends(signed_in_user)]
FormText = Annotated[str, Form()]


def create_app(sources: ConsoleSources | None = None) -> FastAPI:
    """The console app; ``sources`` defaults to the establishment YAMLs and Airflow Connections."""
    app = FastAPI(title="MIS Sync console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sources = sources or airflow_sources()
    templates = Jinja2Templates(directory=str(TEMPLATES))

    @app.middleware("http")
    async def _no_store(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _error_page(request: Request, exc: StarletteHTTPException) -> Response:
        login = None
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            login = _login_url()
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status_code": exc.status_code, "detail": exc.detail, "login": login, "base": _base(request)},
            status_code=exc.status_code,
        )

    def page(request: Request, name: str, context: dict[str, Any], code: int = 200) -> HTMLResponse:
        token = browser_form_token(request)
        response = templates.TemplateResponse(
            request,
            name,
            {**context, "base": _base(request), "csrf_field": CSRF_FIELD, "csrf_token": token},
            status_code=code,
        )
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=_base(request) or "/",
        )
        return response

    def establishment_for(request: Request, user: Any, establishment_id: str, access: str) -> Any:
        found = request.app.state.sources.find(establishment_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such establishment")
        require(user, found, access)  # type: ignore[arg-type]
        return found

    @app.get("/", response_class=HTMLResponse)
    def dashboard(request: Request, user: User) -> HTMLResponse:
        sources: ConsoleSources = request.app.state.sources
        visible = [e for e in sources.establishments() if may(user, e, "GET")]
        schedules = sources.schedules([e.dag_id for e in visible]) if visible else {}
        rows = [
            {
                "e": establishment,
                "schedule": schedules.get(establishment.dag_id, {}),
                **queries.overview(sources.engine(establishment), establishment.id),
            }
            for establishment in visible
        ]
        return page(request, "dashboard.html", {"rows": rows, "user": user.get_name()})

    @app.get("/dag/{dag_id}", response_model=None)
    def from_dag_page(request: Request, user: User, dag_id: str) -> Response:
        """The external view on each DAG page: that DAG's establishment (authorised as its page is)."""
        sources: ConsoleSources = request.app.state.sources
        found = next((e for e in sources.establishments() if e.dag_id == dag_id), None)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this DAG is not an MIS Sync establishment")
        require(user, found, "GET")
        return RedirectResponse(f"{_base(request)}/e/{found.id}", status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/e/{establishment_id}", response_class=HTMLResponse)
    def establishment_page(request: Request, user: User, establishment_id: str) -> HTMLResponse:
        establishment = establishment_for(request, user, establishment_id, "GET")
        engine = request.app.state.sources.engine(establishment)
        context = {
            "e": establishment,
            **queries.overview(engine, establishment.id),
            "history": queries.run_history(engine, establishment.id),
            "may_edit": may(user, establishment, "PUT"),
        }
        return page(request, "establishment.html", context)

    @app.get("/e/{establishment_id}/findings", response_model=None)
    def findings(request: Request, user: User, establishment_id: str) -> Response:
        """The data manager's findings page of the latest run, served here instead of a server path."""
        establishment = establishment_for(request, user, establishment_id, "GET")
        sources: ConsoleSources = request.app.state.sources
        report = latest_report(sources.engine(establishment), establishment.id)
        page_bytes = (
            sources.findings_page(str(report["run_folder"])) if report and report.get("run_folder") else None
        )
        if page_bytes is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "the latest run has no findings page")
        return Response(page_bytes, media_type="text/html; charset=utf-8")

    def users_page(request: Request, user: Any, establishment: Any, filters: queries.UserFilters | None):
        engine = request.app.state.sources.engine(establishment)
        results = None if filters is None else queries.search_users(engine, establishment.id, filters)
        context = {
            "e": establishment,
            "choices": queries.filter_choices(engine, establishment.id),
            "filters": filters or queries.UserFilters(),
            "results": results,
            "limit": queries.SEARCH_LIMIT,
        }
        return page(request, "users.html", context)

    @app.get("/e/{establishment_id}/users", response_class=HTMLResponse)
    def users_form(request: Request, user: User, establishment_id: str) -> HTMLResponse:
        return users_page(request, user, establishment_for(request, user, establishment_id, "GET"), None)

    @app.post("/e/{establishment_id}/users", response_class=HTMLResponse)
    def users_search(
        request: Request,
        user: User,
        establishment_id: str,
        csrf_token: Annotated[str | None, Form()] = None,
        text: FormText = "",
        role: FormText = "",
        year_group: FormText = "",
        registration_group: FormText = "",
        user_status: FormText = "",
    ) -> HTMLResponse:
        establishment = establishment_for(request, user, establishment_id, "GET")
        check_same_site(request, csrf_token)
        filters = queries.UserFilters(text[:100], role, year_group, registration_group, user_status)
        return users_page(request, user, establishment, filters)

    @app.get("/e/{establishment_id}/users/{user_id}", response_class=HTMLResponse)
    def user_page(request: Request, user: User, establishment_id: str, user_id: int) -> HTMLResponse:
        establishment = establishment_for(request, user, establishment_id, "GET")
        detail = queries.user_detail(
            request.app.state.sources.engine(establishment), establishment.id, user_id
        )
        if detail is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user in this establishment")
        context = {"e": establishment, **detail, "may_edit": may(user, establishment, "PUT"), "error": None}
        return page(request, "user.html", context)

    @app.post("/e/{establishment_id}/users/{user_id}/rename", response_model=None)
    def rename(
        request: Request,
        user: User,
        establishment_id: str,
        user_id: int,
        new_username: FormText,
        reason: FormText,
        csrf_token: Annotated[str | None, Form()] = None,
    ) -> Response:
        from mis_sync.directory.identity_store import rename_user

        establishment = establishment_for(request, user, establishment_id, "PUT")
        check_same_site(request, csrf_token)
        engine = request.app.state.sources.engine(establishment)
        detail = queries.user_detail(engine, establishment.id, user_id)
        if detail is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user in this establishment")
        if not reason.strip():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "say why the username changes")
        try:
            rename_user(
                engine,
                establishment.id,
                detail["user"]["username"],
                new_username.strip().lower(),
                actor=user_name(user),
                reason=f"console: {reason.strip()[:120]}",
                now=datetime.now(UTC),
            )
        except SetupError as exc:
            context = {"e": establishment, **detail, "may_edit": True, "error": str(exc)}
            return page(request, "user.html", context, code=status.HTTP_409_CONFLICT)
        target = f"{_base(request)}/e/{establishment.id}/users/{user_id}"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/e/{establishment_id}/passwords", response_class=HTMLResponse)
    def passwords_page(request: Request, user: User, establishment_id: str) -> HTMLResponse:
        establishment = establishment_for(request, user, establishment_id, "PUT")
        engine = request.app.state.sources.engine(establishment)
        context = {
            "e": establishment,
            "choices": queries.filter_choices(engine, establishment.id),
            "waiting": len(queries.password_user_ids(engine, establishment.id, queries.PasswordFilters())),
            "downloads": queries.downloads(engine, establishment.id),
            "issues_passwords": establishment.passwords.issue_initial and establishment.mode != "link",
        }
        return page(request, "passwords.html", context)

    @app.post("/e/{establishment_id}/passwords", response_model=None)
    def download_passwords(
        request: Request,
        user: User,
        establishment_id: str,
        csrf_token: Annotated[str | None, Form()] = None,
        output: FormText = "csv",
        scope: FormText = "new",
        role: FormText = "",
        year_group: FormText = "",
        registration_group: FormText = "",
    ) -> Response:
        establishment = establishment_for(request, user, establishment_id, "PUT")
        check_same_site(request, csrf_token)
        sources: ConsoleSources = request.app.state.sources
        keys = sources.keys(establishment)
        if keys is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"{establishment.id} does not issue initial passwords"
            )
        engine = sources.engine(establishment)
        filters = queries.PasswordFilters(scope != "all", role, year_group, registration_group)
        ids = queries.password_user_ids(engine, establishment.id, filters)
        text = _export(engine, establishment.id, keys, user_name(user), ids)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M")
        if output == "slips":
            rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
            groups = queries.registration_groups_of(engine, establishment.id, [r["username"] for r in rows])
            by_group: dict[str, list[dict[str, str]]] = {}
            for row in rows:
                by_group.setdefault(
                    groups.get(row["username"].lstrip("'"), "") or "No registration group", []
                ).append(row)
            return page(request, "slips.html", {"e": establishment, "groups": dict(sorted(by_group.items()))})
        headers = {"Content-Disposition": f'attachment; filename="passwords-{establishment.id}-{stamp}.csv"'}
        return Response(text.encode("utf-8-sig"), media_type="text/csv; charset=utf-8", headers=headers)

    return app


def _export(engine: Any, establishment_id: str, keys: list[bytes], actor: str, ids: list[int]) -> str:
    """Run the audited export into a private temporary folder and hand back its text (file removed)."""
    from mis_sync.directory.credentials import export_passwords

    with tempfile.TemporaryDirectory(prefix="misync-console-") as folder:
        out = Path(folder) / "passwords.csv"
        export_passwords(engine, establishment_id, keys, out, actor, user_ids=ids)
        return out.read_text(encoding="utf-8-sig")


def _base(request: Request) -> str:
    """Where the app is mounted (``/misync`` inside Airflow), for links."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _login_url() -> str | None:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login())
    except Exception:  # the auth manager is not initialised (a bare test app): no link
        return None
