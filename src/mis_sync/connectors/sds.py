"""Microsoft School Data Sync CSV folders: the SDS UK format and SDS v2.1.

SDS UK: ``School.csv``, ``Section.csv``, ``Student.csv``, ``StudentEnrollment.csv``, ``Teacher.csv``,
``TeacherRoster.csv``. SDS v2.1: ``orgs``, ``users``, ``roles``, ``classes``, ``enrollments`` and the
optional ``academicSessions``, ``courses``, ``demographics``, ``relationships``, ``userFlags``.

Column names and code tables are data, in ``include/mis_schemas/sds_uk.yaml`` and ``sds_v2_1.yaml``:
each has the usual ``entities`` mapping (source column → canonical column, applied by
``apply_mapping``) plus a ``files`` section naming each source file and the columns the Python
reshaping (joins, pivots) reads. Reshaping lives here; renaming lives in the YAML.

Snapshot time: neither format carries one, so ``snapshot_at`` is the newest modification time of the
folder's files (UTC, to the second).

Errors name the file, the column and the line, never a value.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from upath import UPath

from mis_sync.academic_year import academic_year, academic_years_of_terms
from mis_sync.connectors.base import Connector, ExtractError
from mis_sync.connectors.file_drop import _read_csv
from mis_sync.connectors.mapping import SourceMapping, apply_mapping, check_mapping
from mis_sync.model import Extract
from mis_sync.paths import mis_schemas_dir


class SourceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    required: bool = True
    columns: dict[str, str] = {}
    """logical name (used by the Python reshaping) → the file's header."""
    required_columns: list[str] = []
    """logical names that must be present in the header."""


class FormatSpec(BaseModel):
    """A folder format: the source files and the canonical mapping."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    files: dict[str, SourceFile]
    mapping: SourceMapping

    def column(self, file_key: str, logical: str) -> str:
        return self.files[file_key].columns[logical]


@cache
def load_format(source: str) -> FormatSpec:
    """Read ``include/mis_schemas/<source>.yaml``: ``files`` plus a ``SourceMapping`` (checked as usual)."""
    path = mis_schemas_dir() / f"{source}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        files = {k: SourceFile.model_validate(v) for k, v in dict(data.pop("files")).items()}
        mapping = SourceMapping.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError, KeyError, AttributeError, TypeError) as exc:
        raise ExtractError(f"{path}: field mapping cannot be loaded ({type(exc).__name__})") from None
    check_mapping(path, mapping)
    for key, spec in files.items():
        unknown_logical = set(spec.required_columns) - set(spec.columns)
        if unknown_logical:
            raise ExtractError(
                f"{path}: files.{key}: required_columns not in columns {sorted(unknown_logical)}"
            )
    return FormatSpec(files=files, mapping=mapping)


class CsvFolderConnector(Connector):
    """A folder of CSV files, found as for the file drop: ``options.path``, ``extra.path`` or host."""

    type = "csv_folder"
    title = "CSV folder"

    def read_files(self, spec: FormatSpec) -> tuple[UPath, dict[str, pd.DataFrame | None]]:
        folder = self.folder()
        if not folder.is_dir():
            raise ExtractError(
                f"{self.title} folder not found: {folder} (connection {self.connection.conn_id!r})"
            )
        frames: dict[str, pd.DataFrame | None] = {}
        for key, source in spec.files.items():
            path = folder / source.file
            if not path.exists():
                if source.required:
                    raise ExtractError(f"{source.file}: required file is missing from the folder")
                frames[key] = None
                continue
            frame = _read_csv(path, source.file, self.read_limits)
            frame.columns = [str(c).strip() for c in frame.columns]
            missing = [
                source.columns[c] for c in source.required_columns if source.columns[c] not in frame.columns
            ]
            if missing:
                raise ExtractError(f"{source.file}: required column(s) missing: {', '.join(missing)}")
            frames[key] = frame
        return folder, frames

    @staticmethod
    def snapshot_at(folder: UPath) -> pd.Timestamp:
        """Newest modification time of the folder's files: the formats carry no export time."""
        times = [pd.Timestamp(p.stat().st_mtime, unit="s", tz="UTC") for p in folder.iterdir() if p.is_file()]
        return max(times).floor("s")

    def finish(
        self, raw: dict[str, pd.DataFrame], spec: FormatSpec, where: dict[str, str], folder: UPath
    ) -> Extract:
        tables = apply_mapping(raw, spec.mapping, where)
        return Extract(tables=tables, snapshot_at=self.snapshot_at(folder), source=self.type)


