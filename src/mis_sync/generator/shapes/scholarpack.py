"""A canonical ``Extract`` rendered as ScholarPack's REST API serves it (``/api/v1/{resource}/``).

Why: the ScholarPack fake (``mis_sync.fakes.scholarpack``) serves these records, so the ScholarPack
connector is tested by a round trip at a real school's size. Only the envelope, scopes and the
``student_uuid`` / ``staff_uuid`` ids are documented [V] (mis-sources §3.5); every field name below is a
guess to check against the sandbox OpenAPI [U], written out here rather than derived from
``include/mis_schemas/scholarpack.yaml``:

- ``students/``: ``student_uuid``, ``legal_forename`` / ``legal_surname``, ``preferred_*``,
  ``date_of_birth``, ``gender``, ``upn``, ``former_upn``, ``nc_year``, ``class_uuid`` (the class = the
  registration group), ``admission_date``, ``leaving_date``, ``email``;
- ``staff/``: ``staff_uuid``, ``title``, names, ``date_of_birth``, ``initials``, ``is_teacher``,
  ``email``, ``start_date``, ``end_date``;
- ``contacts/``: ``contact_uuid``, ``title``, ``forename``, ``surname``, ``email``, ``telephone`` and
  ``students: [{student_uuid, relationship, parental_responsibility, priority}]``;
- ``school/year-groups/`` and ``school/classes/``: uuid, ``name``, ``code``, ``nc_year`` and
  ``staff_uuids``.

What ScholarPack cannot carry: teaching groups (none exist: a primary MIS), SCNs, contacts' preferred
names (one set of names) and their staff link. Ids are the canonical ids (ScholarPack's are UUIDs; the
connector treats them as opaque).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mis_sync.model import Extract

RESOURCES = ("students/", "staff/", "contacts/", "school/year-groups/", "school/classes/")
SCOPES = {
    "students/": "student:read",
    "staff/": "staff:read",
    "contacts/": "contacts:third-party",
    "school/year-groups/": "school-info:read",
    "school/classes/": "school-info:read",
}
"""The OAuth scope each resource needs [V for students, staff, contacts, school]."""


def sp_date(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return f"{pd.Timestamp(value):%Y-%m-%d}"


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[return-value]


def _names(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "legal_forename": row["legal_first_name"],
        "legal_surname": row["legal_last_name"],
        "preferred_forename": row["preferred_first_name"],
        "preferred_surname": row["preferred_last_name"],
    }


def render_scholarpack(extract: Extract) -> dict[str, dict[str, dict[str, Any]]]:
    """Resource → id → record, for every resource in ``RESOURCES``."""
    t = extract.tables
    out: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
    for p in _rows(t["pupils"]):
        out["students/"][p["mis_id"]] = {
            "student_uuid": p["mis_id"],
            **_names(p),
            "date_of_birth": sp_date(p["date_of_birth"]),
            "gender": {"M": "Male", "F": "Female"}.get(p["gender"] or "", p["gender"]),
            "upn": p["upn"],
            "former_upn": p["former_upn"],
            "nc_year": p["year_group"],
            "class_uuid": p["registration_group_id"],
            "admission_date": sp_date(p["admission_date"]),
            "leaving_date": sp_date(p["leaving_date"]),
            "email": p["email"],
        }
    for s in _rows(t["staff"]):
        out["staff/"][s["mis_id"]] = {
            "staff_uuid": s["mis_id"],
            "title": s["title"],
            **_names(s),
            "date_of_birth": sp_date(s["date_of_birth"]),
            "initials": s["staff_code"],
            "is_teacher": s["is_teaching"],
            "email": s["email"],
            "start_date": sp_date(s["start_date"]),
            "end_date": sp_date(s["leaving_date"]),
        }
    links: dict[str, list[dict[str, Any]]] = {}
    for r in _rows(t["relationships"]):
        links.setdefault(r["contact_id"], []).append(
            {
                "student_uuid": r["pupil_id"],
                "relationship": r["relationship"],
                "parental_responsibility": r["parental_responsibility"],
                "priority": r["priority"],
            }
        )
    for c in _rows(t["contacts"]):
        out["contacts/"][c["mis_id"]] = {
            "contact_uuid": c["mis_id"],
            "title": c["title"],
            "forename": c["legal_first_name"],
            "surname": c["legal_last_name"],
            "email": c["email"],
            "telephone": c["phone"],
            "students": links.get(c["mis_id"], []),
        }
    members = t["memberships"]
    staff_of = members[members["role"] == "teacher"].groupby("group_id")["person_id"].agg(list).to_dict()
    for g in _rows(t["groups"]):
        record = {
            "name": g["name"],
            "code": g["code"],
            "nc_year": g["year_group"],
            "staff_uuids": staff_of.get(g["mis_id"], []),
        }
        if g["kind"] == "year":
            out["school/year-groups/"][g["mis_id"]] = {"year_group_uuid": g["mis_id"], **record}
        elif g["kind"] == "registration":
            out["school/classes/"][g["mis_id"]] = {"class_uuid": g["mis_id"], **record}
    return out
