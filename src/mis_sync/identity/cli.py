"""``misync identity-report`` and ``misync identity decide``: the admin's side of identity continuity.

Ambiguous pairs (one vanished account that could be several new MIS records, or the reverse, or a new
record of someone whose record is still there) are never re-keyed by a run. The admin lists them and
decides, as for Link mode's decisions: ``same`` (the next run re-keys the account to that record, not
held by the brake: it is a human decision), ``distinct`` (two people: the pair is never joined again),
``clear`` (withdraw an earlier decision). Decisions are appended, never edited; the newest wins.
"""

from __future__ import annotations

import argparse


def cmd_identity_report(args: argparse.Namespace) -> int:
    from mis_sync.cli import _engine, _establishment
    from mis_sync.identity.store import pending_pairs

    config = _establishment(args.establishment)
    pending = pending_pairs(_engine(args, config), config.id)
    if pending.empty:
        print(f"no identity pairs wait for a decision for {config.id}")
        return 0
    print(f"{len(pending)} pair(s) wait for a decision for {config.id} (misync identity decide …):")
    print(f"  {'kind':<7}{'account MIS id':<22}{'username':<24}{'new MIS id':<22}{'rule':<16}reason")
    for row in pending.fillna("-").itertuples(index=False):
        print(
            f"  {row.person_kind:<7}{row.old_mis_id:<22}{row.username:<24}{row.new_mis_id:<22}"
            f"{row.rule:<16}{row.reason}"
        )
    return 0


def cmd_identity_decide(args: argparse.Namespace) -> int:
    from mis_sync.cli import _actor, _engine, _establishment
    from mis_sync.identity.store import record_identity_decision

    config = _establishment(args.establishment)
    record_identity_decision(
        _engine(args, config),
        config.id,
        args.decision,
        person_kind=args.person_kind,
        old_mis_id=args.old_mis_id,
        new_mis_id=args.new_mis_id,
        decided_by=_actor(args),
        note=args.note,
    )
    print(f"recorded {args.decision} for {config.id}; the next run applies it")
    return 0


def add_identity_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("identity-report", help="re-key pairs (MIS id changes) waiting for a decision")
    report.add_argument("establishment")
    report.add_argument("--directory-url")
    report.set_defaults(func=cmd_identity_report)

    identity = sub.add_parser("identity", help="identity continuity: admin decisions about re-key pairs")
    identity_sub = identity.add_subparsers(dest="identity_command", required=True)
    decide = identity_sub.add_parser("decide", help="same, distinct or clear for one pair")
    decide.add_argument("establishment")
    decide.add_argument("decision", choices=["same", "distinct", "clear"])
    decide.add_argument("--person-kind", required=True, choices=["pupil", "staff"])
    decide.add_argument("--old-mis-id", required=True, help="the account's MIS id (identity-report)")
    decide.add_argument("--new-mis-id", required=True, help="the new MIS record's id")
    decide.add_argument("--note")
    decide.add_argument("--actor")
    decide.add_argument("--directory-url")
    decide.set_defaults(func=cmd_identity_decide)
