"""``check_extract``: the whole data-quality step for one extract (or a trust's extracts at once).

Steps, in order (each breaker raises ``ValidationStop`` with counts only):

1. schema drift (``breakers.check_schema``);
2. empty / short extract against ``last_counts`` (``breakers.check_volume``);
3. rules: derived check columns (``rules``) validated by the GE suites (``runner``), plus record faults
   (``record_faults``: unreadable values, unknown codes, missing required values), giving findings
   (entity, mis_id, field, rule, severity, hint, row), plus the connector's own findings about the
   source's answer (``Extract.source_findings``, see ``source_findings``);
4. quarantine: rows with an error, and what hangs off them, leave the extract (``quarantine``);
5. error rate (``breakers.check_error_rate``; most links pointing nowhere stops earlier, before the GE
   suites: ``breakers.check_junk_references``): raises ``breakers.QualityStop``, a ``ValidationStop``
   that carries the findings and summary so the report can still be written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mis_sync.config import SafetyLimits
from mis_sync.errors import ValidationStop
from mis_sync.model import ENTITIES, Extract
from mis_sync.quality.breakers import check_error_rate, check_junk_references, check_schema, check_volume
from mis_sync.quality.quarantine import QUARANTINE_COLUMNS, quarantine
from mis_sync.quality.record_faults import with_record_faults
from mis_sync.quality.rules import derive_checks, derive_keys
from mis_sync.quality.years import COUNTRIES, Country
from mis_sync.validate import on_roll_counts

FINDING_COLUMNS = ["entity", "mis_id", "field", "rule", "severity", "hint", "row"]
"""Columns of every findings frame; ``mis_id`` is the record key as text, ``row`` its 0-based position in
the extract's table (``runner`` returns the rest, ``attach_keys`` adds ``mis_id``)."""


@dataclass
class QualityResult:
    clean_extract: Extract
    """The extract minus quarantined rows (what plan may use)."""
    findings: pd.DataFrame
    """Every finding, errors and warnings (``FINDING_COLUMNS``). MIS ids only, no personal data."""
    counts: dict[str, int]
    """``validate.on_roll_counts`` of the extract as received (what the next run's volume check uses)."""
    summary: dict[str, Any]
    """Counts only, safe for logs and XCom (see ``summarise``)."""
    quarantined: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS))
    """Rows removed from the extract: entity, mis_id, row, cause (``error`` or ``follows <entity>``)."""

    @property
    def has_errors(self) -> bool:
        return bool((self.findings["severity"] == "error").any())


def summarise(findings: pd.DataFrame, counts: dict[str, int], quarantined: pd.DataFrame) -> dict[str, Any]:
    """Counts only: per severity, per ``entity.rule`` (errors under ``quarantined``, warnings under
    ``warnings``, records counted once per rule), rows removed per entity (cascades included)."""

    def per_rule(severity: str) -> dict[str, int]:
        subset = findings[findings["severity"] == severity].drop_duplicates(["entity", "rule", "row"])
        sizes = subset.groupby(["entity", "rule"]).size()
        return {f"{entity}.{rule}": int(n) for (entity, rule), n in sizes.items()}

    removed = quarantined.groupby("entity").size()
    return {
        "counts": dict(counts),
        "findings": {s: int((findings["severity"] == s).sum()) for s in ("error", "warning")},
        "quarantined": per_rule("error"),
        "warnings": per_rule("warning"),
        "removed": {str(entity): int(n) for entity, n in removed.items()},
    }


def _complete(extract: Extract) -> Extract:
    """The extract with every optional canonical column present (missing ones as nulls)."""
    tables = {}
    for name, entity in ENTITIES.items():
        frame = extract.tables[name]
        absent = [c for c in entity.column_names if c not in frame.columns]
        if absent:
            empty = entity.empty_frame()
            frame = frame.assign(
                **{c: pd.Series(pd.NA, index=frame.index, dtype=empty[c].dtype) for c in absent}
            )
        tables[name] = frame.reset_index(drop=True)
    return Extract(
        tables=tables,
        snapshot_at=extract.snapshot_at,
        source=extract.source,
        source_findings=extract.source_findings,
    )


def _prepare(
    extract: Extract, last_counts: Mapping[str, int] | None, limits: SafetyLimits
) -> tuple[Extract, dict[str, int]]:
    check_schema(extract)
    extract = _complete(extract)
    counts = on_roll_counts(extract)
    check_volume(counts, dict(last_counts or {}), limits)
    return extract, counts


def attach_keys(results: pd.DataFrame, extract: Extract) -> pd.DataFrame:
    """Runner results (``runner.RESULT_COLUMNS``) as findings (``FINDING_COLUMNS``): the record key of
    each row looked up in the extract, sorted by entity, rule, key, field."""
    keys = pd.Series(pd.NA, index=results.index, dtype=object)
    for entity, rows in results.groupby("entity")["row"]:
        table = extract.tables[str(entity)]
        keys[rows.index] = derive_keys(str(entity), table, rows.to_numpy())
    findings = results.assign(mis_id=keys.to_numpy())[FINDING_COLUMNS]
    findings = findings.sort_values(["entity", "rule", "mis_id", "field", "row"], kind="stable")
    findings = findings.reset_index(drop=True)
    out = findings[FINDING_COLUMNS[:-1]].astype("string")
    out["row"] = findings["row"].astype("int64")
    return out


