"""Record faults: what is wrong with one record, found before the expectation suites, quarantined alone.

A date of birth that is not a date, a membership whose role is neither ``pupil`` nor ``teacher``, a
group without a name or with an academic year not written like ``2025/26``: each is a fault of that
record, not of the extract. Stopping the whole school for it would also stop every leaver, every new
pupil and every class change, so (like Microsoft SDS, where an error drops the record) the record gets
an **error** finding and ``quarantine`` holds it back; what hangs off it follows (a quarantined group's
memberships). The error-rate breaker still stops the run when too many records of an entity have
faults, because then the export itself is wrong.

Rules (``field`` is the canonical field; the value is never put in a finding, it may be personal):

- ``value_unreadable``: the source value could not be read as the field's type (``Entity.coerce``
  dropped it and named the field in ``unreadable_fields``);
- ``required_value_missing``: a required field is empty (missing MIS ids have their own GE rule,
  ``mis_id_missing``);
- ``code_unknown``: an enrolment status, group kind or membership role outside the canonical codes
  (``validate.ALLOWED_CODES``) — fix it in the MIS or add it to the source's ``codes`` mapping;
- ``academic_year_format``: a group's academic year not like ``2025/26``.

Whole-extract problems stay circuit breakers (``breakers``): a required column missing or empty in
every row is schema drift, not a record fault.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from mis_sync.model import ACADEMIC_YEAR_PATTERN, ENTITIES, UNREADABLE, Extract
from mis_sync.quality.breakers import QUARANTINED_KEY
from mis_sync.quality.runner import RESULT_COLUMNS, empty_results
from mis_sync.validate import ALLOWED_CODES

HINTS: Final = {
    "value_unreadable": "The value cannot be read (e.g. a date that is not a real date, a number with "
    "letters). Correct it in the MIS; the record is held back until then.",
    "required_value_missing": "This field must have a value. Fill it in in the MIS; the record is held "
    "back until then.",
    "code_unknown": "The code is not one MIS Sync knows. Correct it in the MIS, or ask IT to add it to "
    "the field mapping's codes; the record is held back until then.",
    "academic_year_format": "Write the academic year like 2025/26 in the MIS (or fix the export).",
}


def _rows(entity: str, field: str, rule: str, mask: np.ndarray) -> pd.DataFrame:
    rows = np.flatnonzero(mask)
    return pd.DataFrame(
        {
            "entity": entity,
            "field": field,
            "rule": rule,
            "severity": "error",
            "hint": HINTS[rule],
            "row": rows.astype(np.int64),
        }
    )


def _unreadable(entity: str, frame: pd.DataFrame) -> list[pd.DataFrame]:
    if UNREADABLE not in frame.columns:
        return []
    text = frame[UNREADABLE].astype("string").fillna("")
    flagged = text != ""
    if not flagged.any():
        return []
    parts = []
    for field in ENTITIES[entity].column_names:
        mask = flagged & text.str.split(",").apply(lambda names, f=field: f in names)
        if mask.any():
            parts.append(_rows(entity, field, "value_unreadable", mask.to_numpy(dtype=bool)))
    return parts


def record_faults(extract: Extract) -> pd.DataFrame:
    """Findings (``runner.RESULT_COLUMNS``) for every record fault in ``extract`` (rows are positions)."""
    parts: list[pd.DataFrame] = []
    for name, entity in ENTITIES.items():
        frame = extract.tables[name]
        if not len(frame):
            continue
        parts += _unreadable(name, frame)
        for column in entity.required_columns:
            if column == QUARANTINED_KEY or column not in frame.columns:
                continue
            missing = frame[column].isna().to_numpy(dtype=bool)
            if missing.any():
                parts.append(_rows(name, column, "required_value_missing", missing))
    for (name, column), allowed in ALLOWED_CODES.items():
        values = extract.tables[name][column]
        unknown = (values.notna() & ~values.isin(list(allowed))).to_numpy(dtype=bool)
        if unknown.any():
            parts.append(_rows(name, column, "code_unknown", unknown))
    years = extract.tables["groups"]["academic_year"].astype("string")
    well_formed = years.str.fullmatch(ACADEMIC_YEAR_PATTERN).fillna(False)
    bad_years = (years.notna() & ~well_formed).to_numpy(dtype=bool)
    if bad_years.any():
        parts.append(_rows("groups", "academic_year", "academic_year_format", bad_years))
    if not parts:
        return empty_results()
    found = pd.concat(parts, ignore_index=True)
    out = found[RESULT_COLUMNS[:-1]].astype("string")
    out["row"] = found["row"].astype("int64")
    return out


def with_record_faults(results: pd.DataFrame, extract: Extract) -> pd.DataFrame:
    """The suites' results plus the record faults, in one findings frame."""
    faults = record_faults(extract)
    if faults.empty:
        return results
    if results.empty:
        return faults
    return pd.concat([results, faults], ignore_index=True)
