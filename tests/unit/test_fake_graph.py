"""Tests of the local fake Microsoft Graph server (mis_sync.fakes.graph)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from mis_sync.fakes import FakeGraph, running_fake_graph

TENANT = "00000000-0000-0000-0000-000000000000"
ALREADY = (
    "One or more added object references already exist for the following modified properties: 'members'."
)


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with running_fake_graph(seed=1) as server:
        yield server


@pytest.fixture
def client(fake: FakeGraph) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url + "/", timeout=5) as c:
        yield c


def new_class(ext: str, **extra: object) -> dict[str, object]:
    nick = f"t-{ext}".lower()
    return {"displayName": ext, "mailNickname": nick, "description": ext, "externalId": ext, **extra}


def ensure_class(client: httpx.Client, ext: str) -> str:
    found = client.get("education/classes", params={"$filter": f"externalId eq '{ext}'"}).json()["value"]
    if found:
        return found[0]["id"]
    resp = client.post("education/classes", json=new_class(ext, externalSource="sis"))
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def ref(uid: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/education/users/{uid}"}


def test_create_class_idempotently_by_external_id(fake: FakeGraph, client: httpx.Client) -> None:
    first = ensure_class(client, "LA-6A")
    assert ensure_class(client, "LA-6A") == first
    assert len(fake.state.classes) == 1
    assert fake.state.class_by_external_id("LA-6A")["externalSource"] == "sis"
    assert fake.counters["writes"] == 1
    got = client.get(f"education/classes/{first}", params={"$select": "id,externalId"}).json()
    assert got == {"id": first, "externalId": "LA-6A"}
    patched = client.patch(f"education/classes/{first}", json={"displayName": "6A 2026"})
    assert patched.status_code == 200 and patched.json()["displayName"] == "6A 2026"
    # the same mailNickname is taken (classes and groups share the namespace)
    assert client.post("education/classes", json=new_class("LA-6A")).status_code == 400
    assert ("POST", "/v1.0/education/classes", 201) in fake.requests


@pytest.mark.parametrize(
    "body",
    [
        new_class("X", createdBy={"user": {"id": "1"}}),
        new_class("X", members=[]),
        new_class("X", color="blue"),
        new_class("X", externalSource="sis", externalSourceDetail="OneRoster"),
        new_class("X", externalSource="mis"),
        new_class("X", term={"displayName": "T1", "weeks": 12}),
        new_class("X", term={"startDate": "01/09/2026"}),
        new_class("X", mailNickname="has space"),
        new_class("X", mailNickname="a@b"),
        new_class("X", mailNickname="x" * 65),
        new_class("X", mailNickname="café"),
        {"displayName": "no nickname"},
    ],
)
def test_forbidden_or_invalid_class_body_rejected(fake: FakeGraph, client: httpx.Client, body: dict) -> None:
    resp = client.post("education/classes", json=body)
    assert resp.status_code == 400
    assert set(resp.json()["error"]) >= {"code", "message"}
    assert fake.state.classes == {}


def test_valid_full_class_body_accepted(client: httpx.Client) -> None:
    term = {"displayName": "2026/27", "externalId": "T", "startDate": "2026-09-01", "endDate": "2027-07-20"}
    body = new_class(
        "Y", externalSourceDetail="OneRoster", classCode="Y", externalName="Y", grade="7", term=term
    )
    resp = client.post("education/classes", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["externalSource"] == "sis"


def test_paging_returns_all_items_across_pages(fake: FakeGraph, client: httpx.Client) -> None:
    for i in range(23):
        ensure_class(client, f"C{i:02d}")
    seen: list[str] = []
    url: str | None = f"{fake.base_url}/education/classes?$top=5"
    pages = 0
    while url:
        page = client.get(url).json()
        assert url.startswith("http://127.0.0.1:")
        seen += [c["externalId"] for c in page["value"]]
        url = page.get("@odata.nextLink")
        pages += 1
    assert pages == 5
    assert sorted(seen) == [f"C{i:02d}" for i in range(23)]
    assert client.get("education/classes", params={"$top": "1000"}).status_code == 400


def test_ref_add_remove_semantics(fake: FakeGraph, client: httpx.Client) -> None:
    cid = ensure_class(client, "LA-7B")
    pupil = fake.add_user("a.pupil@school.example")
    teacher = fake.add_user("t.teacher@school.example", "T Teacher")
    assert client.post(f"education/classes/{cid}/members/$ref", json=ref(pupil)).status_code == 204
    again = client.post(f"education/classes/{cid}/members/$ref", json=ref(pupil))
    assert again.status_code == 400 and again.json()["error"]["message"] == ALREADY
    assert client.post(f"education/classes/{cid}/teachers/$ref", json=ref(teacher)).status_code == 204
    assert client.post(f"education/classes/{cid}/members/$ref", json=ref(teacher)).status_code == 204
    assert fake.state.members[cid] == [pupil, teacher]
    assert fake.state.teachers(cid) == [teacher]
    teachers = client.get(f"education/classes/{cid}/teachers").json()["value"]
    assert [t["userPrincipalName"] for t in teachers] == ["t.teacher@school.example"]
    members = client.get(f"education/classes/{cid}/members", params={"$top": "1"}).json()
    assert len(members["value"]) == 1 and "@odata.nextLink" in members
    assert client.delete(f"education/classes/{cid}/members/{pupil}/$ref").status_code == 204
    fake.store.removal_errors = ("not_found",)
    gone = client.delete(f"education/classes/{cid}/members/{pupil}/$ref")
    assert gone.status_code == 404 and gone.json()["error"] == {
        "code": "Request_ResourceNotFound",
        "message": f"Resource '{pupil}' does not exist or one of its queried reference-property objects "
        "are not present.",
        "innerError": {"fake": True},
    }
    assert client.post(f"education/classes/{cid}/members/$ref", json=ref("nobody")).status_code == 404
    assert client.post(f"education/classes/{cid}/members/$ref", json={"x": 1}).status_code == 400


def test_removal_of_someone_not_there_varies_between_graphs_real_answers(
    fake: FakeGraph, client: httpx.Client
) -> None:
    """Graph answers 404 Request_ResourceNotFound "Resource … does not exist", or "removed object
    references do not exist" (400, or 404 as the reference notes)."""
    cid = ensure_class(client, "LA-7V")
    pupil = fake.add_user("v.pupil@school.example")
    answers = set()
    for _ in range(16):
        resp = client.delete(f"education/classes/{cid}/members/{pupil}/$ref")
        error = resp.json()["error"]
        answers.add((resp.status_code, error["code"], "removed object references" in error["message"]))
        teacher = client.delete(f"education/classes/{cid}/teachers/{pupil}/$ref").json()["error"]
        assert teacher["code"] == "Request_ResourceNotFound" or "'teachers'" in teacher["message"]
    assert answers == {
        (404, "Request_ResourceNotFound", False),
        (400, "Request_BadRequest", True),
        (404, "Request_ResourceNotFound", True),
    }
    missing_class = client.delete(
        f"education/classes/{'0' * 8}-0000-4000-8000-{'0' * 12}/members/{pupil}/$ref"
    )
    assert missing_class.status_code == 404


