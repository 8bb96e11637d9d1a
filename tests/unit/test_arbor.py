"""Arbor connector against its local fake: the generated large secondary round-trips to what Arbor can
carry (``tests/unit/api_sources.py``: only group ids change, as ``<resource>/<id>``), the changelog delta
== a full read (deletions, dates that pass without a logged change, deletions it cannot trace), the
partner application id, and the checks every API connector passes (``tests/unit/api_checks.py``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.connectors.delta import DeltaConnector, DeltaResult
from mis_sync.connectors.http_api import ApiAuthError
from mis_sync.generator import generate_school
from mis_sync.model import ENTITIES, Extract
from tests.unit.api_sources import APIS, assert_carried, canonical, failure, served
from tests.unit.test_delta import evolve_school

AS_OF = dt.date(2026, 1, 15)
API = APIS["arbor"]


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
    later: Extract
    records_full: int
    records_delta: int


@pytest.fixture(scope="module")
def arbor(large: Extract) -> Scenario:
    """Full read of the large school; the school changes; a changelog delta."""
    with served(APIS["arbor"], large) as (fake, connector):
        assert isinstance(connector, DeltaConnector)
        first = connector.extract_delta(None)
        records_full = fake.counters["records"]
        later = evolve_school(large)
        fake.publish(later)
        fake.reset_counters()
        delta = connector.extract_delta(first.state)
        records_delta = fake.counters["records"]
    return Scenario(first, delta, later, records_full, records_delta)


def without_a_pupil(school: Extract) -> Extract:
    """The school a day later, with one pupil (and their links and memberships) deleted."""
    t = school.tables
    gone = t["pupils"]["mis_id"].iloc[0]
    tables = {
        **t,
        "pupils": t["pupils"][t["pupils"]["mis_id"] != gone],
        "relationships": t["relationships"][t["relationships"]["pupil_id"] != gone],
        "memberships": t["memberships"][t["memberships"]["person_id"] != gone],
    }
    return Extract(tables=tables, snapshot_at=school.snapshot_at + pd.Timedelta(days=1), source=school.source)


# --- round trips -------------------------------------------------------------------------------------


def test_arbor_round_trip_of_the_large_secondary(arbor: Scenario, large: Extract) -> None:
    assert arbor.first.mode == "full"
    assert_carried(arbor.first.extract, APIS["arbor"].carries(large))
    assert arbor.first.extract.snapshot_at == large.snapshot_at


# --- Arbor delta -------------------------------------------------------------------------------------


def test_arbor_delta_equals_a_full_read(arbor: Scenario) -> None:
    assert arbor.delta.mode == "delta", arbor.delta.reason
    assert_carried(arbor.delta.extract, APIS["arbor"].carries(arbor.later))  # what a full read gives
    for name, entity in ENTITIES.items():  # and in canonical order, as a full read is
        keys = arbor.delta.extract.tables[name][list(entity.key)]
        assert keys.equals(keys.sort_values(list(entity.key), ignore_index=True)), name
    assert arbor.delta.extract.snapshot_at == arbor.later.snapshot_at
    assert arbor.records_delta < arbor.records_full / 4
    assert arbor.delta.state.deltas_since_full == 1


def test_arbor_deletions_remove_records_and_what_hangs_off_them(arbor: Scenario, large: Extract) -> None:
    before, after = large.tables, arbor.delta.extract.tables
    gone = set(before["pupils"]["mis_id"]) - set(after["pupils"]["mis_id"])
    assert len(gone) == 3 and arbor.delta.changes["pupils"]["deleted"] == 3
    assert not gone & set(after["relationships"]["pupil_id"])
    assert not gone & set(after["memberships"]["person_id"])
    assert len(set(before["contacts"]["mis_id"]) - set(after["contacts"]["mis_id"])) == 2


def test_arbor_deletion_sent_as_a_stub_means_a_full_read(small: Extract) -> None:
    with served(APIS["arbor"], small, fake_args={"delete_objects": "stub"}) as (fake, connector):
        assert isinstance(connector, DeltaConnector)
        first = connector.extract_delta(None)
        later = without_a_pupil(small)
        fake.publish(later)
        result = connector.extract_delta(first.state)
    assert result.mode == "full" and "bare stub" in result.reason
    assert_carried(result.extract, APIS["arbor"].carries(later))


def test_arbor_delta_sees_dates_that_passed_without_a_change(small: Extract) -> None:
    """A pre-admission whose start date arrives is on roll, with their year group, though nothing was
    logged: the delta asks for records whose dates passed since the last run."""
    pupils = small.tables["pupils"].copy()
    joining = pupils.index[pupils["enrolment_status"] == "on_roll"][0]
    tomorrow = small.snapshot_at.tz_convert(None).normalize() + pd.Timedelta(days=1)
    members = small.tables["memberships"]
    pupil_id = pupils.at[joining, "mis_id"]
    pupils.loc[joining, ["enrolment_status", "admission_date", "registration_group_id"]] = [
        "pre_admission",
        tomorrow,
        pd.NA,
    ]
    tables = {**small.tables, "pupils": pupils, "memberships": members[members["person_id"] != pupil_id]}
    school = Extract(tables=tables, snapshot_at=small.snapshot_at, source=small.source)
    with served(APIS["arbor"], school) as (fake, connector):
        assert isinstance(connector, DeltaConnector)
        first = connector.extract_delta(None)
        fake.publish(school, at=school.snapshot_at + pd.Timedelta(days=1))
        delta = connector.extract_delta(first.state)
        fresh = connector.extract_delta(None).extract
    assert delta.mode == "delta"
    row = delta.extract.tables["pupils"].set_index("mis_id").loc[pupil_id]
    assert row["enrolment_status"] == "on_roll"
    assert ((delta.extract.tables["memberships"]["person_id"] == pupil_id).sum()) == 1  # the year group
    a, b = canonical(delta.extract.tables), canonical(fresh.tables)
    for name in ENTITIES:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)


def test_arbor_partner_application_id_is_sent(small: Extract) -> None:
    with served(APIS["arbor"], small, fake_args={"application_id": "app-42"}) as (fake, connector):
        failure(connector, small, ApiAuthError)  # the fake wants x-mis-application-id
        conn = APIS["arbor"].connection(fake)
        conn = ConnectionInfo(
            conn.conn_id,
            login=conn.login,
            password=conn.password,
            extra={**conn.extra, "application_id": "app-42"},
        )
        assert_carried(connector_for("arbor", conn, {}).extract(), APIS["arbor"].carries(small))


def test_catalogue_registers_arbor_with_deltas() -> None:
    entry = CATALOGUE["arbor"]
    assert entry.delta is True and entry.provides == frozenset(ENTITIES) and not entry.missing_group_kinds()
