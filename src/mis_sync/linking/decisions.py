"""Admin decisions about links: recorded in the directory, sticky across runs, newest wins.

=================  ==============================  ==============================================
decision           needs                           effect on every later run
=================  ==============================  ==============================================
link               username, person_kind, mis_id   the user is linked to that record, whatever
                                                   the scores (and any earlier link to the record
                                                   from another user is dropped)
reject             username, person_kind, mis_id   that pair is never linked or suggested again,
                                                   not even by an equal MIS id
not_in_mis         username                        the user is "not in MIS": never linked or
                                                   suggested, not even by an equal MIS id
has_no_account     person_kind, mis_id             the record is "has no account": never
                                                   suggested to any user
clear              username and/or kind + mis_id   withdraws the earlier decisions on that
                                                   subject (to undo a mistake)
=================  ==============================  ==============================================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine, delete, insert, select

from mis_sync.errors import DataError
from mis_sync.linking.schema import DECISIONS, PERSON_KINDS, LinkDecision, LinkState

UserKey = str
Record = tuple[str, str]
"""(person_kind, mis_id)"""


class DecisionError(DataError):
    """A decision is incomplete or unknown. Names the fields, never their values."""


@dataclass
class DecisionState:
    """What the decision history adds up to now. Usernames are compared case-insensitively."""

    links: dict[UserKey, Record] = field(default_factory=dict)
    not_in_mis: set[UserKey] = field(default_factory=set)
    rejected: set[tuple[UserKey, str, str]] = field(default_factory=set)
    no_account: set[Record] = field(default_factory=set)
    linked_to: dict[Record, UserKey] = field(default_factory=dict)
    """Reverse of ``links``: one record is linked to at most one user."""

    def apply(self, decision: str, username: str | None, kind: str | None, mis_id: str | None) -> None:
        user = user_key(username) if username else None
        record = (kind, mis_id) if kind and mis_id else None
        if decision == "link" and user and record:
            self._unlink_record(record)
            self._unlink_user(user)
            self.links[user] = record
            self.linked_to[record] = user
            self.not_in_mis.discard(user)
            self.rejected.discard((user, *record))
            self.no_account.discard(record)
        elif decision == "reject" and user and record:
            self.rejected.add((user, *record))
            if self.links.get(user) == record:
                self._unlink_user(user)
        elif decision == "not_in_mis" and user:
            self.not_in_mis.add(user)
            self._unlink_user(user)
        elif decision == "has_no_account" and record:
            self.no_account.add(record)
            self._unlink_record(record)
        elif decision == "clear":
            self._clear(user, record)

    def _unlink_user(self, user: UserKey) -> None:
        record = self.links.pop(user, None)
        if record is not None:
            self.linked_to.pop(record, None)

    def _unlink_record(self, record: Record) -> None:
        user = self.linked_to.pop(record, None)
        if user is not None:
            self.links.pop(user, None)

    def _clear(self, user: UserKey | None, record: Record | None) -> None:
        if user and record:
            self.rejected.discard((user, *record))
            if self.links.get(user) == record:
                self._unlink_user(user)
        elif user:
            self._unlink_user(user)
            self.not_in_mis.discard(user)
        elif record:
            self.no_account.discard(record)


def user_key(username: str) -> UserKey:
    return username.strip().casefold()


def effective(decisions: pd.DataFrame | None) -> DecisionState:
    """Fold the decision history (``load_decisions`` output) in time order into the current state."""
    state = DecisionState()
    if decisions is None or decisions.empty:
        return state
    ordered = decisions.sort_values(["decided_at", "id"], kind="stable")
    for row in ordered.itertuples(index=False):
        state.apply(row.decision, _text(row.username), _text(row.person_kind), _text(row.mis_id))
    return state


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) or value == "" else str(value)  # type: ignore[arg-type]


def check_decision(decision: str, username: str | None, mis_id: str | None, person_kind: str | None) -> None:
    if decision not in DECISIONS:
        raise DecisionError(f"unknown decision (expected one of {', '.join(DECISIONS)})")
    if person_kind is not None and person_kind not in PERSON_KINDS:
        raise DecisionError(f"person_kind must be one of {', '.join(PERSON_KINDS)}")
    if (mis_id is None) != (person_kind is None):
        raise DecisionError("mis_id and person_kind go together (MIS ids are unique only within a kind)")
    needs = {
        "link": (True, True),
        "reject": (True, True),
        "not_in_mis": (True, False),
        "has_no_account": (False, True),
    }
    need_user, need_record = needs.get(decision, (False, False))
    if need_user and not username:
        raise DecisionError(f"decision {decision!r} needs a username")
    if need_record and not mis_id:
        raise DecisionError(f"decision {decision!r} needs person_kind and mis_id")
    if decision == "clear" and not username and not mis_id:
        raise DecisionError("decision 'clear' needs a username, or person_kind and mis_id")


def record_decision(
    engine: Engine,
    establishment_id: str,
    username: str | None,
    decision: str,
    mis_id: str | None = None,
    person_kind: str | None = None,
    *,
    actor: str,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Store one decision (append-only) and return its id. ``actor`` is who decided (audit)."""
    values = _values(establishment_id, username, decision, mis_id, person_kind, actor=actor, note=note, at=at)
    with engine.begin() as connection:
        result = connection.execute(insert(LinkDecision).values(**values).returning(LinkDecision.id))
        return int(result.scalar_one())


