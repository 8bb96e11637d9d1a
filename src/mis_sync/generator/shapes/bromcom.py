"""A canonical ``Extract`` rendered as Bromcom's Partner REST API serves it (``/v2/{Entity}``, flat rows).

Why: the Bromcom fake (``mis_sync.fakes.bromcom``) serves these rows, so the Bromcom connector is tested
by a round trip at a real school's size. The shape follows mis-sources.md §3.2 and the open-source .NET
client, written out here rather than derived from ``include/mis_schemas/bromcom.yaml``:

- ``StudentFlatView`` [S]: ``StudentId``, legal ``FirstName`` / ``LastName``, ``Preferred*``,
  ``GenderCode``, ``DateOfBirth`` (``2011-05-04T00:00:00``), ``Upn``, ``YearGroup`` (NC year, ``R``
  [U]), ``TutorGroupName``, ``StudentEmail``, ``EnrolmentStartDate`` / ``EnrolmentEndDate`` [S], and
  the flattened ``Contact1..3*`` (not read back: no contact ids);
- ``Staff`` [S]: ``StaffId``, ``Title``, names, ``StaffCode``, ``WorkEmail``, ``JobTitle``,
  ``StartDate`` / ``EndDate`` [S];
- ``StudentContacts`` [U]: one row per pupil and contact with the contact's details, ``Relationship``,
  ``ParentalResponsibility`` ``Yes`` / ``No`` and ``Priority``;
- ``Collections`` [U]: every group, ``CollectionType`` ``Year Group`` / ``Tutor Group`` / ``Class``
  and ``SubjectName``; ``CollectionAssociates`` [S] (pupils) and ``CollectionExecutives`` [U] (staff),
  with ``PersonId`` the StudentId / StaffId [U] and ``StartDate`` from the academic year's start.

What it cannot carry (the connector has nowhere to read it from): former UPNs, SCNs, staff dates of
birth, a contact's staff link; ``is_teaching`` is read back as "leads a current class" [U]; the
groups' year and academic year are derived (their pupils' year; the snapshot's academic year).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mis_sync.model import Extract

ENTITIES = (
    "StudentFlatView",
    "Staff",
    "StudentContacts",
    "Collections",
    "CollectionAssociates",
    "CollectionExecutives",
)
COLLECTION_TYPES = {"year": "Year Group", "registration": "Tutor Group", "teaching": "Class"}


def bromcom_date(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return f"{pd.Timestamp(value):%Y-%m-%d}T00:00:00"


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[return-value]


def _names(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "FirstName": row["legal_first_name"],
        "LastName": row["legal_last_name"],
        "PreferredFirstName": row["preferred_first_name"],
        "PreferredLastName": row["preferred_last_name"],
    }


def render_bromcom(extract: Extract) -> dict[str, dict[str, dict[str, Any]]]:
    """Entity → row key → row, for every entity in ``ENTITIES``."""
    t = extract.tables
    out: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
    groups = {g["mis_id"]: g for g in _rows(t["groups"])}
    links = _rows(t["relationships"])
    contacts = {c["mis_id"]: c for c in _rows(t["contacts"])}
    by_pupil: dict[str, list[dict[str, Any]]] = {}
    for link in sorted(links, key=lambda r: (r["pupil_id"], r["priority"] or 0)):
        by_pupil.setdefault(link["pupil_id"], []).append(link)

    for p in _rows(t["pupils"]):
        key, reg = p["mis_id"], p["registration_group_id"]
        row = {
            "StudentId": key,
            **_names(p),
            "GenderCode": p["gender"],
            "DateOfBirth": bromcom_date(p["date_of_birth"]),
            "Upn": p["upn"],
            "AdmissionNumber": key[1:],
            "YearGroup": p["year_group"],
            "TutorGroupName": groups[reg]["name"] if reg in groups else "NoTutorGrp",
            "StudentEmail": p["email"],
            "EnrolmentStartDate": bromcom_date(p["admission_date"]),
            "EnrolmentEndDate": bromcom_date(p["leaving_date"]),
            "EnrolmentStateName": "C",
        }
        for n, link in enumerate(by_pupil.get(key, [])[:3], start=1):
            c = contacts[link["contact_id"]]
            row |= {
                f"Contact{n}Name": " ".join(
                    str(v) for v in (c["title"], c["preferred_first_name"], c["preferred_last_name"]) if v
                ),
                f"Contact{n}Telephone": c["phone"],
                f"Contact{n}Email": c["email"],
                f"Contact{n}Relationship": link["relationship"],
                f"Contact{n}ParentalResponsibility": "Yes" if link["parental_responsibility"] else "No",
            }
        out["StudentFlatView"][key] = row

    for s in _rows(t["staff"]):
        out["Staff"][s["mis_id"]] = {
            "StaffId": s["mis_id"],
            "Title": s["title"],
            **_names(s),
            "WorkEmail": s["email"],
            "StaffCode": s["staff_code"],
            "JobTitle": "Teacher" if s["is_teaching"] else "Support staff",
            "StartDate": bromcom_date(s["start_date"]),
            "EndDate": bromcom_date(s["leaving_date"]),
        }

    for link in links:
        c = contacts[link["contact_id"]]
        out["StudentContacts"][f"{link['pupil_id']}|{link['contact_id']}"] = {
            "StudentId": link["pupil_id"],
            "ContactId": link["contact_id"],
            "Title": c["title"],
            **_names(c),
            "Email": c["email"],
            "Telephone": c["phone"],
            "Relationship": link["relationship"],
            "ParentalResponsibility": None
            if link["parental_responsibility"] is None
            else ("Yes" if link["parental_responsibility"] else "No"),
            "Priority": link["priority"],
        }

    for key, g in groups.items():
        first = int(str(g["academic_year"])[:4])
        out["Collections"][key] = {
            "CollectionId": key,
            "CollectionName": g["name"],
            "CollectionCode": g["code"],
            "CollectionType": COLLECTION_TYPES[g["kind"]],
            "SubjectName": g["subject"],
            "StartDate": f"{first}-09-01T00:00:00",
            "EndDate": f"{first + 1}-08-31T00:00:00",
        }
    members = t["memberships"]
    for group_id, person_id, role in zip(
        members["group_id"], members["person_id"], members["role"], strict=True
    ):
        entity = "CollectionAssociates" if role == "pupil" else "CollectionExecutives"
        start = out["Collections"][group_id]["StartDate"]
        out[entity][f"{group_id}|{person_id}"] = {
            "PersonId": person_id,
            "CollectionId": group_id,
            "CollectionName": groups[group_id]["name"],
            "StartDate": start,
            "EndDate": None,
        }
    return out
