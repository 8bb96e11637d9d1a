"""SIMS 7 without an aggregator: the XML files of scheduled CommandReporter runs.

The school schedules ``CommandReporter.exe /REPORT:"<name>" …`` (on the SIMS server or a third-party
connector PC) for four report definitions and saves each one's XML into a folder this connector reads
(local, or any fsspec URL through ``Connector.folder()``): students, staff, contacts × linked students,
and groups × members. File names, captions and code tables are data in
``include/mis_schemas/sims_commandreporter.yaml``.

What the reference (``mis-sources.md`` §3.3) says, with its confidence:

- [V] CommandReporter writes ``<SuperStarReport><Record>…</Record>…</SuperStarReport>``; element
  names are the report captions with spaces encoded ``_x0020_``; ID fields (``Person_ID``,
  ``Base_Group_ID``) appear only for users in the *Third Party Reporter* group; a multi-recordset
  report returns the cross product of its rows. So contacts and their linked students arrive as one
  Record per (contact, student), groups and their members as one Record per (group, member).
- [S] captions seen in real exports (``Forename``, ``Legal_x0020_Surname``, ``ChosenName``,
  ``Surname``, ``Year`` as ``"Year  7"`` with two spaces, ``Reg``, ``Primary_x0020_Email``,
  ``Start_x0020_date``).
- [U] everything else: our report split, the other captions, the ``Status``/``Group Type``/
  ``Member Role`` values, and the date format (ISO ``2011-09-01T00:00:00`` or UK ``01/09/2011`` are
  both read). Keep them in the YAML, confirm against a real school's reports.

Choices: a Record without a field means "no value" (.NET omits nulls); a report without a ``Status``
field is a plain "current" report, so every record is on roll; a pupil's registration group comes from
``Reg`` (the group's name, matched to a ``Reg Group`` in the groups report; an unmatched name is passed
on for data-quality checks to flag); a group's academic year ``2025/2026`` becomes ``2025/26`` (blank:
the snapshot's). The export carries no time, so ``snapshot_at`` is the newest modification time of the
report files read. There are no deltas: ``full`` is ignored.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from upath import UPath

from mis_sync.academic_year import academic_year
from mis_sync.connectors.base import Connector, ExtractError
from mis_sync.connectors.mapping import apply_mapping
from mis_sync.connectors.sds import FormatSpec, code_lookup, load_format
from mis_sync.connectors.xml_source import (
    check_types,
    flatten,
    frame_of,
    normalise_academic_year,
    parse_xml,
    require_values,
)
from mis_sync.model import Extract

ROOT = "SuperStarReport"
RECORD = "Record"


def read_report(path: UPath, file_name: str, columns: list[str]) -> pd.DataFrame:
    """One report file → a frame of strings, one row per ``Record``, columns named by caption."""
    with path.open("rb") as handle:
        root = parse_xml(handle, file_name)
    if root.tag != ROOT:
        raise ExtractError(f"{file_name}: root element is <{root.tag}>, expected <{ROOT}>")
    records = [flatten(element, decode=True) for element in root.iter(RECORD)]
    return frame_of(records, columns)


class SimsCommandReporterConnector(Connector):
    type = "sims_commandreporter"
    title = "SIMS CommandReporter"

    def extract(self, *, full: bool = True) -> Extract:
        spec = load_format(self.type)
        folder = self.folder()
        if not folder.is_dir():
            raise ExtractError(
                f"{self.title} folder not found: {folder} (connection {self.connection.conn_id!r})"
            )
        frames: dict[str, pd.DataFrame | None] = {}
        paths: list[UPath] = []
        for key, source in spec.files.items():
            path = folder / source.file
            if not path.exists():
                if source.required:
                    raise ExtractError(f"{source.file}: required report file is missing from the folder")
                frames[key] = None
                continue
            entity_fields = [
                f for e in spec.mapping.entities.values() if e.file == source.file for f in e.columns
            ]
            frames[key] = read_report(path, source.file, [*source.columns.values(), *entity_fields])
            paths.append(path)
        snapshot = max(pd.Timestamp(p.stat().st_mtime, unit="s", tz="UTC") for p in paths).floor("s")
        raw, where = self._reshape(spec, frames, snapshot)
        tables = apply_mapping(raw, spec.mapping, where)
        return Extract(tables=tables, snapshot_at=snapshot, source=self.type)

    def _reshape(
        self, spec: FormatSpec, frames: dict[str, pd.DataFrame | None], snapshot: pd.Timestamp
    ) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
        c, m, codes = spec.column, spec.mapping, spec.mapping.codes
        name = {k: s.file for k, s in spec.files.items()}

        def describe(frame: pd.DataFrame, id_field: str) -> Callable[[int], str]:
            """Row position → ``Record N (Person_ID …)``; N counts in the file (frames keep its index)."""

            def text(row: int) -> str:
                value = frame[id_field].iloc[row] if id_field in frame.columns else pd.NA
                shown = f" ({id_field} {value})" if not pd.isna(value) and str(value).strip() else ""
                return f"Record {int(frame.index[row]) + 1}{shown}"

            return text

        for key, frame in frames.items():
            if frame is not None:
                for logical in spec.files[key].required_columns:
                    field = c(key, logical)
                    require_values(frame, field, name[key], describe(frame, c(key, "id")))

        groups_raw = frames["groups"]
        assert groups_raw is not None
        group_id, group_type = c("groups", "id"), c("groups", "type")
        # an unknown group type or member role is kept as given: data quality quarantines that record
        # (code_unknown, naming the record and field) instead of the whole school stopping here
        kinds = code_lookup(groups_raw[group_type], codes["kind"])
        groups_raw = groups_raw.assign(**{group_type: kinds.fillna(groups_raw[group_type])})
        groups = groups_raw.drop_duplicates(group_id).reset_index(drop=True)
        year_field = c("groups", "academic_year")
        groups[year_field] = normalise_academic_year(
            groups[year_field], academic_year(snapshot, self.country)
        )

        member, member_role = c("groups", "member"), c("groups", "member_role")
        has_member = groups_raw[member].fillna("").str.strip() != ""
        memberships = groups_raw[has_member].copy()
        require_values(memberships, member_role, name["groups"], describe(memberships, group_id))
        roles = code_lookup(memberships[member_role], codes["role"])
        memberships[member_role] = roles.fillna(memberships[member_role])

        pupils, staff = frames["students"], frames["staff"]
        assert pupils is not None and staff is not None
        for frame, entity in ((pupils, "pupils"), (staff, "staff")):
            status = m.source_column(entity, "enrolment_status")
            if frame[status].isna().all():  # a plain "current" report has no Status field
                frame[status] = next(k for k, v in codes["enrolment_status"].items() if v == "on_roll")
            check_types(frame, entity, m.entities[entity].columns)
        registration = groups[groups[group_type] == "registration"]
        group_name = m.source_column("groups", "name")
        by_name = dict(zip(registration[group_name], registration[group_id], strict=True))
        reg = pupils[c("students", "reg")]
        pupils["registration_group_id"] = reg.map(by_name).astype("string").fillna(reg)

        raw = {"pupils": pupils, "staff": staff, "groups": groups, "memberships": memberships}
        where = {
            "pupils": name["students"],
            "staff": name["staff"],
            "groups": name["groups"],
            "memberships": name["groups"],
        }
        contacts_raw = frames["contacts"]
        if contacts_raw is not None:
            contact_id, pupil = c("contacts", "id"), c("contacts", "pupil")
            for entity in ("contacts", "relationships"):
                check_types(contacts_raw, entity, m.entities[entity].columns)
            raw["contacts"] = contacts_raw.drop_duplicates(contact_id).reset_index(drop=True)
            linked = contacts_raw[pupil].fillna("").str.strip() != ""
            raw["relationships"] = contacts_raw[linked].drop_duplicates([contact_id, pupil])
            where["contacts"] = where["relationships"] = name["contacts"]
        return raw, where
