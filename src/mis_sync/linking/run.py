"""One Link-mode matching run: decisions first, then equal MIS ids, then scores; seven categories out.

Order of precedence for a user: an admin's "not in MIS" → an admin's "link" → an equal MIS id (of
the person kind its role implies, unless that pair was rejected or the record is "has no account")
→ the best score. Linked and "has no account" records leave the pool before scoring, so they are
never suggested to anyone else.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mis_sync.linking.categories import LinkCategory, link_report
from mis_sync.linking.decisions import DecisionState, effective
from mis_sync.linking.matching import FLAGS, MISMATCH_FLAGS, candidate_pairs, fields, score_pairs, suggest
from mis_sync.linking.people import prepare_mis, prepare_users
from mis_sync.linking.settings import LinkThresholds, LinkWeights
from mis_sync.model import Extract

log = logging.getLogger(__name__)

LINK_COLUMNS = [
    "username",
    "role",
    "person_kind",
    "mis_id",
    "category",
    "score",
    "agreed_fields",
    "disagreed_fields",
    "source",
    "alternatives",
    "line",
]


@dataclass(frozen=True)
class LinkResult:
    """``links``: one row per existing user, then one per MIS record with no account or no match.

    Columns: username, role, person_kind, mis_id (linked or suggested record), category, score,
    agreed_fields, disagreed_fields, source (admin | mis_id | likely | score), alternatives (MIS ids
    that scored the same as the suggestion), line (in the CSV). MIS-only rows have no username.
    """

    links: pd.DataFrame = field(repr=False)
    counts: dict[str, int] = field(default_factory=dict)
    stale_decisions: int = 0
    """Decisions naming a user or MIS record that is not in this run's data (kept; they may return)."""
    candidate_pairs: int = 0
    seconds: float = 0.0
    settings: dict[str, object] = field(default_factory=dict)

    def report(self) -> pd.DataFrame:
        return link_report(self)


def run_matching(
    existing_users: pd.DataFrame,
    extract: Extract,
    decisions: pd.DataFrame | DecisionState | None = None,
    thresholds: LinkThresholds | None = None,
    *,
    weights: LinkWeights | None = None,
    auto_link_likely: bool = False,
    include_parents: bool | None = None,
) -> LinkResult:
    """Sort validated existing users (``read_existing_users``) and the extract's people into categories.

    ``include_parents`` (default: when any user has role ``parent``) adds MIS contacts as candidates
    and reports those with parental responsibility for a current pupil. With ``auto_link_likely``
    likely matches link straight away; by default they wait for an admin's "link".
    """
    started = time.perf_counter()
    thresholds, weights = thresholds or LinkThresholds(), weights or LinkWeights()
    state = decisions if isinstance(decisions, DecisionState) else effective(decisions)
    users = prepare_users(existing_users)
    parents = bool((users["role"] == "parent").any()) if include_parents is None else include_parents
    mis = prepare_mis(extract, parents)
    n_users, n_mis = len(users), len(mis)
    m_kind, m_id = mis["kind"].to_numpy(dtype=object), mis["mis_id"].to_numpy(dtype=object)
    position = {record: p for p, record in enumerate(zip(m_kind, m_id, strict=True))}
    keys = users["key"].to_numpy(dtype=object)

    category = np.full(n_users, LinkCategory.NOT_MATCHED.value, dtype=object)
    target = np.full(n_users, -1, dtype=np.int64)
    source = np.full(n_users, None, dtype=object)
    alternatives: list[list[int]] = [[] for _ in range(n_users)]
    done = np.zeros(n_users, dtype=bool)
    taken = np.zeros(n_mis, dtype=bool)
    no_account = np.fromiter((r in state.no_account for r in zip(m_kind, m_id, strict=True)), bool, n_mis)

    def link(u: int, p: int, why: str) -> None:
        category[u], target[u], source[u], done[u], taken[p] = LinkCategory.LINKED.value, p, why, True, True

    for u, key in enumerate(keys):
        if key in state.not_in_mis:
            category[u], done[u] = LinkCategory.NOT_IN_MIS.value, True
    user_at = {key: u for u, key in enumerate(keys)}
    stale = 0
    for key, record in state.links.items():
        u, p = user_at.get(key), position.get(record)
        if u is None or p is None or done[u] or taken[p]:
            stale += 1
            continue
        link(u, p, "admin")
    stale += sum(1 for key in state.not_in_mis if key not in user_at)

    u_kind, u_mis = users["kind"].to_numpy(dtype=object), users["mis_id"].to_numpy(dtype=object)
    carried = pd.Series(list(zip(u_kind, u_mis, strict=True)))[~done & (u_mis != "")]
    once = carried[~carried.duplicated(keep=False)]
    for u, record in once.items():
        p = position.get(record)
        if p is not None and not taken[p] and not no_account[p] and (keys[u], *record) not in state.rejected:
            link(int(u), p, "mis_id")

    pool_users, pool_mis = np.flatnonzero(~done), np.flatnonzero(~taken & ~no_account)
    ui, mi = candidate_pairs(
        users.iloc[pool_users].reset_index(drop=True), mis.iloc[pool_mis].reset_index(drop=True)
    )
    ui, mi = pool_users[ui], pool_mis[mi]
    if state.rejected:
        keep = np.fromiter(
            ((keys[u], m_kind[m], m_id[m]) not in state.rejected for u, m in zip(ui, mi, strict=True)),
            bool,
            len(ui),
        )
        ui, mi = ui[keep], mi[keep]
    pairs = score_pairs(users, mis, ui, mi, weights)
    for row in suggest(pairs, thresholds).itertuples(index=False):
        if row.category == LinkCategory.LIKELY.value and auto_link_likely:
            link(row.u, row.m, "likely")
        else:
            category[row.u], target[row.u], source[row.u] = row.category, row.m, "score"
            alternatives[row.u] = list(row.alternatives)

    links = _links(
        users, mis, weights, category, target, source, alternatives, taken, no_account, existing_users
    )
    counts = {c.value: int((links["category"] == c.value).sum()) for c in LinkCategory}
    seconds = time.perf_counter() - started
    log.info(  # counts and timings only: the inputs are personal data
        "link matching: %d users, %d MIS records, %d candidate pairs, %.2f s, %d stale decision(s); %s",
        n_users,
        n_mis,
        len(ui),
        seconds,
        stale,
        ", ".join(f"{name} {count}" for name, count in counts.items()),
    )
    return LinkResult(
        links=links,
        counts=counts,
        stale_decisions=stale,
        candidate_pairs=len(ui),
        seconds=seconds,
        settings={
            "likely": thresholds.likely,
            "possible": thresholds.possible,
            "auto_link_likely": auto_link_likely,
            "include_parents": parents,
        },
    )


