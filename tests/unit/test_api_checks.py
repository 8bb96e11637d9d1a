"""The checks every REST API connector passes (``api_checks``), run for each source in turn: small
pages give the same school, refused credentials / missing permission / malformed and truncated pages /
missing keys stop the extract with a clear error, 429 and 5xx are retried, a missing secret is a
setup error."""

from __future__ import annotations

import datetime as dt

import pytest

from mis_sync.generator import generate_school
from mis_sync.model import Extract
from tests.unit import api_checks as checks
from tests.unit.api_sources import APIS, Api

PROBE_PAGING = {
    "arbor": True,
    "bromcom": True,
    "isams_rest": False,
    "oneroster_rest": False,
    "scholarpack": False,
}
"""Sources whose fake can show the connector really asked for small pages."""


@pytest.fixture(scope="module")
def small() -> Extract:
    return generate_school("small-primary", 2, dt.date(2026, 1, 15))


@pytest.fixture(params=sorted(PROBE_PAGING))
def api(request: pytest.FixtureRequest) -> Api:
    return APIS[request.param]


def test_small_pages_give_the_same_school(api: Api, small: Extract) -> None:
    checks.small_pages_give_the_same_school(api, small, probe=PROBE_PAGING[api.type])


@pytest.mark.parametrize(
    "check",
    [
        checks.refused_credentials_say_so,
        checks.missing_permission_names_the_endpoint,
        checks.malformed_payload_names_endpoint_and_page,
        checks.truncated_page_stops_the_extract,
        checks.missing_required_key_names_record_and_key,
        checks.rate_limits_and_server_errors_are_retried,
    ],
    ids=lambda check: check.__name__,
)
def test_failures_are_clear_and_stop_the_extract(api: Api, small: Extract, check) -> None:  # type: ignore[no-untyped-def]
    check(api, small)


def test_missing_secret_is_a_setup_error_naming_the_field(api: Api) -> None:
    checks.missing_secret_is_a_setup_error_naming_the_field(api)
