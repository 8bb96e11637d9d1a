"""A canonical ``Extract`` rendered as the iSAMS REST API serves it (``/api/…``, camelCase JSON).

Why: the iSAMS REST fake (``mis_sync.fakes.isams_rest``) serves these records, so the connector is tested
by a round trip at a real school's size. Shape per mis-sources §3.4 A, written out here rather than
derived from ``include/mis_schemas/isams_rest.yaml``:

- students [S keys]: ``schoolId`` (the pupil key), ``id``, ``forename``, ``surname``, ``preferredName``,
  ``dob``, ``gender``, ``uniquePupilNumber``, ``yearGroup`` (NC year as an int, Reception 0, Nursery
  −1 / −2 [S]), ``formGroup`` (the form's name), ``enrolmentDate``, ``leavingDate``,
  ``schoolEmailAddress``; every pupil is listed, leavers and applicants too [U];
- employees: current staff only (as the Batch API), ``id``, ``title``, names, ``initials``,
  ``teachingStaff`` [U], ``schoolEmailAddress``;
- ``yearGroups`` (``id``, ``name``, ``code``, ``ncYear``, ``tutorEmployeeId``), ``forms`` [U] (``id``,
  ``name``, ``yearGroup``, ``tutorEmployeeId``, ``assistantTutorEmployeeIds``), ``subjects``, ``sets``
  (``id``, ``setCode``, ``name``, ``subjectId``, ``yearGroup``, ``teachers: [{employeeId,
  isPrimaryTeacher}]``) and per set its ``setList`` (``students: [{schoolId}]``) [S paths, U keys];
- per pupil ``contacts`` [U]: ``id``, ``title``, ``forename``, ``surname``, ``emailAddress``,
  ``mobileNumber``, ``relationType``, ``hasParentalResponsibility``, ``priority``.

What it cannot carry (as the Batch API): pupils' and staff's preferred surnames, former UPNs, SCNs;
staff who are not current, their dates of birth, start and leaving dates; contacts' preferred names and
staff link. Group ids come back with the kind prefix (``year:``, ``form:``, ``set:``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mis_sync.model import Extract

NC_YEARS = {"N1": -2, "N2": -1, "R": 0}


def isams_date(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return f"{pd.Timestamp(value):%Y-%m-%d}T00:00:00"


def nc_year(value: Any) -> int | None:
    if value is None or pd.isna(value):
        return None
    return NC_YEARS.get(str(value), int(value) if str(value).isdigit() else None)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[return-value]


def render_isams_rest(extract: Extract) -> dict[str, Any]:
    """``students``, ``employees``, ``yearGroups``, ``forms``, ``subjects``, ``sets`` (id → record),
    ``setLists`` (set id → pupil ids) and ``contacts`` (pupil → contact records)."""
    t = extract.tables
    groups = _rows(t["groups"])
    names = {g["mis_id"]: g["name"] for g in groups}
    members = t["memberships"]
    teachers = members[members["role"] == "teacher"].groupby("group_id")["person_id"].agg(list).to_dict()
    pupils_of = members[members["role"] == "pupil"].groupby("group_id")["person_id"].agg(list).to_dict()
    out: dict[str, Any] = {
        k: {}
        for k in ("students", "employees", "yearGroups", "forms", "subjects", "sets", "setLists", "contacts")
    }
    for i, p in enumerate(_rows(t["pupils"])):
        out["students"][p["mis_id"]] = {
            "id": i + 1,
            "schoolId": p["mis_id"],
            "forename": p["legal_first_name"],
            "surname": p["legal_last_name"],
            "preferredName": p["preferred_first_name"],
            "dob": isams_date(p["date_of_birth"]),
            "gender": p["gender"],
            "uniquePupilNumber": p["upn"],
            "yearGroup": nc_year(p["year_group"]),
            "formGroup": names.get(p["registration_group_id"]),
            "enrolmentDate": isams_date(p["admission_date"]),
            "leavingDate": isams_date(p["leaving_date"]),
            "schoolEmailAddress": p["email"],
        }
    for s in _rows(t["staff"][t["staff"]["enrolment_status"] == "on_roll"]):
        out["employees"][s["mis_id"]] = {
            "id": s["mis_id"],
            "title": s["title"],
            "forename": s["legal_first_name"],
            "surname": s["legal_last_name"],
            "preferredName": s["preferred_first_name"],
            "initials": s["staff_code"],
            "teachingStaff": s["is_teaching"],
            "schoolEmailAddress": s["email"],
        }
    subjects = {n: str(i + 1) for i, n in enumerate(sorted({g["subject"] for g in groups if g["subject"]}))}
    for name, key in subjects.items():
        out["subjects"][key] = {"id": key, "name": name, "code": name[:2]}
    for g in groups:
        staff = teachers.get(g["mis_id"], [])
        if g["kind"] == "year":
            out["yearGroups"][g["mis_id"]] = {
                "id": g["mis_id"],
                "name": g["name"],
                "code": g["code"],
                "ncYear": nc_year(g["year_group"]),
                "tutorEmployeeId": staff[0] if staff else None,
            }
        elif g["kind"] == "registration":
            out["forms"][g["mis_id"]] = {
                "id": g["mis_id"],
                "name": g["name"],
                "yearGroup": nc_year(g["year_group"]),
                "tutorEmployeeId": staff[0] if staff else None,
                "assistantTutorEmployeeIds": staff[1:],
            }
        else:
            out["sets"][g["mis_id"]] = {
                "id": g["mis_id"],
                "setCode": g["code"],
                "name": g["name"],
                "subjectId": subjects.get(g["subject"]),
                "yearGroup": nc_year(g["year_group"]),
                "teachers": [{"employeeId": s, "isPrimaryTeacher": n == 0} for n, s in enumerate(staff)],
            }
            out["setLists"][g["mis_id"]] = [{"schoolId": p} for p in pupils_of.get(g["mis_id"], [])]
    contacts = {c["mis_id"]: c for c in _rows(t["contacts"])}
    for link in _rows(t["relationships"]):
        c = contacts[link["contact_id"]]
        out["contacts"].setdefault(link["pupil_id"], []).append(
            {
                "id": c["mis_id"],
                "title": c["title"],
                "forename": c["legal_first_name"],
                "surname": c["legal_last_name"],
                "emailAddress": c["email"],
                "mobileNumber": c["phone"],
                "relationType": link["relationship"],
                "hasParentalResponsibility": link["parental_responsibility"],
                "priority": link["priority"],
            }
        )
    return out
