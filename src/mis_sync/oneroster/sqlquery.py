"""Filters, sorts and pages compiled to SQL against one collection's select.

Why SQL and not Python: a trust's directory holds ~150k users and ~400k enrollments; filtering or
sorting them in Python for every page would cost seconds. Each collection (``collections``) is one
select whose labelled columns are the OneRoster fields an app may filter and sort on; this module
turns a parsed ``Query`` into WHERE / ORDER BY / LIMIT / OFFSET over it.

Semantics (written down in docs/oneroster-api.md, and mirrored by the tests' reference implementation):
``=`` and ``!=`` compare exactly (a field with no value is ``!=`` anything); ``~`` is a case-insensitive
"contains"; ``<``/``>`` compare text as text, dates as dates; ``dateLastModified`` values are ISO 8601
date-times (``Z`` or an offset; a date alone is midnight UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, DateTime, Select, String, and_, func, literal, or_, select, true, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from mis_sync.oneroster.errors import bad_request
from mis_sync.oneroster.pagecache import PageCache
from mis_sync.oneroster.query import Filter, Predicate, Query

FieldKind = Literal["text", "datetime", "date"]


@dataclass(frozen=True)
class FieldSpec:
    """A OneRoster field an app may filter and sort on: its column in the collection's select."""

    column: str
    kind: FieldKind = "text"
    sort_columns: tuple[str, ...] = ()
    """Columns that sort the same way but faster (a sourcedId sorts by its integer directory ids)."""
    group: str | None = None
    """The field group an app must be granted to see it (``apps.FIELD_GROUPS``); None: always."""


class padded_id(FunctionElement[str]):
    """``prefix`` + the integer zero-padded to 10 digits: text order equals number order, so a
    sourcedId sorts (and pages) the same as its directory id."""

    type = String()
    inherit_cache = True


@compiles(padded_id)
def _padded_default(element: padded_id, compiler: Any, **kw: Any) -> str:
    prefix, value = list(element.clauses)
    return (
        f"({compiler.process(prefix, **kw)} || lpad(CAST({compiler.process(value, **kw)} AS TEXT), 10, '0'))"
    )


@compiles(padded_id, "sqlite")
def _padded_sqlite(element: padded_id, compiler: Any, **kw: Any) -> str:
    prefix, value = list(element.clauses)
    return f"({compiler.process(prefix, **kw)} || printf('%010d', {compiler.process(value, **kw)}))"


class latest(FunctionElement[dt.datetime]):
    """The latest of several timestamps (``greatest`` in PostgreSQL, scalar ``max`` in SQLite)."""

    type = DateTime(timezone=True)
    inherit_cache = True


