"""``misync rotate-keys``: re-encrypt stored initial passwords under the key connection's first key.

Rotation, step by step (docs/keys.md): put the new key first in the key connection's password field and
keep the old ones after it (comma-separated), run ``misync rotate-keys ESTABLISHMENT`` (or ``--all``),
then remove the old keys. Each directory's passwords are rotated in one transaction, audit-logged per
establishment with the count and who ran it.
"""

from __future__ import annotations

import argparse

from mis_sync.config import ConfigError, Establishment


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    """Re-encrypt under the first key: per directory, one transaction for every chosen establishment."""
    from mis_sync.cli import _actor, _directory_url, _establishment, _keys
    from mis_sync.directory.keys import rotate_credential_keys

    configs = _all_establishments() if args.all else [_establishment(args.establishment)]
    by_directory: dict[str, dict[str, list[bytes]]] = {}
    for config in configs:
        keys = _keys(config)
        if keys is None:
            if not args.all:
                print(f"{config.id} does not issue initial passwords (passwords.issue_initial: false)")
                return 1
            continue
        by_directory.setdefault(_directory_url(args, config), {})[config.id] = keys
    total = 0
    for url, keys_by_establishment in by_directory.items():
        engine = _engine_for(url)
        counts = rotate_credential_keys(engine, keys_by_establishment, actor=_actor(args))
        engine.dispose()
        for establishment_id, count in counts.items():
            print(f"{establishment_id}: re-encrypted {count} initial password(s) under the first key")
            total += count
    print(f"done: {total} initial password(s) re-encrypted; the old key(s) can now leave the connection")
    return 0


def _all_establishments() -> list[Establishment]:
    """Every establishment file; a broken one stops ``--all`` (rotating some schools but not others
    would leave the admin unsure which keys may go)."""
    from mis_sync.config import discover
    from mis_sync.paths import establishments_dir

    loaded = discover(establishments_dir())
    broken = [item for item in loaded if item.error]
    if broken:
        raise ConfigError(f"{len(broken)} establishment file(s) do not load: {broken[0].error}")
    return [item.establishment for item in loaded if item.establishment is not None]


def _engine_for(url: str):  # type: ignore[no-untyped-def]
    from mis_sync.directory.db import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    return engine
