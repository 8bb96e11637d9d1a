"""OneRoster 1.1 REST connector against its local fake: the generated large secondary round-trips to what
OneRoster 1.1 can carry, ``dateLastModified`` deltas with ``tobedeleted`` deletions == a full read,
limit/offset paging with ``X-Total-Count``, OAuth 2 client credentials or a fixed bearer token, and the
checks every API connector passes (``tests/unit/api_checks.py``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.connectors.delta import DeltaConnector, DeltaResult
from mis_sync.connectors.http_api import ApiAuthError
from mis_sync.connectors.http_paging import TruncatedError
from mis_sync.generator import generate_school
from mis_sync.model import ENTITIES, Extract
from tests.unit.api_sources import APIS, assert_carried, failure, served
from tests.unit.test_delta import evolve_school

AS_OF = dt.date(2026, 1, 15)
API = APIS["oneroster_rest"]


@pytest.fixture(scope="module")
def large() -> Extract:
    return generate_school("large-secondary", 1, AS_OF)


@pytest.fixture(scope="module")
def small() -> Extract:
    return generate_school("small-primary", 2, AS_OF)


@dataclass(frozen=True)
class Scenario:
    first: DeltaResult
    delta: DeltaResult
    again: Extract
    later: Extract
    records_full: int
    records_delta: int


@pytest.fixture(scope="module")
def scenario(large: Extract) -> Scenario:
    """Full read of the large school; the school changes; a delta; a fresh full read."""
    with served(API, large) as (fake, connector):
        assert isinstance(connector, DeltaConnector)
        first = connector.extract_delta(None)
        records_full = fake.counters["records"]
        later = evolve_school(large)
        fake.publish(later)
        fake.reset_counters()
        delta = connector.extract_delta(first.state)
        records_delta = fake.counters["records"]
        again = connector_for(API.type, API.connection(fake), {}).extract()
    return Scenario(first, delta, again, later, records_full, records_delta)


def test_round_trip_of_the_large_secondary(scenario: Scenario, large: Extract) -> None:
    assert scenario.first.mode == "full"
    assert_carried(scenario.first.extract, API.carries(large))
    assert scenario.first.extract.snapshot_at == large.snapshot_at


def test_delta_equals_a_full_read(scenario: Scenario) -> None:
    assert scenario.delta.mode == "delta", scenario.delta.reason
    for name in ENTITIES:  # literally equal, row for row: both come out in canonical order
        assert scenario.delta.extract.tables[name].equals(scenario.again.tables[name]), name
    assert_carried(scenario.delta.extract, API.carries(scenario.later))
    assert scenario.delta.extract.snapshot_at == scenario.later.snapshot_at
    assert scenario.records_delta < scenario.records_full / 20
    assert scenario.delta.state.deltas_since_full == 1


def test_tobedeleted_records_are_deletions(scenario: Scenario) -> None:
    before, after = scenario.first.extract.tables, scenario.delta.extract.tables
    gone = set(before["pupils"]["mis_id"]) - set(after["pupils"]["mis_id"])
    assert len(gone) == 3 and scenario.delta.changes["pupils"]["deleted"] == 3
    assert not gone & set(after["relationships"]["pupil_id"])
    assert not gone & set(after["memberships"]["person_id"])
    assert len(set(before["contacts"]["mis_id"]) - set(after["contacts"]["mis_id"])) == 2
    assert scenario.delta.changes["groups"]["deleted"] == 1


def test_catalogue_registers_it_with_deltas_and_no_year_groups() -> None:
    entry = CATALOGUE["oneroster_rest"]
    assert entry.delta is True and entry.provides == frozenset(ENTITIES)
    assert entry.missing_group_kinds() == {"year"} and "year" in entry.notes


def test_fixed_bearer_token(small: Extract) -> None:
    with served(API, small, fake_args={"static_token": "fixed-token-123"}) as (fake, _):
        connection = ConnectionInfo(
            "mis_or_bearer",
            extra={"base_url": fake.base_url + "/ims/oneroster/v1p1", "bearer_token": "fixed-token-123"},
        )
        assert_carried(connector_for(API.type, connection, {}).extract(), API.carries(small))
        assert fake.tokens.issued == 0


# --- OneRoster specifics ------------------------------------------------------------------------------


def test_truncated_last_page_is_caught_by_x_total_count(small: Extract) -> None:
    with served(API, small, page_size=1000) as (fake, connector):
        fake.faults.truncated = {("users", 1)}  # one page only: its shortfall looks like an end
        message = failure(connector, small, TruncatedError)
    assert "users: truncated" in message and "the source declared" in message


def test_refused_client_credentials_at_the_token_endpoint(small: Extract) -> None:
    with served(API, small) as (fake, connector):
        fake.faults.unauthorized = True
        message = failure(connector, small, ApiAuthError)
    assert "OneRoster REST token: authentication failed (HTTP 401)" in message
