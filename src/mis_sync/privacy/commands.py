"""``misync housekeeping``, ``misync export-person`` and ``misync erase-person``.

Kept apart from ``cli.py`` (which only calls ``register``). Output is counts, ids and folder names:
never a name or any other personal value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Any


def _config_and_engine(args: argparse.Namespace) -> tuple[Any, Any]:
    from mis_sync.cli import _engine, _establishment

    config = _establishment(args.establishment)
    return config, _engine(args, config)


def _storage(args: argparse.Namespace) -> Any:
    """``--run-storage`` (a local folder laid out as ``<establishment>/<run>/``) or Airflow's setting."""
    if args.run_storage:
        return Path(args.run_storage)
    from mis_sync.privacy.housekeeping import run_storage_base

    return run_storage_base()


def _person(args: argparse.Namespace, engine: Any, establishment_id: str) -> Any:
    from mis_sync.privacy.subject_access import find_person

    return find_person(
        engine, establishment_id, mis_id=args.mis_id, username=args.username, person_kind=args.person_kind
    )


def cmd_housekeeping(args: argparse.Namespace) -> int:
    from mis_sync.cli import _engine
    from mis_sync.config import discover
    from mis_sync.paths import establishments_dir
    from mis_sync.privacy.housekeeping import housekeep_establishment

    loaded = [i.establishment for i in discover(establishments_dir()) if i.establishment is not None]
    wanted = [c for c in loaded if not args.establishment or c.id in args.establishment]
    if not wanted:
        print("no establishment to housekeep")
        return 1
    storage = _storage(args)
    now = dt.datetime.now(dt.UTC)
    for config in wanted:
        counts = housekeep_establishment(config, _engine(args, config), storage, now, dry_run=args.dry_run)
        label = "would remove" if args.dry_run else "removed"
        print(f"{config.id}: {label} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.airflow_xcom_days is not None:
        from mis_sync.privacy.airflow_clean import clean_xcom
        from mis_sync.privacy.settings import HOUSEKEEPING_DAG_ID

        before = now - dt.timedelta(days=args.airflow_xcom_days)
        dag_ids = [c.dag_id for c in wanted] + ([HOUSEKEEPING_DAG_ID] if not args.establishment else [])
        code = clean_xcom(dag_ids, before, dry_run=args.dry_run)
        print(f"airflow db clean (xcom of {len(dag_ids)} DAG(s) before {before:%Y-%m-%d}): exit {code}")
        return 1 if code else 0
    return 0


def cmd_export_person(args: argparse.Namespace) -> int:
    from mis_sync.privacy.subject_access import export_person

    config, engine = _config_and_engine(args)
    person = _person(args, engine, config.id)
    actor = args.actor or getpass.getuser()
    counts = export_person(engine, person, Path(args.out), actor, dt.datetime.now(dt.UTC))
    print(
        f"exported {person.person_kind} {person.mis_id} of {config.id} to {args.out} "
        f"(audit-logged as {actor})"
    )
    print("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_erase_person(args: argparse.Namespace) -> int:
    from mis_sync.privacy.erasure import erase_person
    from mis_sync.privacy.subject_access import private_folder

    config, engine = _config_and_engine(args)
    person = _person(args, engine, config.id)
    actor = args.actor or getpass.getuser()
    storage = None if args.skip_run_storage else _storage(args)
    if args.record:
        private_folder(Path(args.record))
    record = erase_person(
        engine, config, person, storage_root=storage, actor=actor, now=dt.datetime.now(dt.UTC)
    )
    if args.record:
        from mis_sync.privacy.subject_access import _private_write

        _private_write(
            Path(args.record) / "erasure-record.json", json.dumps(record, indent=2, sort_keys=True)
        )
    print(f"erased {person.person_kind} {person.mis_id} of {config.id} (audit-logged as {actor})")
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0


def _person_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("establishment", help="establishment id or YAML path")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--mis-id")
    who.add_argument("--username")
    parser.add_argument("--person-kind", choices=["pupil", "staff", "contact"])
    parser.add_argument("--actor", help="who is acting (default: the OS user)")
    parser.add_argument("--directory-url")


def register(sub: Any) -> None:
    """Add the privacy subcommands to ``misync``'s subparsers."""
    house = sub.add_parser("housekeeping", help="retention: remove expired run files and directory history")
    house.add_argument("establishment", nargs="*", help="establishment ids (default: all)")
    house.add_argument("--dry-run", action="store_true", help="count what would go; remove nothing")
    house.add_argument(
        "--run-storage", help="local run storage folder (default: Airflow's [misync] run_storage)"
    )
    house.add_argument("--directory-url")
    house.add_argument(
        "--airflow-xcom-days",
        type=int,
        help="also run `airflow db clean` on these DAGs' XCom older than this many days",
    )
    house.set_defaults(func=cmd_housekeeping)

    export = sub.add_parser("export-person", help="subject access: everything held about one person")
    _person_arguments(export)
    export.add_argument("--out", required=True, help="a new folder (created 0700, files 0600)")
    export.set_defaults(func=cmd_export_person)

    erase = sub.add_parser("erase-person", help="erasure: remove one leaver's personal data (audit-logged)")
    _person_arguments(erase)
    erase.add_argument(
        "--run-storage", help="local run storage folder (default: Airflow's [misync] run_storage)"
    )
    erase.add_argument("--skip-run-storage", action="store_true", help="directory only (storage unreachable)")
    erase.add_argument("--record", help="a new folder for erasure-record.json (0700/0600)")
    erase.set_defaults(func=cmd_erase_person)
