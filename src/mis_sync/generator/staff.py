"""Staff: teachers and support staff sized by the DfE ratios in ``sizing.md`` section 3.

Why leavers and future starters are inside the profile's staff range: the range is for staff *records*
in an extract, which include a few previous and future staff (``sizing.md`` 5.4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mis_sync.generator.context import DAY, SchoolContext, day
from mis_sync.generator.names import NICKNAMES, NamePool, slugs
from mis_sync.generator.pupils import LEAVER, ON_ROLL, PRE_ADMISSION

STAFF_DOMAIN = "example.sch.uk"


def staff_count(ctx: SchoolContext, on_roll_pupils: int) -> tuple[int, int]:
    """(teachers, support staff) from pupils per teacher, headcount ~10 % over FTE, clamped to range."""
    prof, rng = ctx.profile, ctx.rng
    teachers = round(on_roll_pupils / prof.pupils_per_teacher * rng.uniform(1.05, 1.15))
    support = round(teachers * rng.uniform(*prof.support_per_teacher))
    low, high = prof.staff_range
    total = min(max(teachers + support, low), high)
    return teachers, total - teachers


def _titles(rng: np.random.Generator, gender: np.ndarray) -> np.ndarray:
    n = len(gender)
    female = rng.choice(np.array(["Mrs", "Ms", "Miss", "Dr"], dtype=object), n, p=[0.45, 0.3, 0.2, 0.05])
    male = rng.choice(np.array(["Mr", "Dr"], dtype=object), n, p=[0.93, 0.07])
    titles = np.where(gender == "F", female, male)
    titles[rng.random(n) < 0.01] = "Mx"
    return titles


def staff_codes(first: np.ndarray, last: np.ndarray, needs_code: np.ndarray) -> np.ndarray:
    """Timetable codes, mostly three upper-case initials (``JBR``), unique in the school.

    Collisions fall back to other surname letters, then mixed case (``JBr``), then a digit (``JB2``),
    which is what schools do by hand (uk-data-rules 6.3).
    """
    used: set[str] = set()
    codes = np.full(len(first), None, dtype=object)
    first_slugs, last_slugs = slugs(first), slugs(last)
    for i in np.flatnonzero(needs_code):
        f, s = (first_slugs[i] or "x")[0].upper(), (last_slugs[i] or "xx").upper()
        candidates = [f + s[0] + c for c in s[1:]]
        candidates += [f + s[0] + c.lower() for c in s[1:]]
        candidates += [f + s[0] + str(k) for k in range(2, 100)]
        code = next(c for c in candidates if c not in used)
        used.add(code)
        codes[i] = code
    return codes


def build_staff(ctx: SchoolContext, on_roll_pupils: int, pool: NamePool) -> pd.DataFrame:
    """Staff rows, rows sorted by start date (ids follow), with internal ``gender`` for later steps."""
    rng, today = ctx.rng, ctx.today
    teachers, support = staff_count(ctx, on_roll_pupils)
    n = teachers + support
    teaching = np.arange(n) < teachers
    female_share = np.where(teaching, 0.78 if ctx.profile.phase == "primary" else 0.65, 0.82)
    gender = np.where(rng.random(n) < female_share, "F", "M").astype(object)
    first = pool.adult_first_names(gender)
    last = pool.surnames(n, extra_share=0.15)
    preferred_first = first.copy()
    for i in np.flatnonzero(rng.random(n) < 0.08):
        preferred_first[i] = NICKNAMES.get(first[i], first[i])

    status = np.full(n, ON_ROLL, dtype=object)
    n_leavers = max(1, round(n * 0.03))
    n_future = max(1, round(n * 0.01)) if n >= 50 else 0
    moved = ctx.pick(np.arange(n), n_leavers + n_future)
    status[moved[:n_leavers]] = LEAVER
    status[moved[n_leavers:]] = PRE_ADMISSION

    dob = ctx.random_days(today - 365 * 65 * DAY, np.full(n, 365 * 43))
    adult_years = ((today - dob) // DAY) // 365 - 22
    start_years = ctx.year_start - np.minimum(rng.geometric(0.12, n) - 1, adult_years)
    starts = np.array([day(int(y), 9, 1) for y in start_years], dtype="datetime64[D]")
    mid_year = rng.random(n) < 0.25
    starts[mid_year] = ctx.random_days(starts[mid_year], 300)
    starts = np.minimum(starts, today)
    future = status == PRE_ADMISSION
    starts[future] = ctx.random_days(today + 7 * DAY, np.full(int(future.sum()), 54))
    leaving = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    gone = status == LEAVER
    starts[gone] = np.minimum(starts[gone], today - 90 * DAY)
    earliest = np.maximum(starts[gone] + DAY, today - 200 * DAY)
    leaving[gone] = ctx.random_days(earliest, (today - earliest) // DAY)

    needs_code = np.ones(n, dtype=bool)
    needs_code[ctx.pick(np.flatnonzero(~teaching), max(1, round(support * 0.03)))] = False
    emails = pd.Series(slugs(preferred_first)).str[:1] + pd.Series(slugs(last))
    counter = emails.groupby(emails).cumcount()
    emails = emails.where(counter == 0, emails + (counter + 1).astype(str)) + "@" + STAFF_DOMAIN
    emails = emails.to_numpy(dtype=object)
    emails[rng.random(n) < 0.015] = None

    frame = pd.DataFrame(
        {
            "title": _titles(rng, gender),
            "legal_first_name": first,
            "legal_last_name": last,
            "preferred_first_name": preferred_first,
            "preferred_last_name": last,
            "date_of_birth": dob,
            "staff_code": staff_codes(first, last, needs_code),
            "is_teaching": teaching,
            "email": emails,
            "start_date": starts,
            "leaving_date": leaving,
            "enrolment_status": status,
            "gender": gender,
        }
    )
    frame = frame.sort_values("start_date", kind="stable").reset_index(drop=True)
    frame.insert(0, "mis_id", ctx.ids("S", n, 5))
    return frame
