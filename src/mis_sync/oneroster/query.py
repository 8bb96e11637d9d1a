"""The OneRoster 1.2 query parameters, parsed into plain values (pure: no SQL, no web framework).

``filter`` grammar (REST binding §3.4.2): ``field op 'value'`` predicates joined by `` AND `` / `` OR ``,
where ``op`` is ``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=`` or ``~`` (contains). Values are quoted
with single quotes; a quote inside a value is doubled (``'O''Neill'``). ``AND`` binds tighter than
``OR``. Anything else is a ``400`` with codeMinor ``invalid_filter_field``: a malformed filter must
never reach the database or become a 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mis_sync.oneroster.errors import bad_request

Operator = Literal["=", "!=", ">", ">=", "<", "<=", "~"]
OPERATORS: tuple[Operator, ...] = ("!=", ">=", "<=", "=", ">", "<", "~")
"""Longest first, so ``>=`` is never read as ``>`` followed by ``=``."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
"""An app may ask for up to this many records a page (the spec lets the provider cap it)."""
MAX_PREDICATES = 20
"""A filter with more predicates than this is refused: no legitimate sync needs it, and each costs SQL."""
MAX_FILTER_LENGTH = 2000

_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")


class FilterSyntaxError(ValueError):
    """The filter does not follow the grammar; the message says where, never echoing the value."""


@dataclass(frozen=True)
class Predicate:
    field: str
    op: Operator
    value: str


@dataclass(frozen=True)
class Logical:
    """``AND`` or ``OR`` of two or more parts."""

    op: Literal["AND", "OR"]
    parts: tuple[Predicate | Logical, ...]


Filter = Predicate | Logical


@dataclass(frozen=True)
class Query:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    sort: str | None = None
    descending: bool = False
    fields: tuple[str, ...] | None = None
    filter: Filter | None = None


def parse_filter(text: str) -> Filter:
    """Parse a ``filter`` value; raise ``FilterSyntaxError`` saying what is wrong and at which character."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(f"longer than {MAX_FILTER_LENGTH} characters")
    predicates: list[Predicate] = []
    joins: list[str] = []
    position = 0
    while True:
        predicate, position = _predicate(text, position)
        predicates.append(predicate)
        if len(predicates) > MAX_PREDICATES:
            raise FilterSyntaxError(f"more than {MAX_PREDICATES} predicates")
        position = _skip_spaces(text, position)
        if position == len(text):
            break
        match = re.compile(r"(AND|OR)(?=\s)").match(text, position)
        if match is None:
            raise FilterSyntaxError(f"expected AND or OR at character {position + 1}")
        joins.append(match.group(1))
        position = match.end()
    return _combine(predicates, joins)


def _combine(predicates: list[Predicate], joins: list[str]) -> Filter:
    """AND binds tighter than OR: ``a AND b OR c`` is ``(a AND b) OR c``."""
    groups: list[list[Predicate]] = [[predicates[0]]]
    for join, predicate in zip(joins, predicates[1:], strict=True):
        if join == "AND":
            groups[-1].append(predicate)
        else:
            groups.append([predicate])
    terms: list[Filter] = [group[0] if len(group) == 1 else Logical("AND", tuple(group)) for group in groups]
    return terms[0] if len(terms) == 1 else Logical("OR", tuple(terms))


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _predicate(text: str, position: int) -> tuple[Predicate, int]:
    position = _skip_spaces(text, position)
    field = _FIELD.match(text, position)
    if field is None:
        raise FilterSyntaxError(f"expected a field name at character {position + 1}")
    position = _skip_spaces(text, field.end())
    op = next((o for o in OPERATORS if text.startswith(o, position)), None)
    if op is None:
        raise FilterSyntaxError(f"expected one of {' '.join(OPERATORS)} after {field.group()}")
    position = _skip_spaces(text, position + len(op))
    if position >= len(text) or text[position] != "'":
        raise FilterSyntaxError(f"the value for {field.group()} must be in single quotes")
    value, position = _quoted(text, position, field.group())
    return Predicate(field.group(), op, value), position


def _quoted(text: str, position: int, field: str) -> tuple[str, int]:
    """The single-quoted value starting at ``position`` (a doubled quote is a quote)."""
    chars: list[str] = []
    position += 1
    while position < len(text):
        char = text[position]
        if char == "'":
            if text.startswith("''", position):
                chars.append("'")
                position += 2
                continue
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    raise FilterSyntaxError(f"the value for {field} has no closing quote")


def render_filter(node: Filter) -> str:
    """The filter as text that ``parse_filter`` reads back to the same value (tests, ``Link`` headers).

    The grammar has no parentheses, so only what the parser builds can be written: ORs of ANDs.
    """
    if isinstance(node, Predicate):
        return f"{node.field}{node.op}'" + node.value.replace("'", "''") + "'"
    if node.op == "AND" and any(isinstance(part, Logical) for part in node.parts):
        raise ValueError("the filter grammar has no parentheses: an OR inside an AND cannot be written")
    return f" {node.op} ".join(render_filter(part) for part in node.parts)


def _integer(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise bad_request("invaliddata", f"{name} must be a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise bad_request("invaliddata", f"{name} must be between {low} and {high}")
    return value


def parse_query(params: dict[str, str]) -> Query:
    """``limit``, ``offset``, ``sort``, ``orderBy``, ``fields`` and ``filter`` from the query string.

    Field names are checked later, against the collection (``sqlquery``); this checks only the shape.
    """
    limit = _integer("limit", params.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _integer("offset", params.get("offset"), 0, 0, 10**9)
    order = params.get("orderBy")
    if order not in (None, "", "asc", "desc"):
        raise bad_request("invaliddata", "orderBy must be asc or desc")
    sort = params.get("sort") or None
    if sort is not None and not _FIELD.fullmatch(sort):
        raise bad_request("invalid_sort_field", "sort must name one field")
    fields = None
    if params.get("fields"):
        fields = tuple(part.strip() for part in params["fields"].split(","))
        if not all(_FIELD.fullmatch(part) for part in fields):
            raise bad_request(
                "invalid_selection_field", "fields must be a comma-separated list of field names"
            )
    parsed_filter = None
    if params.get("filter"):
        try:
            parsed_filter = parse_filter(params["filter"])
        except FilterSyntaxError as exc:
            raise bad_request("invalid_filter_field", f"filter: {exc}") from None
    return Query(limit, offset, sort, order == "desc", fields, parsed_filter)


def predicates(node: Filter | None) -> list[Predicate]:
    """Every predicate of a filter, in order."""
    if node is None:
        return []
    if isinstance(node, Predicate):
        return [node]
    return [p for part in node.parts for p in predicates(part)]
