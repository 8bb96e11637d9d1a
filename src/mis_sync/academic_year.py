"""The academic year (session) of a date, per UK country: the one place every module asks.

Why one module: the academic year is part of a group's key (``groups.mis_id`` + ``academic_year`` in the
directory, the externalId / alias on targets), so two copies that disagree about August made the same
class two different groups depending on which connector or step labelled it.

Rules (``uk-data-rules.md`` §4.3 and §5):

- England, Wales and Northern Ireland: the school year starts on **1 September** (the DfE's cohort
  cut-off; Northern Ireland's school year also runs September to August).
- Scotland: the session starts in **August** (the first day of the August term, which each council sets
  in mid-August). The session is taken to begin on 1 August, so a label rolls over during the
  holiday, never during term, whichever day a council picks.

A label is ``2025/26`` (``model.ACADEMIC_YEAR_PATTERN``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Final, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # pandas and numpy load only in the vectorised functions: config imports this module
    import numpy as np
    import pandas as pd

UK: Final = ZoneInfo("Europe/London")

Country = Literal["england", "wales", "scotland", "northern_ireland"]
COUNTRIES: Final[tuple[Country, ...]] = ("england", "wales", "scotland", "northern_ireland")

SESSION_START_MONTH: Final[dict[str, int]] = {"england": 9, "wales": 9, "northern_ireland": 9, "scotland": 8}
"""Country -> the month whose 1st day begins the academic year."""


def _start_month(country: str) -> int:
    try:
        return SESSION_START_MONTH[country]
    except KeyError:
        raise ValueError(f"unknown country {country!r}; expected one of {', '.join(COUNTRIES)}") from None


def academic_year_start(day: dt.date, country: str = "england") -> int:
    """Calendar year in which the academic year holding ``day`` began."""
    return day.year if day.month >= _start_month(country) else day.year - 1


def academic_year_label(start_year: int) -> str:
    """``2025`` -> ``"2025/26"``."""
    return f"{start_year}/{(start_year + 1) % 100:02d}"


def academic_year(day: dt.date, country: str = "england") -> str:
    """The label of the academic year holding ``day``; a timestamp with a time zone (a snapshot, a
    ``pd.Timestamp``) is taken on its UK calendar date."""
    if isinstance(day, dt.datetime):
        day = (day.astimezone(UK) if day.tzinfo is not None else day).date()
    return academic_year_label(academic_year_start(day, country))


def academic_year_starts(dates: pd.Series, country: str = "england") -> pd.Series:
    """Vectorised ``academic_year_start`` (nullable ``Int64``; missing dates stay NA)."""
    import pandas as pd

    when = pd.to_datetime(dates, errors="coerce")
    before = (when.dt.month < _start_month(country)).astype("Int64")
    return (when.dt.year.astype("Int64") - before).astype("Int64")


def academic_year_starts_np(dates: np.ndarray, country: str = "england") -> np.ndarray:
    """``academic_year_start`` over a ``datetime64`` array (no missing values), as integers."""
    import numpy as np

    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return years - (months < _start_month(country))


def academic_year_labels(starts: pd.Series) -> pd.Series:
    """Vectorised ``academic_year_label`` (NA stays NA)."""
    first = starts.astype("Int64")
    return (first.astype("string") + "/" + ((first + 1) % 100).astype("string").str.zfill(2)).astype("string")


def academic_years_of_terms(start: pd.Series, end: pd.Series, country: str = "england") -> pd.Series:
    """The label of the academic year holding the middle of each term (``YYYY-MM-DD`` text; a missing
    end uses the start, a missing start the end). The middle, not the start, so a term a school dates
    from the last days of the summer holiday still lands in the year it is taught in."""
    import pandas as pd

    start_d = pd.to_datetime(start, format="%Y-%m-%d", errors="coerce")
    end_d = pd.to_datetime(end, format="%Y-%m-%d", errors="coerce")
    middle = (start_d + (end_d - start_d) / 2).fillna(start_d).fillna(end_d)
    return academic_year_labels(academic_year_starts(middle, country))


__all__ = [
    "COUNTRIES",
    "SESSION_START_MONTH",
    "Country",
    "academic_year",
    "academic_year_label",
    "academic_year_labels",
    "academic_year_start",
    "academic_year_starts",
    "academic_year_starts_np",
    "academic_years_of_terms",
]
