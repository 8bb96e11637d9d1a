"""The Google Classroom target's pieces without a server: settings, aliases, the Classroom shape of
the desired state, quota pacing, credentials from a Connection and the answer → outcome mapping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httplib2
import pandas as pd
import pytest
from googleapiclient.errors import HttpError
from pydantic import ValidationError

from mis_sync.config import ConfigError, load_establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.errors import SetupError
from mis_sync.targets.classroom import MAX_ALIAS, ClassroomAdapter, course_alias
from mis_sync.targets.classroom_transport import DIRECTORY_SCOPE, SCOPES, ClassroomTransport, credentials
from mis_sync.targets.desired import attr_hash
from mis_sync.targets.engine import Engine, Op, Outcome
from mis_sync.targets.settings import GoogleClassroomTarget, TargetsConfig
from tests.helpers import demo_config

REPO = Path(__file__).resolve().parents[2]


# ---- settings ---------------------------------------------------------------------------------------------
def test_defaults_and_what_enabling_needs() -> None:
    off = GoogleClassroomTarget()
    assert (off.enabled, off.pool, off.course_state, off.year_end) == (
        False,
        "misync_google",
        "ACTIVE",
        "archive",
    )
    assert off.requests_per_minute <= 1200, "within the per-user quota"
    with pytest.raises(ValidationError, match="domain is required"):
        GoogleClassroomTarget(enabled=True, owner="it.admin")
    with pytest.raises(ValidationError, match="owner: name the admin"):
        GoogleClassroomTarget(enabled=True, domain="school.example")
    with pytest.raises(ValidationError, match="requests_per_minute"):
        GoogleClassroomTarget(requests_per_minute=5000)
    with pytest.raises(ValidationError, match="unknown field"):
        GoogleClassroomTarget(section="{room_number}")
    on = GoogleClassroomTarget(enabled=True, domain="School.Example", owner="it.admin")
    assert on.domain == "school.example"


def test_provisioning_settings_are_checked() -> None:
    on = GoogleClassroomTarget(provision_accounts=True, org_units={"pupil": "/Pupils/Year {year_group}"})
    assert on.provision_roles == ("pupil", "teaching_staff", "non_teaching_staff")
    assert on.org_units.path("pupil", "5") == "/Pupils/Year 5"
    assert on.org_units.path("pupil", None) == "/Pupils", "no year group: the unit above"
    assert on.org_units.path("teaching_staff", None) == "/"
    with pytest.raises(ValidationError, match="starts with '/'"):
        GoogleClassroomTarget(org_units={"pupil": "Pupils"})
    with pytest.raises(ValidationError, match="no empty segments"):
        GoogleClassroomTarget(org_units={"teaching_staff": "/Staff/"})
    with pytest.raises(ValidationError, match=r"no \{fields\} are allowed"):
        GoogleClassroomTarget(org_units={"teaching_staff": "/Staff/{year_group}"})
    with pytest.raises(ValidationError, match=r"only \{year_group\} may be used"):
        GoogleClassroomTarget(org_units={"pupil": "/Pupils/{name}"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        GoogleClassroomTarget(org_units={"governor": "/Governors"})
    with pytest.raises(ValidationError, match="provision_roles is empty"):
        GoogleClassroomTarget(
            enabled=True, domain="s.example", owner="it.admin", provision_accounts=True, provision_roles=()
        )


def test_account_bodies_for_the_directory() -> None:
    row = {"user_key": "a.pupil@s.example", "mail_nickname": "a.pupil", "given_name": "Ann",
           "surname": "", "enabled": False, "org_unit": "/Pupils/Year 5", "mis_id": "P1"}  # fmt: skip
    patch = ClassroomAdapter.account_body(row, None)
    assert patch == {
        "name": {"givenName": "Ann", "familyName": "a.pupil"},
        "suspended": True,
        "orgUnitPath": "/Pupils/Year 5",
    }
    insert = ClassroomAdapter.account_body({**row, "enabled": True}, "initial-Pa55")
    assert insert["primaryEmail"] == "a.pupil@s.example" and insert["password"] == "initial-Pa55"
    assert insert["changePasswordAtNextLogin"] is True and insert["suspended"] is False
    assert insert["externalIds"] == [{"type": "organization", "value": "P1"}]
    assert "externalIds" not in ClassroomAdapter.account_body({**row, "mis_id": None}, "initial-Pa55")


def test_yaml_block_loads_and_errors_name_the_field(tmp_path: Path) -> None:
    source = (REPO / "include" / "establishments" / "demo-academy.yaml").read_text()
    head = source.split("\ntargets:")[0]
    block = (
        "\ntargets:\n  google_classroom:\n    enabled: true\n    connection_id: google_demo\n"
        "    domain: demo-academy.example\n    owner: it.admin\n    course_state: PROVISIONED\n"
    )
    path = tmp_path / "demo-academy.yaml"
    path.write_text(head + block)
    cfg = load_establishment(path).targets.google_classroom
    assert (cfg.enabled, cfg.connection_id, cfg.course_state) == (True, "google_demo", "PROVISIONED")
    path.write_text(head + block + "    provision_accounts: true\n    org_units:\n      pupil: Pupils\n")
    with pytest.raises(ConfigError, match=r"targets\.google_classroom\.org_units\.pupil"):
        load_establishment(path)


def test_both_targets_fan_out_side_by_side() -> None:
    from mis_sync.dag_factory import build_dag, enabled_targets
    from mis_sync.targets.settings import Microsoft365Target, OwnersPolicy

    targets = TargetsConfig(
        microsoft365=Microsoft365Target(
            enabled=True, tenant_domain="school.example", owners=OwnersPolicy(admins=("it.admin",))
        ),
        google_classroom=GoogleClassroomTarget(enabled=True, domain="school.example", owner="it.admin"),
    )
    config = demo_config(targets=targets)
    assert enabled_targets(config) == ["microsoft365", "google_classroom"]
    dag = build_dag(config, REPO / "include" / "establishments" / "demo-academy.yaml")
    assert {"microsoft365", "google_classroom"} <= set(dag.task_group_dict)
    assert dag.get_task("google_classroom.prepare").pool == "misync_google"
    assert dag.get_task("microsoft365.prepare").pool == "misync_graph"


# ---- aliases and the desired state ------------------------------------------------------------------------
def test_course_alias_is_valid_stable_and_never_shared() -> None:
    assert course_alias("misync:demo-academy:G07466:2025/26") == "d:misync_demo-academy_G07466_2025-26"
    odd = [course_alias(k) for k in ("misync:e:a_b:2025", "misync:e:a-b:2025", "misync:e:a b:2025")]
    assert len(set(odd)) == 3
    long = course_alias("misync:e:" + "x" * 400 + ":2025/26")
    assert len(long) == MAX_ALIAS and long.startswith("d:") and long != course_alias("misync:e:" + "x" * 401)


def test_attr_hash_is_unchanged_without_section_and_room() -> None:
    names, descriptions = pd.Series(["7A"]), pd.Series(["Registration group"])
    empty = pd.Series([""], dtype="string")
    before = attr_hash(names, descriptions)
    assert attr_hash(names, descriptions, empty, empty).equals(before), "M365 hashes stay as they were"
    assert not attr_hash(names, descriptions, pd.Series(["2025/26"]), empty).equals(before)


def test_owners_are_never_also_students() -> None:
    from mis_sync.directory_state import DirectoryState
    from mis_sync.targets.classroom import classroom_naming
    from mis_sync.targets.desired import desired_state

    groups = pd.DataFrame(
        {"mis_id": ["G1"], "academic_year": ["2025/26"], "kind": ["registration"], "name": ["7A"],
         "code": ["7A"], "subject": [None], "year_group": ["7"], "status": ["active"]}
    )  # fmt: skip
    users = pd.DataFrame(
        {"person_kind": ["pupil", "staff"], "mis_id": ["P1", "S1"], "username": ["pupil1", "teacher1"],
         "status": ["active", "active"]}
    )  # fmt: skip
    memberships = pd.DataFrame(
        {"group_mis_id": ["G1", "G1"], "academic_year": ["2025/26"] * 2, "person_kind": ["pupil", "staff"],
         "person_mis_id": ["P1", "S1"], "role": ["pupil", "teacher"]}
    )  # fmt: skip
    state = DirectoryState(users=users, groups=groups, memberships=memberships)
    cfg = GoogleClassroomTarget(enabled=True, domain="s.example", owner="it.admin")
    want = desired_state(state, classroom_naming("demo", cfg))
    rows = set(want.memberships[["user_key", "role"]].itertuples(index=False, name=None))
    assert rows == {
        ("pupil1@s.example", "member"),
        ("teacher1@s.example", "owner"),
        ("it.admin@s.example", "owner"),
    }
    assert want.containers.loc[0, "section"] == "2025/26"


# ---- pacing -----------------------------------------------------------------------------------------------
class _Counting:
    target, max_batch = "stub", 50

    def __init__(self, rpm: float | None) -> None:
        self.requests_per_minute, self.counters = rpm, {}

    def send(self, ops: Sequence[Op]) -> dict[str, Outcome]:
        return {op.id: Outcome("ok") for op in ops}


def test_engine_paces_calls_to_the_quota() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    engine = Engine(_Counting(600), sleep=sleep, clock=lambda: now[0])  # 10 calls per second
    engine.run([Op(f"o{i}", "add") for i in range(200)])
    assert sum(waits) == pytest.approx(15.0), "the first batch goes at once, then 150 calls at 10/s"
    assert engine.stats["paced_ms"] == 15000
    unpaced = Engine(_Counting(None), sleep=sleep)
    unpaced.run([Op(f"o{i}", "add") for i in range(200)])
    assert len(waits) == 3


# ---- credentials ------------------------------------------------------------------------------------------
def _key() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "type": "service_account", "project_id": "p", "private_key_id": "k", "private_key": pem.decode(),
        "client_email": "misync@p.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }  # fmt: skip


def test_credentials_impersonate_the_subject() -> None:
    key = _key()
    for conn in (
        ConnectionInfo("g", "generic", extra={"keyfile_dict": key, "subject": "admin@s.example"}),
        ConnectionInfo(
            "g", "google_cloud_platform", password=json.dumps(key), extra={"subject": "admin@s.example"}
        ),
    ):
        creds = credentials(conn)
        assert creds._subject == "admin@s.example"
        assert "https://www.googleapis.com/auth/classroom.rosters" in creds._scopes
    with pytest.raises(SetupError, match=r"extra\.subject"):
        credentials(ConnectionInfo("g", extra={"keyfile_dict": key}))
    with pytest.raises(SetupError, match="not a service-account key") as info:
        credentials(ConnectionInfo("g", password="secret-text", extra={"subject": "a@s.example"}))
    assert "secret-text" not in str(info.value)
    transport = ClassroomTransport(ConnectionInfo("g", extra={"api_endpoint": "http://127.0.0.1:9"}))
    assert transport.batch_uri == "http://127.0.0.1:9/batch"
    transport.close()


def test_directory_calls_get_their_own_batches() -> None:
    conn = ConnectionInfo("g", extra={"api_endpoint": "http://127.0.0.1:9/"})
    transport = ClassroomTransport(conn, directory=True)
    assert transport.directory_batch_uri == "http://127.0.0.1:9/batch"
    adapter = ClassroomAdapter(transport, owner="it.admin@s.example")
    lookup = adapter.request(Op("1", "resolve", user_key="a@s.example", role="account"))
    assert "admin/directory/v1/users/" in lookup.uri and "isAdmin" in lookup.uri
    assert "v1/userProfiles/" in adapter.request(Op("2", "resolve", user_key="a@s.example")).uri
    with pytest.raises(ValueError, match="one API"):
        adapter.send([Op("1", "resolve", user_key="a", role="account"), Op("2", "resolve", user_key="a")])
    transport.close()
    key = _key()
    creds = credentials(ConnectionInfo("g", extra={"keyfile_dict": key, "subject": "admin@s.example"}),
                        (*SCOPES, DIRECTORY_SCOPE))  # fmt: skip
    assert DIRECTORY_SCOPE in creds._scopes


# ---- answers ----------------------------------------------------------------------------------------------
def _error(
    status: int, google: str, message: str = "x", reason: str | None = None, **headers: str
) -> HttpError:
    err: dict[str, Any] = {"code": status, "message": message, "status": google}
    if reason:
        err["errors"] = [{"reason": reason}]
    return HttpError(httplib2.Response({"status": status, **headers}), json.dumps({"error": err}).encode())


@pytest.fixture
def adapter() -> ClassroomAdapter:
    transport = ClassroomTransport(ConnectionInfo("g", extra={"api_endpoint": "http://127.0.0.1:9/"}))
    return ClassroomAdapter(transport, owner="it.admin@s.example")


@pytest.mark.parametrize(
    ("action", "error", "expected"),
    [
        (
            "add",
            _error(429, "RESOURCE_EXHAUSTED", **{"retry-after": "7"}),
            Outcome("retry", retry_after=7.0, throttled=True),
        ),
        (
            "add",
            _error(403, "PERMISSION_DENIED", reason="userRateLimitExceeded"),
            Outcome("retry", throttled=True),
        ),
        ("remove", _error(503, "UNAVAILABLE"), Outcome("retry")),
        ("add", _error(409, "ALREADY_EXISTS"), Outcome("ok", noop=True)),
        ("find", _error(404, "NOT_FOUND"), Outcome("absent")),
        ("resolve", _error(404, "NOT_FOUND"), Outcome("absent")),
        # userProfiles.get: "PERMISSION_DENIED ... if no profile exists with the requested ID"
        (
            "resolve",
            _error(403, "PERMISSION_DENIED", "The caller does not have permission"),
            Outcome("absent"),
        ),
        ("update", _error(404, "NOT_FOUND"), Outcome("gone", error="NOT_FOUND")),
        ("create", _error(409, "ALREADY_EXISTS"), Outcome("failed", error="ALREADY_EXISTS")),
        ("archive", _error(400, "FAILED_PRECONDITION", "@CourseNotModifiable no"), Outcome("ok", noop=True)),
        # students.create: FAILED_PRECONDITION "if the requested user's account is disabled" (no @Name)
        (
            "add",
            _error(400, "FAILED_PRECONDITION", "The requested user's account is disabled."),
            Outcome("pending", error="FAILED_PRECONDITION"),
        ),
        (
            "add",
            _error(400, "FAILED_PRECONDITION", "@UserAccountDisabled whatever Google calls it"),
            Outcome("pending", error="FAILED_PRECONDITION"),
        ),
        (
            "add",
            _error(400, "FAILED_PRECONDITION", "@CourseNotModifiable no"),
            Outcome("failed", error="FAILED_PRECONDITION:CourseNotModifiable"),
        ),
        (
            "add",
            _error(400, "FAILED_PRECONDITION", "@CourseMemberLimitReached p.smith@s.example"),
            Outcome("failed", error="FAILED_PRECONDITION:CourseMemberLimitReached"),
        ),
    ],
)
def test_answers_map_to_outcomes(
    adapter: ClassroomAdapter, action: str, error: HttpError, expected: Outcome
) -> None:
    assert adapter.failure(Op("o", action), error) == expected  # type: ignore[arg-type]
