"""The expectation suites: Great Expectations 1.x suites stored as JSON, one per canonical entity.

Where: ``include/expectations/<entity>.json`` (``mis_sync.paths.include_dir() / "expectations"``;
``$MISYNC_INCLUDE_DIR`` moves it). Each file is a GE 1.x suite (``name``, ``meta``, ``expectations``);
each expectation is a built-in GE expectation over a column of the frames that ``rules.derive_checks``
builds, and its ``meta`` says what a failure means:

- ``rule``: the rule's name in findings (``upn_check_letter``, ``contact_email_missing``…);
- ``severity``: ``error`` (the record is quarantined) or ``warning`` (applied and flagged);
- ``field``: the canonical field the data manager must fix;
- ``hint``: plain English for the school's data manager: how to fix it in the MIS.

Loading is strict: a file whose expectations GE cannot build, or that lacks any of these keys, raises
``SuiteError`` (GE itself would only log and drop a bad expectation).

This module does not import Great Expectations at import time; ``build_suite`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import pandas as pd

from mis_sync.model import ENTITIES
from mis_sync.paths import include_dir

SEVERITIES: Final = ("error", "warning")
META_KEYS: Final = ("rule", "severity", "field", "hint")
RULE_COLUMNS: Final = ["entity", "rule", "field", "severity", "hint", "expectation", "column"]


class SuiteError(ValueError):
    """An expectation suite file is missing or malformed (names the file and the problem)."""


@dataclass(frozen=True)
class SuiteSpec:
    """One entity's suite as read from JSON: the raw GE document plus each expectation's meta."""

    entity: str
    path: Path
    document: dict[str, Any]

    @property
    def expectations(self) -> list[dict[str, Any]]:
        return list(self.document["expectations"])


def expectations_dir() -> Path:
    return include_dir() / "expectations"


def _check_document(entity: str, path: Path, document: Any) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise SuiteError(f"{path}: expected an object with an 'expectations' list")
    if document.get("name") != entity:
        raise SuiteError(f"{path}: 'name' must be {entity!r}")
    for number, expectation in enumerate(document["expectations"], start=1):
        where = f"{path}: expectation {number}"
        if not isinstance(expectation, dict) or not isinstance(expectation.get("type"), str):
            raise SuiteError(f"{where}: needs a 'type'")
        kwargs = expectation.get("kwargs")
        if not isinstance(kwargs, dict) or not isinstance(kwargs.get("column"), str):
            raise SuiteError(f"{where}: needs kwargs.column (every rule is a column expectation)")
        meta = expectation.get("meta")
        if not isinstance(meta, dict) or any(
            not isinstance(meta.get(k), str) or not meta[k] for k in META_KEYS
        ):
            raise SuiteError(f"{where}: meta needs non-empty {', '.join(META_KEYS)}")
        if meta["severity"] not in SEVERITIES:
            raise SuiteError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    return document


@cache
def _load(directory: str) -> dict[str, SuiteSpec]:
    specs = {}
    for entity in ENTITIES:
        path = Path(directory) / f"{entity}.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SuiteError(f"{path}: cannot be read: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
        specs[entity] = SuiteSpec(entity, path, _check_document(entity, path, document))
    return specs


def load_specs(directory: Path | None = None) -> dict[str, SuiteSpec]:
    """Every entity's suite from ``directory`` (default ``expectations_dir()``); cached per folder."""
    return _load(str(directory or expectations_dir()))


def rule_table(directory: Path | None = None) -> pd.DataFrame:
    """One row per expectation: entity, rule, field, severity, hint, GE type and the column it checks."""
    rows = [
        {
            "entity": entity,
            **{key: expectation["meta"][key] for key in ("rule", "field", "severity", "hint")},
            "expectation": expectation["type"],
            "column": expectation["kwargs"]["column"],
        }
        for entity, spec in load_specs(directory).items()
        for expectation in spec.expectations
    ]
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def build_suite(spec: SuiteSpec) -> Any:
    """The GE ``ExpectationSuite`` for one entity; raises ``SuiteError`` if GE drops an expectation."""
    import great_expectations as gx

    try:
        suite = gx.ExpectationSuite(
            name=spec.entity, expectations=spec.expectations, meta=dict(spec.document.get("meta") or {})
        )
    except Exception as exc:  # GE raises several types for a bad configuration
        raise SuiteError(
            f"{spec.path}: Great Expectations rejected the suite: {type(exc).__name__}"
        ) from None
    if len(suite.expectations) != len(spec.expectations):
        raise SuiteError(
            f"{spec.path}: Great Expectations accepted {len(suite.expectations)} of "
            f"{len(spec.expectations)} expectations (check types and kwargs, and that none repeats)"
        )
    return suite
