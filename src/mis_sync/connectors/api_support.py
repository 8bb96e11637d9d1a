"""Helpers shared by the direct-MIS API connectors (Arbor, Bromcom, ScholarPack, iSAMS REST, OneRoster
REST), on top of ``http_api`` / ``http_paging``.

- ``BearerTokenAuth`` and ``oauth_client``: OAuth 2 access tokens fetched from a token endpoint (client
  credentials, or a refresh token from an authorisation-code grant), renewed before they expire and
  once after a 401. The token request is an ordinary ``ApiClient`` request, so it gets the same retries
  and errors; a refused client (``400 invalid_client`` / ``invalid_grant``) is an ``ApiAuthError``.
- ``pages_until_empty``: page-number paging for sources that state no page count or total (Arbor,
  Bromcom). A page shorter than the page size ends the listing only if the next page is empty: a short
  page followed by more records is a truncated page (``TruncatedError``), never a smaller school.
- ``local_today``, ``parse_dates``, ``status_from_dates`` and ``current_between``: date-ranged records
  (enrolments, contracts, memberships) judged "as of today" in the school's time zone.
- ``records_frame``: chosen (dotted) keys of JSON records as an object-dtype frame.

Errors name the source, endpoint and page, never a value.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

import httpx
import pandas as pd

from mis_sync.connectors.http_api import ApiAuthError, ApiClient, HttpApiConnector
from mis_sync.connectors.http_paging import Page, TruncatedError
from mis_sync.errors import ExtractError
from mis_sync.model import ENTITIES, EnrolmentStatus, Extract

log = logging.getLogger(__name__)

SCHOOL_TIME_ZONE = "Europe/London"
EXPIRY_MARGIN_S = 60.0
"""Renew a token this long before the ``expires_in`` it was issued with runs out."""


class BearerTokenAuth(httpx.Auth):
    """``Authorization: Bearer {token}``; ``fetch`` returns (token, lifetime in seconds or None)."""

    def __init__(
        self, fetch: Callable[[], tuple[str, float | None]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch, self._clock = fetch, clock
        self._token: str | None = None
        self._expires_at: float | None = None

    def _renew(self) -> None:
        token, lifetime = self._fetch()
        self._token = token
        self._expires_at = None if lifetime is None else self._clock() + max(0.0, lifetime - EXPIRY_MARGIN_S)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fresh = self._token is None or (self._expires_at is not None and self._clock() >= self._expires_at)
        if fresh:
            self._renew()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and not fresh:  # revoked or expired early: one new token
            self._renew()
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


@contextlib.contextmanager
def oauth_client(
    connector: HttpApiConnector, *, token_url: str, form: Mapping[str, str], base_url: str | None = None
) -> Iterator[ApiClient]:
    """An API client whose requests carry a Bearer token from ``POST token_url`` with ``form``.

    The token endpoint may be on another host than the API (ScholarPack, OneRoster providers): it gets
    its own client, so the API client still refuses links to other hosts. A reply that rotates the
    refresh token is logged (never the token): the connection must then be updated by an admin.
    """
    url = httpx.URL(token_url)
    origin = f"{url.scheme}://{url.netloc.decode()}"
    label = f"{connector.title} token"
    with connector.make_client(base_url=origin) as token_client:

        def fetch() -> tuple[str, float | None]:
            try:
                reply = token_client.request("POST", str(url), form=form, where="token")
            except ApiAuthError:
                raise
            except ExtractError as exc:
                if str(exc).endswith("unexpected HTTP 400"):  # OAuth: invalid_client / invalid_grant
                    raise ApiAuthError(
                        f"{label}: the token request was refused (HTTP 400): check the client id, "
                        f"secret or refresh token in connection {connector.connection.conn_id!r}"
                    ) from None
                raise
            payload = reply.payload if isinstance(reply.payload, dict) else {}
            token = payload.get("access_token")
            if not isinstance(token, str) or not token:
                raise ExtractError(f"{label}: the reply has no 'access_token'")
            rotated = payload.get("refresh_token")
            if isinstance(rotated, str) and form.get("refresh_token") not in (None, rotated):
                log.warning(
                    "%s: a new refresh token was issued; store it in connection %r before the old "
                    "one stops working",
                    label,
                    connector.connection.conn_id,
                )
            lifetime = payload.get("expires_in")
            try:
                return token, None if lifetime is None else float(lifetime)
            except (TypeError, ValueError):
                return token, None

        with connector.make_client(base_url=base_url, auth=BearerTokenAuth(fetch)) as client:
            yield client


def pages_until_empty(
    client: ApiClient,
    path: str,
    query: Callable[[int], Mapping[str, Any]],
    *,
    endpoint: str,
    records: Callable[[Any, str], list[dict[str, Any]]],
    page_size: int,
    first: int = 1,
) -> Iterator[Page]:
    """Pages ``first``, ``first + 1``… (``query(n)`` gives page n's parameters) until one is empty, or
    one is short and the next is empty. Pages are numbered from 1 in messages whatever ``first`` is."""
    number, short = first, None
    while True:
        shown = number - first + 1
        where = f"{endpoint} page {shown}"
        label = f"{client.source} {where}"
        response = client.get(path, query(number), where=where)
        rows = records(response.payload, label)
        if short is not None:
            if rows:
                raise TruncatedError(
                    f"{client.source} {endpoint} page {short[0]}: truncated page: {short[1]} records where "
                    f"the page size is {page_size}, yet more pages follow (or the source caps pages "
                    "below page_size: lower it)"
                )
            return
        if len(rows) > page_size:
            raise ExtractError(f"{label}: {len(rows)} records where at most {page_size} were asked for")
        if rows:
            yield Page(shown, rows, response)
        if not rows:
            return
        if len(rows) < page_size:
            short = (shown, len(rows))
        number += 1


# --- dates -----------------------------------------------------------------------------------------


def local_today(snapshot: pd.Timestamp) -> pd.Timestamp:
    """The school's calendar day at ``snapshot`` (UK time), as a naive midnight timestamp."""
    return snapshot.tz_convert(SCHOOL_TIME_ZONE).tz_localize(None).normalize()


def parse_dates(values: pd.Series) -> pd.Series:
    """``2025-09-01``, ``2025-09-01 00:00:00`` or ``2025-09-01T00:00:00Z`` → naive dates; else NaT."""
    text = values.astype("string").str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")


def status_from_dates(start: pd.Series, end: pd.Series, today: pd.Timestamp) -> pd.Series:
    """On roll unless the start is after ``today`` (pre-admission) or the end is on or before it
    (leaver): a pupil leaving today is a leaver today."""
    start_d, end_d = parse_dates(start), parse_dates(end)
    status = pd.Series(EnrolmentStatus.ON_ROLL.value, index=start.index, dtype="string")
    status[(start_d > today).fillna(False).to_numpy(dtype=bool)] = EnrolmentStatus.PRE_ADMISSION.value
    status[(end_d <= today).fillna(False).to_numpy(dtype=bool)] = EnrolmentStatus.LEAVER.value
    return status


def current_between(start: pd.Series, end: pd.Series, today: pd.Timestamp) -> pd.Series:
    """Date-ranged memberships in force on ``today``: started (or no start) and not yet ended."""
    start_d, end_d = parse_dates(start), parse_dates(end)
    started = start_d.isna() | (start_d <= today)
    running = end_d.isna() | (end_d > today)
    return (started & running).fillna(False).astype(bool)


# --- records -----------------------------------------------------------------------------------------


def records_frame(records: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    """The (dotted) ``keys`` of each record as columns of object dtype; a missing step gives None."""
    columns: dict[str, list[Any]] = {}
    for key in dict.fromkeys(keys):
        parts = key.split(".")
        values = []
        for record in records:
            value: Any = record
            for part in parts:
                value = value.get(part) if isinstance(value, dict) else None
            values.append(value)
        columns[key] = values
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)), dtype=object)


def fill_group_context(extract: Extract, country: str = "england") -> Extract:
    """Groups the source gave no year or academic year get their pupils' shared year (a year group its
    own code) and the snapshot's academic year; values the source gave are kept. Run on the whole
    snapshot (``DeltaConnector.finish``), so a merged delta gets what a full read gets."""
    from mis_sync.connectors.wonde import derive_group_context

    derived = derive_group_context(extract, country).tables["groups"]
    groups = extract.tables["groups"].copy()
    for column in ("year_group", "academic_year"):
        groups[column] = groups[column].fillna(derived[column])
    tables = {**extract.tables, "groups": ENTITIES["groups"].coerce(groups)}
    return Extract(tables=tables, snapshot_at=extract.snapshot_at, source=extract.source)


def chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


__all__ = [
    "BearerTokenAuth",
    "chunks",
    "current_between",
    "fill_group_context",
    "local_today",
    "oauth_client",
    "pages_until_empty",
    "parse_dates",
    "records_frame",
    "status_from_dates",
]
