"""In-memory state and resource handlers of the local fake Microsoft Graph v1.0 (a test emulator only).

Facts modelled (see ``shared/reference/targets.md`` §1): education classes are unified groups with the same
id, class teachers are the group's owners, ``$ref`` adds with the real "already exist" error and removals
with Graph's varying answers (``graph_members``), ``externalId`` filters and ``@odata.nextLink`` paging
with absolute URLs.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

Response = tuple[int, dict[str, str], Any]

_CLAUSE = re.compile(r"^\s*([A-Za-z]+(?:/[A-Za-z]+)?)\s+eq\s+'((?:[^']|'')*)'\s*$")
_REF = re.compile(r"/(?:education/users|users|directoryObjects)(?:/|\(')([^/?'()]+)(?:'\))?$")


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "innerError": {"fake": True}}}


def bad(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(key: str) -> GraphError:
    msg = f"Resource '{key}' does not exist or one of its queried reference-property objects are not present."
    return GraphError(404, "Request_ResourceNotFound", msg)


@dataclass
class GraphState:
    """Inspectable state. ``classes`` and ``groups`` share the id space; teachers are stored as owners."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    owners: dict[str, list[str]] = field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)  # id = group id; see graph_teams
    teachers_removed_from_members: list[tuple[str, str]] = field(default_factory=list)
    """(class, user): a member removal the emulator accepted while the user was still a teacher."""

    def teachers(self, class_id: str) -> list[str]:
        return self.owners.get(class_id, [])

    def teachers_not_members(self) -> list[tuple[str, str]]:
        """(class, user) for every education-class teacher missing from the class's members: Microsoft's
        docs say teachers must be in both collections."""
        return [
            (cid, uid)
            for cid in self.classes
            for uid in self.owners.get(cid, [])
            if uid not in self.members.get(cid, [])
        ]

    def class_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        return next((c for c in self.classes.values() if c.get("externalId") == external_id), None)

    def user_by_upn(self, upn: str) -> dict[str, Any] | None:
        low = upn.lower()
        return next((u for u in self.users.values() if u["userPrincipalName"].lower() == low), None)


def _strip_odata_type(body: dict[str, Any], expected: str) -> dict[str, Any]:
    """msgraph-sdk serialisers may send ``@odata.type``; accept only the resource's own type."""
    if "@odata.type" in body and body["@odata.type"] != expected:
        raise bad(f"Invalid '@odata.type' {body['@odata.type']!r}: expected {expected!r}.")
    return {k: v for k, v in body.items() if k != "@odata.type"}


def _filter(items: list[dict[str, Any]], expr: str) -> list[dict[str, Any]]:
    clauses = []
    for part in re.split(r"\s+and\s+", expr.strip()):
        m = _CLAUSE.match(part)
        if not m:
            raise bad(f"Invalid filter clause: {part!r} (fake supports only \"prop eq 'value'\" [and ...])")
        clauses.append((m.group(1).split("/"), m.group(2).replace("''", "'")))

    def get(obj: Any, path: list[str]) -> Any:
        for key in path:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj

    def matches(item: dict[str, Any]) -> bool:
        for path, value in clauses:
            got = get(item, path)
            if not isinstance(got, str) or got.lower() != value.lower():
                return False
        return True

    return [i for i in items if matches(i)]