@compiles(latest)
def _latest_default(element: latest, compiler: Any, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(latest, "sqlite")
def _latest_sqlite(element: latest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


class bytewise(FunctionElement[str]):
    """Text compared and sorted by code point, as SQLite does and as the tests' reference does;
    PostgreSQL would otherwise use the database's locale collation (``COLLATE "C"`` there)."""

    type = String()
    inherit_cache = True


@compiles(bytewise)
def _bytewise_default(element: bytewise, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(bytewise, "postgresql")
def _bytewise_postgresql(element: bytewise, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'


def parse_sourced_id(value: str, prefix: str) -> int | None:
    """The directory id inside a sourcedId such as ``usr-0000000042``; None if it is not one."""
    digits = value[len(prefix) :] if value.startswith(prefix) else ""
    return int(digits) if len(digits) == 10 and digits.isdigit() else None


def format_sourced_id(prefix: str, number: int) -> str:
    return f"{prefix}{number:010d}"


def _datetime(field: str, value: str) -> dt.datetime:
    text = value.strip()
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_request("invaliddata", f"filter: {field} needs an ISO 8601 date-time") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    # SQLite stores the directory's UTC times without an offset: compare in UTC.
    return stamp.astimezone(dt.UTC)


def _date(field: str, value: str) -> str:
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise bad_request("invaliddata", f"filter: {field} needs a date (YYYY-MM-DD)") from None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def compile_predicate(
    predicate: Predicate, spec: FieldSpec, column: ColumnElement[Any]
) -> ColumnElement[bool]:
    op, value = predicate.op, predicate.value
    bound: Any
    if spec.kind == "datetime":
        if op == "~":
            raise bad_request("invalid_filter_field", f"filter: ~ does not apply to {predicate.field}")
        bound = literal(_datetime(predicate.field, value), DateTime(timezone=True))
    elif spec.kind == "date":
        if op == "~":
            raise bad_request("invalid_filter_field", f"filter: ~ does not apply to {predicate.field}")
        bound = literal(_date(predicate.field, value), String())
    else:
        bound = literal(value, String())
    if op == "=":
        return column == bound
    if op == "!=":
        return or_(column != bound, column.is_(None))
    if op == "~":
        return func.lower(column).like("%" + _escape_like(value.lower()) + "%", escape="\\")
    if spec.kind == "text":
        column = bytewise(column)
    comparisons = {">": column > bound, ">=": column >= bound, "<": column < bound, "<=": column <= bound}
    return comparisons[op]


def compile_filter(
    node: Filter, fields: dict[str, FieldSpec], columns: Any, visible: set[str]
) -> ColumnElement[bool]:
    if isinstance(node, Predicate):
        spec = fields.get(node.field)
        if spec is None or node.field not in visible:
            raise bad_request(
                "invalid_filter_field", f"filter: {node.field} is not a field this app can filter on"
            )
        return compile_predicate(node, spec, columns[spec.column])
    parts = [compile_filter(part, fields, columns, visible) for part in node.parts]
    return and_(*parts) if node.op == "AND" else or_(*parts)


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    total: int


Narrowing = Callable[[Any], ColumnElement[bool]]
"""A condition over a collection's columns (a nested path's parent, a sourcedId lookup)."""


def order_by(fields: dict[str, FieldSpec], visible: set[str], columns: Any, query: Query) -> list[Any]:
    """ORDER BY for the query's sort field, then the sourcedId so pages never overlap or skip."""
    sort_name = query.sort or "sourcedId"
    spec = fields.get(sort_name)
    if spec is None or sort_name not in visible:
        raise bad_request("invalid_sort_field", f"sort: {sort_name} is not a field this app can sort on")
    identity = fields["sourcedId"].sort_columns or (fields["sourcedId"].column,)
    keys = [*(spec.sort_columns or (spec.column,)), *identity]
    seen: list[str] = []
    for name in keys:
        if name not in seen:
            seen.append(name)
    text_columns = {f.column for f in fields.values() if f.kind == "text" and not f.sort_columns}
    keys = [bytewise(columns[name]) if name in text_columns else columns[name] for name in seen]
    if query.descending:
        return [key.desc().nulls_last() for key in keys]
    return [key.asc().nulls_first() for key in keys]


def conditions_for(
    fields: dict[str, FieldSpec], visible: set[str], columns: Any, query: Query, narrowing: Narrowing | None
) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if narrowing is not None:
        conditions.append(narrowing(columns))
    if query.filter is not None:
        conditions.append(compile_filter(query.filter, fields, columns, visible))
    return and_(*conditions) if conditions else true()


def run_page(
    connection: Any,
    base: Select[Any],
    fields: dict[str, FieldSpec],
    visible: set[str],
    query: Query,
    narrowing: Narrowing | None = None,
    cache: PageCache | None = None,
    cache_key: Any = None,
) -> Page:
    """One page of ``base`` filtered, sorted and counted in SQL; ``narrowing`` for nested paths.

    With a ``cache`` and a ``cache_key`` (the query and the directory state, see ``pagecache``), the
    count is computed once and a page that starts where a previous one ended seeks to it by key.
    """
    sub = base.subquery("c")
    where = conditions_for(fields, visible, sub.c, query, narrowing)
    order = order_by(fields, visible, sub.c, query)
    total = cache.get(("count", cache_key)) if cache is not None else None
    if total is None:
        total = int(connection.execute(select(func.count()).select_from(sub).where(where)).scalar_one())
        if cache is not None:
            cache.put(("count", cache_key), total)
    keys = _keyset_columns(fields, query)
    statement = select(sub).where(where).order_by(*order).limit(query.limit)
    start = _start_position(connection, sub, where, order, fields, keys, query, cache, cache_key)
    if start is not None:
        key_after, skip = start
        position = tuple_(*_key_expressions(fields, sub.c, keys))
        after = position < tuple_(*key_after) if query.descending else position > tuple_(*key_after)
        rows = connection.execute(statement.where(after).offset(skip)).all()
    else:
        rows = connection.execute(statement.offset(query.offset)).all()
    if cache is not None and keys and len(rows) == query.limit:
        last = rows[-1]._mapping
        cache.put(("seek", cache_key, query.offset + query.limit), tuple(last[name] for name in keys))
    return Page(rows, total)


ANCHOR_EVERY = 1000
"""A deep page starts from the nearest remembered position at most this many rows before it."""


def _key_expressions(fields: dict[str, FieldSpec], columns: Any, keys: tuple[str, ...]) -> list[Any]:
    text_columns = {f.column for f in fields.values() if f.kind == "text" and not f.sort_columns}
    return [bytewise(columns[name]) if name in text_columns else columns[name] for name in keys]


def _start_position(
    connection: Any,
    sub: Any,
    where: ColumnElement[bool],
    order: list[Any],
    fields: dict[str, FieldSpec],
    keys: tuple[str, ...],
    query: Query,
    cache: PageCache | None,
    cache_key: Any,
) -> tuple[tuple[Any, ...], int] | None:
    """Where a sourcedId-sorted page can start by key instead of stepping over ``offset`` rows: the
    sort key of the row before it and how many rows to skip after that; None to use the offset.

    A crawl's next page starts right after the previous page's last row. Any other deep page starts
    from an anchor: the key of every ``ANCHOR_EVERY``-th row, read once per query and directory state.
    """
    if cache is None or not keys or query.offset == 0:
        return None
    seek = cache.get(("seek", cache_key, query.offset))
    if seek is not None:
        return seek, 0
    if query.offset < ANCHOR_EVERY:
        return None
    anchors = cache.get(("anchors", cache_key))
    if anchors is None:
        key_rows = connection.execute(select(*(sub.c[name] for name in keys)).where(where).order_by(*order))
        anchors = [tuple(row) for number, row in enumerate(key_rows, 1) if number % ANCHOR_EVERY == 0]
        cache.put(("anchors", cache_key), anchors)
    index = min(query.offset // ANCHOR_EVERY, len(anchors))
    if index == 0:
        return None
    return anchors[index - 1], query.offset - index * ANCHOR_EVERY


def _keyset_columns(fields: dict[str, FieldSpec], query: Query) -> tuple[str, ...]:
    """The columns a sourcedId sort orders by (never null, unique): the only sort that seeks by key."""
    if query.sort not in (None, "sourcedId"):
        return ()
    identity = fields["sourcedId"]
    return identity.sort_columns or (identity.column,)


def lookup(connection: Any, base: Select[Any], narrowing: Narrowing) -> Any | None:
    """The one row of ``base`` that ``narrowing`` selects (a sourcedId), or None."""
    sub = base.subquery("c")
    return connection.execute(select(sub).where(narrowing(sub.c))).first()
