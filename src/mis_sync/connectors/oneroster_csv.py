"""OneRoster 1.1 CSV (bulk): a folder with ``manifest.csv``, ``orgs``, ``academicSessions``, ``courses``,
``classes``, ``users``, ``enrollments`` and optionally ``demographics``.

Column names and code tables are data in ``include/mis_schemas/oneroster_1_1.yaml``; the reshaping
(users pivoted by ``role`` into pupils, staff and contacts; ``agentSourcedIds`` into relationships;
homeroom enrolments into registration groups; terms into academic years) is here.

Snapshot time: the newest modification time of the folder's files (OneRoster carries no export time).
Rows with ``status=tobedeleted`` are left out. ``grades`` are taken as NC years as given (a UK export
writes the NC year; CEDS ``01``–``13`` lose their leading zero).
"""

from __future__ import annotations

import pandas as pd

from mis_sync.academic_year import academic_year, academic_years_of_terms
from mis_sync.connectors.base import ExtractError
from mis_sync.connectors.sds import (
    CsvFolderConnector,
    FormatSpec,
    code_lookup,
    file_lines,
    load_format,
    parse_dates,
)
from mis_sync.model import Extract


class OneRosterCsvConnector(CsvFolderConnector):
    type = "oneroster_csv"
    title = "OneRoster 1.1 CSV"
    schema = "oneroster_1_1"

    def extract(self, *, full: bool = True) -> Extract:
        spec = load_format(self.schema)
        folder, files = self.read_files(spec)
        name = {k: s.file for k, s in spec.files.items()}
        codes = spec.mapping.codes
        c = spec.column
        self._check_manifest(files["manifest"], name["manifest"], spec)

        f: dict[str, pd.DataFrame] = {}
        for key, frame in files.items():
            if frame is None:
                continue
            status = c(key, "status") if "status" in spec.files[key].columns else None
            if status and status in frame.columns:
                frame = frame[frame[status].str.strip().str.lower() != "tobedeleted"]
            f[key] = frame

        users = f["users"].copy()
        user_id, role_col = c("users", "id"), c("users", "role")
        kind = code_lookup(users[role_col], codes["person_kind"])
        if kind.isna().any():
            raise ExtractError(
                f"{name['users']}: column {role_col}: unknown role (line {file_lines(kind.isna())})"
            )
        enabled = c("users", "enabled")
        users["enrolment_status"] = (
            code_lookup(users[enabled], codes["enabled_status"]).fillna("on_roll")
            if enabled in users.columns
            else "on_roll"
        )
        grades = c("users", "grades")
        if grades in users.columns:
            users[grades] = users[grades].str.split(",").str[0].str.strip()
        demo = f.get("demographics")
        if demo is not None:
            birth = c("demographics", "birth_date")
            demo = demo.copy()
            if birth in demo.columns:
                demo[birth] = parse_dates(demo[birth], name["demographics"], birth)
            demo = demo.drop_duplicates(c("demographics", "id"))
            keep = [
                col
                for col in (c("demographics", "id"), birth, c("demographics", "sex"))
                if col in demo.columns
            ]
            demo = demo[keep].rename(columns={c("demographics", "id"): user_id})
            users = users.merge(demo, on=user_id, how="left", suffixes=("", "_demo")).fillna("")

        # Classes → groups
        classes = f["classes"].copy()
        class_type = c("classes", "type")
        classes["kind"] = (
            code_lookup(classes[class_type], codes["class_kind"]).fillna("teaching")
            if class_type in classes.columns
            else "teaching"
        )
        for logical in ("grades", "subjects"):
            column = c("classes", logical)
            if column in classes.columns:
                classes[column] = classes[column].str.split(",").str[0].str.strip()
        sessions = f["academic_sessions"]
        start = parse_dates(
            sessions[c("academic_sessions", "start")],
            name["academic_sessions"],
            c("academic_sessions", "start"),
        )
        end = parse_dates(
            sessions[c("academic_sessions", "end")], name["academic_sessions"], c("academic_sessions", "end")
        )
        year_by_session = dict(
            zip(
                sessions[c("academic_sessions", "id")],
                academic_years_of_terms(start, end, self.country),
                strict=True,
            )
        )
        terms = c("classes", "terms")
        first_term = (
            classes[terms].str.split(",").str[0].str.strip()
            if terms in classes.columns
            else pd.Series("", index=classes.index)
        )
        snapshot = self.snapshot_at(folder)
        classes["academic_year"] = first_term.map(year_by_session).fillna(
            academic_year(snapshot, self.country)
        )

        # Enrollments → memberships; a pupil's homeroom is their registration group.
        enrollments = f["enrollments"].copy()
        role = code_lookup(enrollments[c("enrollments", "role")], codes["member_role"])
        # an unknown role is kept as given: data quality quarantines that membership (code_unknown)
        enrollments["role"] = role.fillna(enrollments[c("enrollments", "role")])
        homerooms = set(classes.loc[classes["kind"] == "registration", c("classes", "id")])
        in_homeroom = enrollments[
            (enrollments["role"] == "pupil") & enrollments[c("enrollments", "class")].isin(homerooms)
        ].drop_duplicates(c("enrollments", "user"))
        registration = dict(
            zip(in_homeroom[c("enrollments", "user")], in_homeroom[c("enrollments", "class")], strict=True)
        )
        users["registration_group_id"] = users[user_id].map(registration).fillna("")

        pupils = users[kind == "pupil"].reset_index(drop=True)
        staff = users[kind == "staff"].copy()
        staff["is_teaching"] = code_lookup(staff[role_col], codes["teaching_role"]).fillna("false")
        contacts = users[kind == "contact"].reset_index(drop=True)

        # agentSourcedIds on a pupil → relationships (agent's role as the relationship).
        agents = c("users", "agents")
        relationships = None
        if agents in pupils.columns:
            pairs = (
                pupils[[user_id, agents]].assign(**{agents: pupils[agents].str.split(",")}).explode(agents)
            )
            pairs[agents] = pairs[agents].str.strip()
            pairs = pairs[pairs[agents].fillna("") != ""]
            contact_role = dict(zip(contacts[user_id], contacts[role_col], strict=True))
            relationships = pd.DataFrame(
                {
                    "contact_id": pairs[agents],
                    "pupil_id": pairs[user_id],
                    "relationship": pairs[agents].map(contact_role),
                }
            ).drop_duplicates(["contact_id", "pupil_id"])

        raw = {
            "pupils": pupils,
            "staff": staff.reset_index(drop=True),
            "contacts": contacts,
            "groups": classes,
            "memberships": enrollments,
        }
        if relationships is not None:
            raw["relationships"] = relationships
        where = {
            "pupils": name["users"],
            "staff": name["users"],
            "contacts": name["users"],
            "groups": name["classes"],
            "memberships": name["enrollments"],
            "relationships": f"{name['users']} ({agents})",
        }
        return self.finish(raw, spec, where, folder)

    @staticmethod
    def _check_manifest(manifest: pd.DataFrame | None, file_name: str, spec: FormatSpec) -> None:
        """``oneroster.version`` must be 1.1; a delta file is not read as a bulk snapshot."""
        if manifest is None:
            return
        key, value = spec.column("manifest", "property"), spec.column("manifest", "value")
        props = dict(zip(manifest[key].str.strip(), manifest[value].str.strip(), strict=True))
        version = props.get("oneroster.version")
        if version != "1.1":
            raise ExtractError(f"{file_name}: oneroster.version must be 1.1")
        delta = sorted(k for k, v in props.items() if k.startswith("file.") and v.lower() == "delta")
        if delta:
            raise ExtractError(f"{file_name}: delta files are not supported ({', '.join(delta)})")
