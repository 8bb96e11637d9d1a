"""A canonical ``Extract`` rendered as Groupcall Xporter on Demand serves it
(``/api/v1/School/{estab}/{Endpoint}``, PascalCase keys, one array per result table).

Why: the Xporter fake (``mis_sync.fakes.xporter``) serves these rows, so the Xporter connector is tested
by a round trip at a real school's size. The shape follows mis-sources.md §2.2 and is written out here,
not derived from ``include/mis_schemas/xporter.yaml``. Guesses to check against the OpenAPI [U]:

- ``StudentContacts`` rows: ``StudentId``, ``ContactId``, ``Relationship``,
  ``ParentalResponsibility``, ``Priority`` (keyed by the pair);
- ``Groups`` rows: ``Id``, ``Name``, ``Code``, ``Type``, ``Subject``, and with
  ``options=includeMembersIds`` comma-separated ``StudentIds`` and ``StaffIds``;
- a contact who is also staff carries the staff member's ``IdaasId``;
- contacts have no legal names (the connector uses the names given).

``LastUpdated`` and ``RowHash`` are the fake's business (they change when a row does).
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd

from mis_sync.generator.shapes.wonde import mis_number
from mis_sync.model import Extract

STUDENT_STATUS = {"on_roll": "OnRoll", "pre_admission": "PreAdmission", "leaver": "Leaver"}
STAFF_STATUS = {"on_roll": "Current", "pre_admission": "Future", "leaver": "Previous"}
GROUP_TYPES = {"year": "YearGrp", "registration": "RegGrp", "teaching": "TeachingGrp"}
TABLES: dict[str, tuple[str, ...]] = {
    "Students": ("Id",),
    "Staff": ("Id",),
    "Contacts": ("Id",),
    "StudentContacts": ("StudentId", "ContactId"),
    **{f"Groups.{t}": ("Id",) for t in GROUP_TYPES.values()},
}
"""Result tables (``Groups.<type>`` is ``Groups?type=<type>``) and the fields that key their rows."""
_NAMESPACE = uuid.UUID("9a1c4f3e-0d7b-4c55-8f1e-5b0f6c2d7a11")


def idaas_id(kind: str, key: str) -> str:
    """A stable GUID standing in for Groupcall's identity id."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))


def xod_date(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return f"{pd.Timestamp(value):%Y-%m-%dT%H:%M:%S}"


def year_name(year: Any) -> str | None:
    if year is None or pd.isna(year):
        return None
    return {"N1": "Nursery 1", "N2": "Nursery 2", "R": "Reception"}.get(str(year), f"Year {year}")


def row_key(table: str, row: dict[str, Any]) -> str:
    return "|".join(str(row[f]) for f in TABLES[table])


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[return-value]


def _names(row: dict[str, Any]) -> dict[str, Any]:
    first, last = row.get("preferred_first_name"), row.get("preferred_last_name")
    return {
        "Forename": first,
        "Surname": last,
        "MiddleName": None,
        "DisplayName": " ".join(str(n) for n in (first, last) if n) or None,
    }


def render_xporter(extract: Extract) -> dict[str, dict[str, dict[str, Any]]]:
    """Result table → row key (``row_key``) → row, for every table in ``TABLES``."""
    t = extract.tables
    out: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in TABLES}
    groups = {g["mis_id"]: g for g in _rows(t["groups"])}

    for row in _rows(t["pupils"]):
        key, reg = row["mis_id"], row["registration_group_id"]
        out["Students"][key] = {
            "Id": key,
            "IdaasId": idaas_id("pupil", key),
            "XID": f"X-{key}",
            "UPN": row["upn"],
            "formerUPN": row["former_upn"],
            "AdmissionNo": mis_number(key),
            **_names(row),
            "LegalForename": row["legal_first_name"],
            "LegalSurname": row["legal_last_name"],
            "DateofBirth": xod_date(row["date_of_birth"]),
            "Gender": row["gender"],
            "YearGroup": year_name(row["year_group"]),
            "RegGroup": groups[reg]["name"] if reg in groups else None,
            "RegGroupId": reg,
            "StudentStatus": STUDENT_STATUS.get(row["enrolment_status"], row["enrolment_status"]),
            "EntryDate": xod_date(row["admission_date"]),
            "LeavingDate": xod_date(row["leaving_date"]),
            "WorkEmail": row["email"],
        }

    for row in _rows(t["staff"]):
        key = row["mis_id"]
        out["Staff"][key] = {
            "Id": key,
            "IdaasId": idaas_id("staff", key),
            "XID": f"X-{key}",
            "StaffCode": row["staff_code"],
            "Title": row["title"],
            **_names(row),
            "LegalForename": row["legal_first_name"],
            "LegalSurname": row["legal_last_name"],
            "DateOfBirth": xod_date(row["date_of_birth"]),
            "EmploymentStart": xod_date(row["start_date"]),
            "EmploymentEnd": xod_date(row["leaving_date"]),
            "StaffStatus": STAFF_STATUS.get(row["enrolment_status"], row["enrolment_status"]),
            "IsTeacher": row["is_teaching"],
            "IsSupport": None if row["is_teaching"] is None else not row["is_teaching"],
            "WorkEmail": row["email"],
        }

    for row in _rows(t["contacts"]):
        key, staff_id = row["mis_id"], row["staff_mis_id"]
        out["Contacts"][key] = {
            "Id": key,
            "IdaasId": idaas_id("staff", staff_id) if staff_id else idaas_id("contact", key),
            "XID": f"X-{key}",
            "Title": row["title"],
            **_names(row),
            "HomeEmail": row["email"],
            "WorkEmail": None,
            "HomePhone": row["phone"],
            "WorkPhone": None,
            "MobilePhone": None,
        }

    for row in _rows(t["relationships"]):
        link = {
            "StudentId": row["pupil_id"],
            "ContactId": row["contact_id"],
            "Relationship": row["relationship"],
            "ParentalResponsibility": row["parental_responsibility"],
            "Priority": row["priority"],
        }
        out["StudentContacts"][row_key("StudentContacts", link)] = link

    members: dict[str, dict[str, list[str]]] = {}
    for group_id, person_id, role in zip(
        *(t["memberships"][c] for c in ("group_id", "person_id", "role")), strict=True
    ):
        members.setdefault(group_id, {"pupil": [], "teacher": []}).setdefault(role, []).append(person_id)
    for key, row in groups.items():
        kind = GROUP_TYPES.get(row["kind"])
        if kind is None:
            continue
        people = members.get(key, {})
        out[f"Groups.{kind}"][key] = {
            "Id": key,
            "XID": f"X-{key}",
            "Name": row["name"],
            "Code": row["code"],
            "Type": kind,
            "Subject": row["subject"],
            "StudentIds": ",".join(people.get("pupil", [])),
            "StaffIds": ",".join(people.get("teacher", [])),
        }
    return out
