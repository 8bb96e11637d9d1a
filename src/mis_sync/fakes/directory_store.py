"""Admin SDK Directory v1 ``users`` semantics of the local fake Google Workspace (a test emulator only).

Facts modelled (``shared/reference/targets.md`` §4 and the bundled ``admin.directory_v1`` discovery
document): insert needs ``primaryEmail`` (unique, also against aliases), ``name.givenName`` /
``name.familyName`` (≤ 60 characters) and ``password``; ``update`` and ``patch`` both have patch semantics
(``null`` clears a field); ``list`` needs ``customer`` or ``domain`` and pages with ``maxResults`` 1–500;
errors carry Directory ``reason`` codes (``duplicate``, ``notFound``, ``invalid``, ``badRequest``).
Choices where the documentation is silent or too strict:

* Names may also contain apostrophes (``'`` and ``’``), which UK names need; other punctuation outside the
  documented set (letters, digits, spaces, ``-``, ``/``, ``.``) is rejected.
* Lists are ordered by email unless ``orderBy`` says otherwise; ``query`` supports ``field=value`` (exact)
  and ``field:value`` (prefix) for email, givenName, familyName, orgUnitPath, externalId, isSuspended and
  isAdmin, space-separated clauses all having to match.
* Renaming ``primaryEmail`` keeps the old address as an alias, as Google does.
* Passwords are validated (8–100 characters unless ``hashFunction`` is set) but never stored or returned.
"""

from __future__ import annotations

import random
import re
import shlex
import unicodedata
from typing import Any

from mis_sync.fakes.classroom_schema import (
    GoogleError,
    Query,
    Response,
    SchemaValidator,
    already_exists,
    discovery,
    invalid,
    not_found,
    page,
    q1,
)
from mis_sync.fakes.classroom_state import ClassroomState, now_rfc3339

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_NAME_EXTRA = frozenset(" -/.'’")
EXTERNAL_ID_TYPES = frozenset({"account", "custom", "customer", "login_id", "network", "organization"})
QUERY_FIELDS = {
    "email": "primaryEmail", "givenname": "givenName", "familyname": "familyName", "isadmin": "isAdmin",
    "orgunitpath": "orgUnitPath", "externalid": "externalId", "issuspended": "suspended",
}  # fmt: skip


def _bad_input(what: str) -> GoogleError:
    return invalid(f"Invalid Input: {what}", "invalid")


def _check_name(name: Any) -> None:
    if not isinstance(name, dict):
        raise invalid("Invalid Given/Family Name: GivenName", "invalid")
    for key, label in (("givenName", "GivenName"), ("familyName", "FamilyName")):
        value = name.get(key)
        ok = isinstance(value, str) and value.strip() and len(value) <= 60
        if not ok or any(
            not (c.isalnum() or c in _NAME_EXTRA or unicodedata.category(c).startswith("M")) for c in value
        ):
            raise invalid(f"Invalid Given/Family Name: {label}", "invalid")


def _check_external_ids(ids: Any) -> None:
    if ids is None:
        return
    if not isinstance(ids, list) or len(str(ids)) > 2048:
        raise _bad_input("externalIds")
    for item in ids:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise _bad_input("externalIds")
        kind = item.get("type", "organization")
        if kind not in EXTERNAL_ID_TYPES or (kind == "custom" and not item.get("customType")):
            raise _bad_input("externalIds")