def test_a_teacher_is_removed_from_teachers_before_members(fake: FakeGraph, client: httpx.Client) -> None:
    """Microsoft: "ensure that the educationUser you are removing is not a teacher" before a member
    removal. The service's answer when a client does not is undocumented: the emulator refuses (400) or
    accepts and records the broken state."""
    cid = ensure_class(client, "LA-7T")
    teacher = fake.add_user("r.teacher@school.example")
    for rel in ("members", "teachers"):
        assert client.post(f"education/classes/{cid}/{rel}/$ref", json=ref(teacher)).status_code == 204
    assert fake.state.teachers_not_members() == []
    fake.store.teacher_removals = ("refuse",)
    refused = client.delete(f"education/classes/{cid}/members/{teacher}/$ref")
    assert refused.status_code == 400 and teacher in fake.state.members[cid]
    fake.store.teacher_removals = ("accept",)
    assert client.delete(f"education/classes/{cid}/members/{teacher}/$ref").status_code == 204
    assert fake.state.teachers_removed_from_members == [(cid, teacher)]
    assert fake.state.teachers_not_members() == [(cid, teacher)]
    assert client.delete(f"education/classes/{cid}/teachers/{teacher}/$ref").status_code == 204
    assert fake.state.teachers_not_members() == []


def test_a_deleted_user_leaves_its_classes_and_comes_back_with_a_new_id(
    fake: FakeGraph, client: httpx.Client
) -> None:
    cid = ensure_class(client, "LA-7D")
    old = fake.add_user("d.pupil@school.example")
    assert client.post(f"education/classes/{cid}/members/$ref", json=ref(old)).status_code == 204
    fake.delete_user(old)
    assert old not in fake.state.members[cid]
    new = fake.add_user("d.pupil@school.example")
    assert new != old
    stale = client.post(f"education/classes/{cid}/members/$ref", json=ref(old))
    assert stale.status_code == 404 and stale.json()["error"]["code"] == "Request_ResourceNotFound"
    assert f"'{old}'" in stale.json()["error"]["message"], "Graph names the missing object"


