"""Teaching groups and who is in them, vectorised per (year group, subject).

Why per (year, subject) blocks: a large trust has ~400k pupil-in-teaching-group memberships; each
block is one numpy sort and one integer division, not a Python loop over pupils. Shapes follow
``sizing.md`` section 3 (KS3 ~12 subjects, KS4 ~9, KS5 3-4; classes of 22-27, sixth form 8-14) and
names follow uk-data-rules 6.2 (``10y/Ma1``, ``9A/Hi2``, ``13/Ps1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mis_sync.generator.context import SchoolContext
from mis_sync.generator.profiles import PrimarySet

SUBJECTS: dict[str, str] = {
    "En": "English",
    "Ma": "Mathematics",
    "Sc": "Science",
    "Bi": "Biology",
    "Ch": "Chemistry",
    "Ph": "Physics",
    "Hi": "History",
    "Gg": "Geography",
    "Fr": "French",
    "Sp": "Spanish",
    "Ar": "Art",
    "Mu": "Music",
    "PE": "Physical Education",
    "RE": "Religious Education",
    "Cp": "Computing",
    "DT": "Design and Technology",
    "Dr": "Drama",
    "Bs": "Business",
    "Md": "Media Studies",
    "Fd": "Food and Nutrition",
    "Ps": "Psychology",
    "So": "Sociology",
    "Ec": "Economics",
    "FM": "Further Mathematics",
    "Pl": "Politics",
    "EL": "English Literature",
    "Pn": "Phonics",
}
SUBJECT_CODES = {name: code for code, name in SUBJECTS.items()}
KS3_ALL = ("En", "Ma", "Sc", "Hi", "Gg", "Ar", "Mu", "PE", "RE", "Cp", "DT")
KS4_CORE = ("En", "Ma", "PE", "RE")
KS4_OPTIONS: dict[str, float] = {
    "Hi": 1.0,
    "Gg": 1.0,
    "Fr": 0.6,
    "Sp": 0.6,
    "Ar": 0.7,
    "Mu": 0.3,
    "Cp": 0.6,
    "DT": 0.5,
    "Dr": 0.4,
    "Bs": 0.6,
    "Md": 0.4,
    "Fd": 0.4,
}
KS5_SUBJECTS: dict[str, float] = {
    "Ma": 1.0,
    "Bi": 0.8,
    "Ch": 0.7,
    "Ph": 0.5,
    "Ps": 0.8,
    "So": 0.5,
    "EL": 0.5,
    "Hi": 0.5,
    "Gg": 0.4,
    "Ec": 0.5,
    "Bs": 0.5,
    "Ar": 0.3,
    "Cp": 0.3,
    "FM": 0.15,
    "Pl": 0.3,
    "Md": 0.3,
    "Fr": 0.1,
    "Sp": 0.1,
    "Dr": 0.2,
    "PE": 0.2,
}
SETTED = frozenset({"En", "Ma", "Sc", "Fr", "Sp", "Bi", "Ch", "Ph"})
"""Subjects taught in ability sets; the rest are mixed-ability."""


@dataclass
class TeachingPlan:
    """Teaching groups (parallel lists) and pupil memberships as (group index, pupil row) arrays."""

    names: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    year_groups: list[str | None] = field(default_factory=list)
    member_group: list[np.ndarray] = field(default_factory=list)
    member_pupil: list[np.ndarray] = field(default_factory=list)

    def add_block(self, pupils: np.ndarray, score: np.ndarray, n_sets: int) -> None:
        """Split ``pupils`` into ``n_sets`` groups by ``score`` order; ``add_group`` must then be
        called ``n_sets`` times to describe them."""
        order = np.argsort(score, kind="stable")
        set_of = np.empty(len(pupils), dtype=np.int64)
        set_of[order] = np.arange(len(pupils)) * n_sets // max(len(pupils), 1)
        first = len(self.names)
        self.member_group.append(first + set_of)
        self.member_pupil.append(pupils)

    def add_group(self, name: str, code: str, subject: str, year_group: str | None) -> None:
        self.names.append(name)
        self.codes.append(code)
        self.subjects.append(subject)
        self.year_groups.append(year_group)

    def memberships(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.member_group:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        return np.concatenate(self.member_group), np.concatenate(self.member_pupil)


def _n_sets(ctx: SchoolContext, takers: int, size: tuple[float, float]) -> int:
    return max(1, round(takers / ctx.rng.uniform(*size))) if takers else 0


def _add_subject(
    plan: TeachingPlan,
    ctx: SchoolContext,
    year: str,
    code: str,
    pupils: np.ndarray,
    ability: np.ndarray,
    naming: str,
    size: tuple[float, float] = (23.0, 28.0),
) -> None:
    """One subject in one year: sets by ability (setted subjects) or random (mixed ability)."""
    n_sets = _n_sets(ctx, len(pupils), size)
    if not n_sets:
        return
    noise = ctx.rng.random(len(pupils))
    score = ability[pupils] + 0.3 * noise if code in SETTED else noise
    plan.add_block(pupils, score, n_sets)
    x_sets = (n_sets + 1) // 2
    for k in range(n_sets):
        if naming == "band":
            prefix, number = (f"{year}x", k + 1) if k < x_sets else (f"{year}y", k - x_sets + 1)
        elif naming == "sixth":
            prefix, number = year, k + 1
        else:
            prefix, number = f"{year}{naming}", k + 1
        name = f"{prefix}/{code}{number}"
        plan.add_group(name, name.replace("/", ""), SUBJECTS[code], year)


def _choose(ctx: SchoolContext, n: int, weights: dict[str, float], k: np.ndarray) -> list[np.ndarray]:
    """Per subject, the pupils (0..n-1) choosing it: weighted sampling without replacement, k per pupil
    (Gumbel top-k, so one vectorised sort for the whole year group)."""
    codes = list(weights)
    keys = np.log(np.array([weights[c] for c in codes])) - np.log(-np.log(ctx.rng.random((n, len(codes)))))
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    chosen = ranks < k[:, None]
    return [np.flatnonzero(chosen[:, j]) for j in range(len(codes))]


def secondary_plan(ctx: SchoolContext, years: np.ndarray, on_roll: np.ndarray) -> TeachingPlan:
    """Teaching groups for Years 7-13 of the pupils at row indices ``on_roll``."""
    plan, rng = TeachingPlan(), ctx.rng
    ability = rng.random(len(years))
    for year in ctx.profile.year_codes:
        pupils = on_roll[years[on_roll] == year]
        nc = int(year)
        if nc <= 9:
            for code in KS3_ALL:
                _add_subject(plan, ctx, year, code, pupils, ability, "band")
            french = rng.random(len(pupils)) < 0.5
            _add_subject(plan, ctx, year, "Fr", pupils[french], ability, "band")
            _add_subject(plan, ctx, year, "Sp", pupils[~french], ability, "band")
        elif nc <= 11:
            for code in KS4_CORE:
                _add_subject(plan, ctx, year, code, pupils, ability, "band")
            triple = rng.random(len(pupils)) < 0.25
            _add_subject(plan, ctx, year, "Sc", pupils[~triple], ability, "band")
            for code in ("Bi", "Ch", "Ph"):
                _add_subject(plan, ctx, year, code, pupils[triple], ability, "band")
            takers = _choose(ctx, len(pupils), KS4_OPTIONS, np.full(len(pupils), 4))
            for j, code in enumerate(KS4_OPTIONS):
                _add_subject(plan, ctx, year, code, pupils[takers[j]], ability, "ABCD"[j % 4])
        else:
            count = np.where(rng.random(len(pupils)) < 0.2, 4, 3)
            takers = _choose(ctx, len(pupils), KS5_SUBJECTS, count)
            for j, code in enumerate(KS5_SUBJECTS):
                _add_subject(plan, ctx, year, code, pupils[takers[j]], ability, "sixth", (8.0, 14.0))
    return plan


def primary_plan(ctx: SchoolContext, years: np.ndarray, on_roll: np.ndarray) -> TeachingPlan:
    """Ability groups for phonics and maths; a mixed-year block (``Y3/4``) gets no year group."""
    plan = TeachingPlan()
    if ctx.rng.random() < ctx.profile.no_teaching_groups_probability:
        return plan
    ability = ctx.rng.random(len(years))
    for block in ctx.profile.primary_sets:
        pupils = on_roll[np.isin(years[on_roll], block.years)]
        if not len(pupils):
            continue
        plan.add_block(pupils, ability[pupils] + 0.3 * ctx.rng.random(len(pupils)), block.groups)
        _name_primary_block(plan, block)
    return plan


def _name_primary_block(plan: TeachingPlan, block: PrimarySet) -> None:
    label = block.years[0] if len(block.years) == 1 else "/".join(block.years)
    label = label if label == "R" else f"Y{label}"
    code = SUBJECT_CODES[block.subject]
    short = "Maths Set" if block.subject == "Mathematics" else block.subject
    for k in range(1, block.groups + 1):
        plan.add_group(
            f"{label} {short} {k}",
            f"{''.join(block.years)}/{code}{k}",
            block.subject,
            block.years[0] if len(block.years) == 1 else None,
        )
