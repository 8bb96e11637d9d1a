"""Per-school generation state: the seeded random sources, the school's identity and its calendar.

Why one object: every generation step draws from the same seeded sources in a fixed order, which is
what makes ``(profile, seed, as_of)`` reproduce identical frames. Dates are numpy ``datetime64[D]``
arrays so thousands of pupils get dates in one operation.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import numpy as np
from faker import Faker

from mis_sync.academic_year import academic_year_label, academic_year_start
from mis_sync.generator.profiles import Profile
from mis_sync.identifiers import VALID_LA_CODES

DAY = np.timedelta64(1, "D")


def day(year: int, month: int, day_of_month: int) -> np.datetime64:
    return np.datetime64(dt.date(year, month, day_of_month), "D")


@dataclass
class SchoolContext:
    """Seeded sources and fixed facts for generating one school."""

    profile: Profile
    seed: int
    as_of: dt.date
    establishment_id: str
    laestab: str
    rnd: random.Random = field(init=False)
    rng: np.random.Generator = field(init=False)
    fake: Faker = field(init=False)

    def __post_init__(self) -> None:
        if len(self.laestab) != 7 or not self.laestab.isascii() or not self.laestab.isdigit():
            raise ValueError("laestab must be 7 digits (3-digit LA code + 4-digit establishment number)")
        if self.la not in VALID_LA_CODES:
            raise ValueError("laestab does not start with a census LA code")
        self.rnd = random.Random(self.seed)
        self.rng = np.random.default_rng(self.rnd.getrandbits(64))
        self.fake = Faker("en_GB")
        self.fake.seed_instance(self.rnd.getrandbits(64))

    @property
    def la(self) -> str:
        return self.laestab[:3]

    @property
    def estab(self) -> str:
        return self.laestab[3:]

    @property
    def year_start(self) -> int:
        return academic_year_start(self.as_of)

    @property
    def academic_year(self) -> str:
        return academic_year_label(self.year_start)

    @property
    def today(self) -> np.datetime64:
        return np.datetime64(self.as_of, "D")

    def ids(self, prefix: str, n: int, width: int) -> np.ndarray:
        """Opaque, ascending, gapped MIS ids (``P004711``): realistic, distinct within the entity."""
        start = int(self.rng.integers(1, 10 ** (width - 1)))
        numbers = start + np.cumsum(self.rng.integers(1, 4, size=n))
        if n and numbers[-1] >= 10**width:
            raise ValueError("too many rows for the id width")
        return np.array([f"{prefix}{k:0{width}d}" for k in numbers], dtype=object)

    def random_days(self, start: np.ndarray | np.datetime64, span_days: np.ndarray | int) -> np.ndarray:
        """Uniform dates in ``[start, start + span_days)`` (per element when arrays)."""
        span = np.maximum(np.asarray(span_days, dtype=np.int64), 1)
        size = np.broadcast(np.asarray(start), span).shape
        offsets = (self.rng.random(size) * span).astype(np.int64)
        return np.asarray(start, dtype="datetime64[D]") + offsets * DAY

    def dob_for_nc(self, nc: np.ndarray) -> np.ndarray:
        """Dates of birth inside the cohort of NC year ``nc`` for this academic year (rule 4.3)."""
        unique, inverse = np.unique(self.year_start - np.asarray(nc, dtype=np.int64) - 5, return_inverse=True)
        starts = np.array([day(int(y), 9, 1) for y in unique], dtype="datetime64[D]")[inverse]
        ends = np.array([day(int(y) + 1, 9, 1) for y in unique], dtype="datetime64[D]")[inverse]
        return self.random_days(starts, (ends - starts) // DAY)

    def quota(self, values: list[int], probs: list[float], n: int) -> np.ndarray:
        """``n`` values in the given proportions (remainders assigned at random), shuffled.

        Why not i.i.d. draws: small schools would swing by +-2.5 standard deviations across seeds;
        quotas keep totals (contacts per pupil, family sizes) near the profile's centre for any seed.
        """
        p = np.asarray(probs, dtype=float)
        counts = np.floor(p * n).astype(np.int64)
        short = n - int(counts.sum())
        if short:
            extra = self.rng.choice(len(values), size=short, replace=False, p=p)
            counts[extra] += 1
        return self.rng.permutation(np.repeat(np.asarray(values), counts))

    def pick(self, candidates: np.ndarray, k: int) -> np.ndarray:
        """Up to ``k`` distinct elements of ``candidates`` (fewer if there are not enough)."""
        k = min(k, len(candidates))
        return self.rng.choice(candidates, size=k, replace=False) if k else candidates[:0]
