"""The checks every direct-MIS API connector must pass against its fake, written once; each connector's
test file calls them (``test_arbor.py``, ``test_bromcom.py``…). Every failure must be a clear error that
names the connection, endpoint, page and record id, and holds no personal data and no secret."""

from __future__ import annotations

import math
import re

import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.http_api import ApiAuthError, ApiPermissionError
from mis_sync.connectors.http_paging import TruncatedError
from mis_sync.errors import SetupError
from mis_sync.model import Extract
from tests.unit.api_sources import Api, assert_carried, failure, served

SECRETS = (
    "fake-arbor-password",
    "fake-bromcom-secret",
    "fake-scholarpack-secret",
    "fake-scholarpack-refresh-token",
    "fake-isams-client-secret",
    "fake-oneroster-secret",
)


def pupil_pages(fake: object, api: Api) -> list[str]:
    """Successful requests for the pupils' endpoint (with or without a trailing slash)."""
    requests: list[tuple[str, str, int]] = fake.requests  # type: ignore[attr-defined]
    return [p for _m, p, s in requests if s == 200 and p.split("?")[0].rstrip("/").endswith(f"/{api.pupils}")]


def small_pages_give_the_same_school(api: Api, school: Extract, *, probe: bool) -> None:
    """Small pages, the same school; ``probe``: the source states no page count, so the connector asks
    for one page past a short one (which must come back empty)."""
    with served(api, school, pages=True) as (fake, connector):
        assert_carried(connector.extract(), api.carries(school))
        pages = pupil_pages(fake, api)
    expected = math.ceil(len(api.carries(school)["pupils"]) / 40)
    if api.type == "oneroster_rest":  # users: pupils, staff and contacts in one collection
        t = api.carries(school)
        expected = math.ceil((len(t["pupils"]) + len(t["staff"]) + len(t["contacts"])) / 40)
    assert len(pages) == expected + int(probe) and expected > 1


def refused_credentials_say_so(api: Api, school: Extract) -> None:
    with served(api, school) as (fake, connector):
        fake.faults.unauthorized = True
        conn_id = api.connection(fake).conn_id
        message = failure(connector, school, ApiAuthError)
    assert "HTTP 401" in message and f"connection '{conn_id}'" in message and api.first in message
    assert not any(secret in message for secret in SECRETS)


def missing_permission_names_the_endpoint(api: Api, school: Extract) -> None:
    with served(api, school) as (fake, connector):
        fake.faults.forbidden = {api.contacts}
        message = failure(connector, school, ApiPermissionError)
    # a paged endpoint says "<endpoint> page 1"; iSAMS's per-pupil contacts name the pupil's MIS id
    assert re.search(rf"{api.contacts} (page 1|\w+): permission missing \(HTTP 403\)", message), message
    assert "granted" in message


def malformed_payload_names_endpoint_and_page(api: Api, school: Extract) -> None:
    with served(api, school, pages=True) as (fake, connector):
        fake.faults.malformed = {(api.pupils, 2)}
        message = failure(connector, school)
    assert f"{api.pupils} page 2: malformed JSON" in message


def truncated_page_stops_the_extract(api: Api, school: Extract) -> None:
    with served(api, school, pages=True) as (fake, connector):
        fake.faults.truncated = {(api.pupils, 1)}
        message = failure(connector, school, TruncatedError)
    if api.type == "oneroster_rest":  # limit/offset: the shortfall shows against X-Total-Count
        assert f"{api.pupils}: truncated" in message and "the source declared" in message
    else:
        assert f"{api.pupils} page 1: truncated page: 20 records where the page size is 40" in message


def missing_required_key_names_record_and_key(api: Api, school: Extract) -> None:
    with served(api, school) as (fake, connector):
        fake.faults.drop_key = {api.pupils: api.key}
        message = failure(connector, school)
    assert f"{api.pupils} page 1: record 0: required key '{api.key}' is missing" in message


def rate_limits_and_server_errors_are_retried(api: Api, school: Extract) -> None:
    with served(api, school) as (fake, connector):
        waits: list[float] = []
        connector.sleep = waits.append  # type: ignore[attr-defined]
        fake.faults.throttle_next, fake.faults.retry_after, fake.faults.error_next = 2, "7", 1
        assert_carried(connector.extract(), api.carries(school))
    assert waits[:2] == [7.0, 7.0] and len(waits) == 3
    assert fake.counters["throttles"] == 2 and fake.counters["errors"] == 1


def missing_secret_is_a_setup_error_naming_the_field(api: Api) -> None:
    extra = {"base_url": "https://mis.example.org/api", "school_id": "1", "refresh_token": "r"}
    connection = ConnectionInfo(conn_id="mis_bare", login="x", extra=extra)
    with pytest.raises(SetupError, match=r"connection 'mis_bare': no .* \(set password or extra\."):
        connector_for(api.type, connection, {}).extract()
