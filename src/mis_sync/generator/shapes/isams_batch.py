"""Render a canonical ``Extract`` as the iSAMS Batch API XML document the ``isams_batch`` connector reads.

Why paths and field names come from ``include/mis_schemas/isams_batch.yaml``: the YAML is the one
definition of the shape, so writer and connector cannot drift apart. The document mimics the Batch API
as ``mis-sources.md`` §3.4 and an open-source client's samples show it: ``@Id`` attributes, dates as
``2011-09-01T00:00:00``, ``TeachingStaff`` as ``1``/``0``, NC years with ``-2``/``0`` for Nursery and
Reception, form tutors both as ``@TutorId`` and as ``<Tutor>`` user codes, assistant tutors as user
codes only (so the connector's user-code path is exercised), set-list pupils by ``Pupil/@Id`` and
contacts by ``SchoolId``, parental responsibility ``Default`` wherever it equals the contact type's.

What it cannot carry (the Batch API does not): pupils and staff who are not current, and the contacts
and relationships of pupils who are not; pupils' and staff's preferred surnames, former UPNs, SCNs,
leaving dates; staff dates of birth and start dates; contacts' preferred names and staff link;
registration-group codes (a form has one label, its name). Group ids come back with the kind prefix
(``year:``, ``form:``, ``set:``). Over three form tutors or two year tutors raise ``ValueError``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from mis_sync.connectors.isams_batch_format import BatchFormat, load_batch_format
from mis_sync.model import ENTITIES, Extract

COMPUTED = frozenset({"registration_group_id", "enrolment_status", "pupil_id"})


class _Doc:
    def __init__(self, spec: BatchFormat) -> None:
        self.spec = spec
        self.root = ET.Element(spec.document.root)

    def container(self, path: str, parent: ET.Element | None = None) -> ET.Element:
        node = self.root if parent is None else parent
        for step in filter(None, path.split("/")):
            found = node.find(step)
            node = found if found is not None else ET.SubElement(node, step)
        return node

    def add(self, key: str, fields: dict[str, object], parent: ET.Element | None = None) -> ET.Element:
        """One element at ``elements.<key>.path`` (under ``parent`` if given); NA fields are left out."""
        container_path, _, leaf = self.spec.elements[key].path.rpartition("/")
        node = ET.SubElement(self.container(container_path, parent), leaf)
        for field, value in fields.items():
            if value is None or pd.isna(value):  # type: ignore[arg-type]
                continue
            if field.startswith("@"):
                node.set(field[1:], str(value))
            else:
                ET.SubElement(node, field).text = str(value)
        return node


def _text(frame: pd.DataFrame, entity: str, year_codes: dict[str, str]) -> pd.DataFrame:
    out = {}
    for column in ENTITIES[entity].columns:
        series = frame[column.name]
        if column.type == "date":
            out[column.name] = series.dt.strftime("%Y-%m-%dT00:00:00").astype("string")
        elif column.type == "boolean":
            out[column.name] = series.map({True: "1", False: "0"}, na_action="ignore").astype("string")
        elif column.name == "year_group":
            out[column.name] = series.map(lambda v: year_codes.get(v, v), na_action="ignore").astype("string")
        else:
            out[column.name] = series.astype("string")
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _fields(spec: BatchFormat, entity: str, row: dict[str, object]) -> dict[str, object]:
    return {
        field: row[canonical]
        for field, canonical in spec.mapping.entities[entity].columns.items()
        if canonical not in COMPUTED and canonical in row
    }


def render_isams_batch(extract: Extract) -> bytes:
    """The whole Batch API document for ``extract`` (UTF-8 bytes, with an XML declaration)."""
    spec = load_batch_format()
    f = spec.field
    doc = _Doc(spec)
    year_codes = {v: k for k, v in spec.mapping.codes.get("year_group", {}).items()}
    t = extract.tables
    pupils = _text(t["pupils"][t["pupils"]["enrolment_status"] == "on_roll"], "pupils", year_codes)
    staff = _text(t["staff"][t["staff"]["enrolment_status"] == "on_roll"], "staff", year_codes)
    groups = _text(t["groups"], "groups", year_codes)
    members = t["memberships"]
    group_name = dict(zip(groups["mis_id"], groups["name"], strict=True))
    pupil_number = {p: str(i + 1) for i, p in enumerate(pupils["mis_id"])}

    for i, row in enumerate(pupils.to_dict("records")):
        fields = _fields(spec, "pupils", row)
        fields[f("pupils", "id")] = str(i + 1)
        fields[f("pupils", "form")] = group_name.get(row["registration_group_id"])
        doc.add("pupils", fields)
    user_code = {s: f"U{int(i) + 1:018d}" for i, s in enumerate(staff["mis_id"])}
    for row in staff.to_dict("records"):
        doc.add("staff", {**_fields(spec, "staff", row), f("staff", "user_code"): user_code[row["mis_id"]]})

    teachers = members[members["role"] == "teacher"].groupby("group_id", sort=False)["person_id"].agg(list)
    pupils_of = members[members["role"] == "pupil"].groupby("group_id", sort=False)["person_id"].agg(list)
    year_id: dict[str, str] = {}
    for g in groups[groups["kind"] == "year"].to_dict("records"):
        year_id[g["year_group"]] = g["mis_id"]
        fields = {f("years", "id"): g["mis_id"], f("years", "nc_year"): g["year_group"]}
        fields |= {f("years", "name"): g["name"], f("years", "code"): g["code"]}
        doc.add("years", fields | _tutors(spec, "years", teachers.get(g["mis_id"], []), user_code, 2))
    for g in groups[groups["kind"] == "registration"].to_dict("records"):
        fields = {f("forms", "id"): g["mis_id"], f("forms", "name"): g["name"]}
        fields |= {
            f("forms", "year_id"): year_id.get(g["year_group"]),
            f("forms", "nc_year"): g["year_group"],
        }
        doc.add("forms", fields | _tutors(spec, "forms", teachers.get(g["mis_id"], []), user_code, 3))
    teaching = groups[groups["kind"] == "teaching"]
    subjects = {name: str(i + 1) for i, name in enumerate(sorted(teaching["subject"].dropna().unique()))}
    for name, number in subjects.items():
        doc.add("subjects", {f("subjects", "id"): number, f("subjects", "name"): name})
    for g in teaching.to_dict("records"):
        fields = {f("sets", "id"): g["mis_id"], f("sets", "code"): g["code"], f("sets", "name"): g["name"]}
        fields[f("sets", "subject_id")] = subjects.get(g["subject"])
        fields[f("sets", "year_id")] = year_id.get(g["year_group"], g["year_group"])
        node = doc.add("sets", fields)
        for n, person in enumerate(teachers.get(g["mis_id"], [])):
            doc.add(
                "set_teachers", {f("set_teachers", "staff_id"): person, "@PrimaryTeacher": int(n == 0)}, node
            )
        for pupil in pupils_of.get(g["mis_id"], []):
            set_list = {
                f("set_lists", "set_id"): g["mis_id"],
                f("set_lists", "pupil_id"): pupil_number[pupil],
            }
            doc.add("set_lists", set_list)
    _contacts(doc, t, set(pupils["mis_id"]), year_codes)
    ET.indent(doc.root)
    return ET.tostring(doc.root, encoding="utf-8", xml_declaration=True)


def _tutors(
    spec: BatchFormat, key: str, people: list[str], user_code: dict[str, str], slots: int
) -> dict[str, object]:
    """First tutor as ``@TutorId`` and ``<Tutor>``; assistants as user codes only."""
    if len(people) > slots:
        raise ValueError(f"iSAMS carries at most {slots} tutors per {key[:-1]}, not {len(people)}")
    ids, codes = spec.fields(key, "tutor_ids"), spec.fields(key, "tutor_codes")
    out: dict[str, object] = {}
    for n, person in enumerate(people):
        if n == 0:
            out[ids[0]] = person
        out[codes[n]] = user_code[person]
    return out


def _contacts(doc: _Doc, t: dict[str, pd.DataFrame], current: set[str], year_codes: dict[str, str]) -> None:
    spec, f = doc.spec, doc.spec.field
    links = t["relationships"][t["relationships"]["pupil_id"].isin(current)].reset_index(drop=True)
    if links.empty:
        return
    text = _text(links, "relationships", year_codes)
    by_type = links.groupby("relationship")["parental_responsibility"].agg(lambda s: bool(s.mean() >= 0.5))
    for relation, responsible in by_type.items():
        fields = {
            f("contact_types", "name"): relation,
            f("contact_types", "responsibility"): int(responsible),
        }
        doc.add("contact_types", fields)
    contacts = {c["mis_id"]: c for c in _text(t["contacts"], "contacts", year_codes).to_dict("records")}
    pr_field = f("contacts", "responsibility")
    for i, link in enumerate(text.to_dict("records")):
        fields = _fields(spec, "contacts", contacts[link["contact_id"]])
        fields |= _fields(spec, "relationships", link)
        fields[f("contacts", "pupil_id")] = link["pupil_id"]
        responsible = links.at[i, "parental_responsibility"]
        if not pd.isna(responsible) and bool(responsible) == by_type.get(link["relationship"]):
            fields[pr_field] = "Default"
        doc.add("contacts", fields)


def write_isams_batch(extract: Extract, out_dir: Path) -> Path:
    """Write ``isams-batch.xml`` into ``out_dir``, its modification time the extract's ``snapshot_at``."""
    spec = load_batch_format()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / spec.document.file
    path.write_bytes(render_isams_batch(extract))
    stamp = extract.snapshot_at.timestamp()
    os.utime(path, (stamp, stamp))
    return path
