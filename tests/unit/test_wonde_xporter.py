"""Wonde and Groupcall Xporter connectors against their local fakes: round trip of a generated school,
paging, delta == full, deletions, and every failure a clear ``ExtractError`` without personal data."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.connectors.delta import DeltaConnector, DeltaResult
from mis_sync.connectors.http_api import (
    ApiAuthError,
    ApiClient,
    ApiPermissionError,
    SourceUnavailableError,
    retry_after_seconds,
)
from mis_sync.connectors.http_paging import TruncatedError, follow_links, json_list
from mis_sync.errors import DataError, ExtractError, SetupError
from mis_sync.fakes.wonde import running_fake_wonde
from mis_sync.fakes.xporter import running_fake_xporter
from mis_sync.generator import generate_school
from mis_sync.model import ENTITIES, Extract
from tests.unit.test_delta import assert_same, evolve_school

AS_OF = dt.date(2026, 1, 15)


def wonde_connection(fake: Any) -> ConnectionInfo:
    return ConnectionInfo(
        conn_id="mis_wonde",
        login=fake.school_id,
        password=fake.token,
        extra={"base_url": fake.base_url + "/v1.0"},
    )


def xporter_connection(fake: Any) -> ConnectionInfo:
    extra = {"base_url": fake.base_url + "/api/v1", "token_url": fake.token_url, "estab": fake.estab}
    return ConnectionInfo(conn_id="mis_xod", login=fake.relying_party, password=fake.secret, extra=extra)


@dataclass(frozen=True)
class Source:
    type: str
    serve: Callable[..., contextlib.AbstractContextManager[Any]]
    connection: Callable[[Any], ConnectionInfo]
    pupils: str
    """The endpoint pupils come from (faults are keyed by it)."""
    contacts: str


SOURCES = {
    "wonde": Source("wonde", running_fake_wonde, wonde_connection, "students", "contacts"),
    "xporter": Source("xporter", running_fake_xporter, xporter_connection, "Students", "Contacts"),
}


@contextlib.contextmanager
def served(source: Source, school: Extract, **options: Any) -> Iterator[tuple[Any, DeltaConnector]]:
    """A fake serving ``school`` and a connector pointed at it (``options`` are ``mis.options``)."""
    with source.serve(school) as fake:
        connector = connector_for(source.type, source.connection(fake), options)
        assert isinstance(connector, DeltaConnector)
        connector.sleep = lambda seconds: None
        yield fake, connector


def personal_values(extract: Extract) -> set[str]:
    """Every personal value of 4+ characters (names, UPNs, dates of birth, emails, phones); a message
    leaks one if it holds it as a whole word ("Read" in "ReadTimeout" is not a surname)."""
    values: set[str] = set()
    for name, entity in ENTITIES.items():
        for column in entity.personal_columns:
            series = extract.tables[name][column].dropna()
            text = series.dt.strftime("%Y-%m-%d") if series.dtype.kind == "M" else series.astype(str)
            values |= {v for v in text if len(v) >= 4}
    return values


def failure(connector: DeltaConnector, school: Extract, error: type[Exception] = ExtractError) -> str:
    with pytest.raises(error) as info:
        connector.extract()
    message = str(info.value)
    leaked = [v for v in personal_values(school) if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", message)]
    assert not leaked, f"personal data in the error message: {len(leaked)} value(s)"
    return message


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


@pytest.fixture(scope="module", params=sorted(SOURCES))
def scenario(request: pytest.FixtureRequest, large: Extract) -> Scenario:
    """Full read of the large school; the school changes; a delta read; a fresh full read."""
    source = SOURCES[request.param]
    with served(source, large) as (fake, connector):
        first = connector.extract_delta(None)
        records_full = fake.counters["records"]
        later = evolve_school(large)
        fake.publish(later)
        fake.reset_counters()
        delta = connector.extract_delta(first.state)
        records_delta = fake.counters["records"]
        again = connector_for(source.type, source.connection(fake), {}).extract()
    return Scenario(first, delta, again, later, records_full, records_delta)


# --- round trip, delta, deletions ----------------------------------------------------------------------


def test_round_trip_of_the_large_secondary_is_identical(scenario: Scenario, large: Extract) -> None:
    assert scenario.first.mode == "full"
    assert_same(scenario.first.extract, large)
    assert scenario.first.extract.snapshot_at == large.snapshot_at


def test_delta_applied_to_the_previous_snapshot_equals_a_full_read(scenario: Scenario) -> None:
    assert scenario.delta.mode == "delta", scenario.delta.reason
    assert_same(scenario.delta.extract, scenario.again)
    assert_same(scenario.delta.extract, scenario.later)
    for name in ENTITIES:  # literally equal, row for row: both come out in canonical order
        assert scenario.delta.extract.tables[name].equals(scenario.again.tables[name]), name
    assert scenario.delta.extract.snapshot_at == scenario.later.snapshot_at == scenario.again.snapshot_at
    assert scenario.records_delta < scenario.records_full / 5
    assert scenario.delta.state.deltas_since_full == 1


def test_deletions_remove_records_and_what_hangs_off_them(scenario: Scenario, large: Extract) -> None:
    before, after = large.tables, scenario.delta.extract.tables
    gone = set(before["pupils"]["mis_id"]) - set(after["pupils"]["mis_id"])
    assert len(gone) == 3
    assert not gone & set(after["relationships"]["pupil_id"])
    assert not gone & set(after["memberships"]["person_id"])
    dropped = set(before["groups"]["mis_id"]) - set(after["groups"]["mis_id"])
    assert len(dropped) == 1
    assert not dropped & set(after["memberships"]["group_id"])
    assert len(set(before["contacts"]["mis_id"]) - set(after["contacts"]["mis_id"])) == 2
    assert scenario.delta.changes["pupils"]["deleted"] == 3


# --- paging ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_small_pages_give_the_same_school(source_type: str, small: Extract) -> None:
    source = SOURCES[source_type]
    with served(source, small, page_size=25) as (fake, connector):
        assert_same(connector.extract(), small)
        pupil_pages = [p for m, p, s in fake.requests if f"/{source.pupils}?" in p and s == 200]
    on_roll = int((small.tables["pupils"]["enrolment_status"] == "on_roll").sum())
    expected = math.ceil((on_roll if source_type == "wonde" else len(small.tables["pupils"])) / 25)
    assert len(pupil_pages) == expected > 1


# --- failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_refused_credentials_say_so(source_type: str, small: Extract) -> None:
    with served(SOURCES[source_type], small) as (fake, connector):
        fake.faults.unauthorized = True
        message = failure(connector, small, ApiAuthError)
    assert "HTTP 401" in message and "connection 'mis_" in message
    assert ("students page 1" if source_type == "wonde" else "GetToken") in message
    assert "fake-school-secret" not in message and "fake-wonde-token" not in message


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_missing_permission_names_the_endpoint(source_type: str, small: Extract) -> None:
    source = SOURCES[source_type]
    with served(source, small) as (fake, connector):
        fake.faults.forbidden = {source.contacts}
        message = failure(connector, small, ApiPermissionError)
    assert f"{source.contacts} page 1" in message and "HTTP 403" in message and "granted" in message


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_malformed_payload_names_endpoint_and_page(source_type: str, small: Extract) -> None:
    source = SOURCES[source_type]
    with served(source, small, page_size=50) as (fake, connector):
        fake.faults.malformed = {(source.pupils, 2)}
        message = failure(connector, small)
    assert f"{source.pupils} page 2: malformed JSON" in message


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_truncated_page_stops_the_extract(source_type: str, small: Extract) -> None:
    source = SOURCES[source_type]
    with served(source, small, page_size=50) as (fake, connector):
        fake.faults.truncated = {(source.pupils, 1)}
        message = failure(connector, small, TruncatedError)
    assert f"{source.pupils} page 1: truncated page" in message


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_truncated_last_page_is_caught_by_the_declared_total(source_type: str, small: Extract) -> None:
    source = SOURCES[source_type]
    with served(source, small, page_size=500) as (fake, connector):
        fake.faults.truncated = {(source.pupils, 1)}  # one page only: its shortfall looks like an end
        message = failure(connector, small, TruncatedError)
    total = "/counts reports" if source_type == "wonde" else "the source declared"
    assert f"{source.pupils}" in message and "truncated" in message and total in message


@pytest.mark.parametrize(("source_type", "key"), [("wonde", "id"), ("xporter", "Id")])
def test_missing_required_key_names_record_and_key(source_type: str, key: str, small: Extract) -> None:
    source = SOURCES[source_type]
    with served(source, small) as (fake, connector):
        fake.faults.drop_key = {source.contacts: key}
        message = failure(connector, small)
    assert f"{source.contacts} page 1: record 0: required key '{key}' is missing" in message


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_rate_limits_are_waited_out_as_asked(source_type: str, small: Extract) -> None:
    with served(SOURCES[source_type], small) as (fake, connector):
        waits: list[float] = []
        connector.sleep = waits.append
        fake.faults.throttle_next, fake.faults.retry_after = 3, "7"
        assert_same(connector.extract(), small)
        fake.faults.error_next = 2
        assert_same(connector.extract(), small)
    assert fake.counters["throttles"] == 3 and fake.counters["errors"] == 2
    assert waits[:3] == [7.0, 7.0, 7.0] and len(waits) == 5


def test_persistent_server_errors_and_long_waits_fail_clearly(small: Extract) -> None:
    with served(SOURCES["wonde"], small, retry_attempts=3) as (fake, connector):
        fake.faults.error_next = 10
        message = failure(connector, small, SourceUnavailableError)  # not a DataError: the task retries
        assert "students page 1: HTTP 503, 3 attempts made" in message
        fake.faults.error_next, fake.faults.throttle_next, fake.faults.retry_after = 0, 1, "3600"
        assert "asks to wait 3600 s" in failure(connector, small, SourceUnavailableError)
    assert not issubclass(SourceUnavailableError, DataError)


def test_timeouts_are_retried_then_reported(small: Extract) -> None:
    with served(SOURCES["wonde"], small, timeout=0.05, retry_attempts=2) as (fake, connector):
        fake.faults.delay = 0.25
        message = failure(connector, small, SourceUnavailableError)
    assert "students page 1: timed out (ReadTimeout), 2 attempts made" in message


def test_xporter_fetches_a_new_token_when_one_expires(small: Extract) -> None:
    with served(SOURCES["xporter"], small) as (fake, connector):
        fake.token_uses = 3
        assert_same(connector.extract(), small)
        tokens = [p for m, p, s in fake.requests if m == "POST" and p.endswith("/GetToken")]
    assert len(tokens) > 2


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_missing_secret_is_a_setup_error_naming_the_field(source_type: str) -> None:
    connection = ConnectionInfo(conn_id="mis_bare", login="x", extra={"estab": "8814001"})
    with pytest.raises(SetupError, match=r"connection 'mis_bare': no .* \(set password or extra\."):
        connector_for(source_type, connection, {}).extract()


def test_catalogue_registers_both_with_deltas() -> None:
    for name in ("wonde", "xporter"):
        entry = CATALOGUE[name]
        assert entry.delta is True
        assert entry.provides == frozenset(ENTITIES)


# --- the client on its own --------------------------------------------------------------------------------


def test_client_refuses_plain_http_and_links_to_other_hosts() -> None:
    with pytest.raises(SetupError, match="not HTTPS"):
        ApiClient("http://api.example.org/v1", source="T", conn_id="c")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": "1"}], "meta": {"next": "https://evil.example/x"}})

    client = ApiClient(
        "https://api.example.org/v1", source="T", conn_id="c", transport=httpx.MockTransport(handler)
    )
    pages = follow_links(
        client, "things", {}, endpoint="things",
        records=lambda p, w: json_list(p, "data", w), next_link=lambda p: p["meta"]["next"],
    )  # fmt: skip
    with pytest.raises(ExtractError, match="another host"):
        list(pages)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
