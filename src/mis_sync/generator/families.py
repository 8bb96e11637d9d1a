"""Families: which pupils are siblings, their contacts (parents, carers, others) and relationships.

Why families first: siblings share contacts (the de-duplication case in ``sizing.md`` 5.5) and a
pupil's surname usually comes from the family, so surname edge cases are planted per family and both
pupils and parents carry them. Contacts per pupil land at 1.6-2.0 after de-duplication (``sizing.md``
section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mis_sync.generator.context import SchoolContext
from mis_sync.generator.names import (
    APOSTROPHE_SURNAMES_ASCII,
    APOSTROPHE_SURNAMES_TYPOGRAPHIC,
    EDGE_SURNAMES,
    HYPHENATED_SURNAMES,
    NamePool,
    slugs,
)
from mis_sync.generator.pupils import ON_ROLL

CONTACT_DOMAINS = np.array(["example.com", "example.org", "example.net"], dtype=object)
# Ofcom's ranges reserved for drama: never a real subscriber's number.
_PHONE_PREFIXES = np.array(
    [
        "07700 900",
        "0113 496 0",
        "0114 496 0",
        "0115 496 0",
        "0117 496 0",
        "0121 496 0",
        "0161 496 0",
        "020 7946 0",
        "0191 498 0",
        "029 2018 0",
    ],
    dtype=object,
)
_OTHER_ROLES = np.array(
    ["Grandmother", "Grandfather", "Aunt", "Uncle", "Step-mother", "Family friend", "Childminder"],
    dtype=object,
)
_ROLE_GENDER = {
    "Mother": "F",
    "Grandmother": "F",
    "Aunt": "F",
    "Step-mother": "F",
    "Father": "M",
    "Grandfather": "M",
    "Uncle": "M",
    "Step-father": "M",
}


@dataclass
class Families:
    pupil_family: np.ndarray
    """Family index of each pupil (row of the roll)."""
    surname: np.ndarray
    """Surname of each family."""
    planted: np.ndarray
    """Families whose surname is a planted edge case (kept out of the staff-parent swap)."""


def build_families(ctx: SchoolContext, n_pupils: int, pool: NamePool) -> Families:
    """Group pupils into families (more siblings in primaries) and give each family a surname."""
    rng = ctx.rng
    shares = list(ctx.profile.family_sizes)
    mean_size = float(np.dot([1, 2, 3], shares))
    sizes = ctx.quota([1, 2, 3], shares, int(n_pupils / mean_size) + 3)
    if sizes.sum() < n_pupils:
        sizes = np.concatenate([sizes, np.ones(n_pupils - int(sizes.sum()), dtype=sizes.dtype)])
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_pupils)) + 1]
    sizes[-1] -= int(sizes.sum()) - n_pupils
    n_families = len(sizes)
    pupil_family = np.empty(n_pupils, dtype=np.int64)
    pupil_family[rng.permutation(n_pupils)] = np.repeat(np.arange(n_families), sizes)

    surname = pool.surnames(n_families)
    double = rng.random(n_families) < 0.04
    second = pool.surnames(int(double.sum()))
    surname[double] = [f"{a}-{b}" if a != b else a for a, b in zip(surname[double], second, strict=True)]
    planted = np.zeros(n_families, dtype=bool)
    scale = n_families
    plants = [(np.array([name], dtype=object), max(1, scale // 400)) for name in EDGE_SURNAMES]
    plants += [
        (np.array(HYPHENATED_SURNAMES, dtype=object), max(2, scale // 200)),
        (np.array(APOSTROPHE_SURNAMES_ASCII, dtype=object), max(2, scale // 100)),
        (np.array(APOSTROPHE_SURNAMES_TYPOGRAPHIC, dtype=object), max(2, scale // 150)),
    ]
    for names, count in plants:
        chosen = ctx.pick(np.flatnonzero(~planted), count)
        surname[chosen] = rng.choice(names, len(chosen))
        planted[chosen] = True
    return Families(pupil_family, surname, planted)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = rng.choice(_PHONE_PREFIXES, n)
    digits = pd.Series(rng.integers(0, 1000, n)).astype(str).str.zfill(3).to_numpy(dtype=object)
    return prefix + digits


def build_contacts(
    ctx: SchoolContext, roll: pd.DataFrame, families: Families, staff: pd.DataFrame, pool: NamePool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contacts and relationships. Mutates ``families.surname`` for staff-parent families, so call
    it before naming pupils.

    Per family 1-5 contacts (a few above three), priority 1..k shared by all siblings; parents and
    carers have parental responsibility, other relatives mostly not; ~8 % without email, a few
    two-parent families sharing one email; about 5 % of staff are parents of pupils on roll.
    """
    rng = ctx.rng
    n_families = len(families.surname)
    per_family = ctx.quota([1, 2, 3, 4, 5], [0.16, 0.57, 0.18, 0.06, 0.03], n_families)
    family = np.repeat(np.arange(n_families), per_family)
    rank = np.arange(len(family)) - np.repeat(np.cumsum(per_family) - per_family, per_family)
    n = len(family)

    parents_roles = np.array(["Mother", "Father", "Carer"], dtype=object)
    first_role = rng.choice(parents_roles, n_families, p=[0.8, 0.15, 0.05])
    partner = np.where(first_role == "Father", "Mother", "Father").astype(object)
    swap = rng.random(n_families)
    partner[swap < 0.1] = "Step-father"
    partner[(swap >= 0.1) & (swap < 0.14)] = first_role[(swap >= 0.1) & (swap < 0.14)]
    role = rng.choice(_OTHER_ROLES, n)
    role[rank == 0] = first_role[family[rank == 0]]
    role[rank == 1] = partner[family[rank == 1]]
    responsibility = np.isin(role, ["Mother", "Father", "Carer"]) | (
        np.char.startswith(role.astype(str), "Step") & (rng.random(n) < 0.5)
    )
    gender = np.array([_ROLE_GENDER.get(r, "") for r in role], dtype=object)
    unknown = gender == ""
    gender[unknown] = np.where(rng.random(int(unknown.sum())) < 0.7, "F", "M")

    first = pool.adult_first_names(gender)
    keeps_family_name = rng.random(n) < np.where(gender == "M", 0.9, 0.7)
    last = np.where(keeps_family_name, families.surname[family], pool.surnames(n))
    titles = np.where(
        gender == "F",
        rng.choice(np.array(["Mrs", "Ms", "Miss", "Dr"], dtype=object), n, p=[0.55, 0.3, 0.12, 0.03]),
        rng.choice(np.array(["Mr", "Dr"], dtype=object), n, p=[0.96, 0.04]),
    )

    # Staff who are parents: the family's first contact becomes the staff member.
    staff_id = np.full(n, None, dtype=object)
    current = staff.index[staff["enrolment_status"] == ON_ROLL].to_numpy()
    parents = ctx.pick(current, max(1, round(len(current) * 0.05)))
    with_pupil_on_roll = np.zeros(n_families, dtype=bool)
    with_pupil_on_roll[families.pupil_family[roll["status"].to_numpy() == ON_ROLL]] = True
    heads = np.flatnonzero((rank == 0) & ~families.planted[family] & with_pupil_on_roll[family])
    for s, c in zip(parents, ctx.pick(heads, len(parents)), strict=False):
        member = staff.loc[s]
        first[c], last[c] = member["preferred_first_name"], member["legal_last_name"]
        titles[c] = member["title"]
        gender[c], staff_id[c] = member["gender"], member["mis_id"]
        role[c] = "Mother" if member["gender"] == "F" else "Father"
        responsibility[c] = True
        families.surname[family[c]] = member["legal_last_name"]

    pattern = rng.integers(0, 3, n)
    fs, ls = pd.Series(slugs(first)), pd.Series(slugs(last))
    number = pd.Series(rng.integers(1, 100, n)).astype(str)
    local = fs + "." + ls
    local = local.where(pattern != 1, fs + ls + number)
    local = local.where(pattern != 2, fs.str[:1] + ls + number)
    counter = local.groupby(local).cumcount()
    local = local.where(counter == 0, local + "." + (counter + 1).astype(str))
    emails = (local + "@" + pd.Series(rng.choice(CONTACT_DOMAINS, n))).to_numpy(dtype=object)
    is_staff = staff_id != None  # noqa: E711 - elementwise on an object array
    work = is_staff & (rng.random(n) < 0.5)
    work_email = staff.set_index("mis_id")["email"]
    emails[work] = work_email.reindex(staff_id[work]).to_numpy(dtype=object)
    no_email = rng.random(n) < np.where(rank >= 2, 0.3, 0.05)
    emails[no_email & ~is_staff] = None
    # Two parents sharing one address.
    pairs = np.flatnonzero((rank == 0) & (per_family[family] >= 2) & ~is_staff)
    pairs = pairs[~is_staff[pairs + 1]]
    for c in ctx.pick(pairs, max(1, round(len(pairs) * 0.04))):
        shared = f"the{slugs(np.array([last[c]]))[0]}s{rng.integers(1, 100)}@{rng.choice(CONTACT_DOMAINS)}"
        emails[c] = emails[c + 1] = shared
    phones = _phones(rng, n)
    phones[rng.random(n) < 0.04] = None

    contact_ids = ctx.ids("C", n, 6)
    contacts = pd.DataFrame(
        {
            "mis_id": contact_ids,
            "title": titles,
            "legal_first_name": first,
            "legal_last_name": last,
            "preferred_first_name": first,
            "preferred_last_name": last,
            "email": emails,
            "phone": phones,
            "staff_mis_id": staff_id,
        }
    )
    links = pd.DataFrame(
        {
            "family": family,
            "contact_id": contact_ids,
            "relationship": role,
            "parental_responsibility": responsibility,
            "priority": rank + 1,
        }
    )
    pupils = pd.DataFrame({"family": families.pupil_family, "pupil_index": np.arange(len(roll))})
    relationships = pupils.merge(links, on="family").sort_values(["pupil_index", "priority"], kind="stable")
    return contacts, relationships.drop(columns="family").reset_index(drop=True)