def _select(item: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    sel = query.get("$select")
    if not sel:
        return dict(item)
    keys = {k.strip() for k in sel.split(",")} | {"@odata.type"}
    return {k: v for k, v in item.items() if k in keys}


class GraphStore:
    def __init__(self, *, seed: int = 0, page_size: int = 100, team_not_ready_attempts: int = 0) -> None:
        from mis_sync.fakes.graph_members import REMOVAL_ERRORS, TEACHER_REMOVALS

        self.state = GraphState()
        self.removal_errors: tuple[str, ...] = REMOVAL_ERRORS
        """How a removal of someone not there is answered, drawn per request (see ``graph_members``)."""
        self.teacher_removals: tuple[str, ...] = TEACHER_REMOVALS
        """How a member removal of a class's teacher is answered, drawn per request."""
        self._variants = random.Random(seed * 104729 + 3)
        self.page_size = page_size
        self.team_not_ready_attempts = team_not_ready_attempts  # first N POST /teams per group: 404
        self.team_attempts: dict[str, int] = {}
        self.base_url = "http://127.0.0.1/v1.0"
        self.auto_users_domain: str | None = None
        """Demo only: a user of this domain that is looked up and missing is made on the spot."""
        self._ids = random.Random(seed * 7919 + 17)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def pick(self, variants: tuple[str, ...]) -> str:
        """One of the plausible answers, from the seeded RNG (a sequential client sees the same ones)."""
        return variants[self._variants.randrange(len(variants))]

    def delete_user(self, uid: str) -> None:
        from mis_sync.fakes.graph_members import delete_user

        delete_user(self, uid)

    # ---- users (seeded by tests) ---------------------------------------------------------------------
    def add_user(
        self, upn: str, display_name: str | None = None, *, id: str | None = None, **attrs: Any
    ) -> str:
        if self.state.user_by_upn(upn):
            raise ValueError(f"user {upn} already exists in the fake")
        uid = id or self.new_id()
        user = {"id": uid, "userPrincipalName": upn, "displayName": display_name or upn.split("@")[0]}
        user["mail"] = attrs.pop("mail", upn)
        user.update(attrs)
        self.state.users[uid] = user
        return uid

    def _user(self, key: str, *, by_upn: bool = True) -> dict[str, Any]:
        user = self.state.users.get(key) or (self.state.user_by_upn(key) if by_upn else None)
        auto = self.auto_users_domain
        if user is None and by_upn and auto and key.lower().endswith("@" + auto):
            return self.state.users[self.add_user(key)]
        if user is None:
            raise not_found(key)
        return user

    # ---- helpers --------------------------------------------------------------------------------------
    def _page(self, path: str, ctx: str, items: list[dict[str, Any]], query: dict[str, str]) -> Response:
        if "$filter" in query:
            items = _filter(items, query["$filter"])
        try:
            top = int(query.get("$top", self.page_size))
            skip = int(query.get("$skiptoken", "0"))
        except ValueError:
            raise bad("Invalid $top or $skiptoken value.") from None
        if not 1 <= top <= 999:
            raise bad(f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")
        out: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#{ctx}",
            "value": [_select(i, query) for i in items[skip : skip + top]],
        }
        if skip + top < len(items):
            nxt = {**query, "$top": str(top), "$skiptoken": str(skip + top)}
            out["@odata.nextLink"] = f"{self.base_url}/{path}?{urlencode(nxt, quote_via=quote, safe='$,')}"
        return 200, {}, out

    def _group(self, gid: str, *, classes_only: bool = False) -> dict[str, Any]:
        found = self.state.classes.get(gid)
        if found is None and not classes_only:
            found = self.state.groups.get(gid)
        if found is None:
            raise not_found(gid)
        return found

    def _ref_target(self, body: Any) -> str:
        if not isinstance(body, dict) or set(body) != {"@odata.id"} or not isinstance(body["@odata.id"], str):
            raise bad("The request body must be a single '@odata.id' reference.", "Request_BadRequest")
        m = _REF.search(body["@odata.id"])
        if not m:
            raise bad(f"Invalid object identifier '{body['@odata.id']}'.", "Request_BadRequest")
        return self._user(unquote(m.group(1)), by_upn=False)["id"]

    def _add_ref(self, gid: str, rel: str, uid: str) -> None:
        bucket = (self.state.members if rel == "members" else self.state.owners).setdefault(gid, [])
        if uid in bucket:
            raise bad(
                "One or more added object references already exist for the following modified properties: "
                f"'{rel}'.",
                "Request_BadRequest",
            )
        bucket.append(uid)

    def _remove_ref(self, gid: str, rel: str, uid: str, *, label: str | None = None) -> None:
        from mis_sync.fakes.graph_members import remove_ref

        remove_ref(self, gid, rel, uid, label=label or rel, education=gid in self.state.classes)

    def _people(self, gid: str, rel: str, path: str, query: dict[str, str], odata_type: str) -> Response:
        bucket = (self.state.members if rel == "members" else self.state.owners).get(gid, [])
        items = [{"@odata.type": odata_type, **self.state.users[u]} for u in bucket if u in self.state.users]
        return self._page(path, f"{rel}", items, query)

    def _binds(self, body: dict[str, Any], name: str) -> list[str]:
        refs = body.get(name, [])
        if not isinstance(refs, list) or len(refs) > 20:
            raise bad(f"'{name}' must be a list of at most 20 references.", "Request_BadRequest")
        return [self._ref_target({"@odata.id": r}) for r in refs]

    # ---- validation (graph_validate) ------------------------------------------------------------------
    def _validate_class(self, body: Any, *, patch: bool, except_id: str | None = None) -> dict[str, Any]:
        from mis_sync.fakes.graph_validate import validate_class

        return validate_class(self, body, patch=patch, except_id=except_id)

    def _validate_group(self, body: Any, *, patch: bool, except_id: str | None = None) -> dict[str, Any]:
        from mis_sync.fakes.graph_validate import validate_group

        return validate_group(self, body, patch=patch, except_id=except_id)

    # ---- routing --------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        """Dispatch one request; ``path`` is relative to the version root, without a leading slash."""
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if parts[:2] == ["education", "classes"]:
            return self._classes(method, parts[2:], path, query, body)
        if parts[:2] == ["education", "users"] and len(parts) == 3 and method == "GET":
            user = self._user(parts[2], by_upn=False)
            return 200, {}, _select({"@odata.type": "#microsoft.graph.educationUser", **user}, query)
        if parts[:1] == ["users"]:
            if method in ("POST", "PATCH"):
                from mis_sync.fakes.graph_users import user_write

                return user_write(self, method, parts, body)
            if len(parts) == 1 and method == "GET":
                return self._page(path, "users", list(self.state.users.values()), query)
            if len(parts) == 2 and method == "GET":
                return 200, {}, _select(self._user(parts[1]), query)
        if parts[:1] == ["groups"]:
            return self._groups(method, parts[1:], path, query, body)
        if parts and (parts[0] == "teams" or parts[0].startswith("teams(")):
            from mis_sync.fakes.graph_teams import teams_request

            return teams_request(self, method, parts, query, body)
        if not parts and method == "GET":
            return 200, {}, {"@odata.context": f"{self.base_url}/$metadata", "value": []}
        raise bad(f"Resource not found for the segment '{'/'.join(parts) or '/'}' ({method}).")

    def _classes(self, method: str, rest: list[str], path: str, query: dict[str, str], body: Any) -> Response:
        if not rest:
            if method == "GET":
                return self._page(path, "education/classes", list(self.state.classes.values()), query)
            if method == "POST":
                fields = self._validate_class(body, patch=False)
                cid = self.new_id()
                if "externalSourceDetail" in fields:
                    detail = fields["externalSourceDetail"].lower()
                    fields["externalSource"] = (
                        "sis" if detail in ("system", "oneroster", "powerschool") else "manual"
                    )
                fields.setdefault("externalSource", "manual")
                obj = {"id": cid, **fields, "createdBy": {"application": {"displayName": "fake-graph"}}}
                self.state.classes[cid] = obj
                self.state.members.setdefault(cid, [])
                self.state.owners.setdefault(cid, [])
                ctx = {"@odata.context": f"{self.base_url}/$metadata#education/classes/$entity"}
                return 201, {"Location": f"{self.base_url}/education/classes/{cid}"}, {**ctx, **obj}
        cls = self._group(rest[0], classes_only=True)
        cid = cls["id"]
        if len(rest) == 1:
            if method == "GET":
                return 200, {}, _select(cls, query)
            if method == "PATCH":
                cls.update(self._validate_class(body, patch=True, except_id=cid))
                ctx = {"@odata.context": f"{self.base_url}/$metadata#education/classes/$entity"}
                return 200, {}, {**ctx, **cls}
            if method == "DELETE":
                del self.state.classes[cid]
                self.state.members.pop(cid, None)
                self.state.owners.pop(cid, None)
                self.state.teams.pop(cid, None)
                return 204, {}, None
        if len(rest) >= 2 and rest[1] in ("members", "teachers"):
            rel = rest[1]
            kind = "members" if rel == "members" else "owners"
            if len(rest) == 2 and method == "GET":
                return self._people(cid, kind, path, query, "#microsoft.graph.educationUser")
            if len(rest) == 3 and rest[2] == "$ref" and method == "POST":
                uid = self._ref_target(body)
                try:
                    self._add_ref(cid, kind, uid)
                except GraphError as exc:
                    exc.message = exc.message.replace(f"'{kind}'", f"'{rel}'")
                    raise
                return 204, {}, None
            if len(rest) == 4 and rest[3] == "$ref" and method == "DELETE":
                self._remove_ref(cid, kind, rest[2], label=rel)
                return 204, {}, None
        raise bad(f"Unsupported request {method} education/classes/{'/'.join(rest)}.")

    def _groups(self, method: str, rest: list[str], path: str, query: dict[str, str], body: Any) -> Response:
        if not rest:
            if method == "GET":
                items = [*self.state.groups.values(), *self.state.classes.values()]
                return self._page(path, "groups", items, query)
            if method == "POST":
                fields = self._validate_group(body, patch=False)
                owners = self._binds(fields, "owners@odata.bind")
                members = self._binds(fields, "members@odata.bind")
                gid = self.new_id()
                obj = {
                    "id": gid,
                    **{k: v for k, v in fields.items() if not k.endswith("@odata.bind")},
                    "visibility": fields.get("visibility", "Private"),
                }
                self.state.groups[gid] = obj
                self.state.owners[gid] = list(dict.fromkeys(owners))
                self.state.members[gid] = list(dict.fromkeys(members))
                return 201, {}, {"@odata.context": f"{self.base_url}/$metadata#groups/$entity", **obj}
        grp = self._group(rest[0])
        gid = grp["id"]
        if len(rest) == 1:
            if method == "GET":
                return 200, {}, _select(grp, query)
            if method == "PATCH":
                fields = self._validate_group(body, patch=True, except_id=gid)
                for uid in self._binds(fields, "members@odata.bind"):
                    self._add_ref(gid, "members", uid)
                grp.update({k: v for k, v in fields.items() if not k.endswith("@odata.bind")})
                return 204, {}, None
            if method == "DELETE":
                self.state.groups.pop(gid, None)
                self.state.classes.pop(gid, None)
                self.state.teams.pop(gid, None)
                return 204, {}, None
        if len(rest) >= 2 and rest[1] in ("members", "owners"):
            rel = rest[1]
            if len(rest) == 2 and method == "GET":
                return self._people(gid, rel, path, query, "#microsoft.graph.user")
            if len(rest) == 3 and rest[2] == "$ref" and method == "POST":
                self._add_ref(gid, rel, self._ref_target(body))
                return 204, {}, None
            if len(rest) == 4 and rest[3] == "$ref" and method == "DELETE":
                self._remove_ref(gid, rel, rest[2])
                return 204, {}, None
        raise bad(f"Unsupported request {method} groups/{'/'.join(rest)}.")
