"""What every request needs: the directory engine, the schools, the token key, the limiter; and the
two operations every path is made of (a page of a collection, one object by sourcedId).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, select

from mis_sync.directory.schema import SyncState
from mis_sync.oneroster import collections as c
from mis_sync.oneroster import mapping as m
from mis_sync.oneroster.apps import get_app
from mis_sync.oneroster.auth import read_token, require_scope
from mis_sync.oneroster.errors import OneRosterError, not_found, unauthorised
from mis_sync.oneroster.pagecache import PageCache, directory_state
from mis_sync.oneroster.query import Query, parse_query
from mis_sync.oneroster.ratelimit import RateLimiter, retry_after_header
from mis_sync.oneroster.resources import Resource
from mis_sync.oneroster.sqlquery import Narrowing, lookup, run_page

TOKEN_KEY_ENV = "MISYNC_ONEROSTER_TOKEN_KEY"


def school_catalogue(engine: Engine, establishments_dir: Path | None) -> list[c.School]:
    """Every establishment the directory holds, named from its YAML file where there is one."""
    from mis_sync.config import discover

    configs = {}
    if establishments_dir is not None and establishments_dir.is_dir():
        for item in discover(establishments_dir):
            if item.establishment is not None:
                modified = dt.datetime.fromtimestamp(item.path.stat().st_mtime, dt.UTC)
                configs[item.establishment.id] = (item.establishment, modified)
    with engine.connect() as connection:
        rows = connection.execute(select(SyncState.establishment_id, SyncState.last_success_at)).all()
    schools = []
    for establishment_id, last_success in sorted(rows):
        config, modified = configs.get(establishment_id, (None, last_success))
        schools.append(
            c.School(
                establishment_id,
                config.name if config else establishment_id,
                config.laestab if config else None,
                modified or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
            )
        )
    return schools


@dataclass
class Caller:
    """The app behind a request, once its token, status, rate limit and scope have been checked."""

    client_id: str
    access: c.Access


@dataclass
class Service:
    engine: Engine
    establishments_dir: Path | None = None
    token_key: bytes = field(
        default_factory=lambda: os.environ.get(TOKEN_KEY_ENV, "").encode() or secrets.token_bytes(32)
    )
    limiter: RateLimiter = field(default_factory=RateLimiter)
    cache: PageCache = field(default_factory=PageCache)
    _selects: dict[Any, Any] = field(default_factory=dict)
    _schools: tuple[float, list[c.School]] | None = None

    SCHOOLS_TTL_S = 60.0

    def schools(self) -> list[c.School]:
        """The establishments as orgs, re-read at most once a minute (YAML files and sync state)."""
        now = time.monotonic()
        if self._schools is None or now - self._schools[0] > self.SCHOOLS_TTL_S:
            self._schools = (now, school_catalogue(self.engine, self.establishments_dir))
        return self._schools[1]

    def authorise(self, authorization: str | None, demographics: bool = False) -> Caller:
        claims = read_token(self.token_key, authorization)
        app = get_app(self.engine, claims.client_id)
        if app is None or app.revoked:
            raise unauthorised("the app has been revoked")
        wait = self.limiter.try_acquire(app.client_id, app.rate_limit_per_minute)
        if wait > 0:
            raise OneRosterError(
                429,
                "server_busy",
                "rate limit exceeded for this app",
                {"Retry-After": retry_after_header(wait)},
            )
        require_scope(claims.scopes & app.scopes, demographics)
        return Caller(app.client_id, c.Access(app.schools, app.field_groups))

    def page(
        self,
        resource: Resource,
        caller: Caller,
        params: dict[str, str],
        base_url: str,
        narrowing: Narrowing | None = None,
        signature: str = "",
        encoded: bool = False,
    ) -> tuple[dict[str, Any] | bytes, int, Query, int]:
        """A collection's page as (body, total count, parsed query, records in the page). ``signature``
        names the path (with its parents' ids): with the other parameters and the app's access it keys
        the page cache. ``encoded``: users and enrollments may come back as JSON bytes, written directly."""
        query = parse_query(params)
        access = caller.access
        select_ = self._select(resource, access)
        with self.engine.connect() as connection:
            state = directory_state(connection)
            kept = tuple(sorted((k, v) for k, v in params.items() if k not in ("limit", "offset", "fields")))
            key = (signature or resource.plural, kept, access, state)
            visible = resource.visible_fields(access)
            page = run_page(connection, select_, resource.fields, visible, query, narrowing, self.cache, key)
        refs = m.Refs(base_url)
        encoder = m.ENCODERS.get(resource.plural) if encoded and query.fields is None else None
        if encoder is not None:
            return encoder(page.rows, refs, access.field_groups), page.total, query, len(page.rows)
        objects = [resource.build(row, refs, access) for row in page.rows]
        objects = m.select_fields(objects, query.fields, resource.selectable_fields(access))
        return {resource.plural: objects}, page.total, query, len(objects)

    def _select(self, resource: Resource, access: c.Access) -> Any:
        """The resource's select for this access (built once: selects are immutable; orgs read config)."""
        if resource.plural == "orgs":
            return resource.select(access, self.schools())
        key = (resource.plural, access)
        select_ = self._selects.get(key)
        if select_ is None:
            select_ = self._selects[key] = resource.select(access, [])
        return select_

    def one(
        self,
        resource: Resource,
        caller: Caller,
        sourced_id: str,
        base_url: str,
        fields: str | None,
        narrowing: Narrowing | None = None,
    ) -> dict[str, Any]:
        """``{"user": {...}}``: one visible object (``narrowing``: e.g. a student must be a student)."""
        row = self.find(resource, caller, sourced_id, narrowing)
        objects = [resource.build(row, m.Refs(base_url), caller.access)]
        query = parse_query({"fields": fields} if fields else {})
        objects = m.select_fields(objects, query.fields, resource.selectable_fields(caller.access))
        return {resource.singular: objects[0]}

    def find(
        self, resource: Resource, caller: Caller, sourced_id: str, narrowing: Narrowing | None = None
    ) -> Any:
        """The visible row with this sourcedId; 404 when it does not exist or the app may not see it
        (an app cannot tell another school's record from a missing one)."""
        select_ = self._select(resource, caller.access)
        by_id = resource.by_id(sourced_id)
        condition = by_id if narrowing is None else (lambda columns: by_id(columns) & narrowing(columns))
        with self.engine.connect() as connection:
            row = lookup(connection, select_, condition)
        if row is None:
            raise not_found(resource.label)
        return row


def paging_links(url: str, params: dict[str, str], query: Query, total: int) -> str:
    """RFC 8288 ``Link`` header: first, prev, next and last pages, other parameters kept."""
    links = []

    def link(offset: int, rel: str) -> None:
        kept = {**params, "limit": str(query.limit), "offset": str(offset)}
        links.append(f'<{url}?{urlencode(kept)}>; rel="{rel}"')

    last = max(0, ((total - 1) // query.limit) * query.limit) if total else 0
    link(0, "first")
    if query.offset > 0:
        link(max(0, query.offset - query.limit), "prev")
    if query.offset + query.limit < total:
        link(query.offset + query.limit, "next")
    link(last, "last")
    return ", ".join(links)
