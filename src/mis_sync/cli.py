"""``misync``: the command line for IT admins and data managers, outside the Airflow UI.

Commands print counts, ids and file names; personal data stays in the files and the directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

from mis_sync.cli_errors import exit_codes_help, run_guarded
from mis_sync.cli_keys import cmd_rotate_keys
from mis_sync.config import (
    Establishment,
    discover,
    establishment_file,
    load_establishment,
    load_one,
)
from mis_sync.paths import establishments_dir


def _establishment(value: str) -> Establishment:
    """An establishment by id (its ``.yaml`` or ``.yml`` file; both present is an error) or by path."""
    path = Path(value)
    if not path.suffix:
        found = establishment_file(establishments_dir(), value)
        path = found if found is not None else establishments_dir() / f"{value}.yaml"
    return load_establishment(path)


def _directory_url(args: argparse.Namespace, config: Establishment) -> str:
    from mis_sync.connections import from_airflow, sqlalchemy_url

    if args.directory_url:
        return str(args.directory_url)
    return sqlalchemy_url(from_airflow(config.directory.connection_id))


def cmd_generate(args: argparse.Namespace) -> int:
    from mis_sync.generator import generate_school, generate_trust, write_file_drop, write_trust

    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else dt.date.today()
    out = Path(args.out)
    if args.profile == "mat":
        trust = generate_trust(args.seed, as_of)
        write_trust(trust, out)
        print(f"wrote {len(trust)} schools to {out}")
        return 0
    kwargs = {}
    if args.establishment_id:
        kwargs["establishment_id"] = args.establishment_id
    if args.laestab:
        kwargs["laestab"] = args.laestab
    extract = generate_school(args.profile, args.seed, as_of, **kwargs)
    write_file_drop(extract, out)
    counts = ", ".join(f"{k} {v}" for k, v in extract.counts().items())
    print(f"wrote {args.profile} (seed {args.seed}) to {out}: {counts}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files] if args.files else None
    loaded = [load_one(p) for p in paths] if paths is not None else discover(establishments_dir())
    failures = 0
    for item in loaded:
        if item.error:
            failures += 1
            print(f"ERROR {item.error}")
        else:
            print(f"ok    {item.path}: {item.establishment.dag_id}")  # type: ignore[union-attr]
    return 1 if failures else 0


def _local_context(args: argparse.Namespace, config: Establishment, run_id: str, work: Path):  # type: ignore[no-untyped-def]
    from mis_sync.connections import ConnectionInfo
    from mis_sync.pipeline import RunContext

    return RunContext(
        establishment=config,
        run_id=run_id,
        folder=work / config.id / run_id,
        source=ConnectionInfo(conn_id="cli", extra={"path": str(Path(args.input).resolve())}),
        directory_url=_directory_url(args, config),
        credential_keys=_keys(config) if args.command == "run" and not args.dry_run else None,
    )


def _keys(config: Establishment) -> list[bytes] | None:
    """The initial-password keys from the establishment's key connection (env var or Airflow DB)."""
    from mis_sync.connections import from_airflow
    from mis_sync.passwords import keys_from_connection

    if not config.passwords.issue_initial or config.mode == "link":
        return None
    return keys_from_connection(from_airflow(config.passwords.key_connection_id))


