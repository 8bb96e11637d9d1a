"""Default schedules spread per school (issue 13 item 11): every DAG used to start at 01:30."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from croniter import croniter

from mis_sync.config import load_establishment
from mis_sync.errors import SetupError
from mis_sync.schedules import (
    ScheduleWindow,
    effective_schedule,
    parse_window,
    school_offset,
    spread_schedule,
    window_from_airflow,
)

WINDOW = parse_window("01:00", 120)


def _minute_of_day(cron: str) -> int:
    minute, hour, *rest = cron.split()
    assert rest == ["*", "*", "*"] and croniter.is_valid(cron)
    return int(hour) * 60 + int(minute)


def test_a_trust_of_schools_is_spread_over_the_window() -> None:
    ids = [f"trust-school-{n}" for n in range(40)]
    minutes = [_minute_of_day(spread_schedule(i, WINDOW)) for i in ids]
    assert all(60 <= m < 180 for m in minutes)
    assert len(set(minutes)) >= 30  # 40 schools in 120 minutes: a few may share a minute, not all
    assert max(Counter(minutes).values()) <= 3


def test_the_offset_is_stable_and_independent_of_other_schools() -> None:
    # blake2b of the id, not Python's salted hash(): pinned, so no release or restart moves a school's night
    assert school_offset("demo-academy", 120) == 42
    assert spread_schedule("demo-academy", WINDOW) == "42 1 * * *"
    assert spread_schedule("demo-academy", parse_window("02:30", 120)) == "12 3 * * *"


def test_a_school_schedule_wins_and_a_window_can_cross_midnight() -> None:
    assert effective_schedule("0 5 * * 1-5", "any", WINDOW) == "0 5 * * 1-5"
    late = parse_window("23:30", 60)
    assert all(
        _minute_of_day(spread_schedule(f"s{n}", late)) >= 23 * 60 + 30
        or _minute_of_day(spread_schedule(f"s{n}", late)) < 30
        for n in range(50)
    )


@pytest.mark.parametrize(("start", "minutes"), [("1am", 60), ("25:00", 60), ("01:00", 0), ("01:00", "two")])
def test_a_bad_window_names_the_setting(start: str, minutes: object) -> None:
    with pytest.raises(SetupError, match=r"\[misync\] schedule_window_"):
        parse_window(start, minutes)  # type: ignore[arg-type]


def test_the_window_comes_from_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MISYNC__SCHEDULE_WINDOW_START", "02:15")
    monkeypatch.setenv("AIRFLOW__MISYNC__SCHEDULE_WINDOW_MINUTES", "30")
    assert window_from_airflow() == ScheduleWindow(2 * 60 + 15, 30)


def test_an_establishment_without_schedule_gets_its_spread_time(tmp_path: Path) -> None:
    text = "id: {id}\nname: X\nlaestab: '8814001'\nmis: {{type: file_drop, connection_id: x}}\n"
    crons = set()
    for school in ("north-primary", "south-primary", "east-academy", "west-academy"):
        path = tmp_path / f"{school}.yaml"
        path.write_text(text.format(id=school))
        config = load_establishment(path)
        assert config.schedule is None
        crons.add(config.cron)
        own = tmp_path / "own" / f"{school}.yaml"
        own.parent.mkdir(exist_ok=True)
        own.write_text(text.format(id=school) + 'schedule: "30 1 * * *"\n')
        assert load_establishment(own).cron == "30 1 * * *"
    assert len(crons) > 1, "four schools no longer all start at one time"
