"""The canonical data model every MIS connector produces, defined once.

An extract is six tables (pandas DataFrames), one per entity. Connectors map their source shapes onto
these columns; validation, planning and the target adapters only ever see this shape. Keys are MIS ids
as strings (never UPNs or staff codes, which change and are reused).

Why DataFrames and not one object per person: a large trust holds ~400k memberships, and every stage
(validate, plan, apply) works on whole columns at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

ColumnType = Literal["string", "date", "boolean", "int"]

UNREADABLE = "unreadable_fields"
"""Every entity's last column: comma-separated names of the record's fields whose source value could not
be read (a date that is not a date, a number that is not a number). Names only, never the value; the
value itself is dropped. Data quality quarantines such a record (rule ``value_unreadable``)."""

_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "string": pa.string(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
}
_PANDAS_TYPES: dict[ColumnType, str] = {
    "string": "string",
    "date": "datetime64[s]",
    "boolean": "boolean",
    "int": "Int32",
}


class EnrolmentStatus(StrEnum):
    """Where a pupil (or staff member) stands with the establishment."""

    ON_ROLL = "on_roll"
    PRE_ADMISSION = "pre_admission"
    LEAVER = "leaver"


class GroupKind(StrEnum):
    YEAR = "year"
    REGISTRATION = "registration"
    TEACHING = "teaching"


class MemberRole(StrEnum):
    PUPIL = "pupil"
    TEACHER = "teacher"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "string"
    required: bool = False
    """A required column must be present in every extract and non-empty in every row."""
    personal: bool = False
    """Personal data: never logged, never in XCom, never in an exception message."""


@dataclass(frozen=True)
class Entity:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    references: dict[str, tuple[str, str]] = field(default_factory=dict)
    """column -> (entity, column) it must point at (referential integrity)."""

    def __post_init__(self) -> None:
        if UNREADABLE not in (c.name for c in self.columns):
            object.__setattr__(self, "columns", (*self.columns, Column(UNREADABLE)))

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def personal_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.personal]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in self.columns])

    def empty_frame(self) -> pd.DataFrame:
        return pd.DataFrame({c.name: pd.Series([], dtype=_PANDAS_TYPES[c.type]) for c in self.columns})

    def coerce(self, frame: pd.DataFrame, *, strict: bool = False) -> pd.DataFrame:
        """Return the frame with exactly this entity's columns, in order, with canonical dtypes.

        Missing optional columns are added as nulls; unknown columns are dropped. A value that cannot be
        coerced (a date of birth like ``31/02/2013`` or ``unknown``) is a fault of that record, not of
        the extract: the value becomes missing and the column's name is added to the row's
        ``unreadable_fields``, so data quality quarantines the record (a finding naming entity, record
        and field) and the rest of the school still syncs. ``strict=True`` raises ``CoercionError``
        instead, naming the entity, column and row numbers (never the value, which may be personal).
        """
        out = {}
        unreadable = _unreadable_start(frame)
        for column in self.columns:
            if column.name == UNREADABLE:
                continue
            if column.name not in frame.columns:
                out[column.name] = pd.Series(pd.NA, index=frame.index, dtype=_PANDAS_TYPES[column.type])
                continue
            values, bad = _coerce_series(frame[column.name], column.type)
            if bad.any():
                if strict:
                    rows = [int(i) for i in bad.to_numpy().nonzero()[0][:5]]
                    raise CoercionError(self.name, column.name, column.type, rows, int(bad.sum()))
                flags = bad.to_numpy(dtype=bool)
                unreadable[flags] = [_add_field(v, column.name) for v in unreadable[flags]]
            out[column.name] = values
        out[UNREADABLE] = pd.Series(unreadable, index=frame.index, dtype="string")
        return pd.DataFrame(out, index=frame.index)[self.column_names].reset_index(drop=True)


class CoercionError(ValueError):
    """Values of a column are not of its type. Carries row positions, never the values."""

    def __init__(self, entity: str, column: str, column_type: str, rows: list[int], count: int) -> None:
        self.entity, self.column, self.rows, self.count = entity, column, rows, count
        shown = ", ".join(str(r) for r in rows)
        more = f" and {count - len(rows)} more" if count > len(rows) else ""
        super().__init__(
            f"{entity}.{column}: {count} value(s) are not valid {column_type}s "
            f"(data rows {shown}{more}, counting from 0)"
        )


def _unreadable_start(frame: pd.DataFrame) -> np.ndarray:
    """The frame's existing ``unreadable_fields`` (an extract coerced twice keeps what it found first)."""
    if UNREADABLE not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    text = frame[UNREADABLE].astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy(dtype=bool)
    values = np.full(len(frame), None, dtype=object)
    values[present] = text.to_numpy(dtype=object)[present]
    return values


