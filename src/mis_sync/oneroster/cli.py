"""``misync serve-oneroster`` and ``misync apps add/list/revoke`` (registered on the main parser).

App registration is command-line only for now (the admin console does not exist yet). ``apps add``
prints the client secret once; it is stored only as a hash.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from mis_sync.oneroster.apps import DEFAULT_FIELD_GROUPS, DEFAULT_RATE_LIMIT, FIELD_GROUPS, SCOPES


def _engine(args: argparse.Namespace, *, migrate_schema: bool):  # type: ignore[no-untyped-def]
    """The directory engine: ``--directory-url`` or the Airflow Connection (default misync_directory).

    ``apps`` commands migrate (they write); the server never does: it may hold a read-only role.
    """
    from mis_sync.directory.db import make_engine, migrate

    url = args.directory_url
    if not url:
        from mis_sync.connections import from_airflow, sqlalchemy_url

        url = sqlalchemy_url(from_airflow(args.directory_connection))
    engine = make_engine(url)
    if migrate_schema:
        migrate(engine)
    return engine


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from mis_sync.oneroster.server import create_app
    from mis_sync.paths import establishments_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up lines are noise here
    folder = Path(args.establishments_dir) if args.establishments_dir else establishments_dir()
    app = create_app(_engine(args, migrate_schema=False), folder)
    print(f"OneRoster 1.2 rostering at http://{args.host}:{args.port}/ims/oneroster/rostering/v1p2/")
    print(f"token endpoint: http://{args.host}:{args.port}/oauth/token")
    # uvicorn's own access log would print each URL, and a filter can hold a name: never on
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_apps_add(args: argparse.Namespace) -> int:
    from mis_sync.oneroster.apps import add_app

    if bool(args.trust) == bool(args.schools):
        raise ValueError("give either --trust (every school) or --schools a,b,…")
    schools = None if args.trust else [s.strip() for s in args.schools.split(",") if s.strip()]
    groups = list(DEFAULT_FIELD_GROUPS)
    groups += [g.strip() for g in (args.grant or "").split(",") if g.strip()]
    groups = [g for g in groups if g not in {x.strip() for x in (args.deny or "").split(",")}]
    engine = _engine(args, migrate_schema=True)
    if schools:
        from sqlalchemy import select

        from mis_sync.directory.schema import SyncState

        with engine.connect() as connection:
            synced = set(connection.execute(select(SyncState.establishment_id)).scalars())
        for school in sorted(set(schools) - synced):
            print(f"note: {school} has no synced data in this directory yet (a typo?); seen once synced")
    app, secret = add_app(
        engine,
        args.name,
        schools=schools,
        scopes=args.scopes.split(","),
        field_groups=groups,
        rate_limit_per_minute=args.rate_limit,
        actor=args.actor or getpass.getuser(),
    )
    print(f"registered {app.name}: client_id {app.client_id}")
    print(f"client_secret {secret}")
    print("The secret is shown only now; store it in the app's settings. It cannot be shown again.")
    return 0


def cmd_apps_list(args: argparse.Namespace) -> int:
    from mis_sync.oneroster.apps import list_apps

    for app in list_apps(_engine(args, migrate_schema=True)):
        schools = "trust (all schools)" if app.schools is None else ",".join(sorted(app.schools))
        state = "revoked" if app.revoked else "active"
        print(
            f"{app.client_id}  {state:<7}  {app.name}  schools={schools}"
            f"  scopes={' '.join(sorted(app.scopes))}  fields={','.join(sorted(app.field_groups))}"
            f"  rate={app.rate_limit_per_minute}/min"
        )
    return 0


def cmd_apps_revoke(args: argparse.Namespace) -> int:
    from mis_sync.oneroster.apps import revoke_app

    if not revoke_app(_engine(args, migrate_schema=True), args.client_id):
        print(f"no active app {args.client_id}")
        return 1
    print(f"revoked {args.client_id}: its tokens are refused from now on")
    return 0


def _directory_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--directory-url", help="SQLAlchemy URL (default: the Airflow connection)")
    parser.add_argument("--directory-connection", default="misync_directory")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve-oneroster", help="serve the directory as a OneRoster 1.2 rostering API")
    serve.add_argument("--host", default=os.environ.get("MISYNC_ONEROSTER_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("MISYNC_ONEROSTER_PORT", "8090")))
    serve.add_argument("--establishments-dir", help="establishment YAMLs (school names); default include/")
    _directory_options(serve)
    serve.set_defaults(func=cmd_serve)

    apps = sub.add_parser("apps", help="apps registered to read the OneRoster API")
    apps_sub = apps.add_subparsers(dest="apps_command", required=True)
    add = apps_sub.add_parser("add", help="register an app; prints its client id and secret (once)")
    add.add_argument("name")
    add.add_argument("--trust", action="store_true", help="every school in the directory, present and future")
    add.add_argument("--schools", help="comma-separated establishment ids")
    add.add_argument("--scopes", default="roster-core.readonly", help=f"comma-separated: {', '.join(SCOPES)}")
    add.add_argument(
        "--grant",
        help=f"field groups to add to the defaults ({', '.join(DEFAULT_FIELD_GROUPS)}); known: "
        + ", ".join(FIELD_GROUPS),
    )
    add.add_argument("--deny", help="default field groups to withhold, e.g. email")
    add.add_argument("--rate-limit", type=int, default=DEFAULT_RATE_LIMIT, help="requests per minute")
    add.add_argument("--actor")
    _directory_options(add)
    add.set_defaults(func=cmd_apps_add)
    listing = apps_sub.add_parser("list", help="registered apps (no secrets)")
    _directory_options(listing)
    listing.set_defaults(func=cmd_apps_list)
    revoke = apps_sub.add_parser("revoke", help="revoke an app at once")
    revoke.add_argument("client_id")
    _directory_options(revoke)
    revoke.set_defaults(func=cmd_apps_revoke)