def test_users_lookup(fake: FakeGraph, client: httpx.Client) -> None:
    uid = fake.add_user("Jo.Bloggs@school.example", "Jo Bloggs")
    assert client.get("users/jo.bloggs@school.example", params={"$select": "id"}).json() == {"id": uid}
    assert client.get(f"users/{uid}").json()["displayName"] == "Jo Bloggs"
    assert client.get("users/none@school.example").status_code == 404
    flt = client.get("users", params={"$filter": "mail eq 'jo.bloggs@school.example'"}).json()
    assert [u["id"] for u in flt["value"]] == [uid]


def test_m365_group_create_and_members(fake: FakeGraph, client: httpx.Client) -> None:
    owner = fake.add_user("t@school.example")
    body = {
        "displayName": "6A 2026",
        "mailNickname": "la-6a-2026",
        "mailEnabled": True,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "owners@odata.bind": [f"https://graph.microsoft.com/v1.0/users/{owner}"],
    }
    assert client.post("groups", json={**body, "createdBy": "me"}).status_code == 400
    assert client.post("groups", json={**body, "groupTypes": []}).status_code == 400
    resp = client.post("groups", json=body)
    assert resp.status_code == 201
    gid = resp.json()["id"]
    assert fake.state.owners[gid] == [owner]
    member_ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{owner}"}
    assert client.post(f"groups/{gid}/members/$ref", json=member_ref).status_code == 204
    assert client.post(f"groups/{gid}/members/$ref", json=member_ref).json()["error"]["message"] == ALREADY
    assert client.post("education/classes", json=new_class("x", mailNickname="LA-6A-2026")).status_code == 400


def test_batch_limits_and_validation(client: httpx.Client) -> None:
    get = {"method": "GET", "url": "/education/classes"}
    too_many = {"requests": [{"id": str(i), **get} for i in range(21)]}
    assert client.post("$batch", json=too_many).status_code == 400
    dup = {"requests": [{"id": "a", **get}, {"id": "A", **get}]}
    assert client.post("$batch", json=dup).status_code == 400
    no_headers = {
        "requests": [{"id": "1", "method": "POST", "url": "/education/classes", "body": new_class("Z")}]
    }
    assert client.post("$batch", json=no_headers).status_code == 400
    ok = client.post("$batch", json={"requests": [{"id": str(i), **get} for i in range(20)]})
    assert ok.status_code == 200 and len(ok.json()["responses"]) == 20


def test_batch_dispatch_and_depends_on_424(fake: FakeGraph, client: httpx.Client) -> None:
    cid = ensure_class(client, "LA-8C")
    uid = fake.add_user("p@school.example")
    hdr = {"Content-Type": "application/json"}
    reqs = [
        {"id": "1", "method": "POST", "url": f"/education/classes/{cid}/members/$ref", "headers": hdr,
         "body": ref(uid)},
        {"id": "2", "method": "POST", "url": f"/education/classes/{cid}/members/$ref", "headers": hdr,
         "body": ref(uid), "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/education/classes/{cid}/members", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "users/p@school.example?$select=id"},
    ]  # fmt: skip
    out = {r["id"]: r for r in client.post("$batch", json={"requests": reqs}).json()["responses"]}
    assert out["1"]["status"] == 204 and "body" not in out["1"]
    assert out["2"]["status"] == 400 and out["2"]["body"]["error"]["message"] == ALREADY
    assert out["3"]["status"] == 424
    assert out["4"]["body"] == {"id": uid}
    assert fake.state.members[cid] == [uid]
    assert fake.counters["failed_dependencies"] == 1


