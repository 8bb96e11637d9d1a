"""Lineage: which MIS fields flowed to which directory fields and target attributes (counts only).

Each run writes ``lineage.json`` into its folder: per MIS field, how many records carried a value this
run and which directory fields it feeds; per directory field, which target attributes it feeds at each
enabled target. The maps below are what ``accounts.desired_users``, ``directory.apply`` and the target
adapters' user bodies do (``tests/unit/test_lineage.py`` checks the target maps against the adapters'
real request bodies). Fields read from the MIS only for validation — dates of birth, UPNs, SCNs,
gender, phone numbers — reach neither the directory nor any target.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

MIS_TO_DIRECTORY: dict[str, dict[str, list[str]]] = {
    "pupils": {
        "mis_id": ["mis_id"],
        "legal_first_name": ["first_name", "display_name", "username"],
        "legal_last_name": ["last_name", "display_name", "username"],
        "preferred_first_name": ["first_name", "display_name", "username"],
        "preferred_last_name": ["last_name", "display_name", "username"],
        "email": ["email"],
        "year_group": ["year_group"],
        "admission_date": ["status", "username"],
        "leaving_date": ["status"],
        "enrolment_status": ["status"],
    },
    "staff": {
        "mis_id": ["mis_id"],
        "title": ["display_name"],
        "legal_first_name": ["first_name", "display_name", "username"],
        "legal_last_name": ["last_name", "display_name", "username"],
        "preferred_first_name": ["first_name", "display_name", "username"],
        "preferred_last_name": ["last_name", "display_name", "username"],
        "email": ["email"],
        "is_teaching": ["role"],
        "start_date": ["status"],
        "leaving_date": ["status"],
        "enrolment_status": ["status"],
    },
    "contacts": {
        "mis_id": ["mis_id"],
        "legal_first_name": ["first_name", "display_name"],
        "legal_last_name": ["last_name", "display_name"],
        "preferred_first_name": ["first_name", "display_name"],
        "preferred_last_name": ["last_name", "display_name"],
        "email": ["email", "username"],
    },
    "groups": {
        "mis_id": ["group.mis_id"],
        "name": ["group.name"],
        "code": ["group.code"],
        "subject": ["group.subject"],
        "year_group": ["group.year_group"],
        "kind": ["group.kind"],
        "academic_year": ["group.academic_year"],
    },
    "memberships": {"group_id": ["membership"], "person_id": ["membership"], "role": ["membership.role"]},
    "relationships": {"contact_id": ["role"], "pupil_id": ["role"], "parental_responsibility": ["role"]},
}

DIRECTORY_TO_TARGET: dict[str, dict[str, list[str]]] = {
    "microsoft365": {
        "display_name": ["displayName"],
        "first_name": ["givenName"],
        "last_name": ["surname"],
        "status": ["accountEnabled"],
        "username": ["userPrincipalName", "mailNickname"],
        "group.name": ["class displayName"],
        "membership": ["class members/owners"],
    },
    "google_classroom": {
        "first_name": ["name.givenName"],
        "last_name": ["name.familyName"],
        "status": ["suspended"],
        "username": ["primaryEmail"],
        "mis_id": ["externalIds"],
        "year_group": ["orgUnitPath"],
        "group.name": ["course name"],
        "membership": ["course students/teachers"],
    },
}
"""Account attributes are sent only where the target provisions accounts (``provision_accounts``);
classes, their names and memberships always (members are looked up by principal name)."""
CLASS_FIELDS = ("group.name", "membership", "username")


def _value_counts(tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for entity, fields in MIS_TO_DIRECTORY.items():
        frame = tables.get(entity)
        if frame is None:
            continue
        counts[entity] = {f: int(frame[f].notna().sum()) for f in fields if f in frame.columns}
    return counts


def not_flowing(tables: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    """MIS fields present in the extract that feed nothing (read for validation only)."""
    return {
        entity: sorted(set(frame.columns) - set(MIS_TO_DIRECTORY.get(entity, {})))
        for entity, frame in tables.items()
        if set(frame.columns) - set(MIS_TO_DIRECTORY.get(entity, {}))
    }


def build_lineage(tables: dict[str, pd.DataFrame], enabled_targets: dict[str, bool]) -> dict[str, Any]:
    """``enabled_targets``: target → whether it provisions accounts."""
    counts = _value_counts(tables)
    fields = [
        {
            "entity": entity,
            "mis_field": field,
            "records_with_value": n,
            "directory_fields": MIS_TO_DIRECTORY[entity][field],
        }
        for entity, by_field in counts.items()
        for field, n in by_field.items()
    ]
    reached = {d for entry in fields if entry["records_with_value"] for d in entry["directory_fields"]}
    targets = {
        target: {
            d: attrs
            for d, attrs in DIRECTORY_TO_TARGET[target].items()
            if d in reached and (provisions or d in CLASS_FIELDS)
        }
        for target, provisions in enabled_targets.items()
        if target in DIRECTORY_TO_TARGET
    }
    return {
        "mis_to_directory": fields,
        "directory_to_targets": targets,
        "not_sent_anywhere": not_flowing(tables),
        "summary": {
            "mis_fields_used": sum(1 for entry in fields if entry["records_with_value"]),
            "directory_fields_fed": len(reached),
            "target_attributes": {t: sum(len(a) for a in m.values()) for t, m in targets.items()},
        },
    }


def write_lineage(
    folder: Any, tables: dict[str, pd.DataFrame], enabled_targets: dict[str, bool]
) -> dict[str, Any]:
    """Write ``lineage.json`` into the run folder; return its summary (counts) for the report."""
    from mis_sync.storage import write_json

    lineage = build_lineage(tables, enabled_targets)
    write_json(folder, "lineage.json", lineage)
    return lineage["summary"]
