"""Nights of a generated secondary school through the real stages and both emulated targets.

``School.night`` runs what the DAG runs, in its order: extract → validate → plan → apply → (the admin's
answer: Approve re-plans with approval and applies; Reject leaves the held changes) → the Microsoft 365
and Google Classroom fan-out (after the answer, as ``changes_settled`` orders it) → report. The MIS
export is a file drop that each test damages the way a real export goes wrong.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, select
from upath import UPath

from mis_sync import pipeline
from mis_sync.config import Establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.directory.schema import Group, Membership, User
from mis_sync.fakes import FakeClassroom, FakeGraph
from mis_sync.generator import generate_school, write_file_drop
from mis_sync.targets.stages import TARGETS, run_target
from tests.helpers import demo_config

TERM_TIME = dt.date(2026, 2, 3)
"""A Tuesday in the spring term: no cohort is expected to leave."""
DOMAIN = "demo-academy.example"


def graph_connection(fake: FakeGraph) -> dict[str, Any]:
    extra = {
        "tenant_id": "00000000-0000-0000-0000-000000000000",
        "base_url": fake.base_url + "/",
        "allowed_hosts": "graph.microsoft.com",
    }
    return {"conn_type": "msgraph", "login": "client", "password": "secret", "extra": extra}


def classroom_connection(fake: FakeClassroom) -> dict[str, Any]:
    return {"conn_type": "generic", "extra": {"api_endpoint": fake.base_url}}


@dataclass
class School:
    """The demo establishment's config, its file drop, directory and the two emulated targets."""

    drop: Path
    runs: Path
    engine: Engine
    graph: FakeGraph
    classroom: FakeClassroom
    nights: int = 0
    keys: list[bytes] = field(default_factory=lambda: [Fernet.generate_key()])
    config: Establishment | None = None
    """The establishment's settings for the next nights (default: the demo academy's)."""

    @classmethod
    def generate(cls, tmp: Path, engine: Engine, graph: FakeGraph, classroom: FakeClassroom) -> School:
        extract = generate_school("secondary", 42, TERM_TIME, establishment_id="demo-academy")
        write_file_drop(extract, tmp / "drop")
        return cls(tmp / "drop", tmp / "runs", engine, graph, classroom)

    def night(self, answer: str | None = None, *, targets: bool = True) -> dict[str, Any]:
        """One nightly run; ``answer`` is the admin's Approve / Reject when the brake holds changes."""
        self.nights += 1
        run_id = f"night-{self.nights}"
        ctx = pipeline.RunContext(
            establishment=self.config or demo_config(),
            run_id=run_id,
            folder=UPath(self.runs / run_id),
            source=ConnectionInfo(conn_id="drop", extra={"path": str(self.drop)}),
            directory_url="unused",
            credential_keys=self.keys,
        )
        ctx.__dict__["engine"] = self.engine  # the cached_property, pointed at the test's directory
        pipeline.extract_stage(ctx)
        pipeline.validate_stage(ctx)
        plan = pipeline.plan_stage(ctx)
        pipeline.apply_stage(ctx)
        held = plan["held_changes"] > 0
        if held and answer == "Approve":
            pipeline.plan_stage(ctx, approve_suspensions=True, name="approved")
            pipeline.apply_stage(ctx, name="approved")
        if targets:
            for target in TARGETS:
                run_target(ctx, target, sleep=lambda _s: None)
        return pipeline.report_stage(ctx, dry_run=False, rejected=held and answer != "Approve")

    def last_plan(self) -> dict[str, Any]:
        """The last night's first plan (plan.json: counts and the brake's reasons)."""
        return json.loads((self.runs / f"night-{self.nights}" / "plan" / "plan.json").read_text())

    # ---- the export, damaged the way real ones are ------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.drop / f"{name}.csv", dtype=str, keep_default_na=False)

    def write(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.drop / f"{name}.csv", index=False)

    def next_snapshot(self, hours: int = 24) -> None:
        """The next export is taken a day later (the brake's window is measured in snapshot time)."""
        manifest = json.loads((self.drop / "manifest.json").read_text())
        taken = pd.Timestamp(manifest["snapshot_at"]) + pd.Timedelta(hours=hours)
        manifest["snapshot_at"] = taken.isoformat()
        (self.drop / "manifest.json").write_text(json.dumps(manifest))

    def remove_pupils(self, gone: set[str]) -> None:
        """Pupils missing from the export, with their memberships and contact links."""
        self.write("pupils", self.table("pupils").pipe(lambda f: f[~f["PupilId"].isin(gone)]))
        for name, column in (("memberships", "PersonId"), ("relationships", "PupilId")):
            frame = self.table(name)
            self.write(name, frame[~frame[column].isin(gone)])

    def on_roll(self, year: str | None = None) -> pd.DataFrame:
        pupils = self.table("pupils")
        pupils = pupils[pupils["EnrolmentStatus"] == "on_roll"]
        return pupils if year is None else pupils[pupils["YearGroup"] == year]

    def drop_share_of_year(self, year: str, share: float) -> set[str]:
        cohort = self.on_roll(year)
        gone = set(cohort["PupilId"].head(round(len(cohort) * share)))
        self.remove_pupils(gone)
        return gone

    def drop_share_of_pupils(self, share: float, seed: int) -> set[str]:
        """A random ``share`` of the pupils still on roll (spread over every year group)."""
        ids = sorted(self.on_roll()["PupilId"])
        gone = set(random.Random(seed).sample(ids, round(len(ids) * share)))
        self.remove_pupils(gone)
        return gone

    def cut_memberships(self, keep: float) -> int:
        """``memberships.csv`` cut short at a line boundary (a report cut off, a full disk)."""
        lines = (self.drop / "memberships.csv").read_text().splitlines(keepends=True)
        rows = round((len(lines) - 1) * keep)
        (self.drop / "memberships.csv").write_text("".join(lines[: 1 + rows]))
        return rows

    def drop_share_of_groups(self, kind: str, share: float) -> set[str]:
        groups = self.table("groups")
        of_kind = groups[groups["GroupType"] == kind]["GroupId"]
        gone = set(of_kind.head(round(len(of_kind) * share)))
        self.write("groups", groups[~groups["GroupId"].isin(gone)])
        memberships = self.table("memberships")
        self.write("memberships", memberships[~memberships["GroupId"].isin(gone)])
        return gone

    # ---- what the directory and the targets hold -----------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.engine.connect() as c:
            count = lambda q: c.execute(q).scalar_one()  # noqa: E731
            return {
                "suspended": count(select(func.count()).select_from(User).where(User.status != "active")),
                "archived": count(select(func.count()).select_from(Group).where(Group.status == "archived")),
                "memberships": count(select(func.count()).select_from(Membership)),
            }

    def memberships_of(self, mis_ids: set[str]) -> int:
        with self.engine.connect() as c:
            return c.execute(
                select(func.count())
                .select_from(Membership)
                .join(User, User.id == Membership.user_id)
                .where(User.mis_id.in_(sorted(mis_ids)))
            ).scalar_one()

    def upns(self, mis_ids: set[str]) -> set[str]:
        with self.engine.connect() as c:
            names = c.execute(select(User.username).where(User.mis_id.in_(sorted(mis_ids)))).scalars()
            return {f"{name}@{DOMAIN}".lower() for name in names}

    def targets_state(self) -> dict[str, Any]:
        """Everything the emulators hold that a sync could change (deep copies, for before/after)."""
        g, c = self.graph.state, self.classroom.state
        return copy.deepcopy(
            {
                "graph": (g.classes, g.members, g.owners),
                "classroom": (c.courses, c.students, c.teachers),
            }
        )

    def in_targets(self, upns: set[str]) -> dict[str, int]:
        """Class memberships the given people hold in Microsoft 365 and in Google Classroom."""
        graph_ids = {
            uid for uid, u in self.graph.state.users.items() if u["userPrincipalName"].lower() in upns
        }
        google_ids = {
            uid for uid, u in self.classroom.state.users.items() if u["primaryEmail"].lower() in upns
        }
        return {
            "microsoft365": sum(len(graph_ids.intersection(m)) for m in self.graph.state.members.values()),
            "google_classroom": sum(
                len(google_ids.intersection(s)) for s in self.classroom.state.students.values()
            ),
        }