def test_inner_429_with_retry_after_in_batch() -> None:
    with running_fake_graph(seed=3, throttle_rate=0.5, retry_after=0) as fake:
        reqs = [{"id": str(i), "method": "GET", "url": "/education/classes"} for i in range(20)]
        with httpx.Client(timeout=5) as c:
            resp = None
            for _ in range(10):  # the outer request may be throttled too
                resp = c.post(f"{fake.base_url}/$batch", json={"requests": reqs})
                if resp.status_code == 200:
                    break
                assert resp.status_code == 429 and resp.headers["Retry-After"] == "0"
        assert resp is not None and resp.status_code == 200
        throttled = [r for r in resp.json()["responses"] if r["status"] == 429]
        assert 0 < len(throttled) < 20
        assert all(r["headers"]["Retry-After"] == "0" for r in throttled)
        assert throttled[0]["body"]["error"]["code"] == "TooManyRequests"
        assert fake.counters["throttles"] >= len(throttled)


def run_faulty_session(seed: int) -> tuple[list[tuple[str, str, int]], dict[str, int], list[str]]:
    with running_fake_graph(seed=seed, throttle_rate=0.2, fault_rate=0.2, retry_after=0) as fake:
        uid = fake.add_user("p@school.example")
        with httpx.Client(base_url=fake.base_url + "/", timeout=5) as c:
            for i in range(30):
                c.post("education/classes", json=new_class(f"K{i}"))
                c.get(f"users/{uid}")
            reqs = [{"id": str(i), "method": "GET", "url": "/education/classes"} for i in range(20)]
            batch = c.post("$batch", json={"requests": reqs})
            order = [r["id"] for r in batch.json().get("responses", [])]
        return list(fake.requests), dict(fake.counters), order + sorted(fake.state.classes)


def test_fault_injection_is_deterministic_per_seed() -> None:
    first, second, other = run_faulty_session(7), run_faulty_session(7), run_faulty_session(8)
    assert first == second
    assert first[0] != other[0]
    statuses = {s for _, _, s in first[0]}
    assert {429, 201, 200} <= statuses and statuses & {503, 504}
    assert first[1]["throttles"] > 0 and first[1]["faults"] > 0


def test_fail_after_n_writes_and_counters(client: httpx.Client, fake: FakeGraph) -> None:
    fake.fail_after_writes = 2
    assert [client.post("education/classes", json=new_class(f"W{i}")).status_code for i in range(4)] == [
        201, 201, 503, 503,
    ]  # fmt: skip
    assert client.get("education/classes").status_code == 200
    assert fake.counters["writes"] == 2 and fake.counters["faults"] == 2
    fake.fail_after_writes = None
    assert client.post("education/classes", json=new_class("W2")).status_code == 201
    assert fake.counters["write_requests"] == 5


def test_faults_on_writes_only_and_batch_writes_respect_fail_after() -> None:
    opts = {"seed": 2, "throttle_rate": 0.5, "fault_reads": False, "retry_after": 0}
    with running_fake_graph(**opts) as fake, httpx.Client(base_url=fake.base_url + "/", timeout=5) as c:
        assert all(c.get("education/classes").status_code == 200 for _ in range(10))
        assert fake.counters["throttles"] == 0
        codes = {c.post("education/classes", json=new_class(f"R{i}")).status_code for i in range(10)}
        assert codes == {201, 429}
        fake.throttle_rate, fake.fail_after_writes = 0.0, fake.counters["writes"] + 1
        hdr = {"Content-Type": "application/json"}
        reqs = [
            {
                "id": str(i),
                "method": "POST",
                "url": "/education/classes",
                "headers": hdr,
                "body": new_class(f"B{i}"),
            }
            for i in range(3)
        ]
        out = c.post("$batch", json={"requests": reqs}).json()["responses"]
        assert sorted(r["status"] for r in out) == [201, 503, 503]
        assert ("POST", "/education/classes", 201) in fake.inner_requests


def test_in_process_handle_without_socket() -> None:
    fake = FakeGraph()
    status, _, payload = fake.handle("POST", "/v1.0/education/classes", json.dumps(new_class("Q")).encode())
    assert status == 201 and json.loads(payload)["externalId"] == "Q"


