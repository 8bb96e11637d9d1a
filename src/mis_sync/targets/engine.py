"""The sync engine both targets share: desired vs stored state → change set → batched, retried writes.

An adapter (Microsoft Graph, Google Classroom) only turns an ``Op`` into a request and a response into
an ``Outcome``; batching, retries, Retry-After, recording confirmed writes and counting live here.

Safety properties:
- every write is recorded in the stored state as soon as its batch answers, so a crash and a rerun
  re-send at most one batch, and "already exists" / "already absent" answers count as success;
- a create that failed ambiguously (a 5xx may have been applied) is looked up again before it is
  retried, so a rerun never makes a second class;
- every retry waits at least the ``Retry-After`` the server sent (backoff only when it sent none);
- counts are honest: ``failed`` counts changes (writes; a find is part of its create) whose last
  outcome in this engine's life (one task) is a failure, whatever happened to earlier attempts —
  a read or a user look-up that fails shows as a retry or an unresolved user instead; answers that
  changed nothing (already there, already gone) are ``noops``, apart from ``writes``;
- owners are removed only after additions have been applied, so a group is never left ownerless;
- an adapter with ``requests_per_minute`` is paced (every call in a batch counts), as Google's
  per-user quota asks; throttling answers are still retried with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pandas as pd

from mis_sync.targets.desired import CONTAINER_COLUMNS, MEMBERSHIP_COLUMNS, DesiredState
from mis_sync.targets.store import StoredState

Action = Literal[
    "read",
    "resolve",
    "find",
    "create",
    "update",
    "archive",
    "add",
    "remove",
    "create_user",
    "update_user",
    "create_team",
    "read_team",
    "read_class",
]
WRITE_ACTIONS = frozenset(
    {"create", "update", "archive", "add", "remove", "create_user", "update_user", "create_team"}
)


@dataclass(frozen=True)
class Op:
    """One API call's worth of work. Carries keys and ids; bodies are built by the adapter."""

    id: str
    action: Action
    container_key: str | None = None
    container_id: str | None = None
    user_key: str | None = None
    user_id: str | None = None
    role: str | None = None
    """member | owner; on a ``resolve``: ``account`` for a provisioning look-up"""
    display_name: str | None = None
    description: str | None = None
    mail_nickname: str | None = None
    section: str | None = None
    room: str | None = None
    attr_hash: str | None = None
    body: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """An account's fields (``create_user`` / ``update_user``): may hold an initial password, so it is
    never part of ``repr`` (logs) and never written to the run folder."""
    """What the container's name and description hash to once this op is applied (recorded on ok)."""
    restore: bool = False
    """An update of a container MIS Sync archived: bring it back (Classroom: courseState ACTIVE)."""


@dataclass(frozen=True)
class Outcome:
    status: Literal["ok", "absent", "gone", "retry", "failed", "pending"]
    """ok: done (or already so); absent: looked up, not there; gone: the container no longer exists;
    retry: throttled or transient; failed: refused (``error`` says why, as an API code); pending: not
    possible until the user's account is usable (Classroom: a suspended account), neither a failure
    nor worth retrying in this run."""
    remote_id: str | None = None
    retry_after: float | None = None
    throttled: bool = False
    error: str | None = None
    items: tuple[str, ...] = ()
    """A read's result: the remote ids of a container's members (or owners)."""
    protected: bool = False
    """A provisioning look-up found an account MIS Sync must never change (a Workspace admin)."""
    noop: bool = False
    """ok, but the server says nothing changed (already exists / already absent): counted as a no-op, not a write."""  # noqa: E501


class TransientError(Exception):
    """The whole request failed in a way worth retrying (throttled, 5xx, timeout)."""

    def __init__(self, message: str, retry_after: float | None = None, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.retry_after, self.throttled = retry_after, throttled


class Adapter(Protocol):
    target: str
    max_batch: int
    counters: dict[str, int]

    def send(self, ops: Sequence[Op]) -> dict[str, Outcome]:
        """Send ``ops`` as one request (a batch); an outcome for every op id."""
        ...


GAVE_UP = "gave up after retries"


def change_of(op: Op) -> tuple[str, str | None, str | None, str | None]:
    """What an op is about, so retries of one change (even as other ops: a find then a create) are one
    change when counting failures."""
    action = "container" if op.action in ("find", "create") else op.action
    return (action, op.container_key, op.user_key, op.role)


def _no_teams() -> pd.DataFrame:
    return pd.DataFrame({"key": pd.Series(dtype="string")})


CHANGE_PARTS = ("creates", "updates", "archives", "adds", "removes", "teams")


@dataclass
class ChangeSet:
    creates: pd.DataFrame
    updates: pd.DataFrame
    archives: pd.DataFrame
    adds: pd.DataFrame
    removes: pd.DataFrame
    teams: pd.DataFrame = field(default_factory=_no_teams)
    """Keys of active containers to make a team from (Microsoft 365 ``teams: true``), not made yet."""

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in CHANGE_PARTS}


