"""User writes of the local fake Graph: ``POST /users`` and ``PATCH /users/{id}`` (test emulator only).

Fields are those of the v1.0 ``user`` resource that account provisioning can set (msgraph-sdk
``User`` model; docs: user-post-users, user-update). Required on create, as in the docs:
``accountEnabled``, ``displayName``, ``mailNickname``, ``userPrincipalName``,
``passwordProfile.password``. A body with another field, or a read-only one, is refused. Passwords are
checked (≥ 8 characters, per Entra's default policy) and never stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mis_sync.fakes.graph_store import GraphError, Response, bad

if TYPE_CHECKING:
    from mis_sync.fakes.graph_store import GraphStore

USER_FIELDS = frozenset(
    {
        "accountEnabled", "displayName", "givenName", "surname", "mailNickname", "userPrincipalName",
        "usageLocation", "passwordProfile", "jobTitle", "department", "employeeId", "preferredLanguage",
        "mail", "otherMails", "companyName", "officeLocation", "passwordPolicies",
    }
)  # fmt: skip
READ_ONLY = frozenset({"id", "createdDateTime", "assignedLicenses", "onPremisesSyncEnabled"})
REQUIRED = ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile")
PASSWORD_FIELDS = frozenset(
    {"password", "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"}
)


def _check(body: Any, *, create: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    for name, value in body.items():
        if name in READ_ONLY or name not in USER_FIELDS:
            raise bad(f"Property '{name}' does not exist on type 'microsoft.graph.user'.")
        if name == "accountEnabled" and not isinstance(value, bool):
            raise bad("Invalid value for property 'accountEnabled'.")
        if name == "usageLocation" and value is not None and (not isinstance(value, str) or len(value) != 2):
            raise bad("Invalid value specified for property 'usageLocation' of resource 'User'.")
    if create:
        missing = [name for name in REQUIRED if body.get(name) in (None, "")]
        if missing:
            raise bad(f"Property '{missing[0]}' is required when creating the user.", "Request_BadRequest")
    profile = body.get("passwordProfile")
    if profile is not None:
        if not isinstance(profile, dict) or set(profile) - PASSWORD_FIELDS:
            raise bad("Invalid passwordProfile.")
        if create and len(str(profile.get("password") or "")) < 8:
            raise bad("The specified password does not comply with password complexity requirements.")
    return body


def user_write(store: GraphStore, method: str, parts: list[str], body: Any) -> Response:
    if method == "POST" and len(parts) == 1:
        fields = _check(body, create=True)
        upn = str(fields["userPrincipalName"])
        if store.state.user_by_upn(upn):
            raise bad(
                "Another object with the same value for property userPrincipalName already exists.",
                "Request_BadRequest",
            )
        extra = {
            k: v
            for k, v in fields.items()
            if k not in ("passwordProfile", "userPrincipalName", "displayName")
        }
        uid = store.add_user(upn, str(fields["displayName"]), **extra)
        ctx = {"@odata.context": f"{store.base_url}/$metadata#users/$entity"}
        return 201, {}, {**ctx, **store.state.users[uid]}
    if method == "PATCH" and len(parts) == 2:
        user = store.state.users.get(parts[1])
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{parts[1]}' does not exist.")
        fields = _check(body, create=False)
        user.update({k: v for k, v in fields.items() if k != "passwordProfile"})
        return 204, {}, None
    raise bad(f"Unsupported request {method} users/{'/'.join(parts[1:])}.")
