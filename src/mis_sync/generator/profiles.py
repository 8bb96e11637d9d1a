"""Synthetic school and trust profiles, sized from ``sizing.md`` sections 2 and 3.

Why ranges and not single numbers: the generator draws cohort sizes, forms and family shapes at
random (seeded), and tests assert that every seed lands inside these documented ranges. Pupil
ranges count pupils on roll; leavers and pre-admissions come on top (about 2-3 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["primary", "secondary"]
Span = tuple[int, int]

NC_INDEX: dict[str, int] = {"N1": -2, "N2": -1, "R": 0, **{str(n): n for n in range(1, 15)}}
"""National Curriculum year code -> number used by the DOB rule (uk-data-rules 4.3)."""


@dataclass(frozen=True)
class Cohort:
    """One year group as the profile wants it: pupil count range and allowed numbers of forms."""

    year: str
    pupils: Span
    forms: tuple[int, ...]


@dataclass(frozen=True)
class PrimarySet:
    """A primary teaching-group block: pupils of ``years`` split into ``groups`` ability groups."""

    years: tuple[str, ...]
    subject: str
    groups: int


@dataclass(frozen=True)
class Profile:
    """A school (``members`` empty) or a trust (``members`` = profile name and school count).

    The ``*_range`` fields are the expected totals the tests check: for a trust they are trust totals.
    """

    name: str
    phase: Phase | None
    cohorts: tuple[Cohort, ...]
    pupils_range: Span
    staff_range: Span
    contacts_range: Span
    registration_groups_range: Span
    teaching_groups_range: Span
    teaching_memberships_range: Span
    pupils_per_teacher: float = 16.7
    support_per_teacher: tuple[float, float] = (0.75, 0.95)
    family_sizes: tuple[float, float, float] = (0.8, 0.17, 0.03)
    """Share of families with 1, 2 and 3 pupils in the school (siblings share contacts)."""
    primary_sets: tuple[PrimarySet, ...] = ()
    no_teaching_groups_probability: float = 0.0
    """Share of schools of this profile with no teaching groups at all (ScholarPack-style primaries)."""
    sixth_form_tutor_groups: bool = False
    members: tuple[tuple[str, int], ...] = ()

    @property
    def is_trust(self) -> bool:
        return bool(self.members)

    @property
    def year_codes(self) -> tuple[str, ...]:
        return tuple(c.year for c in self.cohorts)


def _years(codes: tuple[str, ...], pupils: Span, forms: tuple[int, ...]) -> tuple[Cohort, ...]:
    return tuple(Cohort(code, pupils, forms) for code in codes)


_PRIMARY_YEARS = ("R", "1", "2", "3", "4", "5", "6")

SMALL_PRIMARY = Profile(
    name="small-primary",
    phase="primary",
    cohorts=(Cohort("N2", (20, 26), (1,)), *_years(_PRIMARY_YEARS, (27, 30), (1,))),
    pupils_range=(200, 250),
    staff_range=(25, 35),
    contacts_range=(330, 420),
    registration_groups_range=(7, 8),
    teaching_groups_range=(0, 10),
    teaching_memberships_range=(0, 260),
    pupils_per_teacher=20.8,
    support_per_teacher=(1.2, 1.6),
    family_sizes=(0.72, 0.22, 0.06),
    primary_sets=(
        PrimarySet(("R",), "Phonics", 2),
        PrimarySet(("1", "2"), "Mathematics", 2),
        PrimarySet(("3", "4"), "Mathematics", 2),
        PrimarySet(("5", "6"), "Mathematics", 2),
    ),
    no_teaching_groups_probability=0.3,
)

LARGE_PRIMARY = Profile(
    name="large-primary",
    phase="primary",
    cohorts=(
        Cohort("N1", (14, 20), (1,)),
        Cohort("N2", (40, 52), (2,)),
        *_years(_PRIMARY_YEARS, (84, 90), (3,)),
    ),
    pupils_range=(600, 720),
    staff_range=(70, 90),
    contacts_range=(1000, 1250),
    registration_groups_range=(21, 24),
    teaching_groups_range=(0, 30),
    teaching_memberships_range=(0, 720),
    pupils_per_teacher=20.8,
    support_per_teacher=(1.2, 1.45),
    family_sizes=(0.7, 0.25, 0.05),
    primary_sets=(
        PrimarySet(("R",), "Phonics", 4),
        PrimarySet(("1",), "Phonics", 4),
        *(PrimarySet((y,), "Mathematics", 3) for y in ("2", "3", "4", "5", "6")),
    ),
    no_teaching_groups_probability=0.3,
)

SECONDARY = Profile(
    name="secondary",
    phase="secondary",
    cohorts=_years(("7", "8", "9", "10", "11"), (192, 206), (8, 9)),
    pupils_range=(950, 1050),
    staff_range=(110, 150),
    contacts_range=(1600, 2000),
    registration_groups_range=(40, 45),
    teaching_groups_range=(400, 500),
    teaching_memberships_range=(10_000, 12_000),
)

LARGE_SECONDARY = Profile(
    name="large-secondary",
    phase="secondary",
    cohorts=(
        *_years(("7", "8", "9", "10", "11"), (292, 306), (10, 11)),
        *_years(("12", "13"), (140, 160), (10, 11, 12)),
    ),
    pupils_range=(1720, 1880),
    staff_range=(180, 250),
    contacts_range=(2900, 3600),
    registration_groups_range=(70, 80),
    teaching_groups_range=(700, 950),
    teaching_memberships_range=(16_000, 22_000),
    sixth_form_tutor_groups=True,
)

MAT = Profile(
    name="mat",
    phase=None,
    cohorts=(),
    pupils_range=(45_000, 56_000),
    staff_range=(5_500, 7_500),
    contacts_range=(78_000, 100_000),
    registration_groups_range=(1_800, 2_400),
    teaching_groups_range=(13_000, 18_000),
    teaching_memberships_range=(340_000, 440_000),
    members=(("small-primary", 53), ("large-primary", 5), ("secondary", 27), ("large-secondary", 5)),
)
"""A large multi-academy trust: 90 schools, ~50k pupils, ~15k teaching groups, ~370-400k memberships."""

PROFILES: dict[str, Profile] = {
    p.name: p for p in (SMALL_PRIMARY, LARGE_PRIMARY, SECONDARY, LARGE_SECONDARY, MAT)
}
