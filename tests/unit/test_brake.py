"""The deletion brake knows the school calendar."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from mis_sync.brake import evaluate
from mis_sync.config import SafetyLimits


def _school() -> pd.DataFrame:
    """A 1,000-pupil secondary: 200 per year in Y7–Y11, plus 100 staff."""
    pupils = [("pupil", str(year)) for year in range(7, 12) for _ in range(200)]
    staff = [("teaching_staff", None)] * 100
    return pd.DataFrame(pupils + staff, columns=["role", "year_group"]).astype("string")


def _leaving(year: str, count: int) -> pd.DataFrame:
    return pd.DataFrame({"action": "suspend", "role": "pupil", "year_group": [year] * count}).astype("string")


def test_term_time_run_losing_35_percent_of_year_8_waits_for_approval() -> None:
    decision = evaluate(_leaving("8", 70), _school(), dt.date(2026, 2, 3), SafetyLimits())
    assert decision.held
    assert decision.reasons == ("year 8: 70 of 200 pupils (35%)",)
    assert decision.counts == {"pupil": 70}
    assert "waiting for approval" in decision.message


def test_july_run_losing_year_11_passes_by_default() -> None:
    decision = evaluate(_leaving("11", 200), _school(), dt.date(2026, 7, 22), SafetyLimits())
    assert not decision.held
    assert decision.counts == {"pupil": 200}


def test_the_same_year_11_loss_in_term_time_is_held() -> None:
    decision = evaluate(_leaving("11", 200), _school(), dt.date(2026, 11, 20), SafetyLimits())
    assert decision.held
    assert "pupil: 200 of 1000 (20%)" in decision.reasons


def test_july_run_losing_year_8_is_still_held() -> None:
    decision = evaluate(_leaving("8", 70), _school(), dt.date(2026, 7, 22), SafetyLimits())
    assert decision.held


def test_small_losses_pass() -> None:
    decision = evaluate(_leaving("9", 10), _school(), dt.date(2026, 2, 3), SafetyLimits())
    assert not decision.held


def test_scotland_expects_s4_to_s6_and_p7() -> None:
    school = pd.DataFrame({"role": "pupil", "year_group": ["S4"] * 100 + ["S2"] * 100}).astype("string")
    leaving = pd.DataFrame({"action": "suspend", "role": "pupil", "year_group": ["S4"] * 60}).astype("string")
    assert not evaluate(leaving, school, dt.date(2026, 7, 1), SafetyLimits(), "scotland").held
    assert evaluate(leaving, school, dt.date(2026, 7, 1), SafetyLimits(), "england").held


def test_staff_mass_deletion_is_held() -> None:
    staff = pd.DataFrame({"action": "delete", "role": "teaching_staff", "year_group": [None] * 60})
    decision = evaluate(staff.astype("string"), _school(), dt.date(2026, 7, 22), SafetyLimits())
    assert decision.held
    assert decision.reasons == ("teaching_staff: 60 of 100 (60%)",)