def _links(
    users: pd.DataFrame,
    mis: pd.DataFrame,
    weights: LinkWeights,
    category: np.ndarray,
    target: np.ndarray,
    source: np.ndarray,
    alternatives: list[list[int]],
    taken: np.ndarray,
    no_account: np.ndarray,
    existing_users: pd.DataFrame,
) -> pd.DataFrame:
    has_target = np.flatnonzero(target >= 0)
    explained = score_pairs(users, mis, has_target, target[has_target], weights)
    score = np.full(len(users), np.nan)
    agreed: list[list[str]] = [[] for _ in range(len(users))]
    disagreed: list[list[str]] = [[] for _ in range(len(users))]
    for row in explained.itertuples(index=False):
        score[row.u] = row.score
        agreed[row.u] = fields(row.flags, FLAGS)
        disagreed[row.u] = fields(row.mismatch, MISMATCH_FLAGS)
    m_id = mis["mis_id"].to_numpy(dtype=object)
    users_part = pd.DataFrame(
        {
            "username": users["username"],
            "role": users["role"],
            "person_kind": _at(
                mis["kind"].to_numpy(dtype=object), target, users["kind"].to_numpy(dtype=object)
            ),
            "mis_id": _at(m_id, target, np.full(len(users), None, dtype=object)),
            "category": category,
            "score": score,
            "agreed_fields": agreed,
            "disagreed_fields": disagreed,
            "source": source,
            "alternatives": [[m_id[m] for m in alt] for alt in alternatives],
            "line": existing_users["line"].to_numpy() if "line" in existing_users else pd.NA,
        }
    )
    suggested = np.zeros(len(mis), dtype=bool)
    open_target = target[(target >= 0) & (category != LinkCategory.LINKED.value)]
    suggested[open_target] = True
    suggested[[m for alt in alternatives for m in alt]] = True
    no_acc = no_account & ~taken
    unmatched = mis["in_scope"].to_numpy(dtype=bool) & ~taken & ~no_account & ~suggested
    mis_rows = np.flatnonzero(no_acc | unmatched)
    mis_part = pd.DataFrame(
        {
            "username": None,
            "role": mis["role"].to_numpy(dtype=object)[mis_rows],
            "person_kind": mis["kind"].to_numpy(dtype=object)[mis_rows],
            "mis_id": m_id[mis_rows],
            "category": np.where(
                no_acc[mis_rows], LinkCategory.MIS_NO_ACCOUNT.value, LinkCategory.MIS_NOT_MATCHED.value
            ),
            "score": np.nan,
            "agreed_fields": [[] for _ in mis_rows],
            "disagreed_fields": [[] for _ in mis_rows],
            "source": None,
            "alternatives": [[] for _ in mis_rows],
            "line": pd.NA,
        }
    )
    links = pd.concat([users_part, mis_part], ignore_index=True)[LINK_COLUMNS]
    for column in ("username", "role", "person_kind", "mis_id", "category", "source"):
        links[column] = links[column].astype("string")
    links["line"] = links["line"].astype("Int64")
    return links


def _at(values: np.ndarray, positions: np.ndarray, default: np.ndarray) -> np.ndarray:
    """``values[positions]`` where a position is set (>= 0), ``default`` elsewhere."""
    out = default.copy()
    has = positions >= 0
    out[has] = values[positions[has]]
    return out
