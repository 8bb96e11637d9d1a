"""Reading the existing-users CSV (an AD, Google or Microsoft 365 export, or a spreadsheet).

Columns (headers are case-, space-, hyphen- and underscore-insensitive; other columns are ignored):

=================  ========  ==================================================================
column             required  values
=================  ========  ==================================================================
username           yes       the account's login (unique in the file, compared case-insensitively)
first_name         yes       first name as the account shows it
last_name          yes       last name (one of first/last may be blank for a mononym)
role               yes       pupil, teaching_staff, non_teaching_staff, staff or parent
email              yes       may be blank in a row
mis_id             no        the MIS id, when the account already carries it (links outright)
upn                no        pupils' Unique Pupil Number
date_of_birth      no        YYYY-MM-DD or DD/MM/YYYY
=================  ========  ==================================================================

UTF-8 with or without a byte-order mark ("CSV UTF-8" in Excel). Every problem is reported with the
file, line and column, never the value (the file is personal data).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mis_sync.errors import DataError

ROLES = ("pupil", "teaching_staff", "non_teaching_staff", "staff", "parent")
REQUIRED = ("username", "first_name", "last_name", "role", "email")
OPTIONAL = ("mis_id", "upn", "date_of_birth")
COLUMNS = (*REQUIRED, *OPTIONAL)
_ALIASES = {"dob": "date_of_birth", "misid": "mis_id", "forename": "first_name", "surname": "last_name"}
_MAX_SHOWN = 10


class ExistingUsersError(DataError):
    """The existing-users CSV cannot be used. Names file, lines and columns; never values."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        shown = "; ".join(problems[:_MAX_SHOWN])
        more = f"; and {len(problems) - _MAX_SHOWN} more problem(s)" if len(problems) > _MAX_SHOWN else ""
        super().__init__(f"{source}: {shown}{more}")


def _header_key(header: str) -> str:
    key = re.sub(r"[\s_\-]+", "", header.strip().lstrip("\ufeff").casefold())
    canonical = {c.replace("_", ""): c for c in COLUMNS}
    return canonical.get(key) or _ALIASES.get(key, "")


def _role(value: str) -> str | None:
    role = re.sub(r"[\s\-]+", "_", value.strip().casefold())
    return role if role in ROLES else None


def _date(value: str) -> dt.date | None:
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value[:10] if pattern == "%Y-%m-%d" else value, pattern).date()
        except ValueError:
            continue
    return None


def read_existing_users(path: str | Path, *, source: str | None = None) -> pd.DataFrame:
    """Read and validate an existing-users CSV file. Raises ``ExistingUsersError``."""
    path = Path(path)
    name = source or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExistingUsersError(name, [f"cannot be read ({exc.strerror})"]) from None
    return parse_existing_users(raw, source=name)


def parse_existing_users(data: bytes | str, *, source: str = "existing users CSV") -> pd.DataFrame:
    """Validate CSV content; returns one row per user with the documented columns plus ``line``."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ExistingUsersError(
                source, [f"line {line}: not UTF-8 text (save it as 'CSV UTF-8' and try again)"]
            ) from None
    else:
        text = data.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ExistingUsersError(source, ["the file is empty (expected a header line)"]) from None
    except csv.Error as exc:
        raise ExistingUsersError(source, [f"line 1: not valid CSV ({exc})"]) from None
    return _rows(reader, header, source)


def _columns(header: list[str], source: str) -> dict[str, int]:
    positions: dict[str, int] = {}
    problems = []
    for index, title in enumerate(header):
        key = _header_key(title)
        if not key:
            continue
        if key in positions:
            problems.append(
                f"line 1: column {key!r} appears twice (columns {positions[key] + 1} and {index + 1})"
            )
        positions.setdefault(key, index)
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        problems.append(
            f"line 1: missing required column(s) {', '.join(missing)} "
            f"(expected headers: {', '.join(COLUMNS)})"
        )
    if problems:
        raise ExistingUsersError(source, problems)
    return positions


def _rows(reader: Iterable[list[str]], header: list[str], source: str) -> pd.DataFrame:
    positions = _columns(header, source)
    records: list[dict[str, object]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    line_end = 1
    try:
        for row in reader:
            line, line_end = line_end + 1, reader.line_num  # type: ignore[attr-defined]
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(f"line {line}: {len(row)} field(s), the header has {len(header)}")
                continue
            record, row_problems = _record(row, positions, line)
            problems.extend(row_problems)
            username = str(record["username"] or "").casefold()
            if username:
                if username in seen:
                    problems.append(f"line {line}, column 'username': duplicate of line {seen[username]}")
                else:
                    seen[username] = line
            records.append(record)
    except csv.Error as exc:
        problems.append(f"line {line_end + 1}: not valid CSV ({exc})")
    if problems:
        raise ExistingUsersError(source, problems)
    return _frame(records)


def _record(row: list[str], positions: dict[str, int], line: int) -> tuple[dict[str, object], list[str]]:
    values = {c: row[positions[c]].strip() if c in positions else "" for c in COLUMNS}
    problems = []
    if not values["username"]:
        problems.append(f"line {line}, column 'username': empty")
    if not values["first_name"] and not values["last_name"]:
        problems.append(f"line {line}, columns 'first_name' and 'last_name': both empty")
    role = _role(values["role"])
    if role is None:
        problems.append(f"line {line}, column 'role': not one of {', '.join(ROLES)}")
    dob = None
    if values["date_of_birth"]:
        dob = _date(values["date_of_birth"])
        if dob is None:
            problems.append(f"line {line}, column 'date_of_birth': not a date (use YYYY-MM-DD or DD/MM/YYYY)")
    if values["email"] and "@" not in values["email"]:
        problems.append(f"line {line}, column 'email': not an email address")
    record: dict[str, object] = {c: values[c] or None for c in COLUMNS}
    record.update(role=role, date_of_birth=dob, line=line)
    return record, problems


def _frame(records: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, "line"])
    for column in COLUMNS:
        if column != "date_of_birth":
            frame[column] = frame[column].astype("string")
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"]).astype("datetime64[s]")
    frame["line"] = frame["line"].astype("int64")
    return frame


def existing_users_frame(frame: pd.DataFrame, *, source: str = "existing users") -> pd.DataFrame:
    """Validate users that arrive as a DataFrame (e.g. read from a directory API) like a CSV file."""
    buffer = io.StringIO()
    frame.astype("string").to_csv(buffer, index=False)
    return parse_existing_users(buffer.getvalue(), source=source)
