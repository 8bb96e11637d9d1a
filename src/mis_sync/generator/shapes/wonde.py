"""A canonical ``Extract`` rendered as Wonde's API serves it (``/v1.0/schools/{id}/{endpoint}``).

Why: the Wonde fake (``mis_sync.fakes.wonde``) serves these records, so the Wonde connector is tested by
a round trip at a real school's size. The shape follows the MIS sources reference (§2.1) and is written
out here, not derived from ``include/mis_schemas/wonde.yaml``, so a typo in the mapping fails the round
trip instead of being mirrored. Keys marked [U] there are guesses to check against a sandbox:

- pupils are split by endpoint: ``students`` (on roll), ``students-pre-admission``, ``students-leaver``
  (the last from Wonde's own PHP client);
- ``education_details.data``: ``upn``, ``former_upn``, ``scn``, ``admission_date``, ``leaving_date``
  (date objects), ``current_nc_year`` [U for all but the last];
- ``year.data``: ``{id, code, name}``, the include Wonde's integrators read the year group from
  (``year.data.code``); ``current_nc_year`` carries the same year;
- ``employment_details.data``: ``current``, ``teaching_staff``, ``staff_code``, ``start_date``,
  ``end_date`` [U for the last three];
- a contact who is also staff shares the employee's ``upi`` (Wonde's person hash) [U];
- ``groups`` have ``type`` ``YEAR`` / ``REGISTRATION`` and a ``code`` [U]; ``classes`` are teaching
  groups with a ``subject`` include; neither carries a year group (the connector derives it);
- includes that list people (``students``, ``employees``) hold short objects (``id``, ``mis_id``,
  ``upi``) where Wonde sends whole ones: the connector reads only ``id``.

Every record carries every include; the fake strips those a request did not ask for. Timestamps
(``created_at``, ``updated_at``) are the fake's business.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pandas as pd

from mis_sync.model import Extract

PUPIL_ENDPOINTS = {
    "on_roll": "students",
    "pre_admission": "students-pre-admission",
    "leaver": "students-leaver",
}
ENDPOINTS = (*PUPIL_ENDPOINTS.values(), "employees", "contacts", "groups", "classes")
INCLUDES: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        PUPIL_ENDPOINTS.values(),
        frozenset({"education_details", "contact_details", "extended_details", "year", "groups", "contacts"}),
    ),
    "employees": frozenset({"employment_details", "contact_details"}),
    "contacts": frozenset({"contact_details"}),
    "groups": frozenset({"students", "employees"}),
    "classes": frozenset({"students", "employees", "subject"}),
}
"""Per endpoint, the keys that are ``?include=`` relations (absent unless asked for)."""
DELETION_TYPES = {
    **dict.fromkeys(PUPIL_ENDPOINTS.values(), "student"),
    "employees": "employee",
    "contacts": "contact",
    "groups": "group",
    "classes": "class",
}
"""Per endpoint, the ``type`` its records have in ``/deletions`` [U]."""
GROUP_TYPES = {"year": "YEAR", "registration": "REGISTRATION"}
GENDERS = {"M": "MALE", "F": "FEMALE"}


def wonde_date(value: Any) -> dict[str, Any] | None:
    """Wonde's date object: ``{"date": "2015-10-29 00:00:00.000000", "timezone_type": 3, …}``."""
    if value is None or pd.isna(value):
        return None
    return {
        "date": f"{pd.Timestamp(value):%Y-%m-%d %H:%M:%S}.000000",
        "timezone_type": 3,
        "timezone": "Europe/London",
    }


def upi(kind: str, key: str) -> str:
    """A stable 32-hex person hash standing in for Wonde's ``upi`` (not a UPN)."""
    return hashlib.md5(f"{kind}:{key}".encode(), usedforsecurity=False).hexdigest()


def mis_number(key: str) -> str:
    """The MIS's own key behind a Wonde id (digits only here)."""
    return re.sub(r"\D", "", key) or key


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Records with ``None`` for every missing value (JSON ``null``)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[return-value]


def _person(row: dict[str, Any], kind: str, key: str) -> dict[str, Any]:
    first, last = row.get("preferred_first_name"), row.get("preferred_last_name")
    return {
        "id": row["mis_id"],
        "upi": upi(kind, key),
        "mis_id": mis_number(row["mis_id"]),
        "initials": "".join(str(n)[0] for n in (first, last) if n),
        "title": row.get("title"),
        "surname": last,
        "forename": first,
        "middle_names": None,
        "legal_surname": row.get("legal_last_name"),
        "legal_forename": row.get("legal_first_name"),
        "gender": GENDERS.get(row.get("gender") or "", row.get("gender")),
        "gender_identity": None,
        "date_of_birth": wonde_date(row.get("date_of_birth")),
        "restored_at": None,
    }


def _contact_details(email: Any, phone: Any = None, *, work: bool = False) -> dict[str, Any]:
    return {
        "data": {
            "emails": {
                "email": email,
                "primary": email,
                "home": None if work else email,
                "work": email if work else None,
            },
            "phones": {"phone": phone, "primary": phone, "home": phone, "work": None, "mobile": None},
            "addresses": None,
            "salutation": None,
        }
    }


def _stub(kind: str, key: str) -> dict[str, Any]:
    return {"id": key, "mis_id": mis_number(key), "upi": upi(kind, key)}