def source_findings(extract: Extract) -> pd.DataFrame:
    """The connector's findings (``Extract.source_findings``) as findings: each record's ``row`` looked
    up by its key; a finding about the whole read, or about a record not in the table, has ``row`` -1
    and is never an error (an error quarantines its row, and there is none)."""
    found = extract.source_findings
    out = found.reindex(columns=FINDING_COLUMNS[:-1]).astype("string")
    rows = pd.Series(-1, index=out.index, dtype="int64")
    for entity, part in out.groupby("entity"):
        if str(entity) not in extract.tables:
            continue
        table = extract.tables[str(entity)]
        keys = derive_keys(str(entity), table)
        position = pd.Series(range(len(table)), index=keys).groupby(level=0).first()
        rows[part.index] = part["mis_id"].map(position).fillna(-1).astype("int64").to_numpy()
    out.loc[(rows < 0).to_numpy(), "severity"] = "warning"
    out["mis_id"] = out["mis_id"].fillna("")
    out["row"] = rows
    return out.reset_index(drop=True)


def _finish(
    extract: Extract, counts: dict[str, int], results: pd.DataFrame, limits: SafetyLimits
) -> QualityResult:
    findings = attach_keys(results, extract)
    if len(extract.source_findings):
        merged = pd.concat([findings, source_findings(extract)], ignore_index=True)
        merged = merged.sort_values(["entity", "rule", "mis_id", "field", "row"], kind="stable")
        findings = merged.reset_index(drop=True)
    clean, removed = quarantine(extract, findings)
    summary = summarise(findings, counts, removed)
    check_error_rate(findings, extract, limits, summary)
    return QualityResult(
        clean_extract=clean, findings=findings, counts=counts, summary=summary, quarantined=removed
    )


def _country(country: str) -> Country:
    if country not in COUNTRIES:
        raise ValueError(f"unknown country {country!r}; expected one of {', '.join(COUNTRIES)}")
    return country  # type: ignore[return-value]


def check_extract(
    extract: Extract,
    *,
    country: str = "england",
    last_counts: Mapping[str, int] | None = None,
    limits: SafetyLimits | None = None,
    as_of: dt.date | None = None,
) -> QualityResult:
    """Check one establishment's extract; raise ``ValidationStop`` when a circuit breaker trips.

    ``country`` is the establishment's (``Establishment.country``): it picks year-group codes and the
    DOB rule. ``last_counts`` is the last successful run's ``counts`` (``{}`` on a first run).
    ``as_of`` (default: the snapshot's date) sets the academic year and ages for the DOB rule.
    """
    from mis_sync.quality.runner import run_suites

    limits = limits or SafetyLimits()
    extract, counts = _prepare(extract, last_counts, limits)
    frames = derive_checks(extract, country=_country(country), as_of=as_of)
    check_junk_references(frames, limits)
    return _finish(extract, counts, with_record_faults(run_suites(frames), extract), limits)


def check_extracts(
    extracts: Mapping[str, Extract],
    *,
    country: str | Mapping[str, str] = "england",
    last_counts: Mapping[str, Mapping[str, int]] | None = None,
    limits: SafetyLimits | None = None,
) -> dict[str, QualityResult | ValidationStop]:
    """``check_extract`` for many establishments (a trust) with one GE batch per entity for all.

    Each establishment is judged on its own (duplicates, references, breakers); one whose breaker
    trips maps to its ``ValidationStop`` and the others still get their ``QualityResult``.
    """
    from mis_sync.quality.runner import run_suites_many

    limits = limits or SafetyLimits()
    results: dict[str, QualityResult | ValidationStop] = {}
    ready: dict[str, tuple[Extract, dict[str, int], dict[str, pd.DataFrame]]] = {}
    for slug, extract in extracts.items():
        where = country if isinstance(country, str) else country.get(slug, "england")
        try:
            prepared, counts = _prepare(extract, (last_counts or {}).get(slug), limits)
            frames = derive_checks(prepared, country=_country(where))
            check_junk_references(frames, limits)
        except ValidationStop as stop:
            results[slug] = stop
            continue
        ready[slug] = (prepared, counts, frames)
    found = run_suites_many([frames for _, _, frames in ready.values()]) if ready else []
    for (slug, (prepared, counts, _)), findings in zip(ready.items(), found, strict=True):
        try:
            results[slug] = _finish(prepared, counts, with_record_faults(findings, prepared), limits)
        except ValidationStop as stop:
            results[slug] = stop
    return {slug: results[slug] for slug in extracts}
