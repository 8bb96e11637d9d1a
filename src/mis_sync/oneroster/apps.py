"""Apps registered to read the OneRoster API (``misync apps add/list/revoke``).

An app is registered for a trust (every school, present and future) or for named establishments,
with OneRoster scopes and field groups. Demographics and contacts are off unless granted. The client
secret is random, shown once, and stored only as a scrypt hash (memory-hard: a stolen directory
backup does not give the secrets away).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from mis_sync.directory.schema import OneRosterApp

SCOPE_PREFIX = "https://purl.imsglobal.org/spec/or/v1p2/scope/"
SCOPES = ("roster-core.readonly", "roster.readonly", "roster-demographics.readonly")
FIELD_GROUPS = {
    "names": "givenName, familyName",
    "username": "username",
    "email": "email",
    "identifiers": "identifier and userIds (the MIS id)",
    "contacts": "guardian users (parent accounts of contacts with parental responsibility)",
    "demographics": "demographics (the directory keeps none yet)",
}
DEFAULT_FIELD_GROUPS = ("names", "username", "email", "identifiers")
"""Demographics and contacts are off unless an admin grants them."""
DEFAULT_RATE_LIMIT = 600
ALL_SCHOOLS = "*"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class RegisteredApp:
    client_id: str
    name: str
    schools: frozenset[str] | None
    """None: every school of the trust."""
    scopes: frozenset[str]
    field_groups: frozenset[str]
    rate_limit_per_minute: int
    created_at: dt.datetime
    revoked: bool


def short_scope(scope: str) -> str:
    """``roster.readonly`` from either the short name or the full 1EdTech scope URI."""
    return scope.removeprefix(SCOPE_PREFIX)


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    parts = [str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"])]
    parts += [base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    return "$".join(["scrypt", *parts])


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(
        secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(actual, base64.b64decode(digest))


def _validated(schools: list[str] | None, scopes: list[str], field_groups: list[str]) -> None:
    unknown_scopes = sorted({short_scope(s) for s in scopes} - set(SCOPES))
    if unknown_scopes or not scopes:
        raise ValueError(
            f"scopes must be among {', '.join(SCOPES)}; got {', '.join(unknown_scopes) or 'none'}"
        )
    unknown_groups = sorted(set(field_groups) - set(FIELD_GROUPS))
    if unknown_groups:
        raise ValueError(
            f"unknown field group(s) {', '.join(unknown_groups)}; known: {', '.join(FIELD_GROUPS)}"
        )
    if schools is not None and not schools:
        raise ValueError("name at least one school, or register the app for the whole trust")


def add_app(
    engine: Engine,
    name: str,
    *,
    schools: list[str] | None,
    scopes: list[str],
    field_groups: list[str] | None = None,
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT,
    actor: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[RegisteredApp, str]:
    """Register an app; return it and its client secret (the only time the secret is seen)."""
    groups = list(DEFAULT_FIELD_GROUPS if field_groups is None else field_groups)
    _validated(schools, scopes, groups)
    if rate_limit_per_minute < 1:
        raise ValueError("rate_limit_per_minute must be at least 1")
    client_id = f"app-{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    created = now or dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            OneRosterApp.__table__.insert().values(
                client_id=client_id,
                name=name,
                schools=json.dumps(sorted(schools) if schools is not None else [ALL_SCHOOLS]),
                scopes=" ".join(sorted({short_scope(s) for s in scopes})),
                field_groups=",".join(sorted(set(groups))),
                secret_hash=hash_secret(secret),
                rate_limit_per_minute=rate_limit_per_minute,
                created_at=created,
                created_by=actor,
                revoked_at=None,
            )
        )
    app = get_app(engine, client_id)
    assert app is not None
    return app, secret


def _from_row(row: OneRosterApp) -> RegisteredApp:
    schools = json.loads(row.schools)
    return RegisteredApp(
        client_id=row.client_id,
        name=row.name,
        schools=None if schools == [ALL_SCHOOLS] else frozenset(schools),
        scopes=frozenset(row.scopes.split()),
        field_groups=frozenset(filter(None, row.field_groups.split(","))),
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        revoked=row.revoked_at is not None,
    )


def get_app(engine: Engine, client_id: str) -> RegisteredApp | None:
    with engine.connect() as connection:
        row = connection.execute(select(OneRosterApp).where(OneRosterApp.client_id == client_id)).first()
    return _from_row(row) if row is not None else None


def check_credentials(engine: Engine, client_id: str, secret: str) -> RegisteredApp | None:
    """The app if the id and secret match an app that is not revoked; None otherwise."""
    with engine.connect() as connection:
        row = connection.execute(select(OneRosterApp).where(OneRosterApp.client_id == client_id)).first()
    if row is None or row.revoked_at is not None or not verify_secret(secret, row.secret_hash):
        return None
    return _from_row(row)


def list_apps(engine: Engine) -> list[RegisteredApp]:
    with engine.connect() as connection:
        rows = connection.execute(select(OneRosterApp).order_by(OneRosterApp.created_at)).all()
    return [_from_row(row) for row in rows]


def revoke_app(engine: Engine, client_id: str, now: dt.datetime | None = None) -> bool:
    """Revoke an app: its tokens stop working at once (every request checks). False if unknown."""
    with engine.begin() as connection:
        result = connection.execute(
            update(OneRosterApp)
            .where(OneRosterApp.client_id == client_id, OneRosterApp.revoked_at.is_(None))
            .values(revoked_at=now or dt.datetime.now(dt.UTC))
        )
    return result.rowcount == 1
