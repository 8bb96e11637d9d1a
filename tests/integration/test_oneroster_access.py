"""The OneRoster service's access control: OAuth tokens, scopes, an app's schools and field groups,
rate limits and the access log (over the same generated directory as ``test_oneroster_api``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mis_sync.oneroster.apps import add_app, revoke_app
from tests.integration import oneroster_support as support
from tests.integration.oneroster_support import NORTH, SOUTH, Client, register

# The module-scoped fixtures shared with the other OneRoster test module.
directory, http, trust_app, all_users = support.directory, support.http, support.trust_app, support.all_users

# ------------------------------------------------------------------------ OAuth, scopes, schools, fields


def test_token_endpoint_refuses_bad_clients(
    directory: tuple[Engine, dict[str, Any]], http: TestClient
) -> None:
    app, secret = add_app(directory[0], "oauth", schools=None, scopes=["roster-core.readonly"])
    form = {"grant_type": "client_credentials", "client_id": app.client_id}
    assert (
        http.post("/oauth/token", data={**form, "client_secret": "wrong"}).json()["error"] == "invalid_client"
    )
    assert (
        http.post(
            "/oauth/token", data={**form, "grant_type": "password", "client_secret": secret}
        ).status_code
        == 400
    )
    refused = http.post("/oauth/token", data={**form, "client_secret": secret, "scope": "roster.readonly"})
    assert refused.json()["error"] == "invalid_scope"
    basic = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(app.client_id, secret))
    assert (
        basic.status_code == 200 and basic.json()["token_type"] == "bearer" and basic.json()["expires_in"] > 0
    )
    assert http.get("/ims/oneroster/rostering/v1p2/users").status_code == 401
    forged = {"Authorization": "Bearer " + basic.json()["access_token"][:-2] + "xx"}
    assert http.get("/ims/oneroster/rostering/v1p2/users", headers=forged).status_code == 401
    client = Client(http, app.client_id, secret)
    assert client.get("/users", limit=1).status_code == 200
    revoke_app(directory[0], app.client_id)
    revoked = client.get("/users", limit=1)
    assert revoked.status_code == 401
    assert (
        revoked.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
        == "unauthorisedrequest"
    )


def test_expired_tokens_are_refused(directory: tuple[Engine, dict[str, Any]], http: TestClient) -> None:
    from mis_sync.oneroster.auth import TOKEN_LIFETIME_S, issue_token

    app, _ = add_app(directory[0], "expiry", schools=None, scopes=["roster.readonly"])
    service = http.app.state.service  # type: ignore[attr-defined]
    import time

    token = issue_token(service.token_key, app, app.scopes, now=time.time() - TOKEN_LIFETIME_S - 1)
    answer = http.get(
        "/ims/oneroster/rostering/v1p2/users", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert answer.status_code == 401


def test_scopes_limit_what_an_app_reads(directory: tuple[Engine, dict[str, Any]], http: TestClient) -> None:
    demographics_only = register(directory[0], http, scopes=["roster-demographics.readonly"])
    answer = demographics_only.get("/users")
    assert answer.status_code == 403
    assert (
        answer.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == "forbidden"
    )
    core = register(directory[0], http, scopes=["roster-core.readonly"])
    assert core.get("/classes", limit=1).status_code == 200


def test_an_app_sees_only_its_schools(
    directory: tuple[Engine, dict[str, Any]], http: TestClient, all_users: list
) -> None:
    south_app = register(directory[0], http, schools=[SOUTH])
    users = south_app.crawl("/users", "users", limit=5000)
    assert users and {u["primaryOrg"]["sourcedId"] for u in users} == {SOUTH}
    assert [s["sourcedId"] for s in south_app.crawl("/schools", "orgs")] == [SOUTH]
    north_user = next(u["sourcedId"] for u in all_users if u["primaryOrg"]["sourcedId"] == NORTH)
    assert south_app.get(f"/users/{north_user}").status_code == 404
    assert south_app.get(f"/schools/{NORTH}/classes").status_code == 404
    assert south_app.get(f"/schools/{NORTH}").status_code == 404
    enrollments = south_app.crawl("/enrollments", "enrollments", limit=5000)
    assert {e["school"]["sourcedId"] for e in enrollments} == {SOUTH}
    assert {t["org"]["sourcedId"] for t in south_app.crawl("/academicSessions", "academicSessions")} == {
        SOUTH
    }


def test_fields_and_contacts_are_off_unless_granted(
    directory: tuple[Engine, dict[str, Any]], http: TestClient
) -> None:
    plain = register(directory[0], http)  # the default field groups: no contacts, no demographics
    users = plain.crawl("/users", "users", limit=5000)
    assert "guardian" not in {u["roles"][0]["role"] for u in users}
    minimal = register(directory[0], http, field_groups=["names"])
    some = minimal.get("/users", limit=50).json()["users"]
    assert all("email" not in u and "username" not in u and "userIds" not in u for u in some)
    assert all("givenName" in u for u in some)
    assert (
        minimal.get("/users", filter="email~'a'").json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
            "imsx_codeMinorFieldValue"
        ]
        == "invalid_filter_field"
    )
    assert minimal.get("/users", fields="email").status_code == 400
    assert minimal.get("/users", sort="username").status_code == 400


def test_rate_limit_answers_429_with_retry_after(
    directory: tuple[Engine, dict[str, Any]], http: TestClient
) -> None:
    slow = register(directory[0], http, rate_limit_per_minute=2)
    assert [slow.get("/orgs").status_code for _ in range(2)] == [200, 200]
    refused = slow.get("/orgs")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert (
        refused.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
        == "server_busy"
    )


def test_access_log_names_app_endpoint_and_count_never_personal_data(
    trust_app: Client, all_users: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    person = next(u for u in all_users if u["roles"][0]["role"] == "student" and u.get("email"))
    caplog.set_level(logging.INFO, logger="mis_sync.oneroster.access")
    trust_app.get("/users", limit=7, filter=f"givenName='{person['givenName']}' OR email='{person['email']}'")
    trust_app.get("/users", filter=f"familyName='{person['familyName']}")  # a malformed filter: 400
    lines = [r.getMessage() for r in caplog.records if r.name == "mis_sync.oneroster.access"]
    assert len(lines) == 2
    assert "endpoint=GET /ims/oneroster/rostering/v1p2/users" in lines[0] and "app=app-" in lines[0]
    assert "records=" in lines[0] and "status=400" in lines[1]
    # everything the service logged; the test's own HTTP client (httpx) logs the URL it sent, as an app's
    # client would on the app's side
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    for value in (person["givenName"], person["familyName"], person["email"], person["username"]):
        assert value not in text


def test_token_requests_are_capped_per_client(directory: tuple[Engine, dict[str, Any]]) -> None:
    from mis_sync.oneroster.ratelimit import RateLimiter
    from mis_sync.oneroster.server import TOKEN_REQUESTS_PER_MINUTE, create_app
    from mis_sync.oneroster.service import Service

    frozen = Service(directory[0], limiter=RateLimiter(clock=lambda: 0.0))  # no refill while we try
    client = TestClient(create_app(directory[0], service=frozen))
    app, secret = add_app(directory[0], "guessed", schools=None, scopes=["roster.readonly"])
    form = {"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": "guess"}
    answers = [client.post("/oauth/token", data=form) for _ in range(TOKEN_REQUESTS_PER_MINUTE)]
    assert {a.status_code for a in answers} == {401}
    refused = client.post("/oauth/token", data={**form, "client_secret": secret})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"] == "slow_down"