def _values(
    establishment_id: str,
    username: str | None,
    decision: str,
    mis_id: str | None = None,
    person_kind: str | None = None,
    *,
    actor: str,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, object]:
    username = username.strip() if username and username.strip() else None
    mis_id = mis_id.strip() if mis_id and mis_id.strip() else None
    if decision == "not_in_mis" and mis_id is None:
        person_kind = None
    check_decision(decision, username, mis_id, person_kind)
    if not actor or not actor.strip():
        raise DecisionError("a decision needs an actor (who decided)")
    return {
        "establishment_id": establishment_id,
        "username": username,
        "person_kind": person_kind,
        "mis_id": mis_id,
        "decision": decision,
        "decided_by": actor.strip()[:200],
        "decided_at": at or dt.datetime.now(dt.UTC),
        "note": note,
    }


def record_decisions(
    engine: Engine, establishment_id: str, decisions: list[dict[str, str | None]], *, actor: str
) -> int:
    """Store several decisions in one transaction (e.g. "confirm every likely match"); all or none.

    Each item has ``username``, ``decision`` and optionally ``mis_id``, ``person_kind``, ``note``.
    Returns how many were stored.
    """
    now = dt.datetime.now(dt.UTC)
    rows = [_values(establishment_id, actor=actor, at=now, **item) for item in decisions]  # type: ignore[arg-type]
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(LinkDecision), rows)
    return len(rows)


def confirmations(links: pd.DataFrame, category: str = "likely") -> list[dict[str, str | None]]:
    """ "link" decisions for every user of ``category`` in ``LinkResult.links`` (for ``record_decisions``):
    what an admin's "confirm all likely matches" stores."""
    rows = links[(links["category"] == category) & links["username"].notna() & links["mis_id"].notna()]
    return [
        {"username": str(u), "decision": "link", "mis_id": str(m), "person_kind": str(k)}
        for u, m, k in zip(rows["username"], rows["mis_id"], rows["person_kind"], strict=True)
    ]


DECISION_COLUMNS = [
    "id",
    "establishment_id",
    "username",
    "person_kind",
    "mis_id",
    "decision",
    "decided_by",
    "decided_at",
    "note",
]


def load_decisions(engine: Engine, establishment_id: str) -> pd.DataFrame:
    """Every decision of the establishment, oldest first (feed it to ``run_matching``)."""
    query = (
        select(*(getattr(LinkDecision, c) for c in DECISION_COLUMNS))
        .where(LinkDecision.establishment_id == establishment_id)
        .order_by(LinkDecision.decided_at, LinkDecision.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=DECISION_COLUMNS)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    return frame


STATE_COLUMNS = ["username", "person_kind", "mis_id", "category", "score", "agreed_fields", "source"]


def save_link_state(engine: Engine, establishment_id: str, links: pd.DataFrame, run_id: str | None) -> int:
    """Replace the establishment's link state with ``LinkResult.links``; returns the row count."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "establishment_id": establishment_id,
            "username": _text(row.username),
            "person_kind": _text(row.person_kind),
            "mis_id": _text(row.mis_id),
            "category": str(row.category),
            "score": None if pd.isna(row.score) else float(row.score),
            "agreed_fields": ",".join(row.agreed_fields)[:200] if row.agreed_fields else None,
            "source": _text(row.source),
            "run_id": run_id,
            "updated_at": now,
        }
        for row in links[STATE_COLUMNS].itertuples(index=False)
    ]
    with engine.begin() as connection:
        connection.execute(delete(LinkState).where(LinkState.establishment_id == establishment_id))
        if rows:
            connection.execute(insert(LinkState), rows)
    return len(rows)


def load_link_state(engine: Engine, establishment_id: str) -> pd.DataFrame:
    """The last saved link state (same columns as ``LinkResult.links`` minus alternatives)."""
    query = select(*(getattr(LinkState, c) for c in STATE_COLUMNS)).where(
        LinkState.establishment_id == establishment_id
    )
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(LinkState.id)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=STATE_COLUMNS)
    frame["agreed_fields"] = [
        v.split(",") if isinstance(v, str) and v else [] for v in frame["agreed_fields"]
    ]
    return frame