def year_code(year: str, *, labelled: bool) -> str:
    """A year code as the MIS names it: ``"7"``, or ``"Year 7"`` / ``"Year R"`` when ``labelled``."""
    return f"Year {year}" if labelled else year


def render_wonde(extract: Extract, *, labelled_years: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """Endpoint → Wonde id → record (with every include), for ``ENDPOINTS``. ``labelled_years``: the
    ``year`` include's ``code`` as some MISs write it (``"Year 7"``) instead of ``"7"``."""
    t = extract.tables
    groups = t["groups"].set_index("mis_id", drop=False)
    members = t["memberships"]
    out: dict[str, dict[str, dict[str, Any]]] = {endpoint: {} for endpoint in ENDPOINTS}

    pupil_groups: dict[str, list[dict[str, Any]]] = {}
    group_rows = {row["mis_id"]: row for row in _rows(t["groups"])}
    pastoral = members[
        (members["role"] == "pupil") & members["group_id"].map(groups["kind"]).isin(GROUP_TYPES)
    ]
    for pupil_id, group_id in zip(pastoral["person_id"], pastoral["group_id"], strict=True):
        g = group_rows[group_id]
        pupil_groups.setdefault(pupil_id, []).append(
            {
                "id": group_id,
                "mis_id": mis_number(group_id),
                "name": g["name"],
                "code": g["code"],
                "type": GROUP_TYPES[g["kind"]],
            }
        )
    staff_of_contact = dict(zip(t["contacts"]["mis_id"], t["contacts"]["staff_mis_id"], strict=True))
    pupil_contacts: dict[str, list[dict[str, Any]]] = {}
    for link in _rows(t["relationships"]):
        staff_id = staff_of_contact.get(link["contact_id"])
        pupil_contacts.setdefault(link["pupil_id"], []).append(
            {
                **_stub("contact", link["contact_id"]),
                "upi": upi("staff", staff_id) if pd.notna(staff_id) else upi("contact", link["contact_id"]),
                "relationship": {
                    "relationship": link["relationship"],
                    "bill_payer": None,
                    "lives_with_pupil": None,
                    "email_bills": None,
                    "copy_bills": None,
                    "court_order": None,
                    "parental_responsibility": link["parental_responsibility"],
                    "priority": link["priority"],
                },
            }
        )

    for row in _rows(t["pupils"]):
        key = row["mis_id"]
        year = row["year_group"]
        record = _person(row, "pupil", key)
        record["education_details"] = {
            "data": {
                "upn": row["upn"],
                "former_upn": row["former_upn"],
                "scn": row["scn"],
                "admission_date": wonde_date(row["admission_date"]),
                "leaving_date": wonde_date(row["leaving_date"]),
                "current_nc_year": year,
            }
        }
        record["contact_details"] = _contact_details(row["email"])
        record["extended_details"] = {"data": None}
        record["year"] = {
            "data": None
            if year is None
            else {"id": f"Y{year}", "code": year_code(year, labelled=labelled_years), "name": f"Year {year}"}
        }
        record["groups"] = {"data": pupil_groups.get(key, [])}
        record["contacts"] = {"data": pupil_contacts.get(key, [])}
        out[PUPIL_ENDPOINTS.get(row["enrolment_status"], "students")][key] = record

    for row in _rows(t["staff"]):
        record = _person(row, "staff", row["mis_id"])
        record["gender"] = None
        record["employment_details"] = {
            "data": {
                "current": row["enrolment_status"] == "on_roll",
                "teaching_staff": row["is_teaching"],
                "staff_code": row["staff_code"],
                "start_date": wonde_date(row["start_date"]),
                "end_date": wonde_date(row["leaving_date"]),
            }
        }
        record["contact_details"] = _contact_details(row["email"], work=True)
        out["employees"][row["mis_id"]] = record

    for row in _rows(t["contacts"]):
        staff_id = row["staff_mis_id"]
        record = _person(row, "staff" if staff_id else "contact", staff_id or row["mis_id"])
        record["gender"] = None
        record["contact_details"] = _contact_details(row["email"], row["phone"])
        out["contacts"][row["mis_id"]] = record

    people: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for group_id, person_id, role in zip(
        members["group_id"], members["person_id"], members["role"], strict=True
    ):
        kind = "students" if role == "pupil" else "employees"
        people.setdefault(group_id, {"students": [], "employees": []})[kind].append(
            _stub("pupil" if role == "pupil" else "staff", person_id)
        )
    for row in _rows(t["groups"]):
        key = row["mis_id"]
        record: dict[str, Any] = {
            "id": key,
            "mis_id": mis_number(key),
            "name": row["name"],
            "code": row["code"],
            "description": row["name"],
        }
        lists = people.get(key, {"students": [], "employees": []})
        record["students"] = {"data": lists["students"]}
        record["employees"] = {"data": lists["employees"]}
        if row["kind"] in GROUP_TYPES:
            record["type"] = GROUP_TYPES[row["kind"]]
            out["groups"][key] = record
        else:
            subject = row["subject"]
            record["alternative"] = None
            record["subject"] = {
                "data": None if subject is None else {"id": upi("subject", subject)[:10], "name": subject}
            }
            out["classes"][key] = record
    return out
