"""Bromcom connector against its local fake: the generated large secondary round-trips to what the
Partner REST API can carry (``tests/unit/api_sources.py``), ``{page:N}`` paging from page 0, a
``Success: false`` reply, and the checks every API connector passes (``tests/unit/api_checks.py``)."""

from __future__ import annotations

import datetime as dt

import pytest

from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.generator import generate_school
from mis_sync.model import ENTITIES, Extract
from tests.unit import api_checks as checks
from tests.unit.api_sources import APIS, assert_carried, failure, served

AS_OF = dt.date(2026, 1, 15)
API = APIS["bromcom"]


@pytest.fixture(scope="module")
def small() -> Extract:
    return generate_school("small-primary", 2, AS_OF)


def test_round_trip_of_the_large_secondary() -> None:
    large = generate_school("large-secondary", 1, AS_OF)
    with served(API, large) as (fake, connector):
        got = connector.extract()
    assert_carried(got, API.carries(large))
    assert got.snapshot_at == large.snapshot_at
    assert fake.counters["requests"] == 2 * 6  # one full page and the empty one after it, per entity


def test_pages_are_numbered_from_zero_in_the_entity_filter(small: Extract) -> None:
    with served(API, small, pages=True) as (fake, connector):
        connector.extract()
        pages = checks.pupil_pages(fake, API)
    assert "%7Bpage%3A0%7D" in pages[0] and "%7Bpage%3A1%7D" in pages[1]


def test_unsuccessful_reply_is_an_error(small: Extract) -> None:
    with served(API, small) as (fake, connector):
        fake.success_false = {"Staff"}
        assert "Bromcom Staff page 1: the reply says Success: false" in failure(connector, small)


def test_catalogue_registers_bromcom_without_deltas() -> None:
    entry = CATALOGUE["bromcom"]
    assert entry.delta is False and entry.provides == frozenset(ENTITIES) and not entry.missing_group_kinds()
