"""One synthetic school as a canonical ``Extract``: the entry point the rest of the generator serves.

Why a fixed step order: every step draws from the same seeded sources, so the order is part of what
makes ``(profile, seed, as_of)`` reproduce identical frames. Tables are shaped by
``model.ENTITIES[name].coerce`` so they match what any real connector produces.
"""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pandas as pd

from mis_sync.generator.context import SchoolContext
from mis_sync.generator.families import build_contacts, build_families
from mis_sync.generator.groups import build_groups
from mis_sync.generator.names import NamePool
from mis_sync.generator.profiles import PROFILES
from mis_sync.generator.pupils import ON_ROLL, assign_upns, build_roll, name_pupils, pupil_emails
from mis_sync.generator.staff import build_staff
from mis_sync.model import ENTITIES, Extract

SOURCE = "generator"
DEFAULT_LA_CODES = ("380", "383", "330", "886", "850", "919", "936", "801", "926", "681")
"""LAs used when no LAESTAB is given: Bradford, Leeds, Birmingham, Kent, Hampshire, Hertfordshire,
Surrey, Bristol, Norfolk and a Welsh LA, so default schools exercise both English and Welsh codes."""


def default_laestab(profile: str, seed: int) -> str:
    """A deterministic LAESTAB for a profile and seed: primaries 2xxx, secondaries 4xxx (DfE ranges)."""
    rnd = random.Random(f"laestab:{profile}:{seed}")
    phase = PROFILES[profile].phase
    low, high = (2000, 3999) if phase == "primary" else (4000, 4999)
    return f"{rnd.choice(DEFAULT_LA_CODES)}{rnd.randint(low, high):04d}"


def snapshot_time(as_of: dt.date) -> pd.Timestamp:
    """06:00 Europe/London on ``as_of`` (when a nightly MIS export would run), as a UTC timestamp."""
    local = pd.Timestamp(dt.datetime.combine(as_of, dt.time(6, 0)), tz="Europe/London")
    return local.tz_convert("UTC")


def generate_school(
    profile: str,
    seed: int,
    as_of: dt.date,
    establishment_id: str | None = None,
    laestab: str | None = None,
) -> Extract:
    """Generate one school of ``profile`` (see ``PROFILES``) as its MIS would export it on ``as_of``.

    ``laestab`` (7 digits) fixes the LA code and establishment number in every UPN; it defaults to
    ``default_laestab(profile, seed)``. ``establishment_id`` names the school for callers (default
    ``"{profile}-{seed}"``); the canonical tables carry no establishment column, so it does not change
    the data. Deterministic: the same arguments give identical frames.
    """
    spec = PROFILES.get(profile)
    if spec is None or spec.is_trust:
        raise ValueError(f"unknown school profile {profile!r}; trusts use generate_trust")
    ctx = SchoolContext(
        profile=spec,
        seed=seed,
        as_of=as_of,
        establishment_id=establishment_id or f"{profile}-{seed}",
        laestab=laestab or default_laestab(profile, seed),
    )
    return build_extract(ctx)


def build_extract(ctx: SchoolContext) -> Extract:
    """Run the generation steps for one school context and shape the canonical tables."""
    pool = NamePool(ctx.fake, ctx.rng)
    roll, forms = build_roll(ctx)
    roll.insert(0, "mis_id", ctx.ids("P", len(roll), 6))
    on_roll = int((roll["status"] == ON_ROLL).sum())
    staff = build_staff(ctx, on_roll, pool)
    families = build_families(ctx, len(roll), pool)
    contacts, links = build_contacts(ctx, roll, families, staff, pool)
    name_pupils(ctx, roll, families.surname[families.pupil_family], pool)
    assign_upns(ctx, roll)
    roll["email"] = pupil_emails(roll)
    groups, memberships, registration = build_groups(ctx, roll, forms, staff)

    pupils = roll.rename(
        columns={
            "dob": "date_of_birth",
            "year": "year_group",
            "admission": "admission_date",
            "leaving": "leaving_date",
            "status": "enrolment_status",
        }
    )
    pupils["registration_group_id"] = registration
    links["pupil_id"] = roll["mis_id"].to_numpy()[links["pupil_index"].to_numpy(dtype=np.int64)]
    raw = {
        "pupils": pupils,
        "staff": staff,
        "contacts": contacts,
        "groups": groups,
        "memberships": memberships,
        "relationships": links,
    }
    tables = {name: ENTITIES[name].coerce(frame) for name, frame in raw.items()}
    return Extract(tables=tables, snapshot_at=snapshot_time(ctx.as_of), source=SOURCE)
