"""Write a canonical ``Extract`` as a Microsoft SDS UK CSV folder (``School``, ``Section``, ``Student``,
``StudentEnrollment``, ``Teacher``, ``TeacherRoster``).

Why: the SDS UK connector (``mis_sync.connectors.sds``) is then tested by a round trip at a real
school's size, not only against Microsoft's 25-user sample. Header names and code values come from
``include/mis_schemas/sds_uk.yaml`` (its ``files`` and ``entities`` sections), so a mapping change flows
into the writer; the full header rows and the CSV dialect (comma, minimal quoting, CRLF line ends, UTF-8
without a BOM, ``M/D/YYYY`` dates) are those of Microsoft's samples in
``tests/data/microsoft-sds-samples/sds-uk-25-users``.

What SDS UK cannot carry (so the writer leaves it out):

- contacts and relationships (the format has no parent or guardian file);
- pre-admissions (SDS lists people on roll and, as ``Inactive``, leavers);
- year and registration groups (every ``Section`` is a teaching class) and so their memberships, a
  pupil's registration group and a section's year group;
- pupils' preferred names, gender, UPN, former UPN, SCN, admission and leaving dates and email
  (``Secondary Email`` is a non-school address; the mapping deliberately ignores it);
- staff preferred names, date of birth, email, start and leaving dates, and whether they teach (every
  ``Teacher`` row is read as a teacher).

Helpers shared with the SDS v2.1 and OneRoster CSV writers (``write_csv``, ``raw_code``, ``stamp_files``)
live here.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from mis_sync.connectors.sds import FormatSpec, load_format
from mis_sync.model import Extract

SOURCE = "sds_uk"
DEFAULT_DFE_NUMBER = "9999999"
"""The canonical model carries no DfE number; a placeholder keeps ``School DfE Number`` columns filled."""

HEADERS: dict[str, tuple[str, ...]] = {
    "school": (
        "DfE Number",
        "Name",
        "School Number",
        "School NCES_ID",
        "State ID",
        "Grade Low",
        "Grade High",
        "Principal SIS ID",
        "Principal Name",
        "Principal Secondary Email",
        "Address",
        "City",
        "State",
        "Country",
        "Postal Code",
        "Phone",
        "Zone",
    ),
    "section": (
        "ID",
        "School DfE Number",
        "Section Name",
        "Section Number",
        "Term SIS ID",
        "Term Name",
        "Term StartDate",
        "Term EndDate",
        "Course SIS ID",
        "Course Name",
        "Course Number",
        "Course Description",
        "Course Subject",
        "Periods",
        "Status",
    ),
    "student": (
        "ID",
        "School DfE Number",
        "First Name",
        "Last Name",
        "Username",
        "Password",
        "State ID",
        "Secondary Email",
        "Student Number",
        "Middle Name",
        "Grade",
        "Status",
        "Birthdate",
        "Graduation Year",
    ),
    "teacher": (
        "ID",
        "School DfE Number",
        "First Name",
        "Last Name",
        "Username",
        "Password",
        "State ID",
        "Teacher Number",
        "Status",
        "Middle Name",
        "Secondary Email",
        "Title",
        "Qualification",
    ),
    "student_enrollment": ("Section ID", "ID"),
    "teacher_roster": ("Section ID", "ID"),
}
"""The header rows of Microsoft's ``sds-uk-25-users`` sample, by the connector's ``files`` key."""


# --- helpers shared by the CSV folder writers ---------------------------------------------------------


def raw_code(table: dict[str, str], canonical: str, prefer: str | None = None) -> str:
    """The source value a YAML code table reads as ``canonical``: ``prefer`` if it is one, else the first.

    Why: writing the table's own value (not a hard-coded one) keeps writer and connector in step.
    """
    raws = [raw for raw, value in table.items() if value == canonical]
    if not raws:
        raise KeyError(f"no source code for {canonical!r}")
    return prefer if prefer in raws else raws[0]


def year_label(values: pd.Series, table: dict[str, str]) -> pd.Series:
    """NC years as written (``7``); non-numeric canonical years (``R``, ``N2``) as the code table's label."""
    labels: dict[str, str] = {}
    for raw, canonical in table.items():
        labels.setdefault(canonical, raw.capitalize())
    text = values.astype("string")
    return text.map(labels).astype("string").fillna(text)


def us_date(values: pd.Series) -> pd.Series:
    """``M/D/YYYY`` as Microsoft's SDS UK samples write dates; missing stays missing."""
    return values.map(lambda d: f"{d.month}/{d.day}/{d.year}", na_action="ignore").astype("string")


def iso_date(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%d").astype("string")


def with_mapped(
    header: Sequence[str],
    spec: FormatSpec,
    file_key: str,
    entity: str | None,
    computed: Iterable[str] = (),
) -> list[str]:
    """The sample header plus any column the YAML names for this file that the sample lacks.

    Why: a header renamed in the YAML must still be written, or the round trip would stop testing it.
    ``computed`` are mapping keys the connector builds itself (not headers of the file).
    """
    named = list(spec.files[file_key].columns.values())
    if entity is not None:
        named += list(spec.mapping.entities[entity].columns)
    skip = set(header) | set(computed)
    return list(header) + [c for c in dict.fromkeys(named) if c not in skip]


def write_csv(
    path: Path,
    header: Sequence[str],
    columns: Mapping[str, pd.Series | str],
    rows: int,
    *,
    line_end: str = "\r\n",
) -> Path:
    """One CSV file: ``header`` in order, cells from ``columns`` (absent or missing → empty).

    Minimal quoting and UTF-8 without a BOM, as the samples; ``line_end`` is CRLF for Microsoft's files.
    """
    frame = pd.DataFrame(index=range(rows))
    for name in header:
        value = columns.get(name, "")
        if isinstance(value, pd.Series):
            value = value.astype("string").fillna("").reset_index(drop=True)
        frame[name] = value
    unknown = set(columns) - set(header)
    if unknown:
        raise KeyError(f"{path.name}: columns not in the header: {sorted(unknown)}")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator=line_end)
        writer.writerow(header)
        writer.writerows(frame.astype(object).to_numpy().tolist())
    return path


