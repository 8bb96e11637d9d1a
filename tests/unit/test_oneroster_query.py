"""The OneRoster query parameters: the filter grammar (examples and property-based), limits, sort, fields."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mis_sync.oneroster.errors import OneRosterError
from mis_sync.oneroster.query import (
    MAX_LIMIT,
    OPERATORS,
    FilterSyntaxError,
    Logical,
    Predicate,
    parse_filter,
    parse_query,
    predicates,
    render_filter,
)


def test_single_predicate_and_operators() -> None:
    assert parse_filter("status='active'") == Predicate("status", "=", "active")
    assert parse_filter("dateLastModified>='2026-01-01T00:00:00Z'") == Predicate(
        "dateLastModified", ">=", "2026-01-01T00:00:00Z"
    )
    assert parse_filter("givenName ~ 'an'") == Predicate("givenName", "~", "an")
    assert parse_filter("familyName!='O''Neill'") == Predicate("familyName", "!=", "O'Neill")
    assert parse_filter("school.sourcedId='a b'") == Predicate("school.sourcedId", "=", "a b")


def test_and_binds_tighter_than_or() -> None:
    parsed = parse_filter("role='student' AND status='active' OR role='teacher'")
    assert parsed == Logical(
        "OR",
        (
            Logical("AND", (Predicate("role", "=", "student"), Predicate("status", "=", "active"))),
            Predicate("role", "=", "teacher"),
        ),
    )


def test_an_operator_inside_a_value_is_part_of_the_value() -> None:
    assert parse_filter("title='A AND B OR C >= D'") == Predicate("title", "=", "A AND B OR C >= D")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "status",
        "status=active",
        "status='active",
        "status=='active'",
        "='x'",
        "status='a' AND",
        "status='a' XOR role='b'",
        "status='a'role='b'",
        "(status='a')",
        "status='a' and role='b'",
        "1field='x'",
        "status <> 'a'",
    ],
)
def test_malformed_filters_are_refused(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)


def test_a_refusal_never_echoes_the_value() -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter("givenName='Amelia")
    assert "Amelia" not in str(caught.value)


def test_too_many_predicates_are_refused() -> None:
    with pytest.raises(FilterSyntaxError, match="predicates"):
        parse_filter(" OR ".join(["status='active'"] * 21))


_fields = st.sampled_from(["status", "givenName", "dateLastModified", "school.sourcedId", "role"])
_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_predicates = st.builds(Predicate, _fields, st.sampled_from(OPERATORS), _values)
_ands = st.one_of(
    _predicates, st.lists(_predicates, min_size=2, max_size=4).map(lambda p: Logical("AND", tuple(p)))
)
_filters = st.one_of(_ands, st.lists(_ands, min_size=2, max_size=4).map(lambda p: Logical("OR", tuple(p))))


def _normalise(node: Predicate | Logical) -> Predicate | Logical:
    """OR of ORs reads back flat; the parser builds the same shape, so compare flattened."""
    if isinstance(node, Predicate):
        return node
    parts: list[Predicate | Logical] = []
    for part in node.parts:
        part = _normalise(part)
        if isinstance(part, Logical) and part.op == node.op:
            parts.extend(part.parts)
        else:
            parts.append(part)
    return Logical(node.op, tuple(parts))


@given(_filters)
@settings(max_examples=300, deadline=None)
def test_render_then_parse_gives_the_same_filter(node: Predicate | Logical) -> None:
    assert parse_filter(render_filter(node)) == _normalise(node)


@given(st.text(max_size=80))
@settings(max_examples=500, deadline=None)
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except FilterSyntaxError:
        return
    assert predicates(parsed)


@given(st.text(alphabet="abc'=!<>~ ANDOR", max_size=60))
@settings(max_examples=500, deadline=None)
def test_grammar_characters_never_crash_the_parser(text: str) -> None:
    with contextlib.suppress(FilterSyntaxError):
        parse_filter(text)


def test_query_parameters() -> None:
    query = parse_query(
        {"limit": "50", "offset": "100", "sort": "familyName", "orderBy": "desc", "fields": "a,b"}
    )
    assert (query.limit, query.offset, query.sort, query.descending, query.fields) == (
        50,
        100,
        "familyName",
        True,
        ("a", "b"),
    )
    assert parse_query({}).limit == 100


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "invaliddata"),
        ({"limit": str(MAX_LIMIT + 1)}, "invaliddata"),
        ({"limit": "ten"}, "invaliddata"),
        ({"offset": "-1"}, "invaliddata"),
        ({"orderBy": "up"}, "invaliddata"),
        ({"sort": "a,b"}, "invalid_sort_field"),
        ({"fields": "a,,b"}, "invalid_selection_field"),
        ({"filter": "status"}, "invalid_filter_field"),
    ],
)
def test_bad_parameters_are_400s_with_the_specs_code(params: dict[str, str], code: str) -> None:
    with pytest.raises(OneRosterError) as caught:
        parse_query(params)
    assert (caught.value.status, caught.value.code_minor) == (400, code)
