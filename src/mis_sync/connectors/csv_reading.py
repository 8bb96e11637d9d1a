"""Reading an MIS CSV file with bounded time and memory, so a junk file stops at once with a clear error.

Seen in the field: a 5 MB "memberships" file of junk took 1.8 GB, a 50 MB one ran 300 s without an
answer. The causes, and what stops each here, before pandas builds anything large:

- a file far larger than the same file in the last extract that passed validation (``safety.
  max_source_file_growth``), or over an absolute cap (``safety.max_source_file_mb``): refused from
  its size alone, before it is opened;
- a header line without an end, or with thousands of fields (a binary or wrongly delimited file);
- a first data row with more fields than the header: pandas would silently turn the extra fields
  into a many-level row index (the 1.8 GB); later rows like it are a parser error naming the line;
- cells longer than any MIS field (``MAX_CELL_CHARS``): found chunk by chunk, so a junk file stops at
  its first bad chunk instead of after reading it all.

Every cell is read as text: names like "Na" or "Null" must not become missing values. Errors name the
file, the line and the column, never a value.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from mis_sync.errors import ExtractError

MB: Final = 1_000_000
MAX_HEADER_BYTES: Final = 64 * 1024
MAX_COLUMNS: Final = 500
MAX_CELL_CHARS: Final = 2_000
"""Longer than any MIS field (an address or a note is well under this); a junk cell is far longer."""
CHUNK_ROWS: Final = 100_000
GROWTH_FLOOR_BYTES: Final = 1 * MB
"""Files smaller than this are never refused for growth (a new school's first weeks grow fast)."""


@dataclass
class ReadLimits:
    """Bounds on one extract's source files, and the sizes it read (for the next run's baseline)."""

    max_bytes: int | None = 200 * MB
    growth_factor: float | None = 5.0
    baseline: dict[str, int] = field(default_factory=dict)
    """Each file's size in the last extract that passed validation."""
    sizes: dict[str, int] = field(default_factory=dict)

    def check_size(self, file_name: str, size: int) -> None:
        """Refuse a file from its size alone, before a byte of it is parsed."""
        self.sizes[file_name] = size
        if self.max_bytes is not None and size > self.max_bytes:
            raise ExtractError(
                f"{file_name}: {size / MB:.1f} MB is over the {self.max_bytes / MB:.0f} MB limit for a "
                "source file (safety.max_source_file_mb); check the export, or raise the limit"
            )
        last = self.baseline.get(file_name)
        grown = self.growth_factor is not None and last and size > self.growth_factor * last
        if grown and size > GROWTH_FLOOR_BYTES:
            raise ExtractError(
                f"{file_name}: {size / MB:.1f} MB is {size / last:.0f}x the last good extract's "
                f"{last / MB:.2f} MB (limit {self.growth_factor:g}x, safety.max_source_file_growth); "
                "check the export, or raise the limit for one run"
            )


def read_csv_bounded(path: Any, file_name: str, limits: ReadLimits | None = None) -> pd.DataFrame:
    """A CSV file (local ``Path`` or ``UPath``) as a frame of text, row 0 = line 2 of the file."""
    limits = limits if limits is not None else ReadLimits()
    limits.check_size(file_name, int(path.stat().st_size))
    try:
        with path.open("rb") as handle:
            header = _header(handle, file_name)
            handle.seek(0)
            return _read_chunks(handle, file_name, header)
    except UnicodeDecodeError as exc:
        raise ExtractError(
            f"{file_name}: not UTF-8 (byte offset {exc.start}); save it as CSV UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise ExtractError(f"{file_name}: the file is empty (not even a header row)") from None
    except pd.errors.ParserError as exc:
        raise ExtractError(f"{file_name}: malformed CSV ({str(exc).splitlines()[0][:120]})") from None


def _header(handle: Any, file_name: str) -> list[str]:
    """The header's fields, read with a bounded ``readline``: a file without line ends stops here."""
    line = handle.readline(MAX_HEADER_BYTES + 1)
    if not line.strip():
        raise ExtractError(f"{file_name}: the file is empty (not even a header row)")
    if len(line) > MAX_HEADER_BYTES:
        raise ExtractError(
            f"{file_name}: line 1: the header is longer than {MAX_HEADER_BYTES // 1024} KB "
            "(not a CSV export, or no line ends)"
        )
    fields = next(csv.reader([line.decode("utf-8-sig")]))
    if len(fields) > MAX_COLUMNS:
        raise ExtractError(
            f"{file_name}: line 1: {len(fields)} columns in the header (at most {MAX_COLUMNS})"
        )
    _check_first_row(handle, file_name, len(fields))
    return fields


def _check_first_row(handle: Any, file_name: str, columns: int) -> None:
    """Line 2 with more fields than the header: pandas would make the extra fields a row index (and
    take minutes and gigabytes over it), so it is refused here, reading at most one row's worth."""
    longest = columns * (MAX_CELL_CHARS * 4 + 3) + 2  # every cell at its longest, quoted, in UTF-8
    line = handle.readline(longest + 1)
    if len(line) > longest:
        raise ExtractError(
            f"{file_name}: line 2: longer than a row of {columns} fields can be (a junk file?)"
        )
    text = line.decode("utf-8", errors="replace")
    row = next(csv.reader([text]), [])
    if len(row) > columns and '"' not in text:
        raise ExtractError(
            f"{file_name}: line 2: {len(row)} fields, more than the header's {columns} "
            "(a junk file, or the wrong delimiter)"
        )


def _read_chunks(handle: Any, file_name: str, header: list[str]) -> pd.DataFrame:
    chunks = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        reader = pd.read_csv(
            handle,
            dtype=str,
            encoding="utf-8-sig",
            keep_default_na=False,
            skipinitialspace=False,
            index_col=False,  # extra fields never become a row index
            chunksize=CHUNK_ROWS,
        )
        with reader:
            for chunk in reader:
                if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                    raise ExtractError(
                        f"{file_name}: line 2: more fields than the header's {len(header)} "
                        "(a junk file, or the wrong delimiter)"
                    )  # a quoted line 2, which the quick check could not judge
                _check_cells(chunk, file_name)
                chunks.append(chunk)
    if not chunks:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in header})
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks)


def _check_cells(chunk: pd.DataFrame, file_name: str) -> None:
    """Stop at the first cell longer than any MIS field, naming its line and column."""
    for column in chunk.columns:
        long = chunk[column].str.len() > MAX_CELL_CHARS
        if long.any():
            row = int(long.idxmax())
            raise ExtractError(
                f"{file_name}: line {row + 2}, column {column}: a value longer than {MAX_CELL_CHARS} "
                f"characters ({int(long.sum())} in this part of the file): not an MIS field"
            )