def stamp_files(paths: Iterable[Path], extract: Extract) -> None:
    """Set each file's modification time to ``snapshot_at``: the connectors' snapshot is the newest."""
    stamp = extract.snapshot_at.timestamp()
    for path in paths:
        os.utime(path, (stamp, stamp))


def mapped(
    frame: pd.DataFrame, spec: FormatSpec, entity: str, skip: Iterable[str] = ()
) -> dict[str, pd.Series]:
    """Canonical columns → the YAML's source headers (``skip``: canonical columns written separately)."""
    out: dict[str, pd.Series] = {}
    for header, canonical in spec.mapping.entities[entity].columns.items():
        if canonical in frame.columns and canonical not in skip:
            out[header] = frame[canonical].astype("string").reset_index(drop=True)
    return out


def term_dates(academic_year: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``2025/26`` → 1 September 2025 and 31 August 2026 (the connectors take the year of the middle)."""
    first = pd.to_numeric(academic_year.astype("string").str.slice(0, 4), errors="coerce")
    start = pd.to_datetime(first.astype("Int64").astype("string") + "-09-01", errors="coerce")
    end = pd.to_datetime((first + 1).astype("Int64").astype("string") + "-08-31", errors="coerce")
    return start, end


# --- SDS UK -------------------------------------------------------------------------------------------


def write_sds_uk(extract: Extract, out_dir: Path, dfe_number: str = DEFAULT_DFE_NUMBER) -> list[Path]:
    """Write the six SDS UK files into ``out_dir``; return their paths."""
    spec = load_format(SOURCE)
    codes = spec.mapping.codes
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = extract.tables
    c = spec.column
    file = {key: source.file for key, source in spec.files.items()}
    status = {
        "on_roll": raw_code(codes["enrolment_status"], "on_roll").capitalize(),
        "leaver": raw_code(codes["enrolment_status"], "leaver").capitalize(),
    }
    written: list[Path] = []

    def header(key: str, entity: str | None) -> list[str]:
        return with_mapped(HEADERS[key], spec, key, entity)

    school = {c("school", "dfe"): dfe_number, c("school", "name"): "Generated School"}
    written.append(write_csv(out_dir / file["school"], header("school", None), school, 1))

    pupils = t["pupils"][t["pupils"]["enrolment_status"] != "pre_admission"].reset_index(drop=True)
    cells = mapped(pupils, spec, "pupils")
    cells[spec.mapping.source_column("pupils", "date_of_birth")] = us_date(pupils["date_of_birth"])
    cells[spec.mapping.source_column("pupils", "year_group")] = year_label(
        pupils["year_group"], codes["year_group"]
    )
    cells[spec.mapping.source_column("pupils", "enrolment_status")] = pupils["enrolment_status"].map(status)
    cells[c("student", "school")] = pd.Series(dfe_number, index=pupils.index)
    cells["Username"] = pupils["email"]
    written.append(write_csv(out_dir / file["student"], header("student", "pupils"), cells, len(pupils)))

    staff = t["staff"][t["staff"]["enrolment_status"] != "pre_admission"].reset_index(drop=True)
    cells = mapped(staff, spec, "staff")
    cells[spec.mapping.source_column("staff", "enrolment_status")] = staff["enrolment_status"].map(status)
    cells[c("teacher", "school")] = pd.Series(dfe_number, index=staff.index)
    cells["Username"] = staff["email"]
    written.append(write_csv(out_dir / file["teacher"], header("teacher", "staff"), cells, len(staff)))

    groups = t["groups"][t["groups"]["kind"] == "teaching"].reset_index(drop=True)
    start, end = term_dates(groups["academic_year"])
    cells = mapped(groups, spec, "groups")
    cells[c("section", "school")] = pd.Series(dfe_number, index=groups.index)
    cells["Term SIS ID"] = "AY" + groups["academic_year"].str.slice(0, 4)
    cells[c("section", "term_name")] = groups["academic_year"]
    cells[c("section", "term_start")] = us_date(start)
    cells[c("section", "term_end")] = us_date(end)
    cells["Status"] = pd.Series(status["on_roll"], index=groups.index)
    written.append(write_csv(out_dir / file["section"], header("section", "groups"), cells, len(groups)))

    members = t["memberships"][t["memberships"]["group_id"].isin(set(groups["mis_id"]))]
    for key, role, people in (
        ("student_enrollment", "pupil", pupils),
        ("teacher_roster", "teacher", staff),
    ):
        rows = members[(members["role"] == role) & members["person_id"].isin(set(people["mis_id"]))]
        cells = {c(key, "section"): rows["group_id"], c(key, "person"): rows["person_id"]}
        written.append(write_csv(out_dir / file[key], header(key, None), cells, len(rows)))

    stamp_files(written, extract)
    return written