def _add_field(current: str | None, name: str) -> str:
    if not current:
        return name
    return current if name in current.split(",") else f"{current},{name}"


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _coerce_series(series: pd.Series, column_type: ColumnType) -> tuple[pd.Series, pd.Series]:
    """Convert to the canonical dtype; return the values and a mask of rows that did not convert."""
    text = series.astype("string").str.strip()
    text = text.mask(text == "", pd.NA)
    if column_type == "string":
        return text, pd.Series(False, index=series.index)
    if column_type == "date":
        if pd.api.types.is_datetime64_any_dtype(series):
            return series.astype("datetime64[s]"), pd.Series(False, index=series.index)
        parsed = pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        return parsed.astype("datetime64[s]"), parsed.isna() & text.notna()
    if column_type == "boolean":
        if pd.api.types.is_bool_dtype(series):
            return series.astype("boolean"), pd.Series(False, index=series.index)
        lowered = text.str.lower()
        result = pd.Series(pd.NA, index=series.index, dtype="boolean")
        result[lowered.isin(_TRUE).fillna(False).astype(bool)] = True
        result[lowered.isin(_FALSE).fillna(False).astype(bool)] = False
        return result, result.isna() & text.notna()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna() & text.notna()
    whole = numbers.where(numbers.isna() | (numbers == numbers.round()))
    whole = whole.where(whole.between(-(2**31), 2**31 - 1))  # outside Int32 would wrap silently
    bad |= whole.isna() & numbers.notna()
    return whole.astype("Int32"), bad


def _name_columns() -> tuple[Column, ...]:
    return (
        Column("legal_first_name", personal=True),
        Column("legal_last_name", personal=True),
        Column("preferred_first_name", personal=True),
        Column("preferred_last_name", personal=True),
    )


PUPILS = Entity(
    name="pupils",
    key=("mis_id",),
    columns=(
        Column("mis_id", required=True),
        *_name_columns(),
        Column("date_of_birth", "date", personal=True),
        Column("gender"),
        Column("upn", personal=True),
        Column("former_upn", personal=True),
        Column("scn", personal=True),
        Column("year_group"),
        Column("registration_group_id"),
        Column("admission_date", "date"),
        Column("leaving_date", "date"),
        Column("enrolment_status", required=True),
        Column("email", personal=True),
    ),
    references={"registration_group_id": ("groups", "mis_id")},
)

STAFF = Entity(
    name="staff",
    key=("mis_id",),
    columns=(
        Column("mis_id", required=True),
        Column("title", personal=True),
        *_name_columns(),
        Column("date_of_birth", "date", personal=True),
        Column("staff_code"),
        Column("teacher_number", personal=True),
        Column("is_teaching", "boolean"),
        Column("email", personal=True),
        Column("start_date", "date"),
        Column("leaving_date", "date"),
        Column("enrolment_status", required=True),
    ),
)

CONTACTS = Entity(
    name="contacts",
    key=("mis_id",),
    columns=(
        Column("mis_id", required=True),
        Column("title", personal=True),
        *_name_columns(),
        Column("email", personal=True),
        Column("phone", personal=True),
        Column("staff_mis_id"),
    ),
    references={"staff_mis_id": ("staff", "mis_id")},
)

GROUPS = Entity(
    name="groups",
    key=("mis_id",),
    columns=(
        Column("mis_id", required=True),
        Column("kind", required=True),
        Column("name", required=True),
        Column("code"),
        Column("subject"),
        Column("year_group"),
        Column("academic_year", required=True),
    ),
)

MEMBERSHIPS = Entity(
    name="memberships",
    key=("group_id", "person_id", "role"),
    columns=(
        Column("group_id", required=True),
        Column("person_id", required=True),
        Column("role", required=True),
    ),
    references={"group_id": ("groups", "mis_id")},
)

RELATIONSHIPS = Entity(
    name="relationships",
    key=("contact_id", "pupil_id"),
    columns=(
        Column("contact_id", required=True),
        Column("pupil_id", required=True),
        Column("relationship"),
        Column("parental_responsibility", "boolean"),
        Column("priority", "int"),
    ),
    references={"contact_id": ("contacts", "mis_id"), "pupil_id": ("pupils", "mis_id")},
)

ENTITIES: dict[str, Entity] = {
    e.name: e for e in (PUPILS, STAFF, CONTACTS, GROUPS, MEMBERSHIPS, RELATIONSHIPS)
}

ACADEMIC_YEAR_PATTERN = r"^\d{4}/\d{2}$"
"""Academic years are written as ``2025/26`` (England, Wales, Scotland alike)."""


SOURCE_FINDING_COLUMNS = ["entity", "mis_id", "field", "rule", "severity", "hint"]
"""Columns of ``Extract.source_findings`` (the quality step's findings without ``row``)."""


def no_source_findings() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="string") for c in SOURCE_FINDING_COLUMNS})


@dataclass
class Extract:
    """One snapshot of an establishment's MIS: the six canonical tables and when the MIS produced it.

    ``snapshot_at`` is the MIS's own time for the data (not the time we read it) and is what stops a
    backfill or late retry from applying older data over newer (see ``apply``).

    ``source_findings`` (``SOURCE_FINDING_COLUMNS``) is what the connector noticed about the source's
    answer that the data alone cannot show: a field the source withheld (Wonde returns ``null`` for
    what the app may not read, which looks like "no value"), a total the source did not report. Ids,
    rules and hints only, never personal data. ``mis_id`` names a record of ``entity``, or is empty
    for a finding about the whole read (always a warning). The data-quality step adds them to its
    findings: an ``error`` quarantines the record (held as it is in the directory).
    """

    tables: dict[str, pd.DataFrame]
    snapshot_at: pd.Timestamp
    source: str
    source_findings: pd.DataFrame = field(default_factory=no_source_findings)

    def __post_init__(self) -> None:
        missing = set(ENTITIES) - set(self.tables)
        if missing:
            raise ValueError(f"extract is missing entities: {', '.join(sorted(missing))}")
        if self.snapshot_at.tzinfo is None:
            raise ValueError("snapshot_at must be timezone-aware")

    def counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.tables.items()}
