"""Year groups and dates of birth: which codes are known, and which dates are plausible for them.

England and Wales (``uk-data-rules.md`` §4.3): NC years N1, N2, R, 1-14 (plus X, E1, E2 without a
cohort); academic years start on 1 September. Scotland (§5): stages P1-P7 and S1-S6; the session
starts in August and the birth cohort runs from 1 March. Northern Ireland has no rule in the
reference: its pupils get England's codes and only the age checks.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import pandas as pd

from mis_sync.academic_year import COUNTRIES, Country, academic_year_start, academic_year_starts

ENGLAND_NC_INDEX: Final[dict[str, int]] = {"N1": -2, "N2": -1, "R": 0, **{str(n): n for n in range(1, 15)}}
"""NC year -> n in the DOB rule (§4.3): born 1 Sep (Y-n-5) to 31 Aug (Y-n-4) for academic year Y."""
ENGLAND_OTHER_CODES: Final = frozenset({"X", "E1", "E2"})
"""Known codes with no cohort: NC year not followed, early-years E1/E2 (§4.1)."""
SCOTLAND_STAGE_INDEX: Final[dict[str, int]] = {
    **{f"P{k}": k - 1 for k in range(1, 8)},
    **{f"S{k}": k + 6 for k in range(1, 7)},
}
"""Stage -> k in the Scottish DOB rule (§5): born 1 Mar (Y-k-5) to end Feb (Y-k-4), session from August Y."""

YEARS_OUT_FLAGGED: Final = 2
"""DOB cohort this many academic years (or more) away from the year group is flagged; one year out is
common (summer-born deferral, Scottish deferred entry, taught out of year group) and is not (§4.3, §5)."""
MIN_AGE, MAX_AGE = 2, 25
"""Pupils younger than 2 (except N1/E1/E2) or older than 25 on the snapshot date, or born after it, are
flagged whatever their year group."""
_UNDER_TWO_ALLOWED: Final = frozenset({"N1", "E1", "E2"})


def known_year_groups(country: Country) -> frozenset[str]:
    """Year-group codes a pupil may carry: P1-P7/S1-S6 in Scotland, N1…14, R, X, E1, E2 elsewhere."""
    if country == "scotland":
        return frozenset(SCOTLAND_STAGE_INDEX)
    return frozenset(ENGLAND_NC_INDEX) | ENGLAND_OTHER_CODES


def dob_out_of_range(
    dob: pd.Series, year_group: pd.Series, *, country: Country, as_of: dt.date, year_start: int | None = None
) -> pd.Series:
    """Per row, True when a date of birth is implausible for the pupil's year group.

    Flags (all a warning): the birth cohort is ``YEARS_OUT_FLAGGED`` or more academic years away from
    the one the year group expects (England/Wales: 1 September cut-off, N1…14; Scotland: 1 March
    cut-off, P1-P7 and S1-S6; Northern Ireland: no cohort rule, none is in the reference); the date is
    after ``as_of``; the pupil is under 2 (except N1, E1, E2) or over 25 on ``as_of``. Missing dates,
    and cohort checks for unknown or cohort-less codes (X, E1, E2), are not flagged.
    """
    year_start = academic_year_start(as_of, country) if year_start is None else year_start
    dates = pd.to_datetime(dob)
    present = dates.notna().to_numpy()
    years = dates.dt.year.to_numpy(dtype="float64", na_value=np.nan)
    months = dates.dt.month.to_numpy(dtype="float64", na_value=np.nan)
    days = dates.dt.day.to_numpy(dtype="float64", na_value=np.nan)
    codes = year_group.astype("string")

    if country == "scotland":
        index = codes.map(SCOTLAND_STAGE_INDEX, na_action="ignore")
        cohort = years - (months < 3)  # the 1 March cohort cut-off (§5), not the August session start
    elif country == "northern_ireland":
        index = pd.Series(np.nan, index=codes.index)
        cohort = years
    else:
        index = codes.map(ENGLAND_NC_INDEX, na_action="ignore")
        # born in academic year Y: the cohort cut-off is the school year's start (§4.3)
        cohort = academic_year_starts(dates, "england").to_numpy(dtype="float64", na_value=np.nan)
    expected = year_start - index.to_numpy(dtype="float64", na_value=np.nan) - 5
    with np.errstate(invalid="ignore"):
        out_of_cohort = np.abs(cohort - expected) >= YEARS_OUT_FLAGGED  # NaN compares False

    birthday_to_come = (months > as_of.month) | ((months == as_of.month) & (days > as_of.day))
    age = as_of.year - years - birthday_to_come
    future = dates.to_numpy() > np.datetime64(as_of, "s")
    under_two_allowed = codes.isin(_UNDER_TWO_ALLOWED).fillna(False).to_numpy(dtype=bool)
    with np.errstate(invalid="ignore"):
        implausible_age = ((age < MIN_AGE) & ~under_two_allowed) | (age > MAX_AGE)
    flagged = present & (out_of_cohort | future | implausible_age)
    return pd.Series(flagged, index=dob.index, dtype=bool)


__all__ = [
    "COUNTRIES",
    "Country",
    "academic_year_start",
    "dob_out_of_range",
    "known_year_groups",
]
