"""Issue 12 scenario 6: record errors quarantine the record, never stop the school.

A generated secondary, synced once; the next night's export has six unparseable dates of birth, one
membership with an unknown role code, and three pupils who left. Through the real stages (file drop →
validate → plan → apply) on SQLite and PostgreSQL: the run goes on, the faulty records are held as the
directory has them (accounts and memberships untouched), the leavers are suspended as usual, and the
data manager's findings name entity, record and field. Above the error-rate threshold the run still
stops before plan.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.state import load_state
from mis_sync.quality import QualityStop
from mis_sync.storage import read_table
from tests.helpers import audit_count, demo_config
from tests.stage_helpers import first_night, later, read_csv, run_stages, write_csv


@pytest.fixture
def engine(directory_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(directory_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def night_one(engine, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The school's drop folder after a first, clean night."""
    return first_night(engine, tmp_path)


def _on_roll(pupils: pd.DataFrame) -> pd.DataFrame:
    return pupils[(pupils["EnrolmentStatus"] == "on_roll") & (pupils["LeavingDate"] == "")]


def _leave(drop: Path, pupil_ids: set[str]) -> None:
    """Pupils gone from the export, with their memberships and relationships (as an MIS drops them)."""
    pupils = read_csv(drop, "pupils.csv")
    write_csv(drop, "pupils.csv", pupils[~pupils["PupilId"].isin(pupil_ids)])
    for name, column in (("memberships.csv", "PersonId"), ("relationships.csv", "PupilId")):
        frame = read_csv(drop, name)
        write_csv(drop, name, frame[~frame[column].isin(pupil_ids)])


def _memberships_of(engine, pupil_ids: set[str]) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    memberships = load_state(engine, "demo-academy").memberships
    mine = memberships[(memberships["person_kind"] == "pupil") & memberships["person_mis_id"].isin(pupil_ids)]
    return set(zip(mine["group_mis_id"], mine["person_mis_id"], strict=True))


def test_six_bad_dates_and_an_unknown_role_are_quarantined_and_leavers_still_processed(
    engine, night_one: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    drop = night_one
    pupils = read_csv(drop, "pupils.csv")
    on_roll = _on_roll(pupils)
    faulty = set(on_roll["PupilId"].iloc[10:16])
    leavers = set(on_roll["PupilId"].iloc[100:103])
    pupils.loc[pupils["PupilId"].isin(faulty), "DateOfBirth"] = ["31/02/2013", "unknown", "2013-13-01", "x",
                                                                  "2013-02-30", "01-01-2013"]  # fmt: skip
    write_csv(drop, "pupils.csv", pupils)
    memberships = read_csv(drop, "memberships.csv")
    teaching = memberships[memberships["Role"] == "pupil"].iloc[50]
    bad_pair = (teaching["GroupId"], teaching["PersonId"])
    memberships.loc[teaching.name, "Role"] = "stoodent"
    write_csv(drop, "memberships.csv", memberships)
    _leave(drop, leavers)
    later(drop)
    held_before = _memberships_of(engine, faulty | {bad_pair[1]})
    assert bad_pair in held_before

    night = run_stages(engine, tmp_path / "runs", drop, demo_config(), "night-2")

    assert night["validate"]["quarantined"] == {"pupils.value_unreadable": 6, "memberships.code_unknown": 1}
    assert night["apply"]["applied"], "the school's run goes on"
    users = load_state(engine, "demo-academy").users.set_index("mis_id")
    assert set(users.loc[sorted(leavers), "status"]) == {"suspended"}, "leavers are processed as usual"
    assert set(users.loc[sorted(faulty), "status"]) == {"active"}, "a record in error is not a leaver"
    assert _memberships_of(engine, faulty | {bad_pair[1]}) == held_before, "held means untouched"
    assert night["plan"]["users"] == {"suspend": 3}
    assert set(night["plan"]["memberships"]) == {"remove"}, "only the leavers' memberships go"

    findings = read_table(night["ctx"].folder / "validated", "findings")
    errors = findings[findings["severity"] == "error"]
    dob = errors[errors["rule"] == "value_unreadable"]
    assert (
        set(dob["mis_id"]) == faulty
        and set(dob["field"]) == {"date_of_birth"}
        and set(dob["entity"]) == {"pupils"}
    )
    role = errors[errors["rule"] == "code_unknown"]
    assert role[["entity", "field"]].values.tolist() == [["memberships", "role"]]
    text = findings.astype(str).to_csv()
    assert not [v for v in ("31/02/2013", "2013-13-01", "01-01-2013") if v in text], "no values"


def test_above_the_error_rate_the_run_still_stops_before_plan(
    engine, night_one: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    drop = night_one
    pupils = read_csv(drop, "pupils.csv")
    bad = pupils.sample(frac=0.08, random_state=3).index
    pupils.loc[bad, "DateOfBirth"] = "not a date"
    write_csv(drop, "pupils.csv", pupils)
    later(drop)
    audit = audit_count(engine)
    with pytest.raises(QualityStop, match=r"error rate too high: \d+ of \d+ pupils"):
        run_stages(engine, tmp_path / "runs", drop, demo_config(), "night-2")
    assert audit_count(engine) == audit, "nothing planned or applied"
