"""The synthetic school generator: determinism, sizes, integrity, edge cases and the file-drop writer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from mis_sync.generator import (
    PROFILES,
    file_drop_spec,
    generate_school,
    generate_trust,
    plan_trust,
    write_file_drop,
    write_trust,
)
from mis_sync.generator.names import (
    APOSTROPHE_SURNAMES_ASCII,
    APOSTROPHE_SURNAMES_TYPOGRAPHIC,
    EDGE_FIRST_NAMES,
    EDGE_SURNAMES,
)
from mis_sync.generator.profiles import NC_INDEX
from mis_sync.identifiers import VALID_LA_CODES, upn_problems
from mis_sync.model import ACADEMIC_YEAR_PATTERN, ENTITIES, Extract
from mis_sync.paths import mis_schemas_dir

AS_OF = dt.date(2026, 1, 15)
LAESTAB = "3804123"


@pytest.fixture(scope="module")
def secondary() -> Extract:
    return generate_school("secondary", 11, AS_OF, establishment_id="test-secondary", laestab=LAESTAB)


@pytest.fixture(scope="module")
def schools(secondary: Extract) -> dict[str, Extract]:
    out = {p: generate_school(p, 5, AS_OF) for p in ("small-primary", "large-primary", "large-secondary")}
    out["secondary"] = secondary
    return out


def _tables(extract: Extract) -> tuple[pd.DataFrame, ...]:
    t = extract.tables
    return t["pupils"], t["staff"], t["contacts"], t["groups"], t["memberships"], t["relationships"]


def test_same_seed_same_frames_other_seed_differs(secondary: Extract) -> None:
    again = generate_school("secondary", 11, AS_OF, establishment_id="test-secondary", laestab=LAESTAB)
    assert again.snapshot_at == secondary.snapshot_at
    for name in ENTITIES:
        pd.testing.assert_frame_equal(again.tables[name], secondary.tables[name])
    other = generate_school("secondary", 12, AS_OF, laestab=LAESTAB)
    assert not other.tables["pupils"].equals(secondary.tables["pupils"])


def test_tables_have_canonical_shape(schools: dict[str, Extract]) -> None:
    for extract in schools.values():
        assert extract.source == "generator"
        for name, entity in ENTITIES.items():
            frame = extract.tables[name]
            pd.testing.assert_frame_equal(entity.coerce(frame), frame)
            assert not frame.duplicated(list(entity.key)).any(), name
            assert frame[entity.required_columns].notna().all().all(), name


def test_snapshot_is_six_am_london_in_utc() -> None:
    winter = generate_school("small-primary", 1, dt.date(2026, 1, 15)).snapshot_at
    summer = generate_school("small-primary", 1, dt.date(2026, 7, 1)).snapshot_at
    assert str(winter.tz) == "UTC"
    assert winter == pd.Timestamp("2026-01-15T06:00:00Z")
    assert summer == pd.Timestamp("2026-07-01T05:00:00Z")  # 06:00 BST


@pytest.mark.parametrize("profile", ["small-primary", "large-primary", "secondary", "large-secondary"])
@pytest.mark.parametrize("seed", [0, 1])
def test_counts_within_profile_ranges(profile: str, seed: int) -> None:
    spec = PROFILES[profile]
    pupils, staff, contacts, groups, memberships, _ = _tables(generate_school(profile, seed, AS_OF))
    kinds = memberships.merge(groups[["mis_id", "kind"]], left_on="group_id", right_on="mis_id")["kind"]
    teaching_pupils = int(((kinds == "teaching") & (memberships["role"] == "pupil").to_numpy()).sum())
    checks = {
        "pupils": ((pupils["enrolment_status"] == "on_roll").sum(), spec.pupils_range),
        "staff": (len(staff), spec.staff_range),
        "contacts": (len(contacts), spec.contacts_range),
        "registration": ((groups["kind"] == "registration").sum(), spec.registration_groups_range),
        "teaching": ((groups["kind"] == "teaching").sum(), spec.teaching_groups_range),
        "teaching memberships": (teaching_pupils, spec.teaching_memberships_range),
    }
    for what, (count, (low, high)) in checks.items():
        assert low <= count <= high, f"{profile} {what}: {count} not in {low}-{high}"
    assert (groups["kind"] == "year").sum() == len(spec.cohorts)


def test_canonical_codes(schools: dict[str, Extract]) -> None:
    for extract in schools.values():
        pupils, staff, _, groups, memberships, _ = _tables(extract)
        assert set(pupils["enrolment_status"]) <= {"on_roll", "pre_admission", "leaver"}
        assert set(staff["enrolment_status"]) <= {"on_roll", "pre_admission", "leaver"}
        assert set(groups["kind"]) <= {"year", "registration", "teaching"}
        assert set(memberships["role"]) == {"pupil", "teacher"}
        assert set(pupils["year_group"]) <= set(NC_INDEX) - {"14"}
        assert groups["academic_year"].str.fullmatch(ACADEMIC_YEAR_PATTERN).all()
        assert set(groups["academic_year"]) == {"2025/26"}
        for frame, prefix in ((pupils, "P"), (staff, "S"), (groups, "G")):
            assert frame["mis_id"].str.startswith(prefix).all()
        assert set(pupils["gender"]) <= {"F", "M"}
    for as_of, label in ((dt.date(2025, 9, 1), "2025/26"), (dt.date(2025, 8, 31), "2024/25")):
        assert set(generate_school("small-primary", 1, as_of).tables["groups"]["academic_year"]) == {label}


def test_every_upn_is_valid_unique_and_from_the_school_la(schools: dict[str, Extract]) -> None:
    for extract in schools.values():
        pupils = extract.tables["pupils"]
        upns = pd.concat([pupils["upn"], pupils["former_upn"]]).dropna()
        assert upn_problems(upns).isna().all()
        assert not upns.duplicated().any()
        assert upns.str[1:4].nunique() == 1
        assert upns.iloc[0][1:4] in VALID_LA_CODES
    secondary_upns = schools["secondary"].tables["pupils"]["upn"].dropna()
    assert (secondary_upns.str[1:8] == LAESTAB).all()


def test_referential_integrity(schools: dict[str, Extract]) -> None:
    for extract in schools.values():
        pupils, staff, contacts, groups, memberships, relationships = _tables(extract)
        assert memberships["group_id"].isin(groups["mis_id"]).all()
        is_pupil = memberships["role"] == "pupil"
        assert memberships.loc[is_pupil, "person_id"].isin(pupils["mis_id"]).all()
        assert memberships.loc[~is_pupil, "person_id"].isin(staff["mis_id"]).all()
        assert relationships["pupil_id"].isin(pupils["mis_id"]).all()
        assert relationships["contact_id"].isin(contacts["mis_id"]).all()
        assert contacts["staff_mis_id"].dropna().isin(staff["mis_id"]).all()
        assert pupils["registration_group_id"].dropna().isin(groups["mis_id"]).all()
        assert contacts["mis_id"].isin(relationships["contact_id"]).all()


def test_pupils_in_their_year_and_registration_groups(schools: dict[str, Extract]) -> None:
    for extract in schools.values():
        pupils, staff, _, groups, memberships, _ = _tables(extract)
        on_roll = pupils[pupils["enrolment_status"] == "on_roll"]
        members = memberships.merge(groups, left_on="group_id", right_on="mis_id", suffixes=("", "_g"))
        pupil_rows = members[members["role"] == "pupil"]
        assert set(pupil_rows["person_id"]) == set(on_roll["mis_id"])  # nobody off roll is in a group
        for kind in ("year", "registration"):
            rows = pupil_rows[pupil_rows["kind"] == kind].set_index("person_id")
            assert rows.index.is_unique
            assert len(rows) == len(on_roll)
            years = rows.loc[on_roll["mis_id"], "year_group"].to_numpy()
            assert (years == on_roll["year_group"].to_numpy()).all()
        registration = pupil_rows[pupil_rows["kind"] == "registration"].set_index("person_id")["group_id"]
        in_group = registration.loc[on_roll["mis_id"]].to_numpy()
        assert (in_group == on_roll["registration_group_id"].to_numpy()).all()
        teachers = memberships.loc[memberships["role"] == "teacher", "person_id"]
        current = staff.loc[(staff["enrolment_status"] == "on_roll") & staff["is_teaching"], "mis_id"]
        assert teachers.isin(current).all()
        tutors = members[(members["role"] == "teacher") & (members["kind"] == "registration")]
        assert set(tutors["group_id"]) == set(groups.loc[groups["kind"] == "registration", "mis_id"])


def test_dates_of_birth_fit_year_groups(schools: dict[str, Extract]) -> None:
    for extract in schools.values():
        pupils = extract.tables["pupils"]
        on_roll = pupils[pupils["enrolment_status"] == "on_roll"]
        nc = on_roll["year_group"].map(NC_INDEX).astype(int)
        start = pd.to_datetime((2025 - nc - 5).astype(str) + "-09-01")
        end = pd.to_datetime((2025 - nc - 4).astype(str) + "-08-31")
        inside = (on_roll["date_of_birth"] >= start) & (on_roll["date_of_birth"] <= end)
        assert inside.mean() >= 0.98


def test_lifecycle_dates(schools: dict[str, Extract]) -> None:
    today = pd.Timestamp(AS_OF)
    for extract in schools.values():
        pupils, staff, *_ = _tables(extract)
        status = pupils["enrolment_status"]
        leavers, pre = pupils[status == "leaver"], pupils[status == "pre_admission"]
        assert (leavers["leaving_date"] < today).all()
        assert leavers["registration_group_id"].isna().all()
        assert (leavers["leaving_date"] >= leavers["admission_date"]).all()
        assert (pre["admission_date"] > today).all()
        assert pre["registration_group_id"].isna().all()
        assert (pupils.loc[status == "on_roll", "admission_date"] <= today).all()
        assert (staff.loc[staff["enrolment_status"] == "leaver", "leaving_date"] < today).all()
        assert (staff.loc[staff["enrolment_status"] == "pre_admission", "start_date"] > today).all()


def test_emails_use_reserved_example_domains(schools: dict[str, Extract]) -> None:
    for extract in schools.values():
        pupils, staff, contacts, *_ = _tables(extract)
        assert pupils["email"].dropna().str.endswith("@pupils.example.sch.uk").all()
        assert staff["email"].dropna().str.endswith("@example.sch.uk").all()
        domains = contacts["email"].dropna().str.split("@").str[1]
        assert domains.isin(["example.com", "example.org", "example.net", "example.sch.uk"]).all()
        assert not pupils["email"].dropna().duplicated().any()
        assert not staff["email"].dropna().duplicated().any()


def test_edge_cases_present_in_a_secondary(secondary: Extract) -> None:
    pupils, staff, contacts, groups, memberships, relationships = _tables(secondary)
    today = pd.Timestamp(AS_OF)
    on_roll = pupils[pupils["enrolment_status"] == "on_roll"]
    first, last = pupils["legal_first_name"], pupils["legal_last_name"]
    for name, _ in EDGE_FIRST_NAMES:
        assert (first == name).any(), name
    for name in EDGE_SURNAMES:
        assert (last == name).any(), name
    assert ((first == "Seán") & (last == "Ó Súilleabháin")).any()
    assert last.isin(APOSTROPHE_SURNAMES_ASCII).sum() >= 2
    assert last.isin(APOSTROPHE_SURNAMES_TYPOGRAPHIC).sum() >= 2
    assert last.str.contains("-").sum() >= 5
    differs = (first != pupils["preferred_first_name"]) | (last != pupils["preferred_last_name"])
    assert differs.sum() >= 10
    same_name = on_roll.groupby(["year_group", "preferred_first_name", "preferred_last_name"]).size()
    assert (same_name == 2).any()
    assert (same_name >= 3).any()
    long_names = on_roll["preferred_first_name"].str.len() + on_roll["preferred_last_name"].str.len()
    assert (long_names > 20).sum() >= 2
    upn = pupils["upn"]
    assert upn.dropna().str[-1].str.isalpha().sum() >= 2  # temporary UPNs
    assert pupils["former_upn"].notna().sum() >= 2
    assert upn.isna().sum() >= 2
    assert on_roll["upn"].isna().any()
    assert (pupils["enrolment_status"] == "leaver").sum() >= 3
    assert (on_roll["admission_date"] > today - pd.Timedelta(days=31)).sum() >= 3  # joiners
    assert (pupils["enrolment_status"] == "pre_admission").sum() >= 3
    assert pupils.loc[pupils["enrolment_status"] == "pre_admission", "year_group"].notna().all()

    kind = groups.set_index("mis_id")["kind"]
    teacher_counts = memberships[memberships["role"] == "teacher"].groupby("group_id").size()
    teaching = teacher_counts.reindex(groups.loc[groups["kind"] == "teaching", "mis_id"], fill_value=0)
    assert (teaching == 0).any()
    assert (teaching == 2).any()
    assert (teaching == 1).mean() > 0.8
    registration = teacher_counts.reindex(groups.loc[groups["kind"] == "registration", "mis_id"])
    assert (registration == 2).any()
    assert (registration == 1).mean() > 0.8
    assert set(kind.reindex(memberships["group_id"])) == {"year", "registration", "teaching"}

    assert (relationships.groupby("contact_id")["pupil_id"].nunique() >= 2).sum() >= 10  # siblings
    assert (relationships.groupby("pupil_id").size() > 3).any()
    staff_parents = contacts.loc[contacts["staff_mis_id"].notna(), "mis_id"]
    linked = relationships.loc[relationships["contact_id"].isin(staff_parents), "pupil_id"]
    assert linked.isin(on_roll["mis_id"]).any()
    assert contacts["email"].isna().any()
    assert (contacts["email"].dropna().value_counts() == 2).any()  # two parents, one address
    assert (~relationships["parental_responsibility"]).any()
    assert (~staff["is_teaching"]).sum() >= 20
    assert 1 <= staff["staff_code"].isna().sum() <= 0.05 * len(staff)
    current = staff[staff["enrolment_status"] == "on_roll"]
    assert not current["staff_code"].dropna().duplicated().any()


def _read_back(folder: Path) -> dict[str, pd.DataFrame]:
    spec = file_drop_spec()
    frames = {}
    for name, entity in ENTITIES.items():
        entry = spec["entities"][name]
        raw = pd.read_csv(folder / entry["file"], dtype=str, keep_default_na=False, encoding="utf-8")
        assert list(raw.columns) == list(entry["columns"])  # every header, in the YAML's order
        frames[name] = entity.coerce(raw.rename(columns=entry["columns"]))
    return frames


def test_write_file_drop_round_trips(secondary: Extract, tmp_path: Path) -> None:
    write_file_drop(secondary, tmp_path)
    for name, frame in _read_back(tmp_path).items():
        pd.testing.assert_frame_equal(frame, secondary.tables[name])
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == {
        "format": "mis-sync-file-drop",
        "version": 1,
        "snapshot_at": "2026-01-15T06:00:00Z",
        "source": "generator",
        "counts": secondary.counts(),
    }
    text = (tmp_path / "staff.csv").read_text(encoding="utf-8")
    assert ",true," in text
    assert ",false," in text
    assert "2026-" in (tmp_path / "pupils.csv").read_text(encoding="utf-8")


def test_mis_schemas_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MISYNC_SCHEMAS_DIR", raising=False)
    assert (mis_schemas_dir() / "file_drop.yaml").is_file()
    monkeypatch.setenv("MISYNC_SCHEMAS_DIR", str(tmp_path))
    assert mis_schemas_dir() == tmp_path


def test_rejects_unknown_profiles_and_bad_laestab() -> None:
    with pytest.raises(ValueError, match="unknown school profile"):
        generate_school("mat", 1, AS_OF)
    with pytest.raises(ValueError, match="census LA code"):
        generate_school("small-primary", 1, AS_OF, laestab="9992000")


def test_trust_plan_matches_the_mat_profile() -> None:
    plan = plan_trust(3)
    assert plan == plan_trust(3)
    assert len(plan) == sum(count for _, count in PROFILES["mat"].members) == 90
    assert len({slug for _, slug, _, _ in plan}) == 90
    assert len({laestab for _, _, laestab, _ in plan}) == 90
    assert all(laestab[:3] in VALID_LA_CODES for _, _, laestab, _ in plan)


def test_small_trust_is_unique_across_schools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    small = dataclasses.replace(PROFILES["mat"], members=(("small-primary", 2), ("secondary", 1)))
    monkeypatch.setitem(PROFILES, "mat", small)
    trust = generate_trust(4, AS_OF)
    assert len(trust) == 3
    pupils = pd.concat([extract.tables["pupils"] for _, _, extract in trust])
    staff = pd.concat([extract.tables["staff"] for _, _, extract in trust])
    assert not pupils["upn"].dropna().duplicated().any()
    assert not pupils["email"].dropna().duplicated().any()
    assert not staff["email"].dropna().duplicated().any()
    for _, laestab, extract in trust:
        assert (extract.tables["pupils"]["upn"].dropna().str[1:8] == laestab).all()
    write_trust(trust, tmp_path)
    listing = json.loads((tmp_path / "trust.json").read_text(encoding="utf-8"))
    assert [school["id"] for school in listing["establishments"]] == [slug for slug, _, _ in trust]
    slug, _, extract = trust[0]
    for name, frame in _read_back(tmp_path / slug).items():
        pd.testing.assert_frame_equal(frame, extract.tables[name])
