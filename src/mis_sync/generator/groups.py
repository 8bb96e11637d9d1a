"""Year, registration and teaching groups, their teachers, and the memberships table.

Why memberships are assembled from index arrays: the trust has ~400k pupil memberships, so every
membership is an integer pair (group index, person row) until one final vectorised lookup of ids.
Every on-roll pupil is a member of their year group and registration group; pre-admissions and
leavers are in no group (``sizing.md`` 5.1). Registration groups have one tutor (some two); teaching
groups usually one teacher, some two, a few none (``sizing.md`` 3 and 5.6).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from mis_sync.generator.context import SchoolContext
from mis_sync.generator.curriculum import SUBJECT_CODES, TeachingPlan, primary_plan, secondary_plan
from mis_sync.generator.pupils import ON_ROLL

CLASS_NAMES = (
    "Oak",
    "Ash",
    "Beech",
    "Birch",
    "Cedar",
    "Elm",
    "Hazel",
    "Holly",
    "Larch",
    "Maple",
    "Pine",
    "Rowan",
    "Willow",
    "Yew",
    "Alder",
    "Cherry",
    "Hawthorn",
    "Juniper",
    "Laurel",
    "Linden",
    "Poplar",
    "Sycamore",
    "Spruce",
    "Walnut",
    "Magnolia",
    "Olive",
    "Redwood",
    "Fir",
    "Acorn",
    "Sequoia",
)
"""Primary class names (trees); each has a distinct 3-letter prefix for the class code."""
_FORM_LETTERS = "ABCDEFGHJKLMN"


def _year_label(year: str) -> str:
    return {"N1": "Nursery 1", "N2": "Nursery 2", "R": "Reception"}.get(year, f"Year {year}")


class _Groups:
    """Parallel lists of group attributes, in id order."""

    def __init__(self) -> None:
        self.kind: list[str] = []
        self.name: list[str] = []
        self.code: list[str] = []
        self.subject: list[str | None] = []
        self.year_group: list[str | None] = []

    def add(self, kind: str, name: str, code: str, subject: str | None, year: str | None) -> int:
        self.kind.append(kind)
        self.name.append(name)
        self.code.append(code)
        self.subject.append(subject)
        self.year_group.append(year)
        return len(self.kind) - 1


def _assign_forms(
    ctx: SchoolContext, years: np.ndarray, on_roll: np.ndarray, forms: dict[str, int]
) -> np.ndarray:
    """Form number (0..forms-1) of each on-roll pupil within their year: random, balanced."""
    form = np.zeros(len(years), dtype=np.int64)
    for year, count in forms.items():
        members = on_roll[years[on_roll] == year]
        order = ctx.rng.permutation(len(members))
        form[members[order]] = np.arange(len(members)) * count // max(len(members), 1)
    return form


def _teacher_rows(
    ctx: SchoolContext, group_subjects: list[str], teachers: np.ndarray
) -> tuple[list[int], list[int]]:
    """(teaching group index, staff row) pairs: departments sized by demand, least-loaded first."""
    n_groups, n_teachers = len(group_subjects), len(teachers)
    if not n_groups or not n_teachers:
        return [], []
    demand = Counter(group_subjects)
    subjects = sorted(demand, key=lambda s: (-demand[s], s))
    if ctx.profile.phase == "secondary" and n_teachers >= len(subjects):
        share = np.array([demand[s] for s in subjects], dtype=float) * n_teachers / n_groups
        alloc = np.maximum(np.floor(share).astype(np.int64), 1)
        for j in np.argsort(-(share - np.floor(share)), kind="stable"):
            if alloc.sum() >= n_teachers:
                break
            alloc[j] += 1
        while alloc.sum() > n_teachers:
            alloc[int(np.argmax(alloc))] -= 1
        dept_of = np.repeat(np.arange(len(subjects)), alloc)
        department = {s: np.flatnonzero(dept_of == j) for j, s in enumerate(subjects)}
    else:
        department = {s: np.arange(n_teachers) for s in subjects}
    everyone = np.arange(n_teachers)
    load = np.zeros(n_teachers, dtype=np.int64)
    none = set(ctx.pick(np.arange(n_groups), max(1, n_groups // 100)).tolist())
    rest = np.array([g for g in range(n_groups) if g not in none], dtype=np.int64)
    two = set(ctx.pick(rest, max(1, round(n_groups * 0.06))).tolist())
    out_group: list[int] = []
    out_teacher: list[int] = []
    for g, subject in enumerate(group_subjects):
        if g in none:
            continue
        candidates = department[subject] if len(department[subject]) else everyone
        wanted = 2 if g in two else 1
        if len(candidates) < wanted:
            candidates = everyone
        chosen = candidates[np.argsort(load[candidates], kind="stable")[:wanted]]
        load[chosen] += 1
        out_group += [g] * len(chosen)
        out_teacher += teachers[chosen].tolist()
    return out_group, out_teacher


def build_groups(
    ctx: SchoolContext, roll: pd.DataFrame, forms: dict[str, int], staff: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Return (groups, memberships, registration group id per roll row) as raw frames to coerce."""
    rng, prof = ctx.rng, ctx.profile
    years = roll["year"].to_numpy()
    on_roll = np.flatnonzero(roll["status"].to_numpy() == ON_ROLL)
    current = (staff["enrolment_status"] == ON_ROLL).to_numpy()
    teachers = rng.permutation(np.flatnonzero(current & staff["is_teaching"].to_numpy(dtype=bool)))
    codes = staff["staff_code"].to_numpy()
    groups = _Groups()
    year_index = {y: groups.add("year", _year_label(y), f"Y{y}", None, y) for y in prof.year_codes}

    # Registration groups and their tutors (a tenth have two).
    reg_years = [y for y in prof.year_codes for _ in range(forms[y])]
    n_reg = len(reg_years)
    tutors = [teachers[i % len(teachers)] for i in range(n_reg)] if len(teachers) else []
    second: set[int] = set()
    if len(teachers) > 1:
        second = set(ctx.pick(np.arange(n_reg), max(1, round(n_reg * 0.1))).tolist())
    scheme = "letters" if prof.phase == "primary" or rng.random() < 0.6 else "tutor"
    trees = rng.permutation(np.array(CLASS_NAMES, dtype=object))
    reg_index: dict[tuple[str, int], int] = {}
    teacher_group: list[int] = []
    teacher_staff: list[int] = []
    for i, year in enumerate(reg_years):
        form = i - reg_years.index(year)
        if prof.phase == "primary":
            tree = str(trees[i % len(trees)])
            name, code = f"{year} {tree}", f"{year}{tree[:3].upper()}"
        elif scheme == "tutor" and len(teachers) >= n_reg and codes[tutors[i]] and int(year) <= 11:
            name = code = f"{year}/{codes[tutors[i]]}"
        else:
            name = code = f"{year}{_FORM_LETTERS[form]}"
        reg_index[(year, form)] = g = groups.add("registration", name, code, None, year)
        if tutors:
            teacher_group.append(g)
            teacher_staff.append(tutors[i])
            if i in second:
                other = teachers[(i + n_reg) % len(teachers)]
                teacher_group.append(g)
                teacher_staff.append(other if other != tutors[i] else teachers[(i + 1) % len(teachers)])
    if prof.phase == "secondary" and len(teachers):
        for y, head in zip(prof.year_codes, ctx.pick(teachers, len(prof.year_codes)), strict=False):
            teacher_group.append(year_index[y])
            teacher_staff.append(head)

    form = _assign_forms(ctx, years, on_roll, forms)
    pupil_year_group = np.array([year_index[years[i]] for i in on_roll], dtype=np.int64)
    pupil_reg_group = np.array([reg_index[(years[i], form[i])] for i in on_roll], dtype=np.int64)

    plan: TeachingPlan = (secondary_plan if prof.phase == "secondary" else primary_plan)(ctx, years, on_roll)
    offset = len(groups.kind)
    for attributes in zip(plan.names, plan.codes, plan.subjects, plan.year_groups, strict=True):
        groups.add("teaching", *attributes)
    t_groups, t_staff = _teacher_rows(ctx, [SUBJECT_CODES[s] for s in plan.subjects], teachers)
    teacher_group += [offset + g for g in t_groups]
    teacher_staff += t_staff
    plan_group, plan_pupil = plan.memberships()

    group_ids = ctx.ids("G", len(groups.kind), 5)
    pupil_ids = roll["mis_id"].to_numpy()
    staff_ids = staff["mis_id"].to_numpy()
    member_group = np.concatenate(
        [np.array(teacher_group, dtype=np.int64), pupil_year_group, pupil_reg_group, offset + plan_group]
    )
    person = np.concatenate(
        [
            staff_ids[np.array(teacher_staff, dtype=np.int64)],
            pupil_ids[on_roll],
            pupil_ids[on_roll],
            pupil_ids[plan_pupil],
        ]
    )
    is_pupil = np.arange(len(member_group)) >= len(teacher_group)
    order = np.lexsort((is_pupil, member_group))
    memberships = pd.DataFrame(
        {
            "group_id": group_ids[member_group[order]],
            "person_id": person[order],
            "role": np.where(is_pupil[order], "pupil", "teacher"),
        }
    )
    frame = pd.DataFrame(
        {
            "mis_id": group_ids,
            "kind": groups.kind,
            "name": groups.name,
            "code": groups.code,
            "subject": groups.subject,
            "year_group": groups.year_group,
            "academic_year": ctx.academic_year,
        }
    )
    registration = np.full(len(roll), None, dtype=object)
    registration[on_roll] = group_ids[pupil_reg_group]
    return frame, memberships, registration
