"""UK school data rules as derived check columns, computed vectorised in pandas.

Why derived columns: Great Expectations then only needs its built-in expectations (``to_be_in_set``,
``to_not_be_in_set``, ``to_not_be_null``) over columns that hold flags and reason codes, never over
names, UPNs, dates of birth or emails. The frames handed to GE carry no personal
column at all, so GE's result objects cannot contain personal data whatever it puts in them.

``derive_checks(extract, country=..., as_of=...)`` returns, per entity, a frame with:

- ``_row``: the row's position in the extract's table (0-based); findings map back through it;
- ``mis_id`` and ``mis_id_duplicate`` where the entity has an MIS id (opaque ids, not personal);
- one column per check: a boolean that is True when the record breaks the rule, or (``upn_problem``,
  ``former_upn_problem``, ``scn_problem``) a reason code that is NA when the value is fine or missing.

Cross-row checks (duplicates, references) are computed here per extract, so GE's part is row-local and
several extracts can be validated in one batch. Record keys for findings come from ``derive_keys``,
for the flagged rows only.

Facts: ``shared/reference/uk-data-rules.md`` (UPN §1, SCN §2.2, year groups §4, DOB §4.3,
Scotland §5, names §7.2).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Final

import numpy as np
import pandas as pd

from mis_sync.identifiers import scn_problems, upn_problems
from mis_sync.model import ENTITIES, EnrolmentStatus, Extract, GroupKind, MemberRole
from mis_sync.quality.years import COUNTRIES, Country, dob_out_of_range, known_year_groups

ROW: Final = "_row"

NAME_FIELDS: Final = ("legal_first_name", "legal_last_name", "preferred_first_name", "preferred_last_name")

_NAME_PUNCTUATION: Final = frozenset(" -'’.")
_ASCII_NAME: Final = r"[A-Za-z '’.\-]*"
"""Names made only of these are fine without looking at each character (nearly all of them)."""
_EMAIL: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def snapshot_date(extract: Extract) -> dt.date:
    """The extract's snapshot as a UK calendar date (what "today" was for the MIS)."""
    return extract.snapshot_at.tz_convert("Europe/London").date()


# --------------------------------------------------------------------------------------- per value


