"""Account provisioning in a target (``provision_accounts: true``): create, update and disable users.

The directory decides who should have an account and whether it is enabled; this step makes the
tenant agree, before classes are synced, so memberships can resolve the new users at once.

- A user is looked up by principal name before it is created (an account made by hand, by SDS or by
  a run that crashed after the create is adopted and updated, never duplicated).
- A new account gets the user's stored initial password (decrypted here, in memory, only for the
  request body) and must change it at first sign-in. A user with no stored password is not created
  and is counted (``no_initial_password``): turn on ``passwords.issue_initial``.
- A suspended user is disabled (``accountEnabled: false``; Google: ``suspended: true``), never deleted.

The flow is the same for every target; the target's request body comes from ``body_for`` (the wanted
row and, for a create, the initial password): :func:`graph_body` for Microsoft 365, the Classroom
adapter's ``account_body`` for Google Workspace. With ``guard_admins`` a known account is looked up
again before an update, and one the target reports as an admin (``Outcome.protected``) is never changed,
only counted (``users_protected``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from mis_sync.directory.credentials import Credential
from mis_sync.directory_state import DirectoryState
from mis_sync.passwords import decrypt_password
from mis_sync.targets.desired import principals
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
BodyFor = Callable[[dict[str, Any], "str | None"], dict[str, Any]]
"""An account's request body from a wanted row: with the initial password for a create, ``None`` for
an update."""
OrgUnitOf = Callable[[str, "str | None"], str]
"""(role, year group) → the account's org unit path (Google Workspace)."""


def desired_users(
    state: DirectoryState, domain: str, roles: Sequence[str], *, org_unit: OrgUnitOf | None = None
) -> pd.DataFrame:
    """The accounts the directory wants; with ``org_unit`` also an ``org_unit`` column (in the hash)."""
    users = state.users[state.users["role"].isin(list(roles))]
    frame = pd.DataFrame(
        {
            "user_key": principals(users["username"], domain).to_numpy(),
            "directory_id": users["id"].to_numpy(),
            "mail_nickname": users["username"].astype(str).str.split("@").str[0],
            "display_name": users["display_name"].fillna(users["username"]).astype(str),
            "given_name": users["first_name"].fillna("").astype(str),
            "surname": users["last_name"].fillna("").astype(str),
            "enabled": (users["status"] == "active").to_numpy(),
            "mis_id": users["mis_id"].astype(object).where(users["mis_id"].notna(), None).to_numpy(),
        }
    )
    hashed = ["display_name", "given_name", "surname", "enabled"]
    if org_unit is not None:
        years = users["year_group"].astype(object).where(users["year_group"].notna(), None)
        frame["org_unit"] = [org_unit(str(r), y) for r, y in zip(users["role"], years, strict=True)]
        hashed.append("org_unit")
    parts = frame[hashed].astype(str).agg("\x1f".join, axis=1)
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


def graph_body(usage_location: str) -> BodyFor:
    """Microsoft Graph user bodies (``POST /users`` with a password, ``PATCH /users/{id}`` without)."""

    def body_for(row: dict[str, Any], password: str | None) -> dict[str, Any]:
        if password is None:
            return _body(row, usage_location)
        return {
            **_body(row, usage_location),
            "mailNickname": row["mail_nickname"][:64],
            "userPrincipalName": row["user_key"],
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": True},
        }

    return body_for


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


def _insert_first(
    engine: SyncEngine,
    store: TargetStore,
    directory: Engine,
    unknown: pd.DataFrame,
    credential_keys: Sequence[bytes] | None,
    body_for: BodyFor,
) -> tuple[dict[str, str], set[str]]:
    """Insert every enabled unknown user that has an initial password, without a look-up first (the
    target answers an existing account "already exists": a no-op, left for the look-up that adopts it).
    Returns the accounts made (principal name → id) and the users settled here (made, or refused for
    another reason: a look-up would not help them)."""
    enabled = unknown[unknown["enabled"]]
    secrets = _passwords(directory, [int(i) for i in enabled["directory_id"]], credential_keys)
    ops = [
        Op(f"i{i}", "create_user", user_key=row["user_key"], attr_hash=row["attr_hash"],
           body=body_for(row, secrets[int(row["directory_id"])]))
        for i, row in enumerate(enabled.to_dict("records"))
        if int(row["directory_id"]) in secrets
    ]  # fmt: skip
    results = engine.run(ops)
    made = {
        str(op.user_key): str(results[op.id].remote_id)
        for op in ops
        if results[op.id].status == "ok" and results[op.id].remote_id and not results[op.id].noop
    }
    store.save_users(made, hashes={op.user_key: op.attr_hash for op in ops if op.user_key in made})
    settled = {str(op.user_key) for op in ops if not (results[op.id].status == "ok" and results[op.id].noop)}
    return made, settled