# --- helpers shared by the SDS and OneRoster connectors ---------------------------------------------


def file_lines(mask: pd.Series) -> str:
    """The file's line numbers (header is line 1) of the first flagged rows.

    Frames keep the index ``_read_csv`` gave them (row 0 = line 2) through filters, so the numbers
    stay the file's own.
    """
    return ", ".join(str(int(i) + 2) for i in mask[mask.fillna(False).astype(bool)].index[:5])


def parse_dates(values: pd.Series, file_name: str, column: str) -> pd.Series:
    """ISO ``YYYY-MM-DD`` (time part ignored) or Microsoft's sample ``M/D/YYYY`` → ISO text.

    Blank stays blank; anything else is kept as given, so ``Entity.coerce`` marks it unreadable and
    data quality quarantines that record alone (``value_unreadable``) instead of the whole school
    stopping. ``file_name`` and ``column`` are kept for callers' symmetry with the other parsers.
    """
    del file_name, column
    text = values.astype("string").str.strip().fillna("")
    iso = pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    us = pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")
    parsed = iso.fillna(us)
    return parsed.dt.strftime("%Y-%m-%d").astype("string").fillna(text)


def code_lookup(values: pd.Series, table: dict[str, str]) -> pd.Series:
    """Case-insensitive code table lookup; unknown codes give <NA>."""
    lookup = {k.strip().lower(): v for k, v in table.items()}
    return values.astype("string").str.strip().str.lower().map(lookup).astype("string")


# --- SDS UK -------------------------------------------------------------------------------------------


class SdsUkConnector(CsvFolderConnector):
    """SDS UK CSV: School, Section, Student, StudentEnrollment, Teacher, TeacherRoster.

    Sections are teaching groups; their academic year comes from the term dates (else the term
    name if already ``2025/26``, else the academic year of the snapshot). A missing ``Status``
    column means every row is active (SDS's own default). Optional ``options.dfe_number`` keeps one
    school's rows of a multi-school export: its pupils, staff and sections, and the enrolments and
    teacher rosters of those sections (``keep_one_school``).
    """

    type = "sds_uk"
    title = "SDS UK"

    def extract(self, *, full: bool = True) -> Extract:
        spec = load_format(self.type)
        folder, files = self.read_files(spec)
        f = {k: v for k, v in files.items() if v is not None}
        name = {k: s.file for k, s in spec.files.items()}
        dfe = self.options.get("dfe_number")
        if dfe is not None:
            self.keep_one_school(f, spec, name, str(dfe).strip())
        m = spec.mapping

        pupils = f["student"].copy()
        staff = f["teacher"].copy()
        for frame, key, entity in ((pupils, "student", "pupils"), (staff, "teacher", "staff")):
            status = m.source_column(entity, "enrolment_status")
            if status not in frame.columns:
                frame[status] = "active"
            else:
                frame[status] = frame[status].mask(frame[status].str.strip() == "", "active")
            birth = m.source_column(entity, "date_of_birth")
            if birth in frame.columns:
                frame[birth] = parse_dates(frame[birth], name[key], birth)
        staff["is_teaching"] = "true"

        groups = f["section"].copy()
        groups["kind"] = "teaching"
        snapshot = self.snapshot_at(folder)
        year = pd.Series(academic_year(snapshot, self.country), index=groups.index, dtype="string")
        start_col, end_col, term_col = (
            spec.column("section", c) for c in ("term_start", "term_end", "term_name")
        )
        if term_col in groups.columns:
            named = groups[term_col].astype("string").str.strip()
            year = named.where(named.str.fullmatch(r"\d{4}/\d{2}").fillna(False).astype(bool), year)
        if start_col in groups.columns or end_col in groups.columns:
            blank = pd.Series("", index=groups.index)
            start = parse_dates(groups.get(start_col, blank), name["section"], start_col)
            end = parse_dates(groups.get(end_col, blank), name["section"], end_col)
            year = academic_years_of_terms(start, end, self.country).fillna(year)
        groups["academic_year"] = year

        memberships = []
        for key, role in (("student_enrollment", "pupil"), ("teacher_roster", "teacher")):
            frame = f[key]
            memberships.append(
                pd.DataFrame(
                    {
                        "group_id": frame[spec.column(key, "section")],
                        "person_id": frame[spec.column(key, "person")],
                        "role": role,
                    }
                )
            )
        raw = {
            "pupils": pupils,
            "staff": staff,
            "groups": groups,
            "memberships": pd.concat(memberships, ignore_index=True),
        }
        where = {
            "pupils": name["student"],
            "staff": name["teacher"],
            "groups": name["section"],
            "memberships": f"{name['student_enrollment']} / {name['teacher_roster']}",
        }
        return self.finish(raw, spec, where, folder)

    @staticmethod
    def keep_one_school(f: dict[str, pd.DataFrame], spec: FormatSpec, name: dict[str, str], dfe: str) -> None:
        """Keep one school's rows of a multi-school export (``options.dfe_number``), in place.

        Pupils, staff and sections carry ``School DfE Number``; enrolments and teacher rosters do not,
        so they keep the rows whose section is one of the school's. Without that, every other school's
        memberships dangled and the error-rate breaker stopped each run. Sections are the anchor, so
        Section.csv must have the school column; a DfE number no section carries is an error, never an
        empty school.
        """
        section_school = spec.column("section", "school")
        if section_school not in f["section"].columns:
            raise ExtractError(
                f"{name['section']}: options.dfe_number is set but the file has no "
                f"{section_school!r} column to pick the school's sections by"
            )
        for key in ("student", "teacher", "section"):
            school = spec.column(key, "school")
            if school in f[key].columns:
                f[key] = f[key][f[key][school].astype("string").str.strip() == dfe]
        if f["section"].empty:
            raise ExtractError(
                f"{name['section']}: no section has {section_school} {dfe} (options.dfe_number); "
                "check the school's DfE number (LAESTAB) against School.csv"
            )
        sections = set(f["section"][spec.column("section", "id")].astype("string").str.strip())
        for key in ("student_enrollment", "teacher_roster"):
            linked = f[key][spec.column(key, "section")].astype("string").str.strip()
            f[key] = f[key][linked.isin(sections)]


