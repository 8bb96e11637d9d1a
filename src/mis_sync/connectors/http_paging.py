"""Paging and record helpers for HTTP API connectors (see ``http_api``): they check what they are given.

- ``follow_links``: pages linked by a "next" URL (Wonde ``meta.pagination.next``, Arbor hrefs).
- ``numbered_pages``: page N of M with a row count (Xporter ``__pagination__``, ScholarPack).
- ``offset_pages``: limit/offset with a total (OneRoster REST ``X-Total-Count``).

A page shorter than its page size before the last, a missing "next" link while the source says there is
more, or a total that does not add up stops the extract as *truncated* (``TruncatedError``) rather than
quietly producing a smaller school, which would suspend real children's accounts.

``json_list`` and ``require_keys`` check the records themselves. Errors name the source, endpoint,
page and record position/id, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mis_sync.connectors.http_api import ApiClient, ApiResponse
from mis_sync.errors import ExtractError


def dig(record: Mapping[str, Any], dotted: str) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; None when any step is missing."""
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def json_list(payload: Any, key: str, where: str) -> list[dict[str, Any]]:
    """The list of objects at ``payload[key]`` (dotted), or an error naming what is wrong."""
    if not isinstance(payload, Mapping):
        raise ExtractError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    value = dig(payload, key)
    if value is None:
        raise ExtractError(f"{where}: required key {key!r} is missing")
    if not isinstance(value, list):
        raise ExtractError(f"{where}: {key!r} is not a list")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ExtractError(f"{where}: {key}[{i}] is not an object")
    return value


def require_keys(records: list[dict[str, Any]], keys: list[str], where: str, id_key: str) -> None:
    """Every record carries every required key, non-null; the error names the record by position and
    id (ids are not personal data), never by any other value."""
    for i, record in enumerate(records):
        for key in keys:
            if dig(record, key) is None:
                ident = dig(record, id_key)
                named = f" (id {ident})" if ident is not None and key != id_key else ""
                raise ExtractError(f"{where}: record {i}{named}: required key {key!r} is missing")


@dataclass(frozen=True)
class Page:
    number: int
    records: list[dict[str, Any]]
    response: ApiResponse


class TruncatedError(ExtractError):
    """The pages do not add up: the source sent less than it said it had."""


def as_int(value: Any, what: str, where: str) -> int:
    """Paging numbers arrive as numbers or strings (Wonde's ``per_page``)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExtractError(f"{where}: {what} is missing or not a number") from None


def follow_links(
    client: ApiClient,
    path: str,
    params: Mapping[str, Any],
    *,
    endpoint: str,
    records: Callable[[Any, str], list[dict[str, Any]]],
    next_link: Callable[[Any], str | None],
    more: Callable[[Any], bool | None] = lambda _: None,
    page_size: Callable[[Any, str], int | None] = lambda _p, _w: None,
) -> Iterator[Page]:
    """Pages linked by a "next" URL. Truncated: ``more`` true without a link, or a page that is not
    the last yet holds fewer records than its page size. A link seen twice is a loop."""
    url: str = path
    query: Mapping[str, Any] | None = params
    seen: set[str] = set()
    number = 1
    while True:
        where = f"{endpoint} page {number}"
        response = client.get(url, query, where=where)
        rows = records(response.payload, f"{client.source} {where}")
        yield Page(number, rows, response)
        link, has_more = next_link(response.payload), more(response.payload)
        if not link:
            if has_more:
                raise TruncatedError(f"{client.source} {where}: says more pages follow but has no next link")
            return
        if has_more is False:
            return
        size = page_size(response.payload, f"{client.source} {where}")
        if size is not None and len(rows) < size:
            raise TruncatedError(
                f"{client.source} {where}: truncated page: {len(rows)} records where the page size is "
                f"{size}, yet more pages follow"
            )
        if link in seen:
            raise ExtractError(f"{client.source} {where}: the next link repeats an earlier page")
        seen.add(link)
        url, query, number = link, None, number + 1


@dataclass(frozen=True)
class PageInfo:
    number: int
    count: int
    total: int | None = None
    size: int | None = None


def numbered_pages(
    client: ApiClient,
    path: str,
    params: Mapping[str, Any],
    *,
    endpoint: str,
    records: Callable[[Any, str], list[dict[str, Any]]],
    info: Callable[[Any, str], PageInfo],
    page_size: int,
    page_param: str = "page",
    size_param: str = "pageSize",
) -> Iterator[Page]:
    """Pages 1..N as declared by the first page. Truncated: a page other than the asked one, a short
    page before the last, the declared page count or row count changing mid-way, or the records
    received not adding up to the declared row count."""
    number, received = 1, 0
    first: PageInfo | None = None
    while True:
        where = f"{endpoint} page {number}"
        label = f"{client.source} {where}"
        response = client.get(path, {**params, page_param: number, size_param: page_size}, where=where)
        rows = records(response.payload, label)
        meta = info(response.payload, label)
        if meta.number != number:
            raise TruncatedError(f"{label}: asked for page {number}, got page {meta.number}")
        first = first or meta
        if (meta.count, meta.total) != (first.count, first.total):
            raise TruncatedError(f"{label}: page count or row count changed while paging")
        received += len(rows)
        last = number >= meta.count
        if not last and len(rows) < (meta.size or page_size):
            raise TruncatedError(
                f"{label}: truncated page: {len(rows)} records where the page size is "
                f"{meta.size or page_size}, yet {meta.count} pages are declared"
            )
        yield Page(number, rows, response)
        if last:
            break
        number += 1
    if first.total is not None and received != first.total:
        raise TruncatedError(
            f"{client.source} {endpoint}: truncated: {received} records received over {first.count} "
            f"page(s) but the source declared {first.total}"
        )


def offset_pages(
    client: ApiClient,
    path: str,
    params: Mapping[str, Any],
    *,
    endpoint: str,
    records: Callable[[Any, str], list[dict[str, Any]]],
    limit: int,
    total: Callable[[ApiResponse], int | None] = lambda r: (
        int(r.headers["x-total-count"]) if "x-total-count" in r.headers else None
    ),
    limit_param: str = "limit",
    offset_param: str = "offset",
) -> Iterator[Page]:
    """limit/offset pages (OneRoster REST: ``X-Total-Count``). Stops at a short page; truncated if a
    declared total is not what arrived."""
    offset, number, declared = 0, 1, None
    while True:
        where = f"{endpoint} page {number}"
        response = client.get(path, {**params, limit_param: limit, offset_param: offset}, where=where)
        rows = records(response.payload, f"{client.source} {where}")
        declared = declared if declared is not None else total(response)
        yield Page(number, rows, response)
        offset += len(rows)
        if len(rows) < limit or (declared is not None and offset >= declared):
            break
        number += 1
    if declared is not None and offset != declared:
        raise TruncatedError(
            f"{client.source} {endpoint}: truncated: {offset} records received but the source "
            f"declared {declared}"
        )
