"""Shared helpers for MIS sources that arrive as XML (SIMS CommandReporter, iSAMS Batch API).

Why a hand-wired expat parser and not ``xml.etree.ElementTree.parse``: MIS exports come from outside
(a school server, a vendor API), and the standard parsers expand internal entities and accept DOCTYPEs.
``defusedxml`` is not among the project's pinned dependencies, so the same protection is applied here:
any DOCTYPE, entity or notation declaration is refused before it is processed, and an undeclared entity
reference is a well-formedness error. Expat feeds ``ElementTree.TreeBuilder`` so callers get ordinary
``Element`` objects.

Error messages name the file, the element or record (by position and MIS id) and the field, never a
value: the values are children's personal data.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from typing import BinaryIO
from xml.parsers import expat

import pandas as pd

from mis_sync.errors import ExtractError
from mis_sync.model import ENTITIES

__all__ = [
    "check_types",
    "decode_name",
    "encode_name",
    "flatten",
    "frame_of",
    "iso_dates",
    "normalise_academic_year",
    "parse_xml",
    "require_values",
]


class _Refused(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _refuse(what: str) -> Callable[..., None]:
    def handler(*_args: object) -> None:
        raise _Refused(what)

    return handler


def parse_xml(source: bytes | BinaryIO, where: str) -> ET.Element:
    """Parse an XML document safely and return its root element.

    Refused (``ExtractError``): a DOCTYPE (and with it every entity or external-DTD trick: billion
    laughs, quadratic blow-up, XXE), entity and notation declarations. Malformed or truncated input
    gives expat's own description and position, which never quotes the document.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE declaration")
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.UnparsedEntityDeclHandler = _refuse("an unparsed entity declaration")
    parser.NotationDeclHandler = _refuse("a notation declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity reference")
    try:
        if isinstance(source, bytes):
            parser.Parse(source, True)
        else:
            parser.ParseFile(source)
    except _Refused as exc:
        raise ExtractError(
            f"{where}: refused: the document contains {exc.what} "
            "(DOCTYPEs and entities are not allowed in MIS exports)"
        ) from None
    except expat.ExpatError as exc:
        raise ExtractError(
            f"{where}: malformed XML at line {exc.lineno}, column {exc.offset}: {expat.ErrorString(exc.code)}"
        ) from None
    return builder.close()


_ENCODED = re.compile(r"_x([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})_")


def decode_name(name: str) -> str:
    """``Legal_x0020_Surname`` → ``Legal Surname`` (.NET ``XmlConvert.DecodeName``)."""
    if "_x" not in name:
        return name
    return _ENCODED.sub(lambda m: chr(int(m.group(1), 16)), name)


def encode_name(caption: str) -> str:
    """``Legal Surname`` → ``Legal_x0020_Surname``: what .NET writes for a report caption.

    Characters not allowed in an XML name are written ``_xHHHH_``; an underscore that would read as
    the start of such an escape is escaped itself, so ``decode_name`` always inverts this.
    """
    out = []
    for i, char in enumerate(caption):
        valid = char.isalnum() or char == "_" or (i > 0 and char in ".-")
        if i == 0 and char.isdigit():
            valid = False
        if char == "_" and _ENCODED.match(caption, i):
            valid = False
        out.append(char if valid else f"_x{ord(char):04X}_")
    return "".join(out)


def flatten(element: ET.Element, *, decode: bool = False, attributes: bool = False) -> dict[str, str]:
    """One element as a flat record: child element texts by (decoded) name, attributes as ``@name``.

    A repeated child keeps its first value; a child with children of its own is skipped (its text is
    only whitespace). Absent children are simply absent (``.NET`` DataSets omit null fields).
    """
    record: dict[str, str] = {}
    if attributes:
        for key, value in element.attrib.items():
            record[f"@{key}"] = value
    for child in element:
        if len(child):
            continue
        name = decode_name(child.tag) if decode else child.tag
        if name not in record:
            record[name] = child.text or ""
    return record


def frame_of(records: list[dict[str, str]], columns: Iterable[str] = ()) -> pd.DataFrame:
    """Records → a frame of strings; ``columns`` are added (empty) when no record carries them."""
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame.astype("string")


def require_values(frame: pd.DataFrame, field: str, where: str, describe: Callable[[int], str]) -> None:
    """Every record must carry a non-empty ``field`` (an id or a type code)."""
    if field not in frame.columns:
        if len(frame):
            raise ExtractError(f"{where}: {describe(0)}: required field {field} is missing")
        return
    blank = frame[field].fillna("").str.strip() == ""
    if blank.any():
        first = int(blank.to_numpy().nonzero()[0][0])
        count = int(blank.sum())
        more = f" ({count} records in all)" if count > 1 else ""
        raise ExtractError(f"{where}: {describe(first)}: required field {field} is missing or empty{more}")


_UK_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s.*)?$")


def iso_dates(values: pd.Series) -> pd.Series:
    """UK ``DD/MM/YYYY`` (as SIMS displays dates) → ISO; ISO (``2011-09-01T00:00:00``) unchanged."""
    text = values.astype("string")
    parts = text.str.extract(_UK_DATE)
    uk = parts[2] + "-" + parts[1].str.zfill(2) + "-" + parts[0].str.zfill(2)
    return uk.fillna(text)


_YEAR = re.compile(r"^\s*(\d{4})\s*[/-]\s*(\d{4}|\d{2})\s*$")


def normalise_academic_year(values: pd.Series, default: str) -> pd.Series:
    """``2025/2026``, ``2025-26`` or ``2025/26`` → ``2025/26``; blank → ``default``; else as given."""
    text = values.astype("string").str.strip()
    parts = text.str.extract(_YEAR)
    canonical = parts[0] + "/" + parts[1].str[-2:]
    given = text.mask(text.fillna("") == "")
    return canonical.fillna(given).fillna(default).astype("string")


def check_types(frame: pd.DataFrame, entity: str, columns: Mapping[str, str]) -> None:
    """Rewrite the date fields of ``frame`` that arrive in UK form (``DD/MM/YYYY``) to ISO, in place.

    ``columns`` maps source field → canonical column (the YAML's ``entities.<entity>.columns``). A value
    that is still not a date (or a boolean or number that is not one) does not stop the extract: it is
    that record's fault, marked by ``Entity.coerce`` in ``unreadable_fields`` and quarantined by data
    quality with a finding naming the record and field.
    """
    types = {c.name: c.type for c in ENTITIES[entity].columns}
    for source, canonical in columns.items():
        if source in frame.columns and types.get(canonical) == "date":
            frame[source] = iso_dates(frame[source])
