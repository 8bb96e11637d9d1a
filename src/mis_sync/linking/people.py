"""The two sides of matching as normalised frames: existing users, and MIS people.

Each row gets its names folded (``normalise``), compact forms and lengths for the scorers, and
blocking keys (initials). MIS records keep legal and preferred names side by side; a missing
preferred name falls back to the legal one (uk-data-rules.md §7.1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mis_sync.linking import normalise as norm
from mis_sync.model import Extract

KIND_OF_ROLE = {
    "pupil": "pupil",
    "teaching_staff": "staff",
    "non_teaching_staff": "staff",
    "staff": "staff",
    "parent": "contact",
}


def prepare_users(users: pd.DataFrame) -> pd.DataFrame:
    """Normalised comparison columns for validated existing users (``existing.py`` output)."""
    out = pd.DataFrame(
        {
            "key": users["username"].astype("string").str.strip().str.casefold().to_numpy(dtype=object),
            "username": users["username"].astype("string").to_numpy(dtype=object),
            "role": users["role"].astype("string").to_numpy(dtype=object),
            "mis_id": norm.ids(users["mis_id"]),
            "upn": norm.upns(users["upn"]),
            "email": norm.emails(users["email"]),
            "dob": norm.days(users["date_of_birth"]),
            "first": norm.names(users["first_name"]),
            "last": norm.names(users["last_name"]),
        }
    )
    out["kind"] = out["role"].map(KIND_OF_ROLE)
    return add_forms(out, ("first", "last"))


def _mis_frame(frame: pd.DataFrame, kind: str, role: np.ndarray, leaver: np.ndarray) -> pd.DataFrame:
    def col(name: str) -> pd.Series:
        if name in frame.columns:
            return frame[name]
        return pd.Series(pd.NA, index=frame.index, dtype="string")

    legal_first, legal_last = norm.names(col("legal_first_name")), norm.names(col("legal_last_name"))
    pref_first, pref_last = norm.names(col("preferred_first_name")), norm.names(col("preferred_last_name"))
    return pd.DataFrame(
        {
            "kind": kind,
            "mis_id": norm.ids(col("mis_id")),
            "role": role,
            "leaver": leaver,
            "upn": norm.upns(col("upn")),
            "former_upn": norm.upns(col("former_upn")),
            "email": norm.emails(col("email")),
            "dob": norm.days(col("date_of_birth")),
            "first_l": legal_first,
            "last_l": legal_last,
            # A missing preferred name falls back to the legal one (uk-data-rules §7.1).
            "first_p": np.where(pref_first == "", legal_first, pref_first),
            "last_p": np.where(pref_last == "", legal_last, pref_last),
        }
    )


def prepare_mis(extract: Extract, include_contacts: bool) -> pd.DataFrame:
    """Pupils and staff (and contacts when parents are in scope) as one normalised frame.

    ``in_scope`` marks the records that should have an account: everyone but leavers, and for
    contacts only those with parental responsibility for a pupil who is not a leaver.
    """
    pupils, staff = extract.tables["pupils"], extract.tables["staff"]
    frames = [
        _mis_frame(
            pupils,
            "pupil",
            np.full(len(pupils), "pupil", dtype=object),
            (pupils["enrolment_status"].astype("string") == "leaver").fillna(False).to_numpy(dtype=bool),
        ),
        _mis_frame(
            staff,
            "staff",
            staff["is_teaching"]
            .map({True: "teaching_staff", False: "non_teaching_staff"})
            .astype("object")
            .fillna("staff")
            .to_numpy(dtype=object),
            (staff["enrolment_status"].astype("string") == "leaver").fillna(False).to_numpy(dtype=bool),
        ),
    ]
    if include_contacts:
        contacts = extract.tables["contacts"]
        frames.append(
            _mis_frame(
                contacts,
                "contact",
                np.full(len(contacts), "parent", dtype=object),
                ~contacts["mis_id"].isin(_responsible_contacts(extract)).to_numpy(dtype=bool),
            )
        )
    mis = pd.concat(frames, ignore_index=True)
    mis["in_scope"] = ~mis["leaver"]
    return add_initials(mis)


def _responsible_contacts(extract: Extract) -> pd.Series:
    pupils, links = extract.tables["pupils"], extract.tables["relationships"]
    current = pupils.loc[pupils["enrolment_status"].astype("string") != "leaver", "mis_id"]
    responsible = links["parental_responsibility"].fillna(True).astype(bool)
    return links.loc[responsible & links["pupil_id"].isin(current), "contact_id"].drop_duplicates()


def add_initials(mis: pd.DataFrame) -> pd.DataFrame:
    for column in ("first_l", "first_p", "last_l", "last_p"):
        mis[f"{column}_i"] = norm.initials(mis[column].to_numpy())
    return add_forms(mis, ("first_l", "first_p", "last_l", "last_p"))


def add_forms(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Per name column: its compact form (``_c``) and length (``_n``), computed once per person."""
    for column in columns:
        values = frame[column].to_numpy(dtype=object)
        frame[f"{column}_c"] = norm.compact(values)
        frame[f"{column}_n"] = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    return frame
