"""iSAMS REST connector against its local fake: the generated large secondary round-trips to what the
REST API can carry (group ids as the Batch connector's), OAuth 2 client credentials (expiry, refusal),
the declared totals, and the checks every API connector passes (``tests/unit/api_checks.py``)."""

from __future__ import annotations

import datetime as dt

import pytest

from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.connectors.http_api import ApiAuthError
from mis_sync.connectors.http_paging import TruncatedError
from mis_sync.generator import generate_school
from mis_sync.model import ENTITIES, Extract
from tests.unit.api_sources import APIS, assert_carried, failure, served

AS_OF = dt.date(2026, 1, 15)
API = APIS["isams_rest"]


@pytest.fixture(scope="module")
def small() -> Extract:
    return generate_school("small-primary", 2, AS_OF)


def test_round_trip_of_the_large_secondary() -> None:
    large = generate_school("large-secondary", 1, AS_OF)
    with served(API, large) as (fake, connector):
        got = connector.extract()
    assert_carried(got, API.carries(large))
    assert got.snapshot_at == large.snapshot_at and fake.tokens.issued == 1
    sets = int((large.tables["groups"]["kind"] == "teaching").sum())
    assert fake.counters["requests"] > sets + len(
        large.tables["pupils"]
    )  # a setList per set, contacts per pupil
    assert set(got.tables["groups"]["mis_id"].str.split(":").str[0]) == {"year", "form", "set"}


def test_catalogue_registers_isams_rest() -> None:
    entry = CATALOGUE["isams_rest"]
    assert entry.provides == frozenset(ENTITIES) and not entry.missing_group_kinds() and entry.delta is False


def test_token_expiry_fetches_a_new_token(small: Extract) -> None:
    with served(API, small) as (fake, connector):
        fake.tokens.token_uses = 60
        assert_carried(connector.extract(), API.carries(small))
    assert fake.tokens.issued > 2


def test_rejected_token_mid_run_says_so(small: Extract) -> None:
    with served(API, small) as (fake, connector):
        fake.tokens.token_uses = 0  # every token is refused at once, the renewed one too
        message = failure(connector, small, ApiAuthError)
    assert "iSAMS REST students page 1: authentication failed (HTTP 401)" in message


def test_truncated_last_page_is_caught_by_the_declared_total(small: Extract) -> None:
    with served(API, small, page_size=500) as (fake, connector):
        fake.faults.truncated = {("students", 1)}  # one page only: its shortfall looks like an end
        message = failure(connector, small, TruncatedError)
    assert "students: truncated" in message and "the source declared" in message
