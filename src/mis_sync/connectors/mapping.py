"""Field mappings as data: ``include/mis_schemas/<source>.yaml`` → canonical columns and codes.

A connector reads its source into raw tables keyed by the source's own column names; ``apply_mapping``
renames, normalises codes and coerces types. A mapping fix is therefore a YAML change, reviewed like
data, and the same code serves every source shape.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mis_sync.connectors.base import ExtractError
from mis_sync.model import ENTITIES
from mis_sync.paths import mis_schemas_dir


class EntityMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str | None = None
    columns: dict[str, str]


class SourceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    title: str
    manifest: str | None = None
    entities: dict[str, EntityMapping]
    codes: dict[str, dict[str, str]] = {}

    def source_column(self, entity: str, canonical: str) -> str:
        for source_name, target in self.entities[entity].columns.items():
            if target == canonical:
                return source_name
        return canonical


@cache
def load_mapping(source: str) -> SourceMapping:
    path = mis_schemas_dir() / f"{source}.yaml"
    try:
        mapping = SourceMapping.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ExtractError(f"{path}: field mapping cannot be loaded ({type(exc).__name__})") from None
    check_mapping(path, mapping)
    return mapping


def check_mapping(path: Path, mapping: SourceMapping) -> None:
    """Every mapped entity and column must exist in the canonical model (a typo fails loudly)."""
    for entity, entity_mapping in mapping.entities.items():
        if entity not in ENTITIES:
            raise ExtractError(f"{path}: entities.{entity}: not a canonical entity")
        unknown = set(entity_mapping.columns.values()) - set(ENTITIES[entity].column_names)
        if unknown:
            raise ExtractError(f"{path}: entities.{entity}: unknown canonical columns {sorted(unknown)}")


_WORDS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirteen": "13",
    "fourteen": "14",
}


CANONICAL_YEAR_GROUPS = frozenset({"N1", "N2", "R", "X", *(str(n) for n in range(1, 15))})
"""England/Wales NC years as the census codes them (``uk-data-rules.md`` §4)."""


def _fold(values: pd.Series) -> pd.Series:
    return values.str.lower().str.replace(r"\s+", " ", regex=True).str.strip()


def normalise_year_group(values: pd.Series, table: dict[str, str]) -> pd.Series:
    """``"Year  7"``, ``"Y7"``, ``"Year Seven"``, ``"Reception"`` → ``7``, ``7``, ``7``, ``R``.

    Codes already canonical (``N1``, ``N2``, ``R``, ``1``–``14``, ``X``) pass through unchanged;
    anything unrecognised is kept as given so data-quality rules can flag it.
    """
    folded = _fold(values)
    looked_up = folded.map({k.lower(): v for k, v in table.items()}).astype("string")
    stripped = folded.str.replace(r"^(?:year|yr|y)\s*", "", regex=True)
    stripped = stripped.replace(_WORDS)
    canonical = stripped.str.upper().str.replace(r"^0(?=\d)", "", regex=True)
    canonical = canonical.where(canonical.isin(CANONICAL_YEAR_GROUPS))
    return looked_up.fillna(canonical).fillna(values.astype("string"))


def normalise_codes(values: pd.Series, table: dict[str, str]) -> pd.Series:
    """Map raw code values through a case- and space-insensitive table; unknown values pass through."""
    folded = _fold(values)
    lookup = {re.sub(r"\s+", " ", k.lower()).strip(): v for k, v in table.items()}
    return folded.map(lookup).astype("string").fillna(folded)


def apply_mapping(
    raw: dict[str, pd.DataFrame], mapping: SourceMapping, where: dict[str, str]
) -> dict[str, pd.DataFrame]:
    """Rename, normalise and coerce raw source tables into canonical ones.

    ``where`` names each entity's origin (a file or endpoint) for error messages. A missing source
    column that maps to a required canonical column is schema drift: the extract stops, naming the
    file and the column. A value that cannot be read (a date that is not a date) is a fault of its
    record only: ``Entity.coerce`` drops the value and names the field in ``unreadable_fields``, and
    data quality quarantines that record (the school's other records still sync).
    """
    tables: dict[str, pd.DataFrame] = {}
    for name, entity in ENTITIES.items():
        entity_mapping = mapping.entities.get(name)
        frame = raw.get(name)
        if entity_mapping is None or frame is None:
            tables[name] = entity.empty_frame()
            continue
        missing = [
            source
            for source, target in entity_mapping.columns.items()
            if target in entity.required_columns and source not in frame.columns
        ]
        if missing:
            raise ExtractError(f"{where[name]}: required column(s) missing: {', '.join(missing)}")
        renamed = frame.rename(columns=entity_mapping.columns)
        renamed = renamed[[c for c in renamed.columns if c in entity.column_names]]
        for code_column, table in mapping.codes.items():
            if code_column in renamed.columns:
                series = renamed[code_column].astype("string")
                if code_column == "year_group":
                    renamed[code_column] = normalise_year_group(series, table)
                else:
                    renamed[code_column] = normalise_codes(series, table)
        tables[name] = entity.coerce(renamed)  # unreadable values: record faults, quarantined later
    return tables