class DirectoryStore:
    """Directory ``users`` on the shared :class:`ClassroomState` (paths after ``admin/directory/v1``)."""

    def __init__(
        self,
        state: ClassroomState,
        *,
        seed: int = 0,
        customer_id: str = "C0fake000",
        auto_users_domain: str | None = None,
    ) -> None:
        self.state = state
        self.customer_id = customer_id
        self.auto_users_domain = auto_users_domain.lower() if auto_users_domain else None
        self.schema = SchemaValidator(discovery("admin", "directory_v1"))
        self._rng = random.Random(seed * 104729 + 5)

    def _new_id(self) -> str:
        uid = str(self._rng.randrange(10**20, 10**21))
        while uid in self.state.users or uid in self.state.deleted_users:
            uid = str(self._rng.randrange(10**20, 10**21))
        return uid

    def user(self, key: str) -> dict[str, Any]:
        found = self.state.users.get(key) or (self.state.user_by_email(key) if "@" in key else None)
        found = found or self.auto_user(key)
        if found is None:
            raise not_found("Resource Not Found: userKey", "notFound")
        return found

    def auto_user(self, key: str) -> dict[str, Any] | None:
        """With ``auto_users_domain`` (the demo emulator), an unknown address of that domain is made on
        the spot, standing in for the accounts a real Workspace already holds; otherwise ``None``."""
        domain = self.auto_users_domain
        if not domain or not key.lower().endswith("@" + domain) or not _EMAIL.match(key):
            return None
        local = key.split("@", 1)[0]
        given = "".join(c for c in local if c.isalnum())[:60] or "Demo"
        return self.state.users[self.add_user(key.lower(), given, "Emulator")]

    # ---- seeding ----------------------------------------------------------------------------------------
    def add_user(
        self, email: str, given: str, family: str, *, id: str | None = None, suspended: bool = False,
        org_unit_path: str = "/", is_admin: bool = False, **attrs: Any,
    ) -> str:  # fmt: skip
        name = {"givenName": given, "familyName": family}
        body = {"primaryEmail": email, "name": name, "password": "fake-password", "suspended": suspended,
                "orgUnitPath": org_unit_path, **attrs}  # fmt: skip
        try:
            user = self.insert(body, user_id=id)
        except GoogleError as exc:  # a test-setup mistake: say what, not whom
            raise ValueError(f"cannot seed user: {exc.message}") from None
        user["isAdmin"] = is_admin
        return str(user["id"])

    # ---- routing ----------------------------------------------------------------------------------------
    def handle(self, method: str, parts: list[str], query: Query, body: Any) -> Response:
        if parts[:1] != ["users"]:
            raise not_found("Method not found.")
        rest = parts[1:]
        if not rest and method == "GET":
            return 200, {}, self._list(query)
        if not rest and method == "POST":
            return 200, {}, self.insert(body)
        if len(rest) == 2 and rest[1] == "undelete" and method == "POST":
            return self._undelete(rest[0], body)
        if len(rest) == 1:
            user = self.user(rest[0])
            if method == "GET":
                return 200, {}, user
            if method in ("PATCH", "PUT"):
                return 200, {}, self._patch(user, self.schema.clean(body, "User", "resource"))
            if method == "DELETE":
                del self.state.users[user["id"]]
                self.state.deleted_users[user["id"]] = {**user, "deletionTime": now_rfc3339()}
                self.state.forget_user(user["id"])
                return 204, {}, None
        raise not_found("Method not found.")

    # ---- users ------------------------------------------------------------------------------------------
    def _validate(self, user: dict[str, Any], password: Any, hashed: bool) -> None:
        email = user.get("primaryEmail")
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise _bad_input("primary_user_email")
        _check_name(user.get("name"))
        if len(user["name"].get("displayName") or "") > 256:
            raise invalid("Invalid Given/Family Name: DisplayName", "invalid")
        if password is not None and not (hashed or 8 <= len(str(password)) <= 100):
            raise invalid("Invalid Password", "invalid")
        path = user.get("orgUnitPath", "/")
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or (self.state.org_units is not None and path not in self.state.org_units | {"/"})
        ):
            raise _bad_input("INVALID_OU_ID")
        _check_external_ids(user.get("externalIds"))

    def insert(self, body: Any, *, user_id: str | None = None) -> dict[str, Any]:
        fields = self.schema.clean(body, "User", "resource")
        password, hashed = fields.pop("password", None), bool(fields.pop("hashFunction", None))
        fields.pop("id", None)  # assigned by Google
        if not password:
            raise invalid("Invalid Password", "invalid")
        name = dict(fields.get("name") or {})
        name.pop("fullName", None)
        user: dict[str, Any] = {
            "kind": "admin#directory#user", "id": user_id or self._new_id(), "primaryEmail": "", "name": name,
            "isAdmin": False, "isDelegatedAdmin": False, "lastLoginTime": "1970-01-01T00:00:00.000Z",
            "creationTime": now_rfc3339(), "agreedToTerms": False, "suspended": False, "archived": False,
            "changePasswordAtNextLogin": False, "ipWhitelisted": False, "customerId": self.customer_id,
            "orgUnitPath": "/", "isMailboxSetup": True, "includeInGlobalAddressList": True,
        }  # fmt: skip
        user.update({k: v for k, v in fields.items() if k != "name" and v is not None})
        self._validate(user, password, hashed)
        if self.state.user_by_email(user["primaryEmail"]) or user["id"] in self.state.users:
            raise already_exists("Entity already exists.", "duplicate")
        self._finish(user)
        self.state.users[user["id"]] = user
        return user

    def _patch(self, user: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        password, hashed = fields.pop("password", None), bool(fields.pop("hashFunction", None))
        fields.pop("id", None)
        updated = dict(user)
        for key, value in fields.items():
            if value is None:
                updated.pop(key, None)
            elif key == "name" and isinstance(value, dict):
                merged = {**updated.get("name", {}), **value}
                updated["name"] = {k: v for k, v in merged.items() if v is not None and k != "fullName"}
            else:
                updated[key] = value
        self._validate(updated, password, hashed)
        new_email, old_email = updated["primaryEmail"], user["primaryEmail"]
        if new_email.lower() != old_email.lower():
            other = self.state.user_by_email(new_email)
            if other is not None and other["id"] != user["id"]:
                raise already_exists("Entity already exists.", "duplicate")
            aliases = [a for a in updated.get("aliases", []) if a.lower() != new_email.lower()]
            updated["aliases"] = [*aliases, old_email]
        self._finish(updated)
        user.clear()
        user.update(updated)
        return user

    @staticmethod
    def _finish(user: dict[str, Any]) -> None:
        """Derived read-only fields: fullName, emails[primary], suspensionReason."""
        name = user["name"]
        name["fullName"] = f"{name['givenName']} {name['familyName']}"
        others = [e for e in user.get("emails", []) if isinstance(e, dict) and not e.get("primary")]
        user["emails"] = [{"address": user["primaryEmail"], "primary": True}, *others]
        if user.get("suspended"):
            user.setdefault("suspensionReason", "ADMIN")
        else:
            user.pop("suspensionReason", None)

    def _undelete(self, key: str, body: Any) -> Response:
        user = self.state.deleted_users.get(key)
        if user is None:
            raise not_found("Resource Not Found: userKey", "notFound")
        if self.state.user_by_email(user["primaryEmail"]):
            raise already_exists("Entity already exists.", "duplicate")
        path = self.schema.clean(body, "UserUndelete", "resource").get("orgUnitPath")
        restored = {k: v for k, v in user.items() if k != "deletionTime"}
        restored["orgUnitPath"] = path or restored.get("orgUnitPath", "/")
        del self.state.deleted_users[key]
        self.state.users[key] = restored
        return 204, {}, None

    # ---- list -------------------------------------------------------------------------------------------
    def _list(self, query: Query) -> dict[str, Any]:
        customer, domain = q1(query, "customer"), q1(query, "domain").lower()
        if not (customer or domain) or customer not in ("", "my_customer", self.customer_id):
            raise invalid("Bad Request", "badRequest")
        try:
            size = int(q1(query, "maxResults", "100"))
        except ValueError:
            raise invalid("Invalid value for maxResults.", "invalid") from None
        if not 1 <= size <= 500:
            raise invalid("Invalid value for maxResults: must be within the range [1, 500].", "invalid")
        deleted = q1(query, "showDeleted").lower() == "true"
        pool = self.state.deleted_users if deleted else self.state.users
        users = [u for u in pool.values() if not domain or u["primaryEmail"].lower().endswith("@" + domain)]
        users = self._search(users, q1(query, "query"))
        order = q1(query, "orderBy", "email")
        if order not in ("email", "givenName", "familyName"):
            raise invalid("Invalid value for orderBy.", "invalid")
        users.sort(
            key=lambda u: (u["primaryEmail"] if order == "email" else u["name"].get(order, "")).lower(),
            reverse=q1(query, "sortOrder").upper() == "DESCENDING",
        )
        out = {"kind": "admin#directory#users", **page(users, query, "users", size=size, reason="invalid")}
        return out

    @staticmethod
    def _search(users: list[dict[str, Any]], expr: str) -> list[dict[str, Any]]:
        try:
            clauses = shlex.split(expr)
        except ValueError:
            raise _bad_input("query") from None
        for clause in clauses:
            m = re.match(r"^([A-Za-z]+)([:=])(.*)$", clause)
            if not m or m[1].lower() not in QUERY_FIELDS:
                raise _bad_input("query")
            key, exact, want = QUERY_FIELDS[m[1].lower()], m[2] == "=", m[3].lower().rstrip("*")

            def values(u: dict[str, Any], key: str = key) -> list[str]:
                if key == "externalId":
                    return [str(e.get("value", "")) for e in u.get("externalIds") or []]
                got = u["name"].get(key) if key in ("givenName", "familyName") else u.get(key, False)
                return [str(got).lower() if isinstance(got, bool) else str(got or "")]

            def hit(v: str, want: str = want, exact: bool = exact) -> bool:
                return v.lower() == want if exact else v.lower().startswith(want)

            users = [u for u in users if any(hit(v) for v in values(u))]
        return users
