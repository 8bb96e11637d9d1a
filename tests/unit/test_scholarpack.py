"""ScholarPack connector against its local fake: the generated large secondary round-trips to what
ScholarPack can carry (no teaching groups, and the run says why), its OAuth 2 refresh-token grant
(rotation reported without the token, an access token from the connection, a missing scope), and the
checks every API connector passes (``tests/unit/api_checks.py``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import urlencode

import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.connectors.http_api import ApiAuthError, ApiPermissionError
from mis_sync.fakes.http_fake import Request
from mis_sync.generator import generate_school
from mis_sync.model import ENTITIES, Extract
from tests.unit import api_checks as checks
from tests.unit.api_sources import APIS, assert_carried, failure, served

AS_OF = dt.date(2026, 1, 15)
API = APIS["scholarpack"]


@pytest.fixture(scope="module")
def small() -> Extract:
    return generate_school("small-primary", 2, AS_OF)


def test_round_trip_of_the_large_secondary(caplog: pytest.LogCaptureFixture) -> None:
    large = generate_school("large-secondary", 1, AS_OF)
    with caplog.at_level(logging.INFO), served(API, large) as (fake, connector):
        got = connector.extract()
    assert_carried(got, API.carries(large))
    assert got.snapshot_at == large.snapshot_at and fake.tokens.issued == 1
    assert "teaching" not in set(got.tables["groups"]["kind"])
    assert "ScholarPack has no teaching groups" in caplog.text  # the task log says why none are synced


def test_catalogue_says_there_are_no_teaching_groups() -> None:
    entry = CATALOGUE["scholarpack"]
    assert entry.provides == frozenset(ENTITIES)  # groups and memberships: year groups and classes
    assert entry.missing_group_kinds() == {"teaching"} and entry.delta is False
    assert "no teaching groups" in entry.notes and "registration group" in entry.notes


def test_rotated_refresh_token_is_reported_without_the_token(
    small: Extract, caplog: pytest.LogCaptureFixture
) -> None:
    with served(API, small) as (fake, connector):
        fake.tokens.rotate_refresh = True
        with caplog.at_level(logging.WARNING):
            assert_carried(connector.extract(), API.carries(small))
        new = fake.refresh_token
    assert "new refresh token was issued" in caplog.text and "mis_scholarpack" in caplog.text
    assert new not in caplog.text and "fake-scholarpack" not in caplog.text


def test_access_token_from_the_connection(small: Extract) -> None:
    """An access token stored in the connection is used as given (no token request)."""
    with served(API, small) as (fake, _):
        form = {
            "grant_type": "refresh_token",
            "refresh_token": fake.refresh_token,
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
        }
        reply = fake.tokens.issue(Request("POST", "/oauth/token", {}, {}, urlencode(form).encode()))
        extra = {"base_url": fake.base_url + "/api/v1", "access_token": json.loads(reply[2])["access_token"]}
        connection = ConnectionInfo("mis_sp_token", extra=extra)
        assert_carried(connector_for(API.type, connection, {}).extract(), API.carries(small))
        assert fake.tokens.issued == 1


def test_missing_scope_names_the_resource(small: Extract) -> None:
    with served(API, small) as (fake, connector):
        fake.scopes.discard("contacts:third-party")
        message = failure(connector, small, ApiPermissionError)
    assert "ScholarPack contacts page 1: permission missing (HTTP 403)" in message


def test_refused_grant_is_an_auth_error(small: Extract) -> None:
    """OAuth servers answer a bad client or refresh token with 400 (invalid_client / invalid_grant)."""
    with served(API, small) as (fake, connector):
        fake.tokens.refused_status, fake.faults.unauthorized = 400, True
        message = failure(connector, small, ApiAuthError)
    assert "ScholarPack token: the token request was refused (HTTP 400)" in message
    assert "connection 'mis_scholarpack'" in message and not any(s in message for s in checks.SECRETS)
