"""Scoring existing users against MIS people, and choosing one suggestion per user.

Candidates come from blocking (same person kind and the same first letter of the folded last name
or first name, the same date of birth, UPN, email or MIS id), so a 3,500-person school compares a
few hundred thousand pairs rather than millions. Each pair's points (``LinkWeights``) add up to
``raw``; the reported ``score`` is ``raw`` clipped to 0..1. Ranking uses ``raw``, so a pair with more
evidence beats one that merely reached 1.0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cpdist

from mis_sync.linking import normalise as norm
from mis_sync.linking.settings import LinkThresholds, LinkWeights

EPS = 1e-9
FUZZY_EDIT_SIMILARITY = 0.9
"""Similarity given to one typo (edit distance 1) or a name that is part of the other (``Smith`` in
``Smith-Jones``); Jaro-Winkler alone is harsh on short names (``Mia``/``Mya`` is 0.80)."""

# Agreement and disagreement flags, in the order ``fields`` lists them.
FLAGS = {
    "mis_id": 1,
    "upn": 2,
    "email": 4,
    "dob": 8,
    "last_name": 16,
    "last_name~": 32,
    "first_name": 64,
    "first_name~": 128,
    "role": 256,
}
MISMATCH_FLAGS = {"upn": 1, "dob": 2, "role": 4}


def _keyed(index: np.ndarray, kind: np.ndarray, key: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"i": index, "kind": kind, "key": key})
    return frame[(frame["key"] != "") & (frame["key"] != norm.NO_DATE)]


def candidate_pairs(users: pd.DataFrame, mis: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Blocked candidate pairs ``(user positions, MIS positions)``, each pair once."""
    u_idx, m_idx = np.arange(len(users)), np.arange(len(mis))
    u_kind, m_kind = users["kind"].to_numpy(dtype=object), mis["kind"].to_numpy(dtype=object)

    def m_keys(*columns: str) -> pd.DataFrame:
        parts = [_keyed(m_idx, m_kind, mis[c].to_numpy(dtype=object)) for c in columns]
        return pd.concat(parts, ignore_index=True).drop_duplicates()

    passes = [
        (norm.initials(users["last"].to_numpy()), m_keys("last_l_i", "last_p_i")),
        (norm.initials(users["first"].to_numpy()), m_keys("first_l_i", "first_p_i")),
        (users["dob"].to_numpy(dtype=object), m_keys("dob")),
        (users["upn"].to_numpy(dtype=object), m_keys("upn", "former_upn")),
        (users["email"].to_numpy(dtype=object), m_keys("email")),
        (users["mis_id"].to_numpy(dtype=object), m_keys("mis_id")),
    ]
    found = []
    for user_keys, mis_keys in passes:
        left = _keyed(u_idx, u_kind, user_keys)
        pairs = left.merge(mis_keys, on=["kind", "key"], suffixes=("_u", "_m"))
        found.append(pairs["i_u"].to_numpy(dtype=np.int64) * len(mis) + pairs["i_m"].to_numpy(dtype=np.int64))
    codes = np.unique(np.concatenate(found)) if found else np.array([], dtype=np.int64)
    if not len(mis):
        return codes, codes
    return codes // len(mis), codes % len(mis)


def name_similarity(
    a: np.ndarray, b: np.ndarray, forms: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], floor: float
) -> np.ndarray:
    """Per pair: 1 equal (spaces ignored), 0.88-0.99 fuzzy, 0 otherwise or when either is blank.

    ``forms`` are the pairs' compact forms and lengths (``add_forms``): ``(a_c, b_c, a_n, b_n)``.
    """
    if not len(a):
        return np.zeros(0)
    a_compact, b_compact, a_len, b_len = forms
    present = (a_len > 0) & (b_len > 0)
    exact = present & (a_compact == b_compact)
    jaro = cpdist(a, b, scorer=JaroWinkler.normalized_similarity, workers=-1)
    edits = cpdist(a, b, scorer=OSA.distance, workers=-1)
    part = cpdist(a, b, scorer=fuzz.token_set_ratio, workers=-1) >= 100
    sim = np.where(jaro >= floor, jaro, 0.0)
    one_edit = (edits <= 1) & (np.maximum(a_len, b_len) >= 3)
    sim = np.where(one_edit | part, np.maximum(sim, FUZZY_EDIT_SIMILARITY), sim)
    return np.where(exact, 1.0, np.where(present, sim, 0.0))


