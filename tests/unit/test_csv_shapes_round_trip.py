"""CSV folder shapes (Microsoft SDS UK, SDS v2.1, OneRoster 1.1 CSV): generated-school round trips and
the written files' header rows against Microsoft's samples and the OneRoster fixture.

A round trip generates the ``large-secondary`` school, writes the shape, reads it back with the
connector and compares with what the format can carry (``*_carries`` below: each item left out is
listed there, and in the writer's module docstring, ``mis_sync.generator.shapes``).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.sds import load_format
from mis_sync.generator import generate_school
from mis_sync.generator.shapes.oneroster_csv import write_oneroster_csv
from mis_sync.generator.shapes.oneroster_rest import contact_role, contact_roles
from mis_sync.generator.shapes.sds_uk import write_sds_uk
from mis_sync.generator.shapes.sds_v2_1 import write_sds_v2_1
from mis_sync.model import ENTITIES, Extract

TESTS = Path(__file__).resolve().parents[1]
SDS_SAMPLES = TESTS / "data" / "microsoft-sds-samples"
ONEROSTER_FIXTURE = TESTS / "fixtures" / "oneroster-1.1"
AS_OF = dt.date(2026, 1, 15)
SEED = 7

Tables = dict[str, pd.DataFrame]


# ---- the normalising comparison ----------------------------------------------------------------------


def normalised(tables: Tables) -> Tables:
    """Canonical dtypes, rows sorted by each entity's key: order is not part of the data."""
    out = {}
    for name, entity in ENTITIES.items():
        frame = entity.coerce(tables[name].reset_index(drop=True))
        out[name] = frame.sort_values(list(entity.key)).reset_index(drop=True)
    return out


