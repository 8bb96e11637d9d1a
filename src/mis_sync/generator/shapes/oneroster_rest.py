"""A canonical ``Extract`` rendered as a OneRoster 1.1 REST provider serves it
(``/ims/oneroster/v1p1/{collection}``).

Why: the OneRoster fake (``mis_sync.fakes.oneroster_rest``) serves these records, so the connector is
tested by a round trip at a real school's size. Shape per mis-sources §4.1 / §4.3, written out here
rather than derived from ``include/mis_schemas/oneroster_rest.yaml``:

- ``users`` [S JSON]: ``sourcedId``, ``enabledUser`` (``"true"`` / ``"false"``: booleans arrive as
  strings [S]), ``givenName`` / ``familyName`` (legal names), ``role``, ``identifier`` (a pupil's UPN
  [U], a staff member's code), ``email``, ``phone``, ``grades`` (the NC year), ``agents`` (a pupil's
  contacts, by priority) and ``orgs``; ``demographics``: ``birthDate`` and ``sex``;
- ``classes``: registration groups as ``homeroom``, teaching groups as ``scheduled`` classes [U UK
  mapping], with ``grades``, ``subjects`` and ``terms`` (a ``schoolYear`` academic session per year);
- ``enrollments`` [U JSON]: ``user`` / ``class`` / ``school`` references, ``role`` student / teacher.

What OneRoster 1.1 cannot carry: preferred names, titles, former UPNs, SCNs, admission and leaving
dates, staff start dates, pre-admissions (a feed lists people on roll: leavers stay, disabled), year
groups (no object: pupils' ``grades`` only), a contact's staff link, parental responsibility and
priority; a relationship is the contact's role (``contact_role``). ``status`` and ``dateLastModified``
are the fake's business.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mis_sync.model import Extract

COLLECTIONS = ("academicSessions", "users", "demographics", "classes", "enrollments")
CLASS_TYPES = {"registration": "homeroom", "teaching": "scheduled"}
PARENTS = frozenset({"mother", "father", "step-mother", "step-father", "parent"})
RELATIVES = frozenset({"grandmother", "grandfather", "aunt", "uncle", "brother", "sister", "relative"})


def contact_role(relationship: Any) -> str:
    """A contact's OneRoster role from a canonical relationship: parent, relative or guardian."""
    value = str(relationship or "").strip().lower()
    return "parent" if value in PARENTS else "relative" if value in RELATIVES else "guardian"


def contact_roles(extract: Extract) -> dict[str, str]:
    """Each contact's one role: from their first link (by pupil, then priority); unlinked: guardian."""
    links = extract.tables["relationships"].sort_values(["contact_id", "pupil_id", "priority"])
    first = links.drop_duplicates("contact_id")
    roles = dict(zip(first["contact_id"], first["relationship"].map(contact_role), strict=True))
    return {c: roles.get(c, "guardian") for c in extract.tables["contacts"]["mis_id"]}


def or_date(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return f"{pd.Timestamp(value):%Y-%m-%d}"


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[return-value]


def _ref(kind: str, key: str) -> dict[str, str]:
    return {"href": f"/{kind}s/{key}", "sourcedId": key, "type": kind}


def render_oneroster(extract: Extract) -> dict[str, dict[str, dict[str, Any]]]:
    """Collection → sourcedId → record (without ``status`` / ``dateLastModified``)."""
    t = extract.tables
    out: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in COLLECTIONS}
    school = _ref("org", "school")
    for label in sorted(set(t["groups"]["academic_year"].dropna())):
        first = int(str(label)[:4])
        out["academicSessions"][f"AY{first}"] = {
            "sourcedId": f"AY{first}",
            "title": label,
            "type": "schoolYear",
            "startDate": f"{first}-09-01",
            "endDate": f"{first + 1}-08-31",
            "schoolYear": str(first + 1),
            "parent": None,
        }
    agents: dict[str, list[str]] = {}
    for r in _rows(t["relationships"].sort_values(["pupil_id", "priority"])):
        agents.setdefault(r["pupil_id"], []).append(r["contact_id"])

    def user(key: str, role: str, row: dict[str, Any], **more: Any) -> None:
        out["users"][key] = {
            "sourcedId": key,
            "username": "",
            "userIds": [],
            "enabledUser": "true",
            "givenName": row["legal_first_name"],
            "familyName": row["legal_last_name"],
            "middleName": "",
            "role": role,
            "identifier": "",
            "email": row["email"],
            "sms": "",
            "phone": "",
            "agents": [],
            "orgs": [school],
            "grades": [],
            "password": "",
            **more,
        }
        out["demographics"][key] = {
            "sourcedId": key,
            "birthDate": or_date(row.get("date_of_birth")),
            "sex": {"M": "male", "F": "female"}.get(row.get("gender") or "", row.get("gender")),
        }

    for p in _rows(t["pupils"][t["pupils"]["enrolment_status"] != "pre_admission"]):
        user(
            p["mis_id"],
            "student",
            p,
            enabledUser=str(p["enrolment_status"] == "on_roll").lower(),
            identifier=p["upn"] or "",
            grades=[p["year_group"]] if p["year_group"] else [],
            agents=[_ref("user", c) for c in agents.get(p["mis_id"], [])],
        )
    for s in _rows(t["staff"][t["staff"]["enrolment_status"] != "pre_admission"]):
        user(
            s["mis_id"],
            "teacher" if s["is_teaching"] else "administrator",
            s,
            enabledUser=str(s["enrolment_status"] == "on_roll").lower(),
            identifier=s["staff_code"] or "",
        )
    roles = contact_roles(extract)
    for c in _rows(t["contacts"]):
        user(c["mis_id"], roles[c["mis_id"]], c, phone=c["phone"] or "")
    served = set(out["users"])
    for g in _rows(t["groups"][t["groups"]["kind"].isin(CLASS_TYPES)]):
        out["classes"][g["mis_id"]] = {
            "sourcedId": g["mis_id"],
            "title": g["name"],
            "classCode": g["code"],
            "classType": CLASS_TYPES[g["kind"]],
            "location": "",
            "grades": [g["year_group"]] if g["year_group"] else [],
            "subjects": [g["subject"]] if g["subject"] else [],
            "course": {"sourcedId": f"C-{g['mis_id']}", "type": "course"},
            "school": school,
            "terms": [_ref("academicSession", f"AY{str(g['academic_year'])[:4]}")],
            "periods": [],
        }
    members = t["memberships"]
    for group_id, person_id, role in zip(
        members["group_id"], members["person_id"], members["role"], strict=True
    ):
        if group_id in out["classes"] and person_id in served:
            key = f"E-{group_id}-{person_id}-{role}"
            out["enrollments"][key] = {
                "sourcedId": key,
                "user": _ref("user", person_id),
                "class": _ref("class", group_id),
                "school": school,
                "role": "student" if role == "pupil" else "teacher",
                "primary": "false",
                "beginDate": None,
                "endDate": None,
            }
    return out