def name_has_bad_characters(value: str) -> bool:
    """True unless every character is a letter (any script, diacritics included, precomposed or as a
    combining mark), a space, a hyphen, an apostrophe (``'`` or ``’``) or a full stop (§7.2)."""
    return not all(ch in _NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM" for ch in value)


def email_is_valid(value: str) -> bool:
    """A practical address check: ASCII local part without leading, trailing or double dots, ``@``,
    a domain of dot-separated labels ending in an alphabetic top-level domain; at most 254 characters
    with a local part of at most 64 (what Microsoft 365 and Google accept for delivery)."""
    local = value.rpartition("@")[0]
    return len(value) <= 254 and len(local) <= 64 and _EMAIL.fullmatch(value) is not None


def _slow_path(text: pd.Series, settled: pd.Series, check) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``check`` applied to the rows the vectorised fast path did not settle (a few per table)."""
    flags = np.zeros(len(text), dtype=bool)
    pending = np.flatnonzero((text.notna() & ~settled.fillna(False)).to_numpy(dtype=bool))
    if len(pending):
        values = text.to_numpy(dtype=object)[pending]
        flags[pending] = [bool(check(value)) for value in values]
    return flags


def _isin(series: pd.Series, values: np.ndarray | list[str]) -> np.ndarray:
    """``series.isin(values)`` as booleans (False for missing), through the object hash table (an order
    of magnitude faster than the Arrow string path for thousands of ids)."""
    return series.astype(object).isin(values).to_numpy(dtype=bool)


def name_problems(series: pd.Series) -> np.ndarray:
    """Per row, True when a (present) name has characters other than those ``name_has_bad_characters``
    allows. Plain ASCII names are settled by one vectorised match; the rest character by character."""
    text = series.astype("string")
    return _slow_path(text, text.str.fullmatch(_ASCII_NAME), name_has_bad_characters)


def invalid_emails(series: pd.Series) -> np.ndarray:
    """Per row, True for a present but invalid email address (missing is not invalid)."""
    text = series.astype("string")
    valid = text.str.fullmatch(_EMAIL.pattern) & (text.str.len() <= 254) & (text.str.find("@") <= 64)
    return (text.notna() & ~valid.fillna(False).astype(bool)).to_numpy(dtype=bool)


# --------------------------------------------------------------------------------------- per entity


def derive_keys(name: str, frame: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
    """Record keys as text (what findings call ``mis_id``) of ``rows`` (positions; default all) of
    entity ``name``: the MIS id, ``group_id/person_id/role`` (memberships), ``contact_id/pupil_id``
    (relationships), or ``(no MIS id: row N)`` (N = position + 1) where the id is missing."""
    positions = np.arange(len(frame)) if rows is None else np.asarray(rows, dtype=np.int64)
    subset = frame.iloc[positions]
    key = ENTITIES[name].key
    if len(key) == 1:
        ids = subset[key[0]].astype(object).to_numpy(copy=True)
        missing = subset[key[0]].isna().to_numpy()
        ids[missing] = [f"(no MIS id: row {n + 1})" for n in positions[missing]]
        return ids
    joined = subset[key[0]].astype("string").fillna("")
    for column in key[1:]:
        joined = joined + "/" + subset[column].astype("string").fillna("")
    return joined.to_numpy(dtype=object)


def _codes(series: pd.Series) -> np.ndarray:
    """Reason codes as plain Python objects with None for NA (what GE's null checks expect)."""
    return series.astype(object).where(series.notna(), None).to_numpy()


def _base(name: str, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {ROW: np.arange(len(frame), dtype=np.int64)}
    if "mis_id" in frame.columns:
        ids = frame["mis_id"]
        out["mis_id"] = _codes(ids)
        out["mis_id_duplicate"] = (ids.notna() & ids.duplicated(keep=False)).to_numpy(dtype=bool)
    return out


def _ids(series: pd.Series) -> np.ndarray:
    return series.dropna().unique().astype(object)


def _name_flags(out: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
    for field in NAME_FIELDS:
        out[f"{field}_characters"] = name_problems(frame[field])


def _flag(mask: pd.Series) -> np.ndarray:
    return mask.fillna(False).to_numpy(dtype=bool)


def _pupils(frame: pd.DataFrame, group_ids: np.ndarray, *, country: Country, as_of: dt.date) -> pd.DataFrame:
    out = _base("pupils", frame)
    for field in ("legal_first_name", "legal_last_name"):
        out[f"{field}_missing"] = frame[field].isna().to_numpy(dtype=bool)
    upn = frame["upn"].astype("string")
    problems = upn_problems(upn)
    out["upn_problem"] = _codes(problems)
    out["upn_duplicate"] = _flag(upn.notna() & upn.duplicated(keep=False))
    # identifiers.is_temporary_upn: valid, and the last character is a letter (not a digit)
    out["upn_temporary"] = _flag(upn.notna() & problems.isna() & ~upn.str[-1].str.isdigit())
    # FormerUPN follows the UPN rules (census 1.3 rule 7); a temporary former UPN is normal, not flagged.
    out["former_upn_problem"] = _codes(upn_problems(frame["former_upn"]))
    out["dob_out_of_range"] = dob_out_of_range(
        frame["date_of_birth"], frame["year_group"], country=country, as_of=as_of
    ).to_numpy()
    year = frame["year_group"].astype("string")
    out["year_group_unknown"] = year.notna().to_numpy(dtype=bool) & ~_isin(
        year, list(known_year_groups(country))
    )
    registration = frame["registration_group_id"]
    on_roll = frame["enrolment_status"] == EnrolmentStatus.ON_ROLL.value
    out["registration_group_missing"] = _flag(on_roll & registration.isna())
    out["registration_group_unknown"] = registration.notna().to_numpy(dtype=bool) & ~_isin(
        registration, group_ids
    )
    _name_flags(out, frame)
    out["email_invalid"] = invalid_emails(frame["email"])
    out["scn_problem"] = _codes(scn_problems(frame["scn"]))
    return pd.DataFrame(out)


def _staff(frame: pd.DataFrame) -> pd.DataFrame:
    out = _base("staff", frame)
    leaver = frame["enrolment_status"] == EnrolmentStatus.LEAVER.value
    out["staff_code_missing"] = _flag(frame["staff_code"].isna() & ~leaver.fillna(False))
    _name_flags(out, frame)
    out["email_invalid"] = invalid_emails(frame["email"])
    return pd.DataFrame(out)


def _contacts(frame: pd.DataFrame) -> pd.DataFrame:
    out = _base("contacts", frame)
    out["email_missing"] = frame["email"].isna().to_numpy(dtype=bool)
    out["email_invalid"] = invalid_emails(frame["email"])
    _name_flags(out, frame)
    return pd.DataFrame(out)


def _groups(frame: pd.DataFrame, memberships: pd.DataFrame, staff_ids: np.ndarray) -> pd.DataFrame:
    out = _base("groups", frame)
    is_teacher = _flag(memberships["role"] == MemberRole.TEACHER.value) & _isin(
        memberships["person_id"], staff_ids
    )
    taught = _ids(memberships.loc[is_teacher, "group_id"])
    teaching = frame["kind"] == GroupKind.TEACHING.value
    out["teaching_group_without_teacher"] = _flag(teaching) & ~_isin(frame["mis_id"], taught)
    return pd.DataFrame(out)


def _memberships(
    frame: pd.DataFrame, group_ids: np.ndarray, pupil_ids: np.ndarray, staff_ids: np.ndarray
) -> pd.DataFrame:
    out = _base("memberships", frame)
    out["unknown_group"] = ~_isin(frame["group_id"], group_ids)
    role, person = frame["role"], frame["person_id"]
    known = _flag(role == MemberRole.PUPIL.value) & _isin(person, pupil_ids)
    known |= _flag(role == MemberRole.TEACHER.value) & _isin(person, staff_ids)
    # a role outside the codes is the record fault ``code_unknown`` (record_faults), not an unknown person
    known_role = _flag(role.isin([r.value for r in MemberRole]))
    out["unknown_person"] = known_role & ~known
    out["duplicate_row"] = frame.duplicated(subset=list(ENTITIES["memberships"].key)).to_numpy(dtype=bool)
    return pd.DataFrame(out)


def _relationships(frame: pd.DataFrame, pupil_ids: np.ndarray, contact_ids: np.ndarray) -> pd.DataFrame:
    out = _base("relationships", frame)
    out["unknown_pupil"] = ~_isin(frame["pupil_id"], pupil_ids)
    out["unknown_contact"] = ~_isin(frame["contact_id"], contact_ids)
    out["duplicate_row"] = frame.duplicated(subset=list(ENTITIES["relationships"].key)).to_numpy(dtype=bool)
    return pd.DataFrame(out)


def derive_checks(
    extract: Extract, *, country: Country = "england", as_of: dt.date | None = None
) -> dict[str, pd.DataFrame]:
    """Per entity, the frame of derived check columns (see the module docstring); no personal data.

    ``as_of`` (default: the snapshot's UK date) fixes the academic year and ages for the DOB rule.
    References are checked against every id present in the extract (so a membership of a pupil whose
    own record is quarantined is not "unknown": it is removed with that pupil by ``quarantine``).
    """
    if country not in COUNTRIES:
        raise ValueError(f"unknown country {country!r}; expected one of {', '.join(COUNTRIES)}")
    as_of = as_of or snapshot_date(extract)
    t = extract.tables
    group_ids, pupil_ids = _ids(t["groups"]["mis_id"]), _ids(t["pupils"]["mis_id"])
    staff_ids, contact_ids = _ids(t["staff"]["mis_id"]), _ids(t["contacts"]["mis_id"])
    return {
        "pupils": _pupils(t["pupils"], group_ids, country=country, as_of=as_of),
        "staff": _staff(t["staff"]),
        "contacts": _contacts(t["contacts"]),
        "groups": _groups(t["groups"], t["memberships"], staff_ids),
        "memberships": _memberships(t["memberships"], group_ids, pupil_ids, staff_ids),
        "relationships": _relationships(t["relationships"], pupil_ids, contact_ids),
    }