def _anti(left: pd.DataFrame, right: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    merged = left.merge(right[on].drop_duplicates(), on=on, how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)


def diff(desired: DesiredState, stored: StoredState, *, teams: bool = False) -> ChangeSet:
    """What to send: the difference between the MIS truth and what the target was last left as
    (``teams``: also a team for every wanted container that has none yet)."""
    want, have = desired.containers, stored.containers
    creates = _anti(want, have, ["key"])
    both = want.merge(have[["key", "remote_id", "attr_hash", "status"]], on="key", suffixes=("", "_stored"))
    changed = (both["attr_hash"] != both["attr_hash_stored"]) | (both["status"] != "active")
    updates = both[changed][[*CONTAINER_COLUMNS, "remote_id"]].reset_index(drop=True)
    updates["restore"] = (both.loc[changed, "status"] == "archived").to_numpy(dtype=bool)
    archives = _anti(have[have["status"] == "active"], want, ["key"])
    if desired.names is not None:
        archives = archives.merge(desired.names, on="key", how="left")
    members = stored.memberships
    believed = members[members["state"].isin(["present", "adopted"])]
    excluded = members[members["state"] == "excluded"]
    adds = _anti(_anti(desired.memberships, believed, MEMBERSHIP_COLUMNS), excluded, MEMBERSHIP_COLUMNS)
    ours = members[members["state"] == "present"][MEMBERSHIP_COLUMNS]
    removes = _anti(ours, desired.memberships, MEMBERSHIP_COLUMNS)
    # an archived class keeps its last members, as a record of the year
    removes = removes[removes["container_key"].isin(want["key"])].reset_index(drop=True)
    pending = _no_teams()
    if teams:
        pending = want.loc[~want["key"].isin(stored.teams), ["key"]].astype("string").reset_index(drop=True)
    return ChangeSet(creates, updates, archives, adds, removes, pending)


@dataclass
class Engine:
    """Runs ops through an adapter in batches, with retries, recording each confirmed result."""

    adapter: Adapter
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = 8
    base_delay: float = 2.0
    max_delay: float = 120.0
    stats: dict[str, int] = field(default_factory=dict)
    requests_per_minute: float | None = None
    """Pace calls to this rate (default: the adapter's own ``requests_per_minute``, if it has one)."""
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        for name in ("writes", "noops", "reads", "retries", "throttles", "failed", "gone", "paced_ms"):
            self.stats.setdefault(name, 0)
        if self.requests_per_minute is None:
            self.requests_per_minute = getattr(self.adapter, "requests_per_minute", None)
        self._due = 0.0
        self._failing: set[tuple[str, str | None, str | None, str | None]] = set()
        """Changes whose latest outcome is a failure: ``stats["failed"]`` is its size."""
        attach = getattr(self.adapter, "attach_pacing", None)
        if attach is not None:  # an adapter's own follow-up calls (further pages, checks) are paced too
            attach(self._pace)

    def _pace(self, calls: int) -> None:
        """Virtual scheduling: one batch may go at once, then calls leave at the configured rate, so
        no 60-second window holds more than a minute's quota plus one batch."""
        if not self.requests_per_minute:
            return
        interval = 60.0 / self.requests_per_minute
        now = self.clock()
        self._due = max(self._due, now) + calls * interval
        wait = self._due - now - self.adapter.max_batch * interval
        if wait > 0:
            self.stats["paced_ms"] += round(wait * 1000)
            self.sleep(wait)

    def run(
        self,
        ops: Iterable[Op],
        record: Callable[[list[tuple[Op, Outcome]]], None] | None = None,
        *,
        attempts_each: int | None = None,
    ) -> dict[str, Outcome]:
        """Send ``ops``; ``record`` gets each batch's final results as soon as the batch answers.

        ``attempts_each=1`` hands retrying back to the caller (creates: look up, then create again)."""
        limit = attempts_each or self.max_attempts
        pending = list(ops)
        attempts: dict[str, int] = {}
        final: dict[str, Outcome] = {}
        while pending:
            retry: list[Op] = []
            wait = 0.0
            size = self.adapter.max_batch
            for start in range(0, len(pending), size):
                batch = pending[start : start + size]
                self._pace(len(batch))
                try:
                    outcomes = self.adapter.send(batch)
                except TransientError as exc:
                    outcome = Outcome("retry", retry_after=exc.retry_after, throttled=exc.throttled)
                    outcomes = {op.id: outcome for op in batch}
                done: list[tuple[Op, Outcome]] = []
                for op in batch:
                    outcome = outcomes[op.id]
                    if outcome.status == "retry":
                        self.stats["throttles"] += int(outcome.throttled)
                        attempts[op.id] = attempts.get(op.id, 0) + 1
                        if attempts[op.id] < limit:
                            retry.append(op)
                            wait = max(wait, self.delay(outcome, attempts[op.id]))
                            continue
                        outcome = Outcome(
                            "failed",
                            error=GAVE_UP,
                            retry_after=outcome.retry_after,
                            throttled=outcome.throttled,
                        )
                    done.append((op, outcome))
                    final[op.id] = outcome
                    self._count(op, outcome)
                if record and done:
                    record(done)
            self.stats["retries"] += len(retry)
            pending = retry
            if pending:
                self.sleep(wait)
        return final

    def delay(self, outcome: Outcome, attempt: int) -> float:
        """How long to wait before attempt ``attempt + 1``: at least the server's ``Retry-After``;
        exponential backoff (capped) when it gave none."""
        if outcome.retry_after is not None:
            return max(0.0, float(outcome.retry_after))
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))

    def settle(self, op: Op, outcome: Outcome) -> None:
        """Count an outcome the caller decided after ``run`` (e.g. an add answered 404 whose user was
        looked up again): the change's latest outcome is this one."""
        self._count(op, outcome)

    def _count(self, op: Op, outcome: Outcome) -> None:
        change = change_of(op)
        if op.action not in WRITE_ACTIONS and op.action != "find":
            pass  # a read or a look-up is not a change: its failure shows elsewhere (unresolved, a retry)
        elif outcome.status == "failed":
            self._failing.add(change)
        elif not (op.action == "find" and outcome.status == "absent"):  # a look-up before a create
            self._failing.discard(change)
        self.stats["failed"] = len(self._failing)
        if outcome.status == "ok" and outcome.noop:
            self.stats["noops"] += 1
        elif outcome.status == "ok":
            self.stats["writes" if op.action in WRITE_ACTIONS else "reads"] += 1
        elif outcome.status == "gone":
            self.stats["gone"] += 1
