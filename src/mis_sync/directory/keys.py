"""The keys of stored initial passwords: refuse a run whose keys cannot open them, and rotate them.

Why a check before apply: with a wrong Fernet key in the connection a run used to succeed and encrypt
the night's new passwords under it, so the school's next export needed both keys and the old passwords
could not be read with the new one. ``verify_credential_keys`` decrypts every stored password of the
establishment with the configured keys first and stops with a ``CredentialKeyError`` (a ``SetupError``)
naming the connection and the counts, never a key or a password.

Rotation (``rotate_credential_keys``): put the new key first in the connection with the old ones after
it, run ``misync rotate-keys``, then drop the old keys. Every stored password of the chosen
establishments is re-encrypted under the first key in one transaction, with one audit row per
establishment (the count, who ran it); any password no key opens rolls the whole rotation back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from mis_sync.directory.credentials import Credential, _chunks
from mis_sync.directory.schema import AuditEntry, User
from mis_sync.passwords import CredentialKeyError, fernet

log = logging.getLogger(__name__)

ROTATION_HINT = (
    "put the key that encrypted them back in the connection's password field (the newest key first, "
    "older keys after it, comma-separated); to change keys run 'misync rotate-keys' with both in place"
)


def _stored(connection: Connection, establishment_id: str) -> list[tuple[int, str]]:
    statement = (
        select(Credential.user_id, Credential.ciphertext)
        .join(User, User.id == Credential.user_id)
        .where(User.establishment_id == establishment_id)
        .order_by(Credential.user_id)
    )
    return [(int(user_id), str(token)) for user_id, token in connection.execute(statement).tuples()]


def _unreadable(tokens: Sequence[tuple[int, str]], keys: Sequence[bytes]) -> list[int]:
    from cryptography.fernet import InvalidToken

    box = fernet(keys)
    bad: list[int] = []
    for user_id, token in tokens:
        try:
            box.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            bad.append(user_id)
    return bad


def verify_credential_keys(
    connection: Connection | Engine, establishment_id: str, keys: Sequence[bytes], key_connection_id: str
) -> int:
    """Decrypt every stored initial password of the establishment; ``CredentialKeyError`` if any fails.

    Returns how many were checked (0 on a first night). The message names the establishment, the key
    connection and counts only.
    """
    if isinstance(connection, Engine):
        with connection.connect() as opened:
            return verify_credential_keys(opened, establishment_id, keys, key_connection_id)
    tokens = _stored(connection, establishment_id)
    bad = _unreadable(tokens, keys)
    if bad:
        raise CredentialKeyError(
            f"establishment {establishment_id}: the key(s) in connection {key_connection_id!r} cannot "
            f"decrypt {len(bad)} of {len(tokens)} stored initial password(s), so the run stops before "
            f"apply (new passwords would be encrypted under the wrong key); {ROTATION_HINT}"
        )
    return len(tokens)


def rotate_credential_keys(
    engine: Engine,
    keys_by_establishment: Mapping[str, Sequence[bytes]],
    *,
    actor: str,
    now: datetime | None = None,
) -> dict[str, int]:
    """Re-encrypt every stored initial password of each establishment under its first key.

    One transaction for all of them: if any stored password cannot be decrypted with its
    establishment's keys nothing changes (``CredentialKeyError``, counts only). One audit row per
    establishment: ``entity="credentials"``, ``action="rotate"``, the count and the actor. Returns
    establishment id -> passwords re-encrypted.
    """
    who = " ".join(actor.split())[:100]
    if not who:
        raise ValueError("actor must name who rotates the keys")
    now = now or datetime.now(UTC)
    counts: dict[str, int] = {}
    change = (
        update(Credential).where(Credential.user_id == bindparam("uid")).values(ciphertext=bindparam("token"))
    )
    with engine.begin() as connection:
        for establishment_id, keys in keys_by_establishment.items():
            tokens = _stored(connection, establishment_id)
            bad = _unreadable(tokens, keys)
            if bad:
                raise CredentialKeyError(
                    f"establishment {establishment_id}: {len(bad)} of {len(tokens)} stored initial "
                    f"password(s) cannot be decrypted with the configured key(s); nothing was rotated. "
                    f"{ROTATION_HINT}"
                )
            box = fernet(keys)
            rows = [
                {"uid": uid, "token": box.rotate(token.encode("ascii")).decode("ascii")}
                for uid, token in tokens
            ]
            for chunk in _chunks(rows):
                connection.execute(change, list(chunk))
            connection.execute(
                insert(AuditEntry).values(
                    establishment_id=establishment_id,
                    run_id="manual",
                    at=now,
                    entity="credentials",
                    entity_key="all",
                    action="rotate",
                    field=None,
                    old_value=None,
                    new_value=str(len(rows)),
                    reason=f"{len(rows)} initial password(s) re-encrypted under the first key by {who}"[:200],
                )
            )
            counts[establishment_id] = len(rows)
    for establishment_id, count in counts.items():
        log.info("re-encrypted %d stored initial password(s) of establishment %s", count, establishment_id)
    return counts


__all__ = ["ROTATION_HINT", "rotate_credential_keys", "verify_credential_keys"]