def blank(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    return frame.assign(**{c: pd.Series(pd.NA, index=frame.index, dtype=frame[c].dtype) for c in columns})


def empty(name: str) -> pd.DataFrame:
    return ENTITIES[name].empty_frame()


def assert_same(expected: Tables, actual: Extract) -> None:
    want, got = normalised(expected), normalised(actual.tables)
    for name in ENTITIES:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


def kept_members(t: Tables, groups: pd.DataFrame, pupils: pd.DataFrame, staff: pd.DataFrame) -> pd.DataFrame:
    members = t["memberships"]
    people = set(pupils["mis_id"]) | set(staff["mis_id"])
    return members[members["group_id"].isin(set(groups["mis_id"])) & members["person_id"].isin(people)]


# ---- what each format can carry ----------------------------------------------------------------------


def sds_uk_carries(school: Extract) -> Tables:
    """SDS UK: Student, Teacher, Section and the two membership files, nothing else.

    - no contacts and no relationships (no file for them);
    - pre-admissions are not written (SDS lists on-roll pupils and staff; leavers are ``Inactive``);
    - only teaching groups (every Section is a class): year and registration groups, their memberships,
      a pupil's registration group and a group's year group are lost;
    - pupils: no preferred names, gender, UPN, former UPN, SCN, admission or leaving date, and no email
      (``Secondary Email`` is a non-school address, deliberately unmapped);
    - staff: no preferred names, date of birth, email, start or leaving date; every Teacher row is read
      as teaching (``is_teaching`` true).
    """
    t = dict(school.tables)
    pupils = t["pupils"][t["pupils"]["enrolment_status"] != "pre_admission"]
    pupils = blank(
        pupils,
        "preferred_first_name",
        "preferred_last_name",
        "gender",
        "upn",
        "former_upn",
        "scn",
        "registration_group_id",
        "admission_date",
        "leaving_date",
        "email",
    )
    staff = t["staff"][t["staff"]["enrolment_status"] != "pre_admission"]
    staff = blank(
        staff,
        "preferred_first_name",
        "preferred_last_name",
        "date_of_birth",
        "email",
        "start_date",
        "leaving_date",
    ).assign(is_teaching=True)
    groups = blank(t["groups"][t["groups"]["kind"] == "teaching"], "year_group")
    return {
        "pupils": pupils,
        "staff": staff,
        "contacts": empty("contacts"),
        "groups": groups,
        "memberships": kept_members(t, groups, pupils, staff),
        "relationships": empty("relationships"),
    }


def sds_v2_1_carries(school: Extract) -> Tables:
    """SDS v2.1: users pivoted through roles, demographics, classes with courses, relationships.

    - pupils and staff on roll only: the connector reads everyone with a role as on roll, so leavers and
      pre-admissions are not written;
    - only teaching groups (every class is read as teaching): year and registration groups, their
      memberships, a pupil's registration group and a group's year group are lost;
    - pupils: no preferred names, UPN, former UPN, SCN, admission or leaving date;
    - staff: no title, preferred names, staff code, start or leaving date;
    - contacts: no title, preferred names or staff link;
    - relationships: ``relationshipRole`` is parent / relative / guardian only (``contact_role`` of the
      link's wording); no parental responsibility or priority.
    """
    t = dict(school.tables)
    pupils = t["pupils"][t["pupils"]["enrolment_status"] == "on_roll"]
    pupils = blank(
        pupils,
        "preferred_first_name",
        "preferred_last_name",
        "upn",
        "former_upn",
        "scn",
        "registration_group_id",
        "admission_date",
        "leaving_date",
    )
    staff = t["staff"][t["staff"]["enrolment_status"] == "on_roll"]
    staff = blank(
        staff,
        "title",
        "preferred_first_name",
        "preferred_last_name",
        "staff_code",
        "start_date",
        "leaving_date",
    )
    contacts = blank(t["contacts"], "title", "preferred_first_name", "preferred_last_name", "staff_mis_id")
    groups = blank(t["groups"][t["groups"]["kind"] == "teaching"], "year_group")
    links = t["relationships"][t["relationships"]["pupil_id"].isin(set(pupils["mis_id"]))]
    links = links.assign(relationship=links["relationship"].map(contact_role).str.capitalize())
    return {
        "pupils": pupils,
        "staff": staff,
        "contacts": contacts,
        "groups": groups,
        "memberships": kept_members(t, groups, pupils, staff),
        "relationships": blank(links, "parental_responsibility", "priority"),
    }


def oneroster_csv_carries(school: Extract) -> Tables:
    """OneRoster 1.1 CSV: users (with agents), demographics, homeroom and scheduled classes, enrollments.

    - no pre-admissions (a feed lists people on roll; leavers stay, ``enabledUser=false``);
    - no year groups (no class type for them) and so no year-group memberships;
    - pupils: no preferred names, UPN (written in ``userIds``, which the connector does not read),
      former UPN, SCN, admission or leaving date;
    - staff: no title, preferred names, start or leaving date;
    - contacts: no title, preferred names or staff link;
    - relationships: the contact's one role (from their first link), capitalised; no parental
      responsibility or priority.
    """
    t = dict(school.tables)
    pupils = t["pupils"][t["pupils"]["enrolment_status"] != "pre_admission"]
    pupils = blank(
        pupils,
        "preferred_first_name",
        "preferred_last_name",
        "upn",
        "former_upn",
        "scn",
        "admission_date",
        "leaving_date",
    )
    staff = t["staff"][t["staff"]["enrolment_status"] != "pre_admission"]
    staff = blank(staff, "title", "preferred_first_name", "preferred_last_name", "start_date", "leaving_date")
    contacts = blank(t["contacts"], "title", "preferred_first_name", "preferred_last_name", "staff_mis_id")
    groups = t["groups"][t["groups"]["kind"] != "year"]
    roles = contact_roles(school)
    links = t["relationships"][t["relationships"]["pupil_id"].isin(set(pupils["mis_id"]))]
    links = links.assign(relationship=links["contact_id"].map(roles).str.capitalize())
    return {
        "pupils": pupils,
        "staff": staff,
        "contacts": contacts,
        "groups": groups,
        "memberships": kept_members(t, groups, pupils, staff),
        "relationships": blank(links, "parental_responsibility", "priority"),
    }


Writer = Callable[[Extract, Path], list[Path]]
FORMATS: dict[str, tuple[Writer, Callable[[Extract], Tables]]] = {
    "sds_uk": (write_sds_uk, sds_uk_carries),
    "sds_v2_1": (write_sds_v2_1, sds_v2_1_carries),
    "oneroster_csv": (write_oneroster_csv, oneroster_csv_carries),
}


@pytest.fixture(scope="module")
def school() -> Extract:
    return generate_school("large-secondary", SEED, AS_OF)


@pytest.fixture(scope="module")
def written(school: Extract, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each format written once for the module: the round trip and the header checks share them."""
    folders = {}
    for mis_type, (write, _) in FORMATS.items():
        folder = tmp_path_factory.mktemp(mis_type)
        write(school, folder)
        folders[mis_type] = folder
    return folders


def extract(mis_type: str, folder: Path) -> Extract:
    return connector_for(mis_type, ConnectionInfo(conn_id="t", extra={"path": str(folder)}), {}).extract()


def header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


# ---- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mis_type", list(FORMATS))
def test_round_trips_a_large_secondary(mis_type: str, school: Extract, written: dict[str, Path]) -> None:
    got = extract(mis_type, written[mis_type])
    assert got.source == mis_type
    assert got.snapshot_at == school.snapshot_at  # files are stamped with the extract's time
    carries = FORMATS[mis_type][1]
    assert_same(carries(school), got)
    # The comparison is not vacuous: every table the format has is well filled.
    counts = got.counts()
    assert counts["pupils"] > 1500 and counts["staff"] > 200 and counts["memberships"] > 15000
    if mis_type != "sds_uk":
        assert counts["contacts"] > 3000 and counts["relationships"] > 3000


# ---- the files themselves ----------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["sds-uk-25-users", "sds-uk-min-required"])
def test_sds_uk_headers_match_microsofts_samples(written: dict[str, Path], sample: str) -> None:
    """The writer's header rows are the full sample's; the minimal sample's are a subset (same order)."""
    folder = written["sds_uk"]
    files = {p.name for p in (SDS_SAMPLES / sample).glob("*.csv")}
    assert files == {p.name for p in folder.glob("*.csv")}
    for name in sorted(files):
        ours, theirs = header(folder / name), header(SDS_SAMPLES / sample / name)
        if sample == "sds-uk-25-users":
            assert ours == theirs, name
        else:
            assert [h for h in ours if h in theirs] == theirs, name


def test_sds_v2_1_headers_match_microsofts_sample(written: dict[str, Path]) -> None:
    """Every file written has the sample's header row; only the optional userFlags.csv is not written."""
    folder = written["sds_v2_1"]
    sample = SDS_SAMPLES / "sds-v2.1"
    ours = {p.name for p in folder.glob("*.csv")}
    assert {p.name for p in sample.glob("*.csv")} - ours == {"userFlags.csv"}
    assert ours <= {p.name for p in sample.glob("*.csv")}
    for name in sorted(ours):
        assert header(folder / name) == header(sample / name), name


def test_oneroster_headers_match_the_fixture(written: dict[str, Path]) -> None:
    folder = written["oneroster_csv"]
    ours = {p.name for p in folder.glob("*.csv")}
    assert ours == {p.name for p in ONEROSTER_FIXTURE.glob("*.csv")}
    for name in sorted(ours):
        assert header(folder / name) == header(ONEROSTER_FIXTURE / name), name


@pytest.mark.parametrize(
    ("mis_type", "sample", "line_end"),
    [
        ("sds_uk", SDS_SAMPLES / "sds-uk-25-users" / "Student.csv", b"\r\n"),
        ("sds_v2_1", SDS_SAMPLES / "sds-v2.1" / "users.csv", b"\r\n"),
        ("oneroster_csv", ONEROSTER_FIXTURE / "users.csv", b"\n"),
    ],
)
def test_dialect_is_the_samples(
    mis_type: str, sample: Path, line_end: bytes, written: dict[str, Path]
) -> None:
    """Same line ends as the sample, no byte-order mark, and every row as wide as its header."""
    assert sample.read_bytes().split(b"\n", 1)[0].endswith(b"\r") == (line_end == b"\r\n")
    for path in written[mis_type].glob("*.csv"):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf"), path.name
        lines = data.split(b"\n")
        assert lines[-1] == b"", path.name
        assert all(line.endswith(b"\r") == (line_end == b"\r\n") for line in lines[:-1]), path.name
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert {len(row) for row in rows} == {len(rows[0])}, path.name


def test_a_renamed_header_in_the_mapping_flows_into_the_writer(
    school: Extract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writer and connector read the same YAML: a renamed source column is written under the new name."""
    spec = load_format("sds_uk")
    pupils = spec.mapping.entities["pupils"]
    renamed_columns = {("Year" if k == "Grade" else k): v for k, v in pupils.columns.items()}
    entities = {**spec.mapping.entities, "pupils": pupils.model_copy(update={"columns": renamed_columns})}
    changed = spec.model_copy(update={"mapping": spec.mapping.model_copy(update={"entities": entities})})
    monkeypatch.setattr("mis_sync.generator.shapes.sds_uk.load_format", lambda source: changed)
    small = Extract(
        tables={name: frame.head(50) for name, frame in school.tables.items()},
        snapshot_at=school.snapshot_at,
        source=school.source,
    )
    write_sds_uk(small, tmp_path)
    columns = header(tmp_path / "Student.csv")
    assert "Year" in columns and columns[: len(columns) - 1] == header(
        SDS_SAMPLES / "sds-uk-25-users" / "Student.csv"
    )
