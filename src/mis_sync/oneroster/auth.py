"""OAuth 2.0 client credentials: signed bearer tokens with an expiry, and the scope each path needs.

Why signed tokens and not a token table: the service reads the directory through a read-only
database role, so it cannot store tokens there. A token is ``payload.signature`` (HMAC-SHA256 with
the service's key); it carries the app id, its scopes and its expiry. Every request still loads the
app, so a revoked app is refused at once, whatever its token says. Several workers must share one key
(``MISYNC_ONEROSTER_TOKEN_KEY``); without it each process makes its own (tokens then die with it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from mis_sync.oneroster.apps import SCOPE_PREFIX, RegisteredApp, short_scope
from mis_sync.oneroster.errors import forbidden, unauthorised

TOKEN_LIFETIME_S = 3600
CORE, FULL, DEMOGRAPHICS = "roster-core.readonly", "roster.readonly", "roster-demographics.readonly"


@dataclass(frozen=True)
class TokenClaims:
    client_id: str
    scopes: frozenset[str]
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def granted_scopes(app: RegisteredApp, requested: str | None) -> frozenset[str]:
    """The scopes a token gets: those asked for (all of the app's when none are named).

    Raises ``ValueError`` naming the first scope the app was not registered for (OAuth ``invalid_scope``).
    """
    if not requested:
        return app.scopes
    asked = {short_scope(s) for s in requested.split()}
    refused = sorted(asked - app.scopes)
    if refused:
        raise ValueError(f"scope not granted to this app: {refused[0]}")
    return frozenset(asked)


def issue_token(
    key: bytes, app: RegisteredApp, scopes: frozenset[str], now: float | None = None
) -> dict[str, object]:
    """The token endpoint's JSON answer (RFC 6749 §5.1)."""
    expires = (now if now is not None else time.time()) + TOKEN_LIFETIME_S
    payload = _b64(json.dumps({"a": app.client_id, "s": sorted(scopes), "e": int(expires)}).encode())
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return {
        "access_token": f"{payload}.{signature}",
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME_S,
        "scope": " ".join(SCOPE_PREFIX + s for s in sorted(scopes)),
    }


def read_token(key: bytes, authorization: str | None, now: float | None = None) -> TokenClaims:
    """The claims of the request's bearer token; 401 when it is missing, forged or expired."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise unauthorised()
    token = authorization[7:].strip()
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        raise unauthorised("the bearer token is not valid")
    try:
        claims = json.loads(_unb64(payload))
        parsed = TokenClaims(str(claims["a"]), frozenset(claims["s"]), float(claims["e"]))
    except (ValueError, KeyError, TypeError):
        raise unauthorised("the bearer token is not valid") from None
    if parsed.expires_at <= (now if now is not None else time.time()):
        raise unauthorised("the bearer token has expired")
    return parsed


def require_scope(scopes: frozenset[str], demographics: bool = False) -> None:
    """roster.readonly reads everything; roster-core.readonly everything but demographics;
    roster-demographics.readonly only demographics (OneRoster 1.2 scopes)."""
    allowed = {FULL, DEMOGRAPHICS} if demographics else {FULL, CORE}
    if not scopes & allowed:
        needed = " or ".join(sorted(allowed))
        raise forbidden(f"this endpoint needs the scope {needed}")
