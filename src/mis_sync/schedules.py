"""Default nightly schedules: a stable time per school inside a window, not every school at 01:30.

Why: with one default time a trust's schools all started together, so their first nights hit an empty
PostgreSQL directory at once (and every night the MIS APIs and the directory at one minute). A school
without ``schedule`` now runs at a minute derived from its id (a hash, so it is the same on every
scheduler, parse and release, and adding a school never moves another), inside a window that the
deployment sets in ``airflow.cfg`` (or env):

    [misync]
    schedule_window_start = 01:00      # AIRFLOW__MISYNC__SCHEDULE_WINDOW_START
    schedule_window_minutes = 120      # AIRFLOW__MISYNC__SCHEDULE_WINDOW_MINUTES

Times are Europe/London (the DAG's timetable time zone). A school's own ``schedule`` always wins.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from mis_sync.errors import SetupError

DEFAULT_WINDOW_START: Final = "01:00"
DEFAULT_WINDOW_MINUTES: Final = 120
"""01:00-02:59 Europe/London: after MIS overnight jobs, well before the school day."""
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DAY: Final = 24 * 60


@dataclass(frozen=True)
class ScheduleWindow:
    start_minute: int
    """Minutes after midnight the window opens."""
    minutes: int
    """How long it is; each school's offset is in ``[0, minutes)``."""


def parse_window(start: str, minutes: str | int) -> ScheduleWindow:
    """``("01:00", 120)`` -> a window; ``SetupError`` naming the setting when either is wrong."""
    match = _TIME.match(str(start).strip())
    if match is None:
        raise SetupError(f"[misync] schedule_window_start must be HH:MM (24-hour), got {start!r}")
    try:
        length = int(str(minutes).strip())
    except ValueError:
        length = 0
    if not 1 <= length <= _DAY:
        raise SetupError(f"[misync] schedule_window_minutes must be a whole number 1-1440, got {minutes!r}")
    return ScheduleWindow(int(match.group(1)) * 60 + int(match.group(2)), length)


def window_from_airflow() -> ScheduleWindow:
    """The window from ``[misync]`` in Airflow's configuration, else the defaults (outside Airflow too)."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # the CLI and tests without Airflow
        return parse_window(DEFAULT_WINDOW_START, DEFAULT_WINDOW_MINUTES)
    start = conf.get("misync", "schedule_window_start", fallback=None) or DEFAULT_WINDOW_START
    minutes = conf.get("misync", "schedule_window_minutes", fallback=None) or DEFAULT_WINDOW_MINUTES
    return parse_window(start, minutes)


def school_offset(establishment_id: str, window_minutes: int) -> int:
    """Minutes after the window opens for this school: stable, and spread evenly over the window."""
    digest = hashlib.blake2b(establishment_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % window_minutes


def spread_schedule(establishment_id: str, window: ScheduleWindow) -> str:
    """The daily cron for a school without its own ``schedule``."""
    at = (window.start_minute + school_offset(establishment_id, window.minutes)) % _DAY
    return f"{at % 60} {at // 60} * * *"


def effective_schedule(own: str | None, establishment_id: str, window: ScheduleWindow | None = None) -> str:
    """The school's own cron if it set one, else its spread default."""
    if own is not None:
        return own
    return spread_schedule(establishment_id, window or window_from_airflow())


__all__ = [
    "DEFAULT_WINDOW_MINUTES",
    "DEFAULT_WINDOW_START",
    "ScheduleWindow",
    "effective_schedule",
    "parse_window",
    "school_offset",
    "spread_schedule",
    "window_from_airflow",
]