def test_airflow_msgraph_hook_talks_to_fake(fake: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider's hook reaches the fake through the connection extra ``base_url``; no token needed
    because the fake host is not in ``allowed_hosts``."""
    hooks = pytest.importorskip("airflow.providers.microsoft.azure.hooks.msgraph")
    from airflow.exceptions import AirflowBadRequest

    extra = {"tenant_id": TENANT, "base_url": fake.base_url + "/", "allowed_hosts": "graph.microsoft.com"}
    conn = {"conn_type": "msgraph", "login": "client-id", "password": "secret", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MSGRAPH_FAKE", json.dumps(conn))
    for i in range(3):
        fake.store.handle("POST", "education/classes", {}, new_class(f"H{i}"))
    uid = fake.add_user("p@school.example")
    cid = fake.state.class_by_external_id("H0")["id"]
    members_ref = "education/classes/{cid}/members/$ref"

    async def main() -> tuple[dict, list, dict, dict]:
        hook = hooks.KiotaRequestAdapterHook(conn_id="msgraph_fake")
        try:
            flt = {"$filter": "externalId eq 'H1'"}
            listed = await hook.run(url="education/classes", query_parameters=flt)
            pages = await hook.paginated_run(url="education/classes", query_parameters={"$top": "2"})
            inner = {"requests": [{"id": "1", "method": "GET", "url": "/users"}]}
            batch = await hook.run(url="$batch", method="POST", data=inner)
            path = {"cid": cid}
            added = await hook.run(url=members_ref, method="POST", path_parameters=path, data=ref(uid))
            with pytest.raises(AirflowBadRequest, match="already exist"):
                await hook.run(url=members_ref, method="POST", path_parameters=path, data=ref(uid))
            # kiota's RetryHandler honours Retry-After (note: "0" falls through to its >= 3 s backoff)
            fake.throttle_next, fake.retry_after = 1, "1"
            await hook.run(url="users/{upn}", path_parameters={"upn": "p@school.example"})
            return listed, pages, batch, added
        finally:
            await hook.close()

    listed, pages, batch, added = asyncio.run(main())
    assert [c["externalId"] for c in listed["value"]] == ["H1"]
    assert sorted(c["externalId"] for page in pages for c in page["value"]) == ["H0", "H1", "H2"]
    assert batch["responses"][0]["status"] == 200
    assert isinstance(added, dict)  # a 204 gives the response headers, not None
    assert fake.state.members[cid] == [uid]
    assert fake.counters["throttles"] == 1
    assert [s for m, p, s in fake.requests if p.endswith("/users/p@school.example")] == [429, 200]


# ---- Teams from a class or group (POST /teams, team-post) --------------------------------------------
GRAPH = "https://graph.microsoft.com/v1.0"


def team_body(gid: str, template: str = "educationClass", **extra: object) -> dict[str, object]:
    return {
        "template@odata.bind": f"{GRAPH}/teamsTemplates('{template}')",
        "group@odata.bind": f"{GRAPH}/groups('{gid}')",
        **extra,
    }


def class_with_teacher(fake: FakeGraph, client: httpx.Client, ext: str) -> str:
    cid = ensure_class(client, ext)
    teacher = fake.add_user(f"t.{ext.lower()}@school.example")
    assert client.post(f"education/classes/{cid}/teachers/$ref", json=ref(teacher)).status_code == 204
    return cid


def test_team_from_class_202_with_location_and_recorded(fake: FakeGraph, client: httpx.Client) -> None:
    cid = class_with_teacher(fake, client, "TM-1")
    fake.reset_counters()
    resp = client.post("teams", json=team_body(cid))
    assert resp.status_code == 202 and resp.content == b""
    team = fake.state.teams[cid]
    op = team["operation"]
    assert team == {"id": cid, "template": "educationClass", "createdFrom": cid, "operation": op}
    assert resp.headers["Location"] == f"/teams('{cid}')/operations('{op}')"
    assert resp.headers["Content-Location"] == f"/teams('{cid}')"
    assert fake.counters["writes"] == 1 and fake.counters["write_requests"] == 1
    status = client.get(resp.headers["Location"].lstrip("/")).json()
    assert status == {
        "id": op,
        "operationType": "createTeam",
        "status": "succeeded",
        "targetResourceId": cid,
        "targetResourceLocation": f"/teams('{cid}')",
    }
    assert client.get(f"teams/{cid}/operations/{op}").json()["status"] == "succeeded"
    again = client.post("teams", json=team_body(cid))
    assert again.status_code == 409 and again.json()["error"]["code"] == "Conflict"
    assert fake.counters["writes"] == 1 and fake.counters["write_attempts"] == 2
    assert client.delete(f"education/classes/{cid}").status_code == 204
    assert fake.state.teams == {}


def test_team_from_m365_group_with_standard_template(fake: FakeGraph, client: httpx.Client) -> None:
    owner = fake.add_user("o@school.example")
    group = {
        "displayName": "Staff",
        "mailNickname": "staff",
        "mailEnabled": True,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "owners@odata.bind": [f"{GRAPH}/users/{owner}"],
    }
    gid = client.post("groups", json=group).json()["id"]
    assert client.post("teams", json=team_body(gid, "standard")).status_code == 202
    assert fake.state.teams[gid]["template"] == "standard"
    assert client.delete(f"groups/{gid}").status_code == 204
    assert gid not in fake.state.teams


def test_team_unknown_group_404(fake: FakeGraph, client: httpx.Client) -> None:
    resp = client.post("teams", json=team_body("00000000-0000-4000-8000-000000000001"))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NotFound"
    assert fake.state.teams == {} and fake.counters["writes"] == 0


def test_team_needs_an_owner(fake: FakeGraph, client: httpx.Client) -> None:
    cid = ensure_class(client, "TM-2")
    resp = client.post("teams", json=team_body(cid))
    assert resp.status_code == 400 and "owner" in resp.json()["error"]["message"]
    assert fake.state.teams == {}


@pytest.mark.parametrize(
    "change",
    [
        {"displayName": "6A"},
        {"members": []},
        {"template@odata.bind": f"{GRAPH}/teamsTemplates('educationStaff')"},
        {"template@odata.bind": "standard"},
        {"group@odata.bind": None},
    ],
)
def test_team_invalid_body_400(fake: FakeGraph, client: httpx.Client, change: dict[str, object]) -> None:
    cid = class_with_teacher(fake, client, "TM-3")
    body = {k: v for k, v in {**team_body(cid), **change}.items() if v is not None}
    resp = client.post("teams", json=body)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadRequest"
    assert fake.state.teams == {}


def test_team_not_ready_attempts_per_group() -> None:
    fake = FakeGraph(team_not_ready_attempts=2)
    assert fake.team_not_ready_attempts == 2 and fake.store.team_not_ready_attempts == 2
    teacher = fake.add_user("t@school.example")
    posts = []
    for ext in ("N1", "N2"):
        created = fake.handle("POST", "/v1.0/education/classes", json.dumps(new_class(ext)).encode())
        cid = json.loads(created[2])["id"]
        teach = json.dumps(ref(teacher)).encode()
        assert fake.handle("POST", f"/v1.0/education/classes/{cid}/teachers/$ref", teach)[0] == 204
        posts.append(json.dumps(team_body(cid)).encode())
    fake.reset_counters()
    statuses = [fake.handle("POST", "/v1.0/teams", posts[0])[0] for _ in range(3)]
    assert statuses == [404, 404, 202]
    assert fake.counters["writes"] == 1 and fake.counters["write_attempts"] == 3
    assert fake.handle("POST", "/v1.0/teams", posts[1])[0] == 404  # counted per group
    fake.team_not_ready_attempts = 0
    assert fake.handle("POST", "/v1.0/teams", posts[1])[0] == 202
    assert fake.handle("POST", "/v1.0/teams", posts[0])[0] == 409
    assert len(fake.state.teams) == 2


def test_team_post_in_batch_passes_location(fake: FakeGraph, client: httpx.Client) -> None:
    cid = class_with_teacher(fake, client, "TM-4")
    hdr = {"Content-Type": "application/json"}
    reqs = [{"id": "1", "method": "POST", "url": "/teams", "headers": hdr, "body": team_body(cid)}]
    out = client.post("$batch", json={"requests": reqs}).json()["responses"][0]
    op = fake.state.teams[cid]["operation"]
    assert out["status"] == 202 and "body" not in out
    assert out["headers"]["Location"] == f"/teams('{cid}')/operations('{op}')"
    assert out["headers"]["Content-Location"] == f"/teams('{cid}')"
    assert ("POST", "/teams", 202) in fake.inner_requests


def test_get_team(fake: FakeGraph, client: httpx.Client) -> None:
    cid = class_with_teacher(fake, client, "TM-5")
    assert client.get(f"teams/{cid}").status_code == 404
    assert client.post("teams", json=team_body(cid)).status_code == 202
    client.patch(f"education/classes/{cid}", json={"displayName": "TM-5 renamed"})
    team = client.get(f"teams/{cid}").json()
    assert team["id"] == cid and team["displayName"] == "TM-5 renamed" and team["isArchived"] is False
    assert client.get(f"teams('{cid}')").json()["id"] == cid
    assert client.get("teams/unknown").status_code == 404