def provision(
    engine: SyncEngine,
    store: TargetStore,
    directory: Engine,
    wanted: pd.DataFrame,
    *,
    credential_keys: Sequence[bytes] | None,
    body_for: BodyFor,
    guard_admins: bool = False,
) -> dict[str, int]:
    """Make the target's accounts match ``wanted``; returns counts (no names)."""
    stored = store.load_user_hashes()
    known = wanted.merge(stored, on="user_key", how="left", suffixes=("", "_stored"))
    counts = {"users_created": 0, "users_updated": 0, "users_adopted": 0, "no_initial_password": 0}
    if guard_admins:
        counts["users_protected"] = 0
    # 1. unknown users: look them up first (adopt), create the rest
    unknown = known[known["remote_id"].isna()]
    inserted: dict[str, str] = {}
    if getattr(engine.adapter, "insert_first", False):  # no look-up that cannot help on a fresh domain
        inserted, settled = _insert_first(engine, store, directory, unknown, credential_keys, body_for)
        unknown = unknown[~unknown["user_key"].isin(settled)]
    # role "account": a provisioning look-up (Google: Directory users.get, which reports isAdmin)
    lookups = [Op(f"l{i}", "resolve", user_key=k, role="account") for i, k in enumerate(unknown["user_key"])]
    results = engine.run(lookups)
    protected = {op.user_key for op in lookups if results[op.id].status == "ok" and results[op.id].protected}
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
        body = body_for(row, password)
        creates.append(
            Op(f"n{i}", "create_user", user_key=row["user_key"], attr_hash=row["attr_hash"], body=body)
        )
    made = engine.run(creates)
    done = {op.user_key: made[op.id].remote_id for op in creates if made[op.id].status == "ok"}
    store.save_users(
        {k: v for k, v in done.items() if k and v},
        hashes={op.user_key: op.attr_hash for op in creates if op.user_key in done},
    )
    counts["users_created"] = len(done) + len(inserted)
    # 2. known (or just adopted) users whose names or enabled state differ
    ids = {**dict(zip(stored["user_key"], stored["remote_id"], strict=True)), **adopted}
    hashes = {
        k: None if pd.isna(h) else h for k, h in zip(stored["user_key"], stored["attr_hash"], strict=True)
    }
    stale = [
        r
        for r in wanted.to_dict("records")
        if r["user_key"] in ids and hashes.get(r["user_key"]) != r["attr_hash"]
    ]
    if guard_admins:  # look known accounts up again: one may have been made an admin since
        again = [
            Op(f"g{i}", "resolve", user_key=r["user_key"], role="account")
            for i, r in enumerate(stale)
            if r["user_key"] not in adopted
        ]
        checked = engine.run(again)
        protected |= {op.user_key for op in again if checked[op.id].protected}
        unsure = {op.user_key for op in again if checked[op.id].status != "ok"}  # gone or unanswered
        counts["users_protected"] = len(protected & {r["user_key"] for r in stale})
        stale = [r for r in stale if r["user_key"] not in protected | unsure]
    updates = [
        Op(
            f"e{i}",
            "update_user",
            user_key=r["user_key"],
            user_id=ids[r["user_key"]],
            attr_hash=r["attr_hash"],
            body=body_for(r, None),
        )
        for i, r in enumerate(stale)
    ]
    changed = engine.run(updates)
    ok = [op for op in updates if changed[op.id].status == "ok"]
    store.save_users({op.user_key: op.user_id for op in ok if op.user_key and op.user_id},
                     hashes={op.user_key: op.attr_hash for op in ok})  # fmt: skip
    counts["users_updated"] = len(ok)
    return counts
