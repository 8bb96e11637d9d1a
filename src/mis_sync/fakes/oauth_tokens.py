"""OAuth 2 token issuing for the local API fakes (ScholarPack, iSAMS REST, OneRoster REST) — a LOCAL
EMULATOR, never a stand-in for a real authorisation server.

``TokenIssuer.issue`` answers a token request (form body): ``grant_type=client_credentials`` with
``client_id`` / ``client_secret`` (form fields or HTTP Basic), or ``grant_type=refresh_token`` with the
``refresh_token`` the school's grant produced (ScholarPack's authorisation-code flow; the interactive
part is outside any sync). Wrong credentials get ``401 invalid_client`` (or ``400`` with
``refused_status=400``, as many servers answer); an unknown refresh token ``400 invalid_grant``.
``bearer_ok`` checks an API request's ``Authorization: Bearer``; ``token_uses`` makes tokens expire
after that many API requests (a 401 the client must recover from by fetching a new one).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

from mis_sync.fakes.http_fake import Request, Response, to_json


class TokenIssuer:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        refresh_token: str | None = None,
        scope: str = "",
        lifetime: int = 3600,
        rotate_refresh: bool = False,
    ) -> None:
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.scope, self.lifetime, self.rotate_refresh = scope, lifetime, rotate_refresh
        self.token_uses: int | None = None
        self.refused_status = 401
        self.issued = 0
        self._tokens: dict[str, int] = {}

    @staticmethod
    def _error(status: int, code: str) -> Response:
        return status, {"Content-Type": "application/json"}, to_json({"error": code})

    def issue(self, request: Request, *, refuse: bool = False) -> Response:
        if request.method != "POST":
            raise LookupError(request.path)
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                form.setdefault("client_id", user)
                form.setdefault("client_secret", password)
            except (binascii.Error, UnicodeDecodeError):
                pass
        if refuse or (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return self._error(self.refused_status, "invalid_client")
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if self.refresh_token is None or form.get("refresh_token") != self.refresh_token:
                return self._error(400, "invalid_grant")
        elif grant != "client_credentials" or self.refresh_token is not None:
            return self._error(400, "unsupported_grant_type")
        token = secrets.token_hex(16)
        self._tokens[token] = 0
        self.issued += 1
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        if self.scope:
            body["scope"] = self.scope
        if grant == "refresh_token" and self.rotate_refresh:
            self.refresh_token = secrets.token_hex(16)
            body["refresh_token"] = self.refresh_token
        return (
            200,
            {"Content-Type": "application/json", "Cache-Control": "no-store"},
            json.dumps(body).encode(),
        )

    def bearer_ok(self, request: Request) -> bool:
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token not in self._tokens:
            return False
        self._tokens[token] += 1
        if self.token_uses is not None and self._tokens[token] > self.token_uses:
            del self._tokens[token]
            return False
        return True


class TokenEndpoint:
    """Mixin for a fake API server that issues its own OAuth tokens: the credentials a test hands the
    connector, and the token URL (``base_url`` + the class's ``token_path``)."""

    tokens: TokenIssuer
    token_path: str
    base_url: str

    @property
    def client_id(self) -> str:
        return self.tokens.client_id

    @property
    def client_secret(self) -> str:
        return self.tokens.client_secret

    @property
    def token_url(self) -> str:
        return self.base_url + self.token_path
