"""A multi-academy trust: ~90 synthetic schools in a few LAs, as one tenant would see them.

Why the trust post-processes emails: a MAT usually runs one tenant with one pupil and one staff
domain, so school-assigned addresses must be unique across the trust, not only within a school.
Each school still gets its own seed, LAESTAB (so UPNs never collide across schools) and extract.
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd

from mis_sync.generator.context import SchoolContext
from mis_sync.generator.names import ascii_slug
from mis_sync.generator.profiles import PROFILES
from mis_sync.generator.school import build_extract
from mis_sync.model import Extract

TRUST_LA_CODES = (
    "380",
    "381",
    "382",
    "383",
    "384",
    "370",
    "371",
    "372",
    "373",
    "330",
    "331",
    "332",
    "333",
    "334",
    "335",
    "336",
    "886",
    "887",
    "850",
    "851",
    "852",
    "919",
    "936",
    "926",
)
"""Census LA codes a trust's schools are spread over (Yorkshire, West Midlands, Kent, Hampshire,
Hertfordshire, Surrey, Norfolk and their unitary neighbours)."""

_NAME_ENDINGS = ("field", "wood", "brook", "mead", "ley", "ton", "bridge", "croft", "well", "hurst", "dale")
_KIND_SUFFIX = {
    "small-primary": ("Primary School", "Primary Academy", "Infant and Junior School"),
    "large-primary": ("Primary Academy", "Primary School"),
    "secondary": ("Academy", "High School", "School"),
    "large-secondary": ("Academy", "Community College", "High School"),
}


def _slug(text: str) -> str:
    return "-".join(ascii_slug(word) for word in text.split() if ascii_slug(word))


def plan_trust(seed: int) -> list[tuple[str, str, str, int]]:
    """The trust's schools as (profile, establishment slug, LAESTAB, school seed), deterministic."""
    rnd = random.Random(f"trust:{seed}")
    profiles = [name for name, count in PROFILES["mat"].members for _ in range(count)]
    rnd.shuffle(profiles)
    las = rnd.sample(TRUST_LA_CODES, 8)
    used_slugs: set[str] = set()
    used_laestabs: set[str] = set()
    plan: list[tuple[str, str, str, int]] = []
    surnames = (
        "Ashby",
        "Barton",
        "Carlisle",
        "Denby",
        "Elston",
        "Fairley",
        "Garston",
        "Hadley",
        "Ingham",
        "Kirkby",
        "Langley",
        "Marston",
        "Norton",
        "Oakley",
        "Preston",
        "Radley",
        "Selby",
        "Thornton",
        "Upton",
        "Walton",
        "Whitley",
        "Yardley",
        "Astley",
        "Brampton",
        "Cawood",
        "Dunmore",
    )
    for profile in profiles:
        while True:
            base = rnd.choice(surnames)
            stem = base[:-3] if base.endswith(("ley", "ton")) and rnd.random() < 0.5 else base
            ending = rnd.choice(_NAME_ENDINGS) if stem != base else ""
            name = f"{stem}{ending} {rnd.choice(_KIND_SUFFIX[profile])}"
            slug = _slug(name)
            if slug not in used_slugs:
                break
        used_slugs.add(slug)
        low, high = (2000, 3999) if PROFILES[profile].phase == "primary" else (4000, 4999)
        while True:
            laestab = f"{rnd.choice(las)}{rnd.randint(low, high):04d}"
            if laestab not in used_laestabs:
                break
        used_laestabs.add(laestab)
        plan.append((profile, slug, laestab, rnd.getrandbits(32)))
    return plan


def generate_trust(seed: int, as_of: dt.date) -> list[tuple[str, str, Extract]]:
    """Generate the ``mat`` profile: a list of (establishment slug, LAESTAB, extract), one per school.

    Pupil and staff email addresses are made unique across the trust (a counter is added, as a
    trust-wide account script would); contacts that use a staff member's work address follow it.
    """
    schools: list[tuple[str, str, Extract]] = []
    for profile, slug, laestab, school_seed in plan_trust(seed):
        ctx = SchoolContext(PROFILES[profile], school_seed, as_of, slug, laestab)
        schools.append((slug, laestab, build_extract(ctx)))
    _dedupe_emails([extract.tables["pupils"] for _, _, extract in schools])
    staff_changes = _dedupe_emails([extract.tables["staff"] for _, _, extract in schools])
    for (_, _, extract), changes in zip(schools, staff_changes, strict=True):
        contacts = extract.tables["contacts"]
        linked = contacts["staff_mis_id"].notna() & contacts["email"].isin(list(changes))
        contacts.loc[linked, "email"] = contacts.loc[linked, "email"].map(changes)
    return schools


def _dedupe_emails(frames: list[pd.DataFrame]) -> list[dict[str, str]]:
    """Make ``email`` unique across ``frames`` in place (first school keeps the address); return, per
    frame, the old -> new address changes."""
    changes: list[dict[str, str]] = [{} for _ in frames]
    combined = pd.concat(
        [pd.DataFrame({"email": f["email"], "school": i, "row": f.index}) for i, f in enumerate(frames)],
        ignore_index=True,
    ).dropna(subset=["email"])
    taken = set(combined["email"])
    clash = combined[combined.duplicated("email", keep="first")]
    updates: list[tuple[list[int], list[str]]] = [([], []) for _ in frames]
    for email, school, row in clash.itertuples(index=False):
        local, _, domain = email.partition("@")
        counter = 2
        while f"{local}{counter}@{domain}" in taken:
            counter += 1
        new = f"{local}{counter}@{domain}"
        taken.add(new)
        updates[school][0].append(row)
        updates[school][1].append(new)
        changes[school][email] = new
    for frame, (rows, values) in zip(frames, updates, strict=True):
        if rows:
            frame.loc[rows, "email"] = pd.array(values, dtype="string")
    return changes
