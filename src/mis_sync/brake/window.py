"""The rolling window: what earlier runs already removed, so repeated small losses add up.

Each run's report records ``losses`` (its applied destructive changes per scope key, expected ones left
out) in ``directory_sync_runs``. The window sums the losses of applied runs whose MIS snapshot falls in
the last ``window_days`` before this one, counting only runs after the last approval: an admin who
approved a loss has accepted it, and is asked again only about what comes after.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from sqlalchemy import Engine, select

from mis_sync.brake.scopes import Window
from mis_sync.directory.schema import SyncRun

HISTORY_ROWS = 400
"""Recent runs read back (a year of nightly runs and a few manual ones); the window uses days of them."""


def _utc(value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def load_window(engine: Engine, establishment_id: str, snapshot_at: pd.Timestamp, days: int) -> Window:
    """The losses applied within ``days`` before ``snapshot_at`` (since the last approval)."""
    if days <= 0:
        return Window(days=0, losses={})
    with engine.connect() as connection:
        rows = connection.execute(
            select(SyncRun.snapshot_at, SyncRun.summary)
            .where(SyncRun.establishment_id == establishment_id, SyncRun.outcome == "applied")
            .order_by(SyncRun.finished_at.desc())
            .limit(HISTORY_ROWS)
        ).all()
    now = _utc(snapshot_at)
    start = now - pd.Timedelta(days=days)
    recent = []
    for taken, summary in rows:
        if taken is None or not (start < _utc(taken) < now):
            continue
        report = json.loads(summary)
        recent.append((_utc(taken), report.get("losses") or {}, bool(report.get("window_reset"))))
    recent.sort(key=lambda item: item[0])
    resets = [i for i, (_, _, reset) in enumerate(recent) if reset]
    counted = recent[resets[-1] + 1 :] if resets else recent
    total: Counter[str] = Counter()
    for _, losses, _ in counted:
        total.update({str(k): int(v) for k, v in losses.items()})
    return Window(days=days, losses=dict(total), runs=sum(1 for _, losses, _ in counted if losses))
