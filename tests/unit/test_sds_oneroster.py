"""SDS UK, SDS v2.1 and OneRoster 1.1 CSV connectors: Microsoft's sample sets and a OneRoster fixture."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.errors import ExtractError
from mis_sync.model import Extract
from mis_sync.quality.rules import derive_checks

TESTS = Path(__file__).resolve().parents[1]
SAMPLES = TESTS / "data" / "microsoft-sds-samples"
ONEROSTER = TESTS / "fixtures" / "oneroster-1.1"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def extract(mis_type: str, folder: Path) -> Extract:
    return connector_for(mis_type, ConnectionInfo(conn_id="t", extra={"path": str(folder)}), {}).extract()


def test_samples_are_in_the_project_with_their_licence() -> None:
    assert (SAMPLES / "LICENSE.txt").read_text(encoding="utf-8").startswith("The MIT License")
    assert (SAMPLES / "README.md").is_file()
    for name in ("sds-uk-25-users", "sds-uk-min-required", "sds-v2.1"):
        assert any((SAMPLES / name).glob("*.csv"))


def test_catalogue_lists_the_formats() -> None:
    for mis_type in ("sds_uk", "sds_v2_1", "oneroster_csv"):
        assert mis_type in CATALOGUE


@pytest.mark.parametrize("sample", ["sds-uk-25-users", "sds-uk-min-required"])
def test_sds_uk_sample_imports_with_file_counts(sample: str) -> None:
    folder = SAMPLES / sample
    result = extract("sds_uk", folder)
    counts = result.counts()
    assert counts["pupils"] == len(rows(folder / "Student.csv"))
    assert counts["staff"] == len(rows(folder / "Teacher.csv"))
    assert counts["groups"] == len(rows(folder / "Section.csv"))
    pupil_rows = len(rows(folder / "StudentEnrollment.csv"))
    teacher_rows = len(rows(folder / "TeacherRoster.csv"))
    assert counts["memberships"] == pupil_rows + teacher_rows
    roles = result.tables["memberships"]["role"].value_counts().to_dict()
    assert roles == {"pupil": pupil_rows, "teacher": teacher_rows}
    assert counts["contacts"] == counts["relationships"] == 0
    assert (result.tables["pupils"]["enrolment_status"] == "on_roll").all()
    assert (result.tables["groups"]["kind"] == "teaching").all()
    assert result.tables["groups"]["academic_year"].str.fullmatch(r"\d{4}/\d{2}").all()
    assert result.snapshot_at.tzinfo is not None
    # every membership points at an imported group and person
    people = set(result.tables["pupils"]["mis_id"]) | set(result.tables["staff"]["mis_id"])
    assert set(result.tables["memberships"]["group_id"]) <= set(result.tables["groups"]["mis_id"])
    assert set(result.tables["memberships"]["person_id"]) <= people


def test_sds_uk_term_dates_give_the_academic_year() -> None:
    groups = extract("sds_uk", SAMPLES / "sds-uk-25-users").tables["groups"]
    assert set(groups["academic_year"]) == {"2017/18"}  # terms 7/1/2017 – 6/30/2018


def test_sds_v2_1_sample_imports_with_file_counts() -> None:
    folder = SAMPLES / "sds-v2.1"
    result = extract("sds_v2_1", folder)
    counts = result.counts()
    roles = rows(folder / "roles.csv")
    students = {r["userSourcedId"] for r in roles if r["role"] == "student"}
    teachers = {r["userSourcedId"] for r in roles if r["role"] in {"teacher", "professor"}}
    relationships = rows(folder / "relationships.csv")
    enrollments = rows(folder / "enrollments.csv")
    assert counts["pupils"] == len(students) == 4
    assert counts["staff"] == len(teachers) == 2
    assert counts["groups"] == len(rows(folder / "classes.csv"))
    assert counts["memberships"] == len(enrollments)
    assert counts["relationships"] == len(relationships)
    assert counts["contacts"] == len({r["relationshipUserSourcedId"] for r in relationships})
    # every user lands in exactly one of pupils, staff, contacts
    assert counts["pupils"] + counts["staff"] + counts["contacts"] == len(rows(folder / "users.csv"))
    memberships = result.tables["memberships"]
    assert (memberships["role"] == "pupil").sum() == sum(r["role"] == "student" for r in enrollments)
    assert (memberships["role"] == "teacher").sum() == sum(r["role"] != "student" for r in enrollments)
    assert set(result.tables["groups"]["academic_year"]) == {"2021/22"}
    assert result.tables["pupils"]["date_of_birth"].notna().all()


def test_oneroster_fixture_imports_with_counts_and_roles() -> None:
    result = extract("oneroster_csv", ONEROSTER)
    t = result.tables
    users = rows(ONEROSTER / "users.csv")
    assert len(t["pupils"]) == sum(u["role"] == "student" for u in users) == 4
    assert len(t["staff"]) == sum(u["role"] in {"teacher", "administrator"} for u in users) == 3
    assert len(t["contacts"]) == sum(u["role"] in {"parent", "guardian"} for u in users) == 2
    assert len(t["groups"]) == len(rows(ONEROSTER / "classes.csv")) == 3
    assert len(t["memberships"]) == len(rows(ONEROSTER / "enrollments.csv")) == 10
    assert t["memberships"]["role"].value_counts().to_dict() == {"pupil": 7, "teacher": 3}
    assert len(t["relationships"]) == 3
    kinds = dict(zip(t["groups"]["mis_id"], t["groups"]["kind"], strict=True))
    assert kinds == {"cls-7a": "registration", "cls-7ma1": "teaching", "cls-7ma2": "teaching"}
    assert set(t["groups"]["academic_year"]) == {"2025/26"}
    pupils = t["pupils"].set_index("mis_id")
    assert pupils.loc["stu-1", "registration_group_id"] == "cls-7a"
    assert pupils.loc["stu-1", "year_group"] == "7"
    assert pupils.loc["stu-4", "enrolment_status"] == "leaver"
    teaching = dict(zip(t["staff"]["mis_id"], t["staff"]["is_teaching"], strict=True))
    assert teaching == {"tch-1": True, "tch-2": True, "adm-1": False}


def test_oneroster_tobedeleted_rows_are_left_out(tmp_path: Path) -> None:
    folder = tmp_path / "or"
    shutil.copytree(ONEROSTER, folder)
    text = (folder / "enrollments.csv").read_text(encoding="utf-8")
    (folder / "enrollments.csv").write_text(text.replace("enr-10,,,", "enr-10,tobedeleted,2026-01-01,"))
    assert len(extract("oneroster_csv", folder).tables["memberships"]) == 9


def test_oneroster_manifest_version_is_checked(tmp_path: Path) -> None:
    folder = tmp_path / "or"
    shutil.copytree(ONEROSTER, folder)
    manifest = (folder / "manifest.csv").read_text(encoding="utf-8")
    (folder / "manifest.csv").write_text(manifest.replace("oneroster.version,1.1", "oneroster.version,1.2"))
    with pytest.raises(ExtractError, match=r"manifest\.csv: oneroster\.version"):
        extract("oneroster_csv", folder)


def _drop_column(path: Path, column: str) -> None:
    table = rows(path)
    fields = [f for f in table[0] if f != column]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name", "column"),
    [
        ("sds_uk", SAMPLES / "sds-uk-25-users", "Student.csv", "ID"),
        ("sds_uk", SAMPLES / "sds-uk-25-users", "TeacherRoster.csv", "Section ID"),
        ("sds_v2_1", SAMPLES / "sds-v2.1", "roles.csv", "role"),
        ("sds_v2_1", SAMPLES / "sds-v2.1", "enrollments.csv", "classSourcedId"),
        ("oneroster_csv", ONEROSTER, "users.csv", "role"),
        ("oneroster_csv", ONEROSTER, "classes.csv", "termSourcedIds"),
    ],
)
def test_missing_required_column_names_file_and_column(
    tmp_path: Path, mis_type: str, source: Path, file_name: str, column: str
) -> None:
    folder = tmp_path / "drop"
    shutil.copytree(source, folder)
    _drop_column(folder / file_name, column)
    with pytest.raises(ExtractError) as info:
        extract(mis_type, folder)
    assert file_name in str(info.value)
    assert column in str(info.value)


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name"),
    [
        ("sds_uk", SAMPLES / "sds-uk-min-required", "Section.csv"),
        ("sds_v2_1", SAMPLES / "sds-v2.1", "users.csv"),
        ("oneroster_csv", ONEROSTER, "users.csv"),
    ],
)
def test_non_utf8_file_is_named(tmp_path: Path, mis_type: str, source: Path, file_name: str) -> None:
    folder = tmp_path / "drop"
    shutil.copytree(source, folder)
    path = folder / file_name
    path.write_bytes(path.read_bytes() + "9999,Zoë Ørsted,x\n".encode("cp1252"))
    with pytest.raises(ExtractError, match=rf"{file_name}: not UTF-8"):
        extract(mis_type, folder)


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name"),
    [
        ("sds_uk", SAMPLES / "sds-uk-min-required", "Section.csv"),
        ("sds_v2_1", SAMPLES / "sds-v2.1", "users.csv"),
        ("oneroster_csv", ONEROSTER, "users.csv"),
    ],
)
def test_junk_rows_and_runaway_sizes_stop_naming_the_file(
    tmp_path: Path, mis_type: str, source: Path, file_name: str
) -> None:
    from mis_sync.connectors.csv_reading import ReadLimits

    folder = tmp_path / "drop"
    shutil.copytree(source, folder)
    path = folder / file_name
    size = path.stat().st_size
    connection = ConnectionInfo(conn_id="t", extra={"path": str(folder)})
    connector = connector_for(mis_type, connection, {})
    connector.read_limits = ReadLimits(max_bytes=size - 1)
    with pytest.raises(ExtractError, match=rf"^{file_name}: .* MB is over the 0 MB limit"):
        connector.extract()
    columns = len(next(csv.reader(path.read_text(encoding="utf-8-sig").splitlines())))
    with path.open("a", encoding="utf-8") as handle:
        handle.write(",".join(["x" * 3000] * columns) + "\n")
    with pytest.raises(ExtractError, match=rf"^{file_name}: line \d+, column .*: a value longer than 2000"):
        extract(mis_type, folder)


def test_bad_date_marks_its_record_not_the_extract(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    shutil.copytree(SAMPLES / "sds-uk-25-users", folder)
    path = folder / "Student.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("4/2/2000", "31st Feb"), encoding="utf-8")
    pupils = extract("sds_uk", folder).tables["pupils"]
    marked = pupils[pupils["unreadable_fields"].notna()]
    assert marked["unreadable_fields"].tolist() == ["date_of_birth"]
    assert marked["date_of_birth"].isna().all() and "31st Feb" not in pupils.to_csv()


def test_unknown_role_reaches_validation_for_quarantine(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    shutil.copytree(SAMPLES / "sds-v2.1", folder)
    path = folder / "enrollments.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("114007,teacher", "114007,wizard"))
    roles = extract("sds_v2_1", folder).tables["memberships"]["role"]
    assert (~roles.isin(["pupil", "teacher"])).sum() == 1, "kept as given; data quality quarantines it"


def test_missing_required_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    shutil.copytree(SAMPLES / "sds-uk-min-required", folder)
    (folder / "TeacherRoster.csv").unlink()
    with pytest.raises(ExtractError, match=r"TeacherRoster\.csv: required file is missing"):
        extract("sds_uk", folder)


def test_snapshot_is_newest_file_mtime(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    shutil.copytree(SAMPLES / "sds-v2.1", folder)
    for i, path in enumerate(sorted(folder.iterdir())):
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
    newest = 1_700_000_000 + len(list(folder.iterdir())) - 1
    assert extract("sds_v2_1", folder).snapshot_at.timestamp() == newest


def _two_schools(tmp_path: Path) -> Path:
    """Microsoft's minimal sample with school 10002 given pupils, a teacher and links of its own (the
    sample gives it sections only), as a trust's one SDS export for two schools would be."""
    folder = tmp_path / "two-schools"
    shutil.copytree(SAMPLES / "sds-uk-min-required", folder)
    other = [r["ID"] for r in rows(folder / "Section.csv") if r["School DfE Number"] == "10002"][:3]
    with (folder / "Student.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.writelines(f"{23000 + n},10002,pupil{n}\r\n" for n in range(4))
    with (folder / "Teacher.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write("24000,10002,teacher0\r\n")
    with (folder / "StudentEnrollment.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.writelines(f"{section},{23000 + n}\r\n" for section in other for n in range(4))
    with (folder / "TeacherRoster.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.writelines(f"{section},24000\r\n" for section in other)
    return folder


@pytest.mark.parametrize("dfe", ["10001", "10002"])
def test_dfe_number_option_keeps_one_school(tmp_path: Path, dfe: str) -> None:
    """Issue 13 item 13: enrolments and teacher rosters carry no school, so they are kept by section;
    before, every other school's memberships dangled and the error-rate breaker stopped the run."""
    folder = _two_schools(tmp_path)
    connection = ConnectionInfo(conn_id="t", extra={"path": str(folder)})
    result = connector_for("sds_uk", connection, {"dfe_number": dfe}).extract()
    t = result.tables
    students = [r for r in rows(folder / "Student.csv") if r["School DfE Number"] == dfe]
    sections = {r["ID"] for r in rows(folder / "Section.csv") if r["School DfE Number"] == dfe}
    assert len(t["pupils"]) == len(students) and set(t["groups"]["mis_id"]) == sections
    links = rows(folder / "StudentEnrollment.csv") + rows(folder / "TeacherRoster.csv")
    expected = [r for r in links if r["Section ID"] in sections]
    assert 0 < len(expected) < len(links)  # both schools have links in the files
    assert len(t["memberships"]) == len(expected)
    assert set(t["memberships"]["group_id"]) <= sections
    people = set(t["pupils"]["mis_id"]) | set(t["staff"]["mis_id"])
    assert set(t["memberships"]["person_id"]) <= people  # nothing dangles
    checks = derive_checks(result, as_of=dt.date(2018, 1, 15))["memberships"]
    assert not checks["unknown_group"].any() and not checks["unknown_person"].any()


def test_dfe_number_no_section_carries_is_an_error() -> None:
    connection = ConnectionInfo(conn_id="t", extra={"path": str(SAMPLES / "sds-uk-25-users")})
    with pytest.raises(ExtractError, match=r"Section\.csv: no section has School DfE Number 99999"):
        connector_for("sds_uk", connection, {"dfe_number": "99999"}).extract()


def test_misync_check_data_runs_on_sds_uk_sample() -> None:
    misync = Path(sys.executable).with_name("misync")
    command = [str(misync)] if misync.exists() else [sys.executable, "-m", "mis_sync.cli"]
    done = subprocess.run(
        [*command, "check-data", "--input", str(SAMPLES / "sds-uk-25-users"), "--format", "sds_uk"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "finding(s)" in done.stdout