def score_pairs(
    users: pd.DataFrame, mis: pd.DataFrame, ui: np.ndarray, mi: np.ndarray, weights: LinkWeights
) -> pd.DataFrame:
    """Points, score and agreement flags for each ``(ui[k], mi[k])`` pair."""

    def u(column: str) -> np.ndarray:
        return users[column].to_numpy()[ui]

    def m(column: str) -> np.ndarray:
        return mis[column].to_numpy()[mi]

    def similarity(user_column: str, mis_column: str) -> np.ndarray:
        forms = (u(f"{user_column}_c"), m(f"{mis_column}_c"), u(f"{user_column}_n"), m(f"{mis_column}_n"))
        return name_similarity(u(user_column), m(mis_column), forms, weights.fuzzy_floor)

    first = np.maximum(similarity("first", "first_l"), similarity("first", "first_p"))
    last = np.maximum(similarity("last", "last_l"), similarity("last", "last_p"))
    u_upn, m_upn, m_former = u("upn"), m("upn"), m("former_upn")
    upn_ok = (u_upn != "") & ((u_upn == m_upn) | (u_upn == m_former))
    upn_bad = (u_upn != "") & (m_upn != "") & ~upn_ok
    email_ok = (u("email") != "") & (u("email") == m("email"))
    u_dob, m_dob = u("dob"), m("dob")
    dob_known = (u_dob != norm.NO_DATE) & (m_dob != norm.NO_DATE)
    dob_ok, dob_bad = dob_known & (u_dob == m_dob), dob_known & (u_dob != m_dob)
    u_role, m_role = u("role"), m("role")
    role_ok = (u_role == m_role) | (u_role == "staff")
    role_bad = ~role_ok & (m_role != "staff")
    mis_id_ok = (u("mis_id") != "") & (u("mis_id") == m("mis_id"))
    w = weights
    raw = (
        w.mis_id * mis_id_ok
        + w.upn * upn_ok
        - w.upn_mismatch * upn_bad
        + w.email * email_ok
        + w.dob * dob_ok
        - w.dob_mismatch * dob_bad
        + w.last_name * last
        + w.first_name * first
        + w.role * role_ok
        - w.role_mismatch * role_bad
    )
    flags = (
        FLAGS["mis_id"] * mis_id_ok
        | FLAGS["upn"] * upn_ok
        | FLAGS["email"] * email_ok
        | FLAGS["dob"] * dob_ok
        | FLAGS["last_name"] * (last >= 1)
        | FLAGS["last_name~"] * ((last > 0) & (last < 1))
        | FLAGS["first_name"] * (first >= 1)
        | FLAGS["first_name~"] * ((first > 0) & (first < 1))
        | FLAGS["role"] * role_ok
    )
    mismatch = (
        MISMATCH_FLAGS["upn"] * upn_bad | MISMATCH_FLAGS["dob"] * dob_bad | MISMATCH_FLAGS["role"] * role_bad
    )
    return pd.DataFrame(
        {
            "u": ui.astype(np.int64),
            "m": mi.astype(np.int64),
            "raw": raw.astype(float),
            "score": np.clip(raw, 0.0, 1.0).round(4),
            "flags": flags.astype(np.int64),
            "mismatch": mismatch.astype(np.int64),
        }
    )


def fields(flags: int, table: dict[str, int] = FLAGS) -> list[str]:
    """Flag bits as field names, e.g. ``["dob", "last_name", "first_name~"]``."""
    return [name for name, bit in table.items() if flags & bit]


def suggest(pairs: pd.DataFrame, thresholds: LinkThresholds) -> pd.DataFrame:
    """One suggestion per user from scored candidate pairs (already filtered for decisions).

    A user's unique best pair at or above ``likely`` claims its MIS record; a record claimed by
    several users goes to the best one, and a tie for the best user (or for a user's best record)
    makes them all "possible". Everyone else gets their best unclaimed candidate at or above
    ``possible`` as "possible". Returns ``u, m, raw, score, flags, mismatch, category, alternatives``.
    """
    kept = pairs[pairs["score"] >= thresholds.possible].sort_values(
        ["u", "raw", "m"], ascending=[True, False, True], kind="stable"
    )
    columns = [*pairs.columns, "category", "alternatives"]
    if kept.empty:
        return pd.DataFrame(columns=columns)
    firsts = kept.groupby("u", sort=False).head(2)
    top = firsts.groupby("u", sort=False).head(1).set_index("u")
    second = (
        firsts.groupby("u", sort=False).nth(1).set_index("u")["raw"].reindex(top.index, fill_value=-np.inf)
    )
    unique_top = (top["raw"] - second) > EPS
    claims = top[(top["score"] >= thresholds.likely) & unique_top]
    best = claims.groupby("m")["raw"].transform("max")
    at_best = claims[(best - claims["raw"]) <= EPS]
    contested = at_best["m"].duplicated(keep=False)
    winners = at_best[~contested]
    won = set(winners["m"].tolist())
    likely = winners.reset_index().assign(category="likely")
    likely["alternatives"] = [[] for _ in range(len(likely))]
    others = kept[~kept["u"].isin(winners.index)]
    free = others[~others["m"].isin(won)]
    pool = pd.concat([free, others[~others["u"].isin(free["u"])]]).sort_values(
        ["u", "raw", "m"], ascending=[True, False, True], kind="stable"
    )
    chosen = pool.groupby("u", sort=False).head(1)
    against = pool.merge(chosen[["u", "raw", "m"]], on="u", suffixes=("", "_chosen"))
    tied = against[(against["raw_chosen"] - against["raw"] <= EPS) & (against["m"] != against["m_chosen"])]
    alternatives = tied.groupby("u")["m"].agg(lambda ms: sorted(int(x) for x in ms))
    possible = chosen.assign(category="possible")
    possible["alternatives"] = [alternatives.get(user, []) for user in possible["u"]]
    out = pd.concat([likely[columns], possible[columns]], ignore_index=True)
    return out.astype({"u": np.int64, "m": np.int64, "flags": np.int64, "mismatch": np.int64})
