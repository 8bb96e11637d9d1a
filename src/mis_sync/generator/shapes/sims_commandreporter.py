"""Write a canonical ``Extract`` as the four SIMS CommandReporter report files the connector reads.

Why the captions and code values come from ``include/mis_schemas/sims_commandreporter.yaml``: the YAML
is the one definition of the shape, so writer and connector cannot drift apart. The output mimics what
CommandReporter produces (``<SuperStarReport><Record>…``, captions encoded ``_x0020_``, ``Year  7``
with two spaces, null fields left out, multi-recordset reports as a cross product of rows) as far as
``mis-sources.md`` §3.3 documents it. Every canonical field is carried except ``pupils.scn`` (SIMS is an
England/Wales/NI MIS; the reports have no SCN) and ``contacts.staff_mis_id`` (no report field links a
contact to a staff record).

Each file's modification time is set to the extract's ``snapshot_at``: the connector's snapshot time
is the newest report file time, so a round trip keeps it.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from mis_sync.connectors.sds import FormatSpec, load_format
from mis_sync.connectors.sims_commandreporter import RECORD, ROOT
from mis_sync.connectors.xml_source import encode_name
from mis_sync.model import ENTITIES, Extract

SOURCE = "sims_commandreporter"
COMPUTED = frozenset({"registration_group_id"})
"""Canonical columns the connector computes rather than reads from a caption of the same name."""


def _first_raw(table: dict[str, str]) -> dict[str, str]:
    """Canonical code → the first raw value the YAML lists for it (what SIMS would show)."""
    out: dict[str, str] = {}
    for raw, canonical in table.items():
        out.setdefault(canonical, raw)
    return out


def _year_label(values: pd.Series, labels: dict[str, str]) -> pd.Series:
    text = values.astype("string")
    numeric = text.str.fullmatch(r"\d+").fillna(False).astype(bool)
    return text.map(labels).astype("string").where(~numeric, "Year  " + text).fillna(text)


def _cells(frame: pd.DataFrame, entity: str, spec: FormatSpec) -> pd.DataFrame:
    """Canonical columns → report text, keyed by caption; NA stays NA (the field is left out)."""
    codes = spec.mapping.codes
    types = {c.name: c.type for c in ENTITIES[entity].columns}
    out: dict[str, pd.Series] = {}
    for caption, canonical in spec.mapping.entities[entity].columns.items():
        if canonical in COMPUTED or canonical not in frame.columns:
            continue
        series = frame[canonical]
        if types[canonical] == "date":
            text = series.dt.strftime("%Y-%m-%dT00:00:00").astype("string")
        elif types[canonical] == "boolean":
            text = series.map({True: "Yes", False: "No"}, na_action="ignore").astype("string")
        elif canonical == "year_group":
            text = _year_label(series, _first_raw(codes["year_group"]))
        elif canonical == "academic_year":
            start = series.str.slice(0, 4)
            text = start + "/" + (pd.to_numeric(start, errors="coerce") + 1).astype("Int64").astype("string")
        elif canonical in codes:
            raw = _first_raw(codes[canonical])
            text = series.astype("string").map(raw).astype("string").fillna(series.astype("string"))
        else:
            text = series.astype("string")
        out[caption] = text
    return pd.DataFrame(out, index=frame.index)


def _write(path: Path, cells: pd.DataFrame, stamp: float) -> Path:
    root = ET.Element(ROOT)
    tags = [encode_name(str(caption)) for caption in cells.columns]
    for row in cells.to_numpy(dtype=object, na_value=None):
        record = ET.SubElement(root, RECORD)
        for tag, value in zip(tags, row, strict=True):
            if value is not None:
                ET.SubElement(record, tag).text = str(value)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    os.utime(path, (stamp, stamp))
    return path


def write_sims_commandreporter(extract: Extract, out_dir: Path) -> list[Path]:
    """Write ``Students.xml``, ``Staff.xml``, ``Contacts.xml`` and ``Groups.xml`` into ``out_dir``."""
    spec = load_format(SOURCE)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = extract.snapshot_at.timestamp()
    t = extract.tables
    file = {key: source.file for key, source in spec.files.items()}
    written = []

    pupils = _cells(t["pupils"], "pupils", spec)
    group_names = dict(zip(t["groups"]["mis_id"], t["groups"]["name"], strict=True))
    pupils[spec.column("students", "reg")] = t["pupils"]["registration_group_id"].map(group_names)
    written.append(_write(out_dir / file["students"], pupils, stamp))
    written.append(_write(out_dir / file["staff"], _cells(t["staff"], "staff", spec), stamp))

    # Contacts × linked students: one record per relationship; contacts without one get a record alone.
    links = t["relationships"].reset_index(drop=True)
    linked = t["contacts"].merge(links, left_on="mis_id", right_on="contact_id", how="left", sort=False)
    contacts = _cells(linked, "contacts", spec)
    relationship = _cells(linked, "relationships", spec)
    contacts = contacts.join(relationship[[c for c in relationship.columns if c not in contacts.columns]])
    written.append(_write(out_dir / file["contacts"], contacts, stamp))

    # Groups × members, likewise.
    members = t["memberships"].reset_index(drop=True)
    joined = t["groups"].merge(members, left_on="mis_id", right_on="group_id", how="left", sort=False)
    groups = _cells(joined, "groups", spec)
    membership = _cells(joined, "memberships", spec)
    groups = groups.join(membership[[c for c in membership.columns if c not in groups.columns]])
    written.append(_write(out_dir / file["groups"], groups, stamp))
    return written
