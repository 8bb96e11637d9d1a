"""Normalising names and identifiers before comparison (uk-data-rules.md §7-8).

Names fold the way usernames do (``mis_sync.usernames.fold_name``: explicit map for ø ł đ þ ß æ œ,
NFKD, anyascii, lower-case, apostrophes and full stops removed) but keep word boundaries: hyphens,
spaces and slashes become one space, so ``Smith-Jones`` and ``Smith Jones`` are equal and a user
``Smith`` can be recognised as part of ``Smith-Jones``.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

from mis_sync.usernames import fold_name

_WORD_BREAK = re.compile(r"[\s\-‐‑‒–—_/]+")


@lru_cache(maxsize=131072)
def normalise_name(name: str) -> str:
    """``Seán Ó Súilleabháin`` → ``sean o suilleabhain``; ``O’Brien-Smith`` → ``obrien smith``."""
    words = (fold_name(word) for word in _WORD_BREAK.split(name))
    return " ".join(word for word in words if word)


def names(series: pd.Series) -> np.ndarray:
    """Normalised names as an object array, ``""`` for missing (never NA: the scorers need strings)."""
    values = series.astype("string").fillna("").to_numpy(dtype=object)
    return np.array([normalise_name(v) if v else "" for v in values], dtype=object)


def compact(values: np.ndarray) -> np.ndarray:
    """Names without spaces: ``de la cruz`` and ``delacruz`` compare equal in this form."""
    return np.array([v.replace(" ", "") for v in values], dtype=object)


def upns(series: pd.Series) -> np.ndarray:
    values = series.astype("string").str.strip().str.upper().fillna("")
    return values.to_numpy(dtype=object)


def emails(series: pd.Series) -> np.ndarray:
    values = series.astype("string").str.strip().str.casefold().fillna("")
    return values.to_numpy(dtype=object)


def ids(series: pd.Series) -> np.ndarray:
    return series.astype("string").str.strip().fillna("").to_numpy(dtype=object)


NO_DATE = -(2**62)
"""Stands for a missing date in ``days`` output; callers test presence before equality."""


def days(series: pd.Series) -> np.ndarray:
    """Dates as whole days since 1970 (int64), ``NO_DATE`` where missing."""
    values = pd.to_datetime(series, errors="coerce").astype("datetime64[s]")
    out = (values.dt.normalize() - pd.Timestamp("1970-01-01")).dt.days
    return out.astype("Float64").fillna(NO_DATE).astype("int64").to_numpy()


def initials(values: np.ndarray) -> np.ndarray:
    return np.array([v[:1] for v in values], dtype=object)
