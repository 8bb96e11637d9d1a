"""Findings across runs: new, still open, fixed (table ``directory_quality_findings``).

A finding is identified by (establishment, entity, MIS id, rule, field). Per run:

- not seen before, or seen and fixed before → **new** (``first_seen_*`` set to this run, ``fixed_at``
  cleared);
- open from an earlier run → **still open** (``last_seen_*`` and severity updated);
- open before and absent now → **fixed** (``fixed_at`` set); returned with the rule's hint so the
  report can show what was fixed.

Re-running the same run id (an Airflow retry) reports what that run first saw as new again. The read
and the writes are one transaction (one INSERT and executemany UPDATEs), taken in turn per
establishment under a PostgreSQL advisory lock: two runs of one school at once (a retry beside the
scheduled run, a trust's first night) used to both read "not seen" and crash on
``uq_quality_findings_key``. The INSERT also skips keys already present, as a second guard.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, select, update

from mis_sync.directory.concurrency import advisory_xact_lock, insert_if_absent
from mis_sync.quality.schema import QualityFinding
from mis_sync.quality.suites import rule_table

KEY: Final = ["entity", "mis_id", "rule", "field"]
STATUS_NEW, STATUS_OPEN, STATUS_FIXED = "new", "still open", "fixed"
HISTORY_COLUMNS: Final = ["status", "first_seen_at"]
"""Added to the findings by ``update_history``."""

_T = QualityFinding.__table__


def _existing(connection: Connection, establishment_id: str) -> pd.DataFrame:
    columns = [_T.c.id, _T.c.entity, _T.c.mis_id, _T.c.rule, _T.c.field, _T.c.severity]
    columns += [_T.c.first_seen_run, _T.c.first_seen_at, _T.c.fixed_at]
    rows = connection.execute(select(*columns).where(_T.c.establishment_id == establishment_id)).all()
    names = [c.name for c in columns]
    return pd.DataFrame([tuple(r) for r in rows], columns=names).astype(
        {"entity": object, "mis_id": object, "rule": object, "field": object}
    )


def _hints() -> dict[tuple[str, str, str], str]:
    table = rule_table()
    return {(e, r, f): h for e, r, f, h in table[["entity", "rule", "field", "hint"]].itertuples(index=False)}


def update_history(
    engine: Engine, establishment_id: str, run_id: str, findings: pd.DataFrame, now: dt.datetime
) -> pd.DataFrame:
    """Record this run's findings; return them with ``status`` and ``first_seen_at``, plus one row per
    finding fixed since the last run (status ``fixed``, ``row`` -1)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    current = findings.copy()
    current[KEY] = current[KEY].astype(object)
    seen = current.drop_duplicates(KEY)[[*KEY, "severity"]]
    with engine.begin() as connection:
        advisory_xact_lock(connection, f"misync:findings:{establishment_id}")
        existing = _existing(connection, establishment_id)
        fresh, still, reopened, gone = _write(connection, establishment_id, run_id, now, seen, existing)
    return _annotate(current, fresh, still, reopened, gone, run_id, now)


def _write(
    connection: Connection,
    establishment_id: str,
    run_id: str,
    now: dt.datetime,
    seen: pd.DataFrame,
    existing: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Insert new findings, touch still-open ones, reopen and fix; returns (fresh, still, reopened, gone)."""
    merged = seen.merge(existing.drop(columns="severity"), on=KEY, how="left", indicator=True)
    fresh = merged[merged["_merge"] == "left_only"]
    known = merged[merged["_merge"] == "both"]
    reopened = known[known["fixed_at"].notna()]
    still = known[known["fixed_at"].isna()]
    open_before = existing[existing["fixed_at"].isna()]
    gone = open_before.merge(seen[KEY], on=KEY, how="left", indicator=True)
    gone = gone[gone["_merge"] == "left_only"]

    base = {"establishment_id": establishment_id, "last_seen_run": run_id, "last_seen_at": now}
    inserts = [
        {**base, **dict(zip([*KEY, "severity"], values, strict=True)), "first_seen_run": run_id,
         "first_seen_at": now, "fixed_at": None}
        for values in fresh[[*KEY, "severity"]].itertuples(index=False, name=None)
    ]  # fmt: skip
    touch = [
        {"b_id": int(i), "b_severity": s, "b_run": run_id, "b_at": now}
        for i, s in still[["id", "severity"]].itertuples(index=False, name=None)
    ]
    reopen = [
        {"b_id": int(i), "b_severity": s, "b_run": run_id, "b_at": now}
        for i, s in reopened[["id", "severity"]].itertuples(index=False, name=None)
    ]
    fixed = [{"b_id": int(i), "b_at": now} for i in gone["id"]]
    by_id = _T.c.id == bindparam("b_id")
    insert_if_absent(connection, _T, inserts, ["establishment_id", *KEY])
    if touch:
        connection.execute(
            update(_T)
            .where(by_id)
            .values(
                severity=bindparam("b_severity"),
                last_seen_run=bindparam("b_run"),
                last_seen_at=bindparam("b_at"),
            ),
            touch,
        )
    if reopen:
        connection.execute(
            update(_T)
            .where(by_id)
            .values(
                severity=bindparam("b_severity"),
                first_seen_run=bindparam("b_run"),
                first_seen_at=bindparam("b_at"),
                last_seen_run=bindparam("b_run"),
                last_seen_at=bindparam("b_at"),
                fixed_at=None,
            ),
            reopen,
        )
    if fixed:
        connection.execute(update(_T).where(by_id).values(fixed_at=bindparam("b_at")), fixed)
    return fresh, still, reopened, gone


def _annotate(
    current: pd.DataFrame,
    fresh: pd.DataFrame,
    still: pd.DataFrame,
    reopened: pd.DataFrame,
    gone: pd.DataFrame,
    run_id: str,
    now: dt.datetime,
) -> pd.DataFrame:
    """This run's findings with ``status`` and ``first_seen_at``, plus one row per fixed finding."""
    first_seen = pd.concat(
        [
            fresh[KEY].assign(first_seen_run=run_id, first_seen_at=now),
            reopened[KEY].assign(first_seen_run=run_id, first_seen_at=now),
            still[[*KEY, "first_seen_run", "first_seen_at"]],
        ],
        ignore_index=True,
    )
    out = current.merge(first_seen, on=KEY, how="left")
    out["status"] = (out["first_seen_run"] == run_id).map({True: STATUS_NEW, False: STATUS_OPEN})
    out = out.drop(columns="first_seen_run")

    if len(gone):
        hints = _hints()
        resolved = gone[[*KEY, "severity", "first_seen_at"]].copy()
        resolved["hint"] = [hints.get((e, r, f), "") for e, _, r, f in resolved[KEY].itertuples(index=False)]
        resolved["row"] = -1
        resolved["status"] = STATUS_FIXED
        out = pd.concat([out, resolved[out.columns]], ignore_index=True)
    out["first_seen_at"] = pd.to_datetime(out["first_seen_at"], utc=True)
    text = [c for c in out.columns if c not in ("row", "first_seen_at")]
    out[text] = out[text].astype("string")
    out["row"] = out["row"].astype("int64")
    return out.reset_index(drop=True)
