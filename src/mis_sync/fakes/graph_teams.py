"""Teams of the local fake Graph: a Team made from an existing class or group (test emulator only).

Facts modelled (Microsoft docs, team-post, "create a team from a group"): ``POST /teams`` with only
``template@odata.bind`` (``teamsTemplates('educationClass')`` or ``teamsTemplates('standard')``) and
``group@odata.bind`` (``groups('{id}')``); the group needs an owner; the answer is ``202 Accepted`` with
an empty body, ``Location: /teams('{id}')/operations('{opId}')`` and ``Content-Location: /teams('{id}')``;
the team id is the group id; a second team for the same group is ``409 Conflict``. A group created less
than ~15 minutes ago may answer 404: the first ``store.team_not_ready_attempts`` attempts per group do.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mis_sync.fakes.graph_store import GraphError, Response, _select, _strip_odata_type, bad

if TYPE_CHECKING:
    from mis_sync.fakes.graph_store import GraphStore

TEMPLATES = frozenset({"educationClass", "standard"})
_TEMPLATE = re.compile(r"/teamsTemplates\('([^'/]+)'\)$")
_GROUP = re.compile(r"/groups(?:\('([^'/]+)'\)|/([^/?'()]+))$")
_KEYED = re.compile(r"^([A-Za-z]+)\('([^']*)'\)$")


def _segments(parts: list[str]) -> list[str]:
    """``teams('x')/operations('y')`` (as in the Location header) read as ``teams/x/operations/y``."""
    out: list[str] = []
    for part in parts:
        m = _KEYED.match(part)
        out.extend(m.groups() if m else (part,))
    return out


def _bound(body: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = body.get(name)
    m = pattern.search(value) if isinstance(value, str) else None
    if m is None:
        raise bad(f"Invalid value for '{name}': {value!r}.")
    return next(g for g in m.groups() if g)


def _team_not_found(key: str) -> GraphError:
    return GraphError(404, "NotFound", f"No team found with Group Id {key}.")


def _create(store: GraphStore, body: Any) -> Response:
    if not isinstance(body, dict):
        raise bad("A JSON object body is required.")
    body = _strip_odata_type(body, "#microsoft.graph.team")
    if "group@odata.bind" not in body:
        raise bad("The fake supports only creating a team from a group: 'group@odata.bind' is required.")
    extra = sorted(set(body) - {"group@odata.bind", "template@odata.bind"})
    if extra:
        raise bad(
            f"Properties {extra} cannot be set when creating a team from a group: "
            "only 'template@odata.bind' and 'group@odata.bind' are allowed."
        )
    if "template@odata.bind" not in body:
        raise bad("Property 'template@odata.bind' is required.")
    template = _bound(body, "template@odata.bind", _TEMPLATE)
    if template not in TEMPLATES:
        raise bad(f"Template '{template}' is not supported (educationClass | standard).")
    gid = _bound(body, "group@odata.bind", _GROUP)
    if gid not in store.state.classes and gid not in store.state.groups:
        raise GraphError(404, "NotFound", f"Group '{gid}' was not found.")
    tried = store.team_attempts.get(gid, 0)
    store.team_attempts[gid] = tried + 1
    if tried < store.team_not_ready_attempts:
        raise GraphError(
            404,
            "NotFound",
            f"Failed to execute Templates backend request CreateTeamFromGroupWithTemplateRequest: group "
            f"'{gid}' is not yet available to Teams (retry: a new group can take up to 15 minutes).",
        )
    if not store.state.owners.get(gid):
        raise bad(f"Group '{gid}' needs at least one owner to create a team from it.")
    if gid in store.state.teams:
        raise GraphError(409, "Conflict", f"A team already exists for group '{gid}'.")
    op = store.new_id()
    store.state.teams[gid] = {"id": gid, "template": template, "createdFrom": gid, "operation": op}
    where = f"/teams('{gid}')"
    return 202, {"Location": f"{where}/operations('{op}')", "Content-Location": where}, None


def teams_request(
    store: GraphStore, method: str, parts: list[str], query: dict[str, str], body: Any
) -> Response:
    """``parts`` starts with ``teams`` (path segments, already unquoted)."""
    parts = _segments(parts)
    if len(parts) == 1 and method == "POST":
        return _create(store, body)
    if len(parts) >= 2 and method == "GET":
        team = store.state.teams.get(parts[1])
        if team is None:
            raise _team_not_found(parts[1])
        tid = team["id"]
        if len(parts) == 2:
            group = store.state.classes.get(tid) or store.state.groups.get(tid) or {}
            out = {
                "@odata.context": f"{store.base_url}/$metadata#teams/$entity",
                "id": tid,
                "displayName": group.get("displayName"),
                "description": group.get("description"),
                "isArchived": False,
                "webUrl": f"https://teams.microsoft.com/l/team/fake?groupId={tid}",
            }
            return 200, {}, _select(out, query)
        if len(parts) == 4 and parts[2] == "operations":
            if parts[3] != team["operation"]:
                raise GraphError(404, "NotFound", f"Operation '{parts[3]}' was not found.")
            op = {"id": team["operation"], "operationType": "createTeam", "status": "succeeded"}
            return 200, {}, {**op, "targetResourceId": tid, "targetResourceLocation": f"/teams('{tid}')"}
    raise bad(f"Unsupported request {method} {'/'.join(parts)}.")
