"""Identity fingerprints: what recognises a person whose MIS id changed, without keeping the values.

Rules, strongest first (``RULES``), after normalisation:

- pupils: ``upn`` (the UPN, upper-case, spaces removed); ``former_upn`` (the pupil's former UPN, hashed
  in the same space as UPNs so a new record's former UPN meets an old record's UPN and vice versa);
  ``dob_names`` (date of birth + legal first and last names folded as usernames fold them:
  ``Zoë O'Brien-Smith`` and ``Zoe OBrien Smith`` agree);
- staff: ``teacher_number`` (DfE teacher reference number); ``email`` (case-folded); ``staff_code``
  (the timetable code **with** the folded legal surname: codes are reused after a leaver, so a code
  alone never says "same person").

A fingerprint is ``sha256(establishment, space, value)`` cut to 32 hex characters: equal values give
equal fingerprints, and the directory holds no UPN or date of birth. Missing parts give no fingerprint.
"""

from __future__ import annotations

import hashlib
from typing import Final

import pandas as pd

from mis_sync.linking.normalise import compact, names
from mis_sync.model import Extract

FINGERPRINT_COLUMNS: Final = ["person_kind", "mis_id", "rule", "fingerprint"]
RULES: Final = {
    "pupil": ("upn", "former_upn", "dob_names"),
    "staff": ("teacher_number", "email", "staff_code"),
}
"""Per person kind, the rules in the order they are tried (see ``identity.matching``)."""
SPACE: Final = {"former_upn": "upn"}
"""Rules whose values are hashed in another rule's space (so they can be compared with it)."""


def fingerprint(establishment_id: str, rule: str, values: pd.Series) -> pd.Series:
    """Fingerprints of normalised ``values`` (NA stays NA)."""
    space = SPACE.get(rule, rule)
    prefix = f"{establishment_id}\x1f{space}\x1f"
    out = [
        None if value is None or value == "" else hashlib.sha256((prefix + value).encode()).hexdigest()[:32]
        for value in values.astype("string").fillna("").tolist()
    ]
    return pd.Series(out, index=values.index, dtype="string")


def _text(series: pd.Series, *, upper: bool = False, fold: bool = False) -> pd.Series:
    text = series.astype("string").str.strip().str.replace(r"\s+", "", regex=True)
    if upper:
        text = text.str.upper()
    if fold:
        text = text.str.casefold()
    return text.mask(text == "")


def _folded(series: pd.Series) -> pd.Series:
    values = compact(names(series))
    return pd.Series(values, index=series.index, dtype="string").mask(lambda s: s == "")


def pupil_values(pupils: pd.DataFrame) -> dict[str, pd.Series]:
    dob = pd.to_datetime(pupils["date_of_birth"], errors="coerce").dt.strftime("%Y-%m-%d").astype("string")
    first, last = _folded(pupils["legal_first_name"]), _folded(pupils["legal_last_name"])
    return {
        "upn": _text(pupils["upn"], upper=True),
        "former_upn": _text(pupils["former_upn"], upper=True),
        "dob_names": dob + "|" + first + "|" + last,
    }


def staff_values(staff: pd.DataFrame) -> dict[str, pd.Series]:
    teacher_number = (
        staff["teacher_number"] if "teacher_number" in staff else pd.Series(pd.NA, index=staff.index)
    )
    return {
        "teacher_number": _text(teacher_number, upper=True),
        "email": _text(staff["email"], fold=True),
        "staff_code": _text(staff["staff_code"], upper=True) + "|" + _folded(staff["legal_last_name"]),
    }


def fingerprints(extract: Extract, establishment_id: str, people: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every fingerprint of the extract's pupils and staff (``FINGERPRINT_COLUMNS``); with ``people``
    (person_kind, mis_id), only theirs."""
    parts = []
    for kind, table, values_of in (
        ("pupil", extract.tables["pupils"], pupil_values),
        ("staff", extract.tables["staff"], staff_values),
    ):
        if people is not None:
            wanted = people.loc[people["person_kind"] == kind, "mis_id"]
            table = table[table["mis_id"].isin(list(wanted))]
        table = table[table["mis_id"].notna()]
        for rule, values in values_of(table).items():
            prints = fingerprint(establishment_id, rule, values)
            keep = prints.notna().to_numpy(dtype=bool)
            parts.append(
                pd.DataFrame(
                    {
                        "person_kind": kind,
                        "mis_id": table["mis_id"].to_numpy()[keep],
                        "rule": rule,
                        "fingerprint": prints.to_numpy()[keep],
                    }
                )
            )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in FINGERPRINT_COLUMNS})
    out = pd.concat(parts, ignore_index=True).astype("string")
    return out.drop_duplicates(["person_kind", "mis_id", "rule"]).reset_index(drop=True)


def changed_fingerprints(wanted: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """The people (with all their fingerprints) whose set differs from the stored one: what apply
    rewrites. ``stored`` has the same columns, keyed by the accounts' current MIS ids. One outer merge:
    a person with any fingerprint on one side only has changed."""
    key = ["person_kind", "mis_id"]
    if wanted.empty:
        return wanted
    merged = (
        wanted[FINGERPRINT_COLUMNS]
        .astype("string")
        .merge(
            stored[FINGERPRINT_COLUMNS].astype("string"), on=FINGERPRINT_COLUMNS, how="outer", indicator=True
        )
    )
    differs = merged.loc[merged["_merge"] != "both", key].drop_duplicates()
    if differs.empty:
        return wanted.iloc[0:0]
    return wanted.merge(differs, on=key).reset_index(drop=True)
