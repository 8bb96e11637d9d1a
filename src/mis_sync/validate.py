"""Structural validation of an extract, before anything is planned.

Two outcomes:
- **stop** (``ValidationStop``): the extract cannot be trusted as a whole — empty, much smaller than the
  last applied one, a required value missing, an id duplicated, a code the model does not know. Nothing
  is planned or applied; the message says which rule, entity and column, with counts and MIS ids only.
- **quarantine**: single rows that cannot be applied (a membership pointing at an unknown group or
  person, a relationship to an unknown pupil) are set aside as findings; the rest goes ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mis_sync.config import SafetyLimits
from mis_sync.errors import ValidationStop
from mis_sync.model import (
    ACADEMIC_YEAR_PATTERN,
    ENTITIES,
    EnrolmentStatus,
    Extract,
    GroupKind,
    MemberRole,
)

FINDING_COLUMNS = ["entity", "record", "field", "rule", "severity"]
ALLOWED_CODES = {
    ("pupils", "enrolment_status"): {s.value for s in EnrolmentStatus},
    ("staff", "enrolment_status"): {s.value for s in EnrolmentStatus},
    ("groups", "kind"): {k.value for k in GroupKind},
    ("memberships", "role"): {r.value for r in MemberRole},
}


@dataclass
class ValidationResult:
    extract: Extract
    """The extract minus quarantined rows."""
    findings: pd.DataFrame
    counts: dict[str, int]

    def summary(self) -> dict[str, object]:
        by_rule = self.findings.groupby(["entity", "rule"]).size()
        return {
            "counts": self.counts,
            "quarantined": {f"{e}.{r}": int(n) for (e, r), n in by_rule.items()},
        }


def _ids(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    return (
        frame[list(key)].astype("string").fillna("").agg("/".join, axis=1) if len(key) > 1 else frame[key[0]]
    )


def _sample(values: pd.Series, limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in values.head(limit))
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def check_structure(extract: Extract) -> None:
    """Stop on problems that make the whole extract untrustworthy."""
    problems = []
    for name, entity in ENTITIES.items():
        frame = extract.tables[name]
        for column in entity.required_columns:
            missing = frame[column].isna()
            if missing.any():
                problems.append(f"{name}.{column}: {int(missing.sum())} row(s) without a value")
        key = list(entity.key)
        duplicated = frame.duplicated(subset=key, keep=False) & frame[key].notna().all(axis=1)
        if duplicated.any():
            ids = _ids(frame[duplicated], entity.key).drop_duplicates()
            problems.append(f"{name}: duplicate {'+'.join(key)}: {_sample(ids)}")
    for (name, column), allowed in ALLOWED_CODES.items():
        values = extract.tables[name][column]
        unknown = values.notna() & ~values.isin(allowed)
        if unknown.any():
            codes = sorted(set(values[unknown].astype(str)))[:5]
            problems.append(f"{name}.{column}: unknown code(s) {codes}; expected one of {sorted(allowed)}")
    years = extract.tables["groups"]["academic_year"]
    bad_years = years.notna() & ~years.str.fullmatch(ACADEMIC_YEAR_PATTERN).fillna(False)
    if bad_years.any():
        problems.append(f"groups.academic_year: {int(bad_years.sum())} value(s) not like 2025/26")
    if problems:
        raise ValidationStop("extract failed structural checks: " + " | ".join(problems))


def on_roll_counts(extract: Extract) -> dict[str, int]:
    pupils, staff = extract.tables["pupils"], extract.tables["staff"]
    return {
        "pupils_on_roll": int((pupils["enrolment_status"] == EnrolmentStatus.ON_ROLL).sum()),
        "staff_current": int((staff["enrolment_status"] == EnrolmentStatus.ON_ROLL).sum()),
        **{name: len(frame) for name, frame in extract.tables.items()},
    }


def check_volume(counts: dict[str, int], last_counts: dict[str, int], limits: SafetyLimits) -> None:
    """An empty or short extract is an error, never "everyone left"."""
    for measure in ("pupils_on_roll", "staff_current"):
        if counts[measure] == 0:
            raise ValidationStop(f"empty extract: {measure} is 0; nothing will be planned or applied")
        previous = last_counts.get(measure)
        if previous and counts[measure] < limits.min_extract_fraction * previous:
            raise ValidationStop(
                f"short extract: {measure} is {counts[measure]}, below "
                f"{limits.min_extract_fraction:.0%} of the {previous} in the last applied extract; "
                "check the MIS export (a missing year group or a failed report) before re-running"
            )


def quarantine_references(extract: Extract) -> tuple[Extract, pd.DataFrame]:
    """Set aside rows that point at records the extract does not contain."""
    tables = dict(extract.tables)
    findings = []
    group_ids = set(tables["groups"]["mis_id"])
    pupil_ids, staff_ids = set(tables["pupils"]["mis_id"]), set(tables["staff"]["mis_id"])
    contact_ids = set(tables["contacts"]["mis_id"])

    memberships = tables["memberships"]
    person_ok = (memberships["role"] == MemberRole.PUPIL.value) & memberships["person_id"].isin(pupil_ids)
    person_ok |= (memberships["role"] == MemberRole.TEACHER.value) & memberships["person_id"].isin(staff_ids)
    bad_group = ~memberships["group_id"].isin(group_ids)
    for mask, field, rule in (
        (bad_group, "group_id", "unknown_group"),
        (~person_ok & ~bad_group, "person_id", "unknown_person"),
    ):
        if mask.any():
            findings.append(
                _findings("memberships", _ids(memberships[mask], ENTITIES["memberships"].key), field, rule)
            )
    tables["memberships"] = memberships[~bad_group & person_ok].reset_index(drop=True)

    relationships = tables["relationships"]
    bad_contact = ~relationships["contact_id"].isin(contact_ids)
    bad_pupil = ~relationships["pupil_id"].isin(pupil_ids)
    for mask, field, rule in (
        (bad_contact, "contact_id", "unknown_contact"),
        (bad_pupil & ~bad_contact, "pupil_id", "unknown_pupil"),
    ):
        if mask.any():
            ids = _ids(relationships[mask], ENTITIES["relationships"].key)
            findings.append(_findings("relationships", ids, field, rule))
    tables["relationships"] = relationships[~bad_contact & ~bad_pupil].reset_index(drop=True)

    pupils = tables["pupils"]
    bad_reg = pupils["registration_group_id"].notna() & ~pupils["registration_group_id"].isin(group_ids)
    if bad_reg.any():
        findings.append(
            _findings("pupils", pupils.loc[bad_reg, "mis_id"], "registration_group_id", "unknown_group")
        )
        pupils = pupils.copy()
        pupils.loc[bad_reg, "registration_group_id"] = pd.NA
        tables["pupils"] = pupils

    found = pd.concat(findings, ignore_index=True) if findings else pd.DataFrame(columns=FINDING_COLUMNS)
    return Extract(tables=tables, snapshot_at=extract.snapshot_at, source=extract.source), found


def _findings(entity: str, records: pd.Series, field: str, rule: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"entity": entity, "record": records.to_numpy(), "field": field, "rule": rule, "severity": "error"}
    )


def validate(extract: Extract, last_counts: dict[str, int], limits: SafetyLimits) -> ValidationResult:
    check_structure(extract)
    counts = on_roll_counts(extract)
    check_volume(counts, last_counts, limits)
    cleaned, findings = quarantine_references(extract)
    return ValidationResult(extract=cleaned, findings=findings.astype("string"), counts=counts)
