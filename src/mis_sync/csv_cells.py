"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV injection").

Every CSV the project writes for people to open (the data manager's ``findings.csv``, the password
export) passes its cells through here: MIS values are typed by many hands, and a cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by Excel and LibreOffice.
Such a cell gets a leading apostrophe, which spreadsheets show as text and do not evaluate.

Not for files machines read back (the generator's synthetic MIS exports, in-memory CSV round trips):
there the apostrophe would change the data, e.g. a phone number ``+44…``.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """One cell as text, with an apostrophe before a formula start; ``None``/NA is an empty cell."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[arg-type]
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as text with formula starts neutralised (vectorised; missing values stay empty)."""
    out = {}
    for column in frame.columns:
        text = frame[column].astype("string").fillna("")
        risky = text.str.startswith(FORMULA_START)
        out[column] = text.mask(risky, "'" + text)
    return pd.DataFrame(out, index=frame.index)