def cmd_passwords(args: argparse.Namespace) -> int:
    """ "Download Passwords": initial passwords of active accounts to a CSV (owner-only), audit-logged."""
    import getpass

    from mis_sync.directory.credentials import export_passwords
    from mis_sync.directory.db import make_engine, migrate

    config = _establishment(args.establishment)
    engine = make_engine(_directory_url(args, config))
    migrate(engine)
    keys = _keys(config)
    if keys is None:
        print(f"{config.id} does not issue initial passwords (passwords.issue_initial: false)")
        return 1
    actor = args.actor or getpass.getuser()
    count = export_passwords(engine, config.id, keys, Path(args.out), actor, run_id=args.run_id)
    print(f"exported {count} initial password(s) to {args.out} (audit-logged as {actor})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The DAG's five stages in one process (for data managers, benchmarks and debugging).

    Exits 0 when the run applied (or dry-ran) everything, ``cli_errors.HELD`` (5) when the brake
    held destructive changes for approval.

    Without ``--work-dir`` the run folder (the extract, with children's data) lives in a private
    temporary folder that is removed when the command ends, whatever happens.
    """
    config = _establishment(args.establishment)
    run_id = args.run_id or f"cli__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    if args.work_dir:
        return _run_stages(args, config, run_id, Path(args.work_dir), kept=True)
    with tempfile.TemporaryDirectory(prefix="misync-") as work:
        return _run_stages(args, config, run_id, Path(work), kept=False)


def _run_stages(
    args: argparse.Namespace, config: Establishment, run_id: str, work: Path, *, kept: bool
) -> int:
    from mis_sync import pipeline
    from mis_sync.run_report import exit_summary

    ctx = _local_context(args, config, run_id, work)
    where = str(ctx.folder) if kept else "a temporary folder, removed now (pass --work-dir to keep it)"
    pipeline.extract_stage(ctx)
    pipeline.validate_stage(ctx)
    plan = pipeline.plan_stage(ctx, approve_suspensions=args.approve_suspensions)
    if args.command == "plan":
        keys = (
            "users_by_role", "held_by_role", "groups", "memberships", "groups_held", "memberships_held",
            "skipped_reason", "held_reason",
        )  # fmt: skip
        print(json.dumps({k: plan[k] for k in keys}, indent=2))
        if args.details:
            _print_plan_details(ctx.folder / "plan")
        print(f"plan stored in {where}")
        return 0
    dry_run = bool(args.dry_run)
    if not dry_run:
        pipeline.apply_stage(ctx)
    report = pipeline.report_stage(ctx, dry_run=dry_run)
    print(pipeline.render_report(report))
    if not kept:
        print(f"  run folder: {where}")
    return exit_summary(report)


def cmd_check_data(args: argparse.Namespace) -> int:
    """The validate stage's checks on an export, outside Airflow: exit 0 without errors, 1 with."""
    from mis_sync.connections import ConnectionInfo
    from mis_sync.connectors import connector_for
    from mis_sync.errors import ValidationStop
    from mis_sync.quality import QualityStop, check_extract

    source = ConnectionInfo(conn_id="cli", extra={"path": str(Path(args.input).resolve())})
    last_counts, limits, country = _last_applied(args)
    extract = connector_for(args.format, source, {}, country=country).extract()
    stopped: str | None = None
    try:
        findings = check_extract(extract, country=country, last_counts=last_counts, limits=limits).findings
    except QualityStop as stop:
        findings, stopped = stop.findings, str(stop)
    except ValidationStop as stop:
        print(f"STOP {stop}", file=sys.stderr)
        return 1
    columns = ["entity", "mis_id", "field", "rule", "severity", "hint"]
    if args.json:
        for record in findings[columns].to_dict(orient="records"):
            print(json.dumps(record, ensure_ascii=False))
    else:
        counts = findings.groupby(["severity", "entity", "rule"]).size()
        for (severity, entity, rule), count in counts.items():
            print(f"{severity:<8} {entity:<14} {rule:<32} {count:>6}")
        print(f"{len(findings)} finding(s); errors: {int((findings['severity'] == 'error').sum())}")
    if stopped:
        print(f"STOP {stopped}", file=sys.stderr)
    return 1 if stopped or (findings["severity"] == "error").any() else 0


def _last_applied(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """With ``--establishment``: the last applied extract's counts (the short-extract breakers' base),
    the school's safety limits and country. Without: no base, default limits, ``--country``."""
    from mis_sync.directory.state import sync_status

    if not args.establishment:
        return {}, None, args.country
    config = _establishment(args.establishment)
    status = sync_status(_engine(args, config), config.id) or {}
    return status.get("last_counts", {}), config.safety, config.country


def _engine(args: argparse.Namespace, config: Establishment):  # type: ignore[no-untyped-def]
    from mis_sync.directory.db import make_engine, migrate

    engine = make_engine(_directory_url(args, config))
    migrate(engine)
    return engine


def _actor(args: argparse.Namespace) -> str:
    import getpass

    return getattr(args, "actor", None) or getpass.getuser()


def cmd_import_users(args: argparse.Namespace) -> int:
    """Link mode: replace the establishment's imported existing users with a validated CSV."""
    from mis_sync.directory.identity_store import save_existing_users
    from mis_sync.linking import read_existing_users

    config = _establishment(args.establishment)
    users = read_existing_users(Path(args.file))
    count = save_existing_users(_engine(args, config), config.id, users, dt.datetime.now(dt.UTC))
    print(f"imported {count} existing user(s) for {config.id}; the next run matches them to the MIS")
    return 0


def cmd_link_report(args: argparse.Namespace) -> int:
    from mis_sync.linking import link_report, load_link_state, render_link_report

    config = _establishment(args.establishment)
    state = load_link_state(_engine(args, config), config.id)
    if state.empty:
        print(f"no matching run recorded for {config.id} yet (mode: {config.mode})")
        return 1
    print(render_link_report(link_report(state), title=f"Link mode: {config.name}"))
    return 0


def cmd_link_decide(args: argparse.Namespace) -> int:
    """Record an admin decision; it is sticky: nightly runs never override it."""
    from mis_sync.linking import confirmations, load_link_state, record_decision, record_decisions

    config = _establishment(args.establishment)
    engine = _engine(args, config)
    if args.decision == "confirm-likely":
        decisions = confirmations(load_link_state(engine, config.id))
        count = record_decisions(engine, config.id, decisions, actor=_actor(args)) if decisions else 0
        print(f"linked {count} likely match(es) for {config.id}")
        return 0
    decision = args.decision.replace("-", "_")
    record_decision(
        engine,
        config.id,
        args.username,
        decision,
        args.mis_id,
        args.person_kind,
        actor=_actor(args),
        note=args.note,
    )
    print(f"recorded {decision} for {config.id}")
    return 0


def cmd_rename_user(args: argparse.Namespace) -> int:
    from mis_sync.directory.identity_store import rename_user

    config = _establishment(args.establishment)
    rename_user(
        _engine(args, config),
        config.id,
        args.old,
        args.new,
        actor=_actor(args),
        reason=args.reason,
        now=dt.datetime.now(dt.UTC),
    )
    print(f"renamed {args.old} to {args.new} in {config.id}; {args.old} stays reserved")
    return 0


def _print_plan_details(folder: Path) -> None:
    """Every account change with its reason (usernames and MIS ids; the admin's own terminal)."""
    from mis_sync.pipeline import read_plan

    users = read_plan(folder).users
    for row in users.sort_values(["action", "role", "username"]).itertuples():
        held = " (held for approval)" if row.held else ""
        fields = f" [{row.changed_fields}]" if row.changed_fields else ""
        who = f"{row.action:<8} {row.role:<19} {row.username or '-':<24} {row.mis_id:<12}"
        print(f"{who} {row.reason}{fields}{held}")


def cmd_sources(_args: argparse.Namespace) -> int:
    from mis_sync.connectors.routes import render_sources

    print(render_sources())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mis_sync.directory.db import make_engine, migrate
    from mis_sync.pipeline import latest_report, render_report

    config = _establishment(args.establishment)
    engine = make_engine(_directory_url(args, config))
    migrate(engine)
    report = latest_report(engine, config.id, dry_run=args.dry_run)
    if report is None:
        print(f"no {'dry runs' if args.dry_run else 'runs'} recorded yet for {config.id}")
        return 1
    print(json.dumps(report, indent=2) if args.json else render_report(report))
    if not args.dry_run and not args.json and (dry := latest_report(engine, config.id, dry_run=True)):
        print(
            f"\n  a dry run is recorded too ({dry['run_id']}): `misync report {args.establishment} --dry-run`"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="misync",
        description=__doc__,
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic school (or trust) in the file-drop format")
    gen.add_argument(
        "--profile",
        required=True,
        choices=["small-primary", "large-primary", "secondary", "large-secondary", "mat"],
    )
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--out", required=True)
    gen.add_argument("--as-of", help="reference date YYYY-MM-DD (default today)")
    gen.add_argument("--establishment-id")
    gen.add_argument("--laestab")
    gen.set_defaults(func=cmd_generate)

    check = sub.add_parser("check-config", help="validate establishment YAML files")
    check.add_argument("files", nargs="*")
    check.set_defaults(func=cmd_check_config)

    for name, helptext in (
        ("run", "extract, validate, plan, apply and report outside Airflow"),
        ("plan", "print the plan for a file-drop folder without applying it"),
    ):
        run = sub.add_parser(name, help=helptext)
        run.add_argument("establishment", help="establishment id or YAML path")
        run.add_argument("--input", required=True, help="file-drop folder")
        run.add_argument("--directory-url", help="SQLAlchemy URL (default: the Airflow connection)")
        run.add_argument("--work-dir", help="where run folders go (default: a temporary folder)")
        run.add_argument("--run-id")
        run.add_argument("--approve-suspensions", action="store_true")
        if name == "run":
            run.add_argument("--dry-run", action="store_true")
        else:
            run.add_argument("--details", action="store_true", help="list every account change and why")
        run.set_defaults(func=cmd_run)

    data = sub.add_parser("check-data", help="run the data-quality checks on an export (exit 1 on errors)")
    data.add_argument("--input", required=True, help="the export folder")
    data.add_argument("--format", default="file_drop", help="source format (mis.type), default file_drop")
    data.add_argument(
        "--country", default="england", choices=["england", "wales", "scotland", "northern_ireland"]
    )
    data.add_argument(
        "--establishment",
        help="compare with this establishment's last applied extract (short groups, memberships, roll)",
    )
    data.add_argument("--directory-url", help="SQLAlchemy URL (default: the Airflow connection)")
    data.add_argument("--json", action="store_true", help="one JSON object per finding")
    data.set_defaults(func=cmd_check_data)

    pwd = sub.add_parser("passwords", help="export initial passwords to a CSV file (audit-logged)")
    pwd.add_argument("establishment")
    pwd.add_argument("--out", required=True)
    pwd.add_argument("--run-id", help="only accounts created by this run")
    pwd.add_argument("--actor", help="who is exporting (default: the OS user)")
    pwd.add_argument("--directory-url")
    pwd.set_defaults(func=cmd_passwords)

    imp = sub.add_parser("import-users", help="Link mode: import existing accounts from a CSV file")
    imp.add_argument("establishment")
    imp.add_argument("--file", required=True, help="CSV: username, first_name, last_name, role, email, …")
    imp.add_argument("--directory-url")
    imp.set_defaults(func=cmd_import_users)

    lrep = sub.add_parser("link-report", help="Link mode: the seven-category table (counts)")
    lrep.add_argument("establishment")
    lrep.add_argument("--directory-url")
    lrep.set_defaults(func=cmd_link_report)

    link = sub.add_parser("link", help="Link mode: admin decisions")
    link_sub = link.add_subparsers(dest="link_command", required=True)
    decide = link_sub.add_parser(
        "decide", help="link, reject, not-in-mis, has-no-account, clear, confirm-likely"
    )
    decide.add_argument("establishment")
    decide.add_argument(
        "decision", choices=["link", "reject", "not-in-mis", "has-no-account", "clear", "confirm-likely"]
    )
    decide.add_argument("--username")
    decide.add_argument("--mis-id")
    decide.add_argument("--person-kind", choices=["pupil", "staff", "contact"])
    decide.add_argument("--note")
    decide.add_argument("--actor")
    decide.add_argument("--directory-url")
    decide.set_defaults(func=cmd_link_decide)

    ren = sub.add_parser("rename-user", help="rename a user (audit-logged; the old name stays reserved)")
    ren.add_argument("establishment")
    ren.add_argument("old")
    ren.add_argument("new")
    ren.add_argument("--reason", required=True)
    ren.add_argument("--actor")
    ren.add_argument("--directory-url")
    ren.set_defaults(func=cmd_rename_user)

    rot = sub.add_parser(
        "rotate-keys",
        help="re-encrypt stored initial passwords under the first key of the key connection (audit-logged)",
    )
    which = rot.add_mutually_exclusive_group(required=True)
    which.add_argument("establishment", nargs="?", help="establishment id or YAML path")
    which.add_argument("--all", action="store_true", help="every establishment that issues passwords")
    rot.add_argument("--actor", help="who is rotating (default: the OS user)")
    rot.add_argument("--directory-url")
    rot.set_defaults(func=cmd_rotate_keys)

    sub.add_parser("sources", help="the supported MISs, their routes and what each provides").set_defaults(
        func=cmd_sources
    )
    rep = sub.add_parser("report", help="print the latest real run's report (--dry-run: the latest dry run)")
    rep.add_argument("establishment")
    rep.add_argument("--directory-url")
    rep.add_argument("--json", action="store_true")
    rep.add_argument("--dry-run", action="store_true", help="the latest dry run's report instead")
    rep.set_defaults(func=cmd_report)

    from mis_sync.oneroster.cli import register as register_oneroster

    register_oneroster(sub)

    from mis_sync.identity.cli import add_identity_commands

    add_identity_commands(sub)

    from mis_sync.privacy.commands import register as register_privacy_commands

    register_privacy_commands(sub)  # housekeeping, export-person, erase-person
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit codes: ``cli_errors.EXIT_CODES`` (listed by ``misync --help``); never a traceback."""
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
