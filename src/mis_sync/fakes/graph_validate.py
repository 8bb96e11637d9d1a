"""Request-body validation of the local fake Graph: education classes and Microsoft 365 groups (a test
emulator only). Fields and rules as in the v1.0 docs (educationclass-post, group-post-groups) and
``shared/reference/targets.md`` §1.2: read-only fields refused, ``externalSource`` xor
``externalSourceDetail``, ``mailNickname`` ASCII without ``@()\\[]";:<>,`` or spaces, ≤ 64 characters and
unique across all groups.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mis_sync.fakes.graph_store import _strip_odata_type, bad

if TYPE_CHECKING:
    from mis_sync.fakes.graph_store import GraphStore

CLASS_FIELDS = frozenset(
    {
        "displayName", "mailNickname", "description", "classCode", "externalId", "externalName",
        "externalSource", "externalSourceDetail", "grade", "term",
    }
)  # fmt: skip
TERM_FIELDS = frozenset({"displayName", "externalId", "startDate", "endDate"})
GROUP_CREATE_FIELDS = frozenset(
    {
        "displayName", "description", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes",
        "visibility", "owners@odata.bind", "members@odata.bind", "preferredLanguage", "classification",
    }
)  # fmt: skip
GROUP_PATCH_FIELDS = frozenset(
    {"displayName", "description", "mailNickname", "visibility", "members@odata.bind", "preferredLanguage"}
)
READ_ONLY_FIELDS = frozenset(
    {"id", "createdBy", "createdDateTime", "members", "teachers", "schools", "group"}
)
_NICK_FORBIDDEN = frozenset('@()\\[]";:<>, ')
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_nickname(nick: Any) -> None:
    if not isinstance(nick, str) or not nick:
        raise bad(
            "Invalid value specified for property 'mailNickname' of resource 'Group'.", "Request_BadRequest"
        )
    if len(nick) > 64 or any(ord(c) > 127 or c in _NICK_FORBIDDEN for c in nick):
        raise bad(
            "Invalid value specified for property 'mailNickname' of resource 'Group'.", "Request_BadRequest"
        )


def _check_strings(body: dict[str, Any], names: frozenset[str], kind: str) -> None:
    for name in names & body.keys():
        if not isinstance(body[name], str):
            raise bad(f"Cannot convert the value of property '{name}' of type '{kind}' to a string.")


def nickname_free(store: GraphStore, nick: str, except_id: str | None = None) -> None:
    for gid, obj in [*store.state.classes.items(), *store.state.groups.items()]:
        if gid != except_id and str(obj.get("mailNickname", "")).lower() == nick.lower():
            raise bad(
                "Another object with the same value for property mailNickname already exists.",
                "Request_BadRequest",
            )


def validate_class(
    store: GraphStore, body: Any, *, patch: bool, except_id: str | None = None
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("A JSON object body is required.")
    body = _strip_odata_type(body, "#microsoft.graph.educationClass")
    for name in body:
        if name in READ_ONLY_FIELDS:
            raise bad(f"Property '{name}' is read-only and cannot be set.", "Request_BadRequest")
        if name not in CLASS_FIELDS:
            raise bad(f"Property '{name}' does not exist on type 'microsoft.graph.educationClass'.")
    _check_strings(body, CLASS_FIELDS - {"term"}, "educationClass")
    if not patch:
        for req in ("displayName", "mailNickname"):
            if not body.get(req):
                raise bad(f"Property '{req}' is required.", "Request_BadRequest")
    if "externalSource" in body and "externalSourceDetail" in body:
        raise bad("Specify either 'externalSource' or 'externalSourceDetail', not both.")
    if "externalSource" in body and body["externalSource"] not in ("sis", "manual"):
        raise bad(f"Invalid value '{body['externalSource']}' for 'externalSource' (sis | manual).")
    if "term" in body:
        term = body["term"]
        if not isinstance(term, dict) or set(term) - TERM_FIELDS:
            raise bad("Invalid 'term': allowed properties are displayName, externalId, startDate, endDate.")
        _check_strings(term, TERM_FIELDS, "educationTerm")
        for d in ("startDate", "endDate"):
            if d in term and not _DATE.match(term[d]):
                raise bad(f"Invalid date '{term[d]}' for 'term.{d}' (yyyy-mm-dd).")
    if "mailNickname" in body:
        _check_nickname(body["mailNickname"])
        nickname_free(store, body["mailNickname"], except_id)
    return dict(body)


def validate_group(
    store: GraphStore, body: Any, *, patch: bool, except_id: str | None = None
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("A JSON object body is required.")
    body = _strip_odata_type(body, "#microsoft.graph.group")
    allowed = GROUP_PATCH_FIELDS if patch else GROUP_CREATE_FIELDS
    for name in body:
        if name not in allowed:
            raise bad(f"Property '{name}' does not exist on type 'microsoft.graph.group' or is not writable.")
    _check_strings(body, frozenset({"displayName", "description", "mailNickname", "visibility"}), "group")
    if not patch:
        for req in ("displayName", "mailNickname", "mailEnabled", "securityEnabled"):
            if req not in body:
                raise bad(f"Property '{req}' is required.", "Request_BadRequest")
        if body.get("groupTypes") != ["Unified"] or body["mailEnabled"] is not True:
            raise bad(
                "The fake supports only Microsoft 365 groups: groupTypes ['Unified'], mailEnabled true."
            )
    if body.get("visibility", "Private") not in ("Private", "Public", "HiddenMembership"):
        raise bad("Invalid value for 'visibility'.")
    if "mailNickname" in body:
        _check_nickname(body["mailNickname"])
        nickname_free(store, body["mailNickname"], except_id)
    return dict(body)