# --- SDS v2.1 -----------------------------------------------------------------------------------------


class SdsV21Connector(CsvFolderConnector):
    """SDS v2.1 CSV: users pivot through roles.csv into pupils, staff and contacts.

    A user with a student role is a pupil; a staff-type role (``codes.person_kind``) makes a staff
    member; guardians, parents and relatives — and anyone named as ``relationshipUserSourcedId`` in
    relationships.csv — are contacts. Year group is the primary student role's ``grade``; birth date
    and sex come from demographics.csv. Classes are teaching groups; their academic year comes from
    the first of ``sessionSourcedIds`` (else the course's school year session, else the snapshot).
    """

    type = "sds_v2_1"
    title = "SDS v2.1"

    def extract(self, *, full: bool = True) -> Extract:
        spec = load_format(self.type)
        folder, files = self.read_files(spec)
        name = {k: s.file for k, s in spec.files.items()}
        codes = spec.mapping.codes
        c = spec.column
        users, roles = files["users"], files["roles"]
        assert users is not None and roles is not None
        user_id = c("users", "id")

        role_kind = code_lookup(roles[c("roles", "role")], codes["person_kind"])
        unknown = role_kind.isna()
        if unknown.any():
            lines = file_lines(unknown)
            raise ExtractError(f"{name['roles']}: column {c('roles', 'role')}: unknown role (line {lines})")
        roles = roles.assign(_kind=role_kind)
        primary = (
            roles[c("roles", "is_primary")].str.strip().str.lower()
            if c("roles", "is_primary") in roles
            else ""
        )
        roles = roles.assign(_primary=(primary == "true"))
        roles = roles.sort_values("_primary", ascending=False, kind="stable")

        student_roles = roles[roles["_kind"] == "pupil"].drop_duplicates(c("roles", "user"))
        staff_roles = roles[roles["_kind"] == "staff"].drop_duplicates(c("roles", "user"))
        contact_ids = set(roles.loc[roles["_kind"] == "contact", c("roles", "user")])
        rel = files["relationships"]
        if rel is not None:
            contact_ids |= set(rel[c("relationships", "contact")])

        demo = files["demographics"]
        if demo is not None:
            demo = demo.copy()
            birth = c("demographics", "birth_date")
            if birth in demo.columns:
                demo[birth] = parse_dates(demo[birth], name["demographics"], birth)
            demo = demo.drop_duplicates(c("demographics", "user"))
            demo = demo.rename(columns={c("demographics", "user"): user_id})

        def people(ids: pd.Series, extra: pd.DataFrame | None = None) -> pd.DataFrame:
            frame = users[users[user_id].isin(set(ids))].copy()
            if extra is not None:
                frame = frame.merge(extra, on=user_id, how="left")
            if demo is not None:
                frame = frame.merge(demo, on=user_id, how="left", suffixes=("", "_demo"))
            return frame.fillna("").reset_index(drop=True)

        grade = c("roles", "grade")
        pupil_extra = student_roles[[c("roles", "user")] + ([grade] if grade in roles else [])]
        pupils = people(
            student_roles[c("roles", "user")], pupil_extra.rename(columns={c("roles", "user"): user_id})
        )
        pupils["enrolment_status"] = "on_roll"
        teaching = code_lookup(staff_roles[c("roles", "role")], codes["teaching_role"]).fillna("false")
        staff_extra = pd.DataFrame({user_id: staff_roles[c("roles", "user")], "is_teaching": teaching})
        staff = people(staff_roles[c("roles", "user")], staff_extra)
        staff["enrolment_status"] = "on_roll"
        contacts = people(pd.Series(sorted(contact_ids), dtype="string"))

        classes = files["classes"].copy()  # type: ignore[union-attr]
        classes["kind"] = "teaching"
        snapshot = self.snapshot_at(folder)
        year_by_session: dict[str, str] = {}
        sessions = files["academic_sessions"]
        if sessions is not None:
            start = parse_dates(
                sessions[c("academic_sessions", "start")],
                name["academic_sessions"],
                c("academic_sessions", "start"),
            )
            end = parse_dates(
                sessions[c("academic_sessions", "end")],
                name["academic_sessions"],
                c("academic_sessions", "end"),
            )
            year_by_session = dict(
                zip(
                    sessions[c("academic_sessions", "id")],
                    academic_years_of_terms(start, end, self.country),
                    strict=True,
                )
            )
        first_session = (
            classes[c("classes", "sessions")].str.split(",").str[0].str.strip()
            if c("classes", "sessions") in classes
            else pd.Series("", index=classes.index)
        )
        year = first_session.map(year_by_session)
        courses = files["courses"]
        course_col = c("classes", "course")
        if courses is not None and course_col in classes.columns:
            course = courses.drop_duplicates(c("courses", "id")).set_index(c("courses", "id"))
            ids = classes[course_col]
            for logical, target in (("code", "code"), ("subject", "subject")):
                column = c("courses", logical)
                if column in course.columns:
                    classes[target] = ids.map(course[column]).fillna("")
            school_year = c("courses", "school_year")
            if school_year in course.columns:
                year = year.fillna(ids.map(course[school_year]).map(year_by_session))
        classes["academic_year"] = year.fillna(academic_year(snapshot, self.country))

        enrollments = files["enrollments"].copy()  # type: ignore[union-attr]
        member_role = code_lookup(enrollments[c("enrollments", "role")], codes["member_role"])
        # an unknown role is kept as given: data quality quarantines that membership (code_unknown)
        enrollments["role"] = member_role.fillna(enrollments[c("enrollments", "role")])

        raw = {
            "pupils": pupils,
            "staff": staff,
            "contacts": contacts,
            "groups": classes,
            "memberships": enrollments,
        }
        where = {
            "pupils": f"{name['users']} / {name['roles']}",
            "staff": f"{name['users']} / {name['roles']}",
            "contacts": name["users"],
            "groups": name["classes"],
            "memberships": name["enrollments"],
            "relationships": name["relationships"],
        }
        if rel is not None:
            raw["relationships"] = rel
        return self.finish(raw, spec, where, folder)
