"""Account provisioning in a target (``provision_accounts: true``): create, update and disable users.

The directory decides who should have an account and whether it is enabled; this step makes the
tenant agree, before classes are synced, so memberships can resolve the new users at once.

- A user is looked up by principal name before it is created (an account made by hand, by SDS or by
  a run that crashed after the create is adopted and updated, never duplicated).
- A new account gets the user's stored initial password (decrypted here, in memory, only for the
  request body) and must change it at first sign-in. A user with no stored password is not created
  and is counted (``no_initial_password``): turn on ``passwords.issue_initial``.
- A suspended user is disabled (``accountEnabled: false``), never deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from mis_sync.directory.credentials import Credential
from mis_sync.directory_state import DirectoryState
from mis_sync.passwords import decrypt_password
from mis_sync.targets.desired import principal
from mis_sync.targets.engine import Engine as SyncEngine
from mis_sync.targets.engine import Op
from mis_sync.targets.store import TargetStore

USER_COLUMNS = [
    "user_key",
    "directory_id",
    "mail_nickname",
    "display_name",
    "given_name",
    "surname",
    "enabled",
]


def desired_users(state: DirectoryState, domain: str, roles: Sequence[str]) -> pd.DataFrame:
    users = state.users[state.users["role"].isin(list(roles))]
    frame = pd.DataFrame(
        {
            "user_key": [principal(u, domain) for u in users["username"]],
            "directory_id": users["id"].to_numpy(),
            "mail_nickname": users["username"].astype(str).str.split("@").str[0],
            "display_name": users["display_name"].fillna(users["username"]).astype(str),
            "given_name": users["first_name"].fillna("").astype(str),
            "surname": users["last_name"].fillna("").astype(str),
            "enabled": (users["status"] == "active").to_numpy(),
        }
    )
    parts = frame[["display_name", "given_name", "surname", "enabled"]].astype(str).agg("\x1f".join, axis=1)
    frame["attr_hash"] = [hashlib.sha256(p.encode()).hexdigest()[:16] for p in parts]
    return frame.reset_index(drop=True)


def _body(row: dict[str, Any], usage_location: str) -> dict[str, Any]:
    return {
        "accountEnabled": bool(row["enabled"]),
        "displayName": row["display_name"][:256],
        "givenName": row["given_name"][:64] or None,
        "surname": row["surname"][:64] or None,
        "usageLocation": usage_location,
    }


def _passwords(engine: Engine, directory_ids: list[int], keys: Sequence[bytes] | None) -> dict[int, str]:
    if not keys or not directory_ids:
        return {}
    found: dict[int, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(directory_ids), 500):
            part = directory_ids[start : start + 500]
            rows = conn.execute(
                select(Credential.user_id, Credential.ciphertext).where(Credential.user_id.in_(part))
            )
            found.update({int(uid): decrypt_password(token, keys) for uid, token in rows})
    return found


def provision(
    engine: SyncEngine,
    store: TargetStore,
    directory: Engine,
    wanted: pd.DataFrame,
    *,
    usage_location: str,
    credential_keys: Sequence[bytes] | None,
) -> dict[str, int]:
    """Make the target's accounts match ``wanted``; returns counts (no names)."""
    stored = store.load_user_hashes()
    known = wanted.merge(stored, on="user_key", how="left", suffixes=("", "_stored"))
    counts = {"users_created": 0, "users_updated": 0, "users_adopted": 0, "no_initial_password": 0}
    # 1. unknown users: look them up first (adopt), create the rest
    unknown = known[known["remote_id"].isna()]
    lookups = [Op(f"l{i}", "resolve", user_key=k) for i, k in enumerate(unknown["user_key"])]
    results = engine.run(lookups)
    adopted = {op.user_key: results[op.id].remote_id for op in lookups if results[op.id].status == "ok"}
    store.save_users({k: v for k, v in adopted.items() if k and v}, hashes=dict.fromkeys(adopted))
    counts["users_adopted"] = len(adopted)
    absent = unknown[
        unknown["user_key"].isin([op.user_key for op in lookups if results[op.id].status == "absent"])
    ]
    absent = absent[absent["enabled"]]  # a suspended user with no account: nothing to disable
    secrets = _passwords(directory, [int(i) for i in absent["directory_id"]], credential_keys)
    creates = []
    for i, row in enumerate(absent.to_dict("records")):
        password = secrets.get(int(row["directory_id"]))
        if password is None:
            counts["no_initial_password"] += 1
            continue
        body = {
            **_body(row, usage_location),
            "mailNickname": row["mail_nickname"][:64],
            "userPrincipalName": row["user_key"],
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": True},
        }
        creates.append(
            Op(f"n{i}", "create_user", user_key=row["user_key"], attr_hash=row["attr_hash"], body=body)
        )
    made = engine.run(creates)
    done = {op.user_key: made[op.id].remote_id for op in creates if made[op.id].status == "ok"}
    store.save_users(
        {k: v for k, v in done.items() if k and v},
        hashes={op.user_key: op.attr_hash for op in creates if op.user_key in done},
    )
    counts["users_created"] = len(done)
    # 2. known (or just adopted) users whose names or enabled state differ
    ids = {**dict(zip(stored["user_key"], stored["remote_id"], strict=True)), **adopted}
    hashes = dict(zip(stored["user_key"], stored["attr_hash"], strict=True))
    stale = [
        r
        for r in wanted.to_dict("records")
        if r["user_key"] in ids and hashes.get(r["user_key"]) != r["attr_hash"]
    ]
    updates = [
        Op(
            f"e{i}",
            "update_user",
            user_key=r["user_key"],
            user_id=ids[r["user_key"]],
            attr_hash=r["attr_hash"],
            body=_body(r, usage_location),
        )
        for i, r in enumerate(stale)
    ]
    changed = engine.run(updates)
    ok = [op for op in updates if changed[op.id].status == "ok"]
    store.save_users({op.user_key: op.user_id for op in ok if op.user_key and op.user_id},
                     hashes={op.user_key: op.attr_hash for op in ok})  # fmt: skip
    counts["users_updated"] = len(ok)
    return counts
