"""Which new MIS records are people who already have an account (pure pandas).

Inputs: the fingerprints (``identity.keys``) of the **new** records (in the MIS, no account) and of the
**candidate** accounts: those whose MIS record vanished (active or suspended, not deleted, not held by
data quality) and those whose record is still there (``present``). Rules are tried in order per person
kind (``keys.RULES``); at each rule:

- an edge joins a new record and an account whose fingerprints agree (``former_upn`` also matches a
  UPN either way round);
- an edge whose two ends have no other edge at this rule is a **match**: the account is re-keyed to the
  new record (unless the account's record is still present: then the new record is a second record
  of a person who has an account, and waits for an admin like an ambiguous pair);
- every other edge is **ambiguous** (one account could match several new records, or one new record
  several accounts): never re-keyed automatically, reported, and neither created nor suspended until
  an admin decides;
- both ends of every edge leave the pool, so a weaker rule never overrides a stronger one.

Admin decisions come first: ``same`` pairs are matched whatever the rules say (if both ends are still
a vanished account and a new record), ``distinct`` pairs are never joined by an edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

from mis_sync.identity.keys import RULES

PAIR_COLUMNS: Final = ["person_kind", "old_mis_id", "new_mis_id", "rule"]
AMBIGUOUS_COLUMNS: Final = [*PAIR_COLUMNS, "reason"]
EDGES: Final = {
    "upn": (("upn", "upn"),),
    "former_upn": (("former_upn", "upn"), ("upn", "former_upn")),
    "dob_names": (("dob_names", "dob_names"),),
    "teacher_number": (("teacher_number", "teacher_number"),),
    "email": (("email", "email"),),
    "staff_code": (("staff_code", "staff_code"),),
}
"""Per rule: (new record's fingerprint rule, account's fingerprint rule) pairs that make an edge."""


@dataclass
class Matches:
    rekeys: pd.DataFrame
    """``PAIR_COLUMNS``: the account with MIS id ``old_mis_id`` becomes ``new_mis_id`` (rule or ``admin``)."""
    ambiguous: pd.DataFrame
    """``AMBIGUOUS_COLUMNS``: pairs an admin must decide (reason ``several_candidates`` or
    ``account_still_in_mis``)."""


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


def _edges(new: pd.DataFrame, old: pd.DataFrame, rule: str) -> pd.DataFrame:
    parts = [_empty(["person_kind", "old_mis_id", "new_mis_id"])]
    if new.empty or old.empty:
        return parts[0].assign(rule=rule)
    for new_rule, old_rule in EDGES[rule]:
        left = new[new["rule"] == new_rule][["person_kind", "mis_id", "fingerprint"]]
        right = old[old["rule"] == old_rule][["person_kind", "mis_id", "fingerprint"]]
        joined = left.merge(right, on=["person_kind", "fingerprint"], suffixes=("_new", "_old"))
        parts.append(joined.rename(columns={"mis_id_new": "new_mis_id", "mis_id_old": "old_mis_id"}))
    edges = pd.concat(parts, ignore_index=True)[["person_kind", "old_mis_id", "new_mis_id"]]
    return edges.drop_duplicates().assign(rule=rule).reset_index(drop=True)


def _without(edges: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    if pairs.empty or edges.empty:
        return edges
    key = ["person_kind", "old_mis_id", "new_mis_id"]
    marked = edges.merge(pairs[key].drop_duplicates(), on=key, how="left", indicator=True)
    return edges[(marked["_merge"] == "left_only").to_numpy()].reset_index(drop=True)


def _unused(frame: pd.DataFrame, kind: str, used: set[tuple[str, str]]) -> pd.DataFrame:
    of_kind = frame[(frame["person_kind"] == kind).fillna(False).to_numpy(dtype=bool)]
    keep = [(kind, m) not in used for m in of_kind["mis_id"]]
    return of_kind[pd.Series(keep, index=of_kind.index, dtype=bool)]


def match(
    new: pd.DataFrame,
    vanished: pd.DataFrame,
    present: pd.DataFrame,
    decisions: pd.DataFrame | None = None,
) -> Matches:
    """``new``, ``vanished``, ``present``: fingerprints (``keys.FINGERPRINT_COLUMNS``) of new records, of
    accounts whose record vanished, and of accounts whose record is still in the MIS. ``decisions``:
    the effective admin decisions (person_kind, old_mis_id, new_mis_id, decision)."""
    if new.empty:  # a quiet night: no new record, nothing to match (the common case, kept cheap)
        return Matches(rekeys=_empty(PAIR_COLUMNS), ambiguous=_empty(AMBIGUOUS_COLUMNS))
    decisions = decisions if decisions is not None else _empty([*PAIR_COLUMNS[:3], "decision"])
    distinct = decisions[decisions["decision"] == "distinct"]
    same = decisions[decisions["decision"] == "same"]
    same = same[
        same.set_index(["person_kind", "new_mis_id"]).index.isin(
            new.set_index(["person_kind", "mis_id"]).index
        )
        & same.set_index(["person_kind", "old_mis_id"]).index.isin(
            vanished.set_index(["person_kind", "mis_id"]).index
        )
    ]
    same = same.drop_duplicates(["person_kind", "new_mis_id"], keep="last")
    same = same.drop_duplicates(["person_kind", "old_mis_id"], keep="last")
    rekeys = [same[PAIR_COLUMNS[:3]].assign(rule="admin")]
    ambiguous = []
    used_new = set(zip(same["person_kind"], same["new_mis_id"], strict=True))
    used_old = set(zip(same["person_kind"], same["old_mis_id"], strict=True))
    accounts = pd.concat([vanished.assign(_present=False), present.assign(_present=True)], ignore_index=True)
    still_there = set(zip(present["person_kind"], present["mis_id"], strict=True))

    for kind, rules in RULES.items():
        for rule in rules:
            pool_new, pool_old = _unused(new, kind, used_new), _unused(accounts, kind, used_old)
            edges = _without(_edges(pool_new, pool_old, rule), distinct)
            if edges.empty:
                continue
            degree_new = edges.groupby("new_mis_id")["old_mis_id"].transform("size")
            degree_old = edges.groupby("old_mis_id")["new_mis_id"].transform("size")
            unique = (degree_new == 1) & (degree_old == 1)
            on_present = pd.Series(
                [(kind, m) in still_there for m in edges["old_mis_id"]], index=edges.index, dtype=bool
            )
            rekeys.append(edges[unique & ~on_present])
            ambiguous.append(edges[unique & on_present].assign(reason="account_still_in_mis"))
            ambiguous.append(edges[~unique].assign(reason="several_candidates"))
            used_new |= {(kind, m) for m in edges["new_mis_id"]}
            used_old |= {(kind, m) for m in edges["old_mis_id"] if (kind, m) not in still_there}

    found = pd.concat(rekeys, ignore_index=True)[PAIR_COLUMNS].astype("string")
    unclear = [a for a in ambiguous if not a.empty]
    return Matches(
        rekeys=found.reset_index(drop=True),
        ambiguous=pd.concat(unclear, ignore_index=True)[AMBIGUOUS_COLUMNS].astype("string")
        if unclear
        else _empty(AMBIGUOUS_COLUMNS),
    )


def effective_decisions(history: pd.DataFrame) -> pd.DataFrame:
    """The newest decision per pair, ``clear`` withdrawing it (history in decided_at, id order)."""
    columns = [*PAIR_COLUMNS[:3], "decision"]
    if history is None or history.empty:
        return _empty(columns)
    ordered = history.sort_values(["decided_at", "id"], kind="stable")
    newest = ordered.drop_duplicates(PAIR_COLUMNS[:3], keep="last")
    return newest[newest["decision"] != "clear"][columns].astype("string").reset_index(drop=True)
