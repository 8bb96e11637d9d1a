"""Google-style errors, discovery-schema body validation and page tokens for the local fake Google Classroom
and Admin SDK Directory servers (a test emulator only, see :mod:`mis_sync.fakes.classroom`).

Request bodies are checked against the discovery documents bundled in google-api-python-client (the same
files ``build(..., static_discovery=True)`` reads), so the fake rejects exactly the field names the pinned
client library would not know either. Decisions that the vendor documentation leaves open:

* **Unknown fields** → ``400 INVALID_ARGUMENT`` with Google's JSON-transcoding message
  (``Invalid JSON payload received. Unknown name "x" at 'course': Cannot find field.``), which names the
  field but never its value.
* **Read-only / output-only fields** (Classroom descriptions say "Read-only.", Directory schemas carry
  ``readOnly: true``) are **silently ignored** in request bodies, as Google's proto-based APIs treat
  output-only fields (AIP-203). Naming one in a Classroom ``updateMask`` is an error instead (the
  discovery text says "Specifying this field in a course update mask results in an error").
* Error messages never echo submitted values (they may be names or email addresses).
"""

from __future__ import annotations

import base64
import functools
import json
import zlib
from typing import Any, ClassVar

Query = dict[str, list[str]]
Response = tuple[int, dict[str, str], Any]

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip
# Query parameters that never change which items a list returns (so a page token stays valid across them).
_NON_FILTER_PARAMS = frozenset(
    {"pageToken", "pageSize", "maxResults", "alt", "fields", "prettyPrint", "$.xgafv"}
)


class GoogleError(Exception):
    """An API error. ``body()`` is Google's JSON shape; Directory-style errors also carry ``errors[]`` with a
    ``reason`` (googleapiclient reads it, e.g. to retry ``403 userRateLimitExceeded``)."""

    def __init__(
        self, code: int, status: str, message: str, *, reason: str | None = None, domain: str = "global"
    ) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message
        self.reason, self.domain = reason, domain

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.reason:
            err["errors"] = [{"message": self.message, "domain": self.domain, "reason": self.reason}]
        return {"error": err}


def invalid(message: str, reason: str | None = None) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message, reason=reason)


def not_found(message: str = "Requested entity was not found.", reason: str | None = None) -> GoogleError:
    return GoogleError(404, "NOT_FOUND", message, reason=reason)


def already_exists(
    message: str = "Requested entity already exists", reason: str | None = None
) -> GoogleError:
    return GoogleError(409, "ALREADY_EXISTS", message, reason=reason)


def precondition(name: str | None, text: str) -> GoogleError:
    """Classroom request errors put ``@Name`` first in the message (Google's "error message structure")."""
    return GoogleError(400, "FAILED_PRECONDITION", f"@{name} {text}" if name else text)


def error_response(exc: GoogleError) -> Response:
    return exc.code, {}, exc.body()


@functools.cache
def discovery(api: str, version: str) -> dict[str, Any]:
    """The discovery document bundled with the installed google-api-python-client."""
    from googleapiclient.discovery_cache import get_static_doc

    doc = get_static_doc(api, version)
    if doc is None:
        raise RuntimeError(f"google-api-python-client has no bundled discovery document {api}.{version}")
    return json.loads(doc)


def _is_read_only(spec: dict[str, Any]) -> bool:
    desc = spec.get("description", "")
    return bool(spec.get("readOnly")) or "Read-only." in desc or desc.startswith("Output only.")


class SchemaValidator:
    """Checks a JSON body against one discovery schema; returns a copy without read-only fields."""

    _TYPE_NAMES: ClassVar[dict[str, str]] = {
        "string": "TYPE_STRING", "boolean": "TYPE_BOOL", "integer": "TYPE_INT32", "number": "TYPE_DOUBLE"
    }  # fmt: skip

    def __init__(self, doc: dict[str, Any]) -> None:
        self.schemas: dict[str, dict[str, Any]] = doc["schemas"]

    def clean(self, body: Any, schema: str, where: str) -> dict[str, Any]:
        if body is None:
            body = {}
        out = self._check(body, {"$ref": schema}, where)
        assert isinstance(out, dict)
        return out

    def _check(self, value: Any, spec: dict[str, Any], where: str) -> Any:
        if value is None:  # JSON null = unset (Directory: "fields set to null will be cleared")
            return None
        if "$ref" in spec:
            spec = self.schemas[spec["$ref"]]
        kind = spec.get("type", "any")
        if kind == "object":
            if not isinstance(value, dict):
                raise invalid(f"Invalid value at '{where}' (object expected).")
            props: dict[str, Any] = spec.get("properties", {})
            extra = spec.get("additionalProperties")
            out: dict[str, Any] = {}
            for key, item in value.items():
                sub = props.get(key)
                if sub is None and extra is None:
                    msg = f"Unknown name \"{key}\" at '{where}': Cannot find field."
                    raise invalid(f"Invalid JSON payload received. {msg}")
                if sub is not None and _is_read_only(sub):
                    continue
                out[key] = self._check(item, sub if sub is not None else extra, f"{where}.{key}")
            return out
        if kind == "array":
            if not isinstance(value, list):
                raise invalid(f"Invalid value at '{where}' (list expected).")
            return [self._check(v, spec.get("items", {}), f"{where}[{i}]") for i, v in enumerate(value)]
        ok = {
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": (isinstance(value, int) and not isinstance(value, bool))
            or (isinstance(value, str) and value.lstrip("-").isdigit()),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
        }.get(kind, True)
        if not ok:
            raise invalid(f"Invalid value at '{where}' ({self._TYPE_NAMES.get(kind, kind)}).")
        if "enum" in spec and value not in spec["enum"]:
            raise invalid(f"Invalid value at '{where}' (enum).")
        return value


# ---- paging ------------------------------------------------------------------------------------------------
def q1(query: Query, name: str, default: str = "") -> str:
    """First value of a query parameter."""
    values = query.get(name)
    return values[0] if values else default


def _fingerprint(query: Query) -> int:
    items = sorted((k, tuple(v)) for k, v in query.items() if k not in _NON_FILTER_PARAMS)
    return zlib.crc32(repr(items).encode())


def page(items: list[Any], query: Query, key: str, *, size: int, reason: str | None = None) -> dict[str, Any]:
    """One page of ``items`` under ``key`` (omitted when empty, as proto3 JSON omits empty repeated fields)
    plus an opaque ``nextPageToken`` that is only valid with the same filters, like Google's."""
    offset = 0
    token = q1(query, "pageToken")
    if token:
        try:
            raw = base64.urlsafe_b64decode(token.encode() + b"==").decode()
            off, fp = (int(x) for x in raw.split(":"))
        except ValueError:
            raise invalid("Invalid page token.", reason) from None
        if fp != _fingerprint(query) or not 0 <= off <= len(items):
            raise invalid("Page token does not match the request.", reason)
        offset = off
    out: dict[str, Any] = {}
    chunk = items[offset : offset + size]
    if chunk:
        out[key] = chunk
    if offset + size < len(items):
        nxt = f"{offset + size}:{_fingerprint(query)}".encode()
        out["nextPageToken"] = base64.urlsafe_b64encode(nxt).decode().rstrip("=")
    return out
