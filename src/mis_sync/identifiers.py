"""Check and make UK pupil identifiers: the English/Welsh UPN and the Scottish Candidate Number.

Why this lives in one pure module: validation (data-quality), reconciliation and the synthetic
generator must agree exactly on what a valid identifier is. The rules are the DfE's Unique Pupil
Number standard and school census rules 1500-1578 (UPN), and the HESA SCN definition; see
``uk-data-rules.md`` sections 1 and 2.2, whose worked examples the unit tests pin.

No function here puts an identifier value into an exception message: UPNs and SCNs are personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Final, Literal

import pandas as pd

UPN_ALPHABET: Final = "ABCDEFGHJKLMNPQRTUVWXYZ"
"""The 23 check letters, in value order; I, O and S are never used (they look like 1, 0 and 5)."""

_LETTER_VALUE: Final[dict[str, int]] = {letter: value for value, letter in enumerate(UPN_ALPHABET)}
_DIGITS: Final = frozenset("0123456789")
_UPN_LENGTH: Final = 13

UpnProblem = Literal["length", "characters", "check_letter", "la_code"]
ScnProblem = Literal["length", "characters", "check_digit"]

LA_CODES_RESOURCE: Final = "data/la_codes.txt"
"""The LA code list, kept as data with its sources and date in its header (census rule 1530)."""


def parse_la_codes(text: str) -> frozenset[str]:
    """Expand the list's lines (``"001-005"``, ``"838  # Dorset"``) into 3-digit strings.

    Kept as ranges so the file reads like its sources; a line that is not a code or range raises
    ``ValueError`` naming the line, so a bad edit to the list fails loudly at import.
    """
    codes: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        low, dash, high = line.partition("-")
        if not all(part.isdigit() and len(part) == 3 for part in ([low, high] if dash else [low])):
            raise ValueError(f"{LA_CODES_RESOURCE} line {number}: expected NNN or NNN-NNN")
        codes.update(f"{n:03d}" for n in range(int(low), int(high or low) + 1))
    return frozenset(codes)


VALID_LA_CODES: Final[frozenset[str]] = parse_la_codes(
    resources.files("mis_sync").joinpath(LA_CODES_RESOURCE).read_text(encoding="utf-8")
)
"""Every 3-digit LA code a UPN (or former UPN) may carry in positions 2-4."""


def _char_value(char: str) -> int:
    """Digit value, or the check-alphabet value of a temporary UPN's final letter."""
    if char in _DIGITS:
        return ord(char) - 48
    return _LETTER_VALUE[char]


def _body_well_formed(body: str) -> bool:
    return (
        len(body) == _UPN_LENGTH - 1
        and all(c in _DIGITS for c in body[:11])
        and (body[11] in _DIGITS or body[11] in _LETTER_VALUE)
    )


def upn_check_letter(body: str) -> str:
    """Return the check letter for the 12 characters that follow it (positions 2-13).

    Position p (1-based, in the full UPN) has weight p; the letter is ``UPN_ALPHABET[sum mod 23]``.
    Raises ``ValueError`` if the body is not 11 digits plus a digit or check-alphabet letter.
    """
    if not _body_well_formed(body):
        raise ValueError("UPN body must be 11 digits followed by a digit or a check-alphabet letter")
    total = sum(position * _char_value(char) for position, char in enumerate(body, start=2))
    return UPN_ALPHABET[total % 23]


def upn_problem(upn: str) -> UpnProblem | None:
    """Return why a UPN is invalid (first failing rule, in census order), or None if it is valid.

    Codes: ``"length"`` (not 13 characters), ``"characters"`` (check letter not in the alphabet,
    positions 2-12 not digits, or position 13 neither a digit nor an alphabet letter; lower case
    counts as wrong characters), ``"check_letter"``, ``"la_code"`` (positions 2-4 not a census LA
    code). Temporary UPNs that pass are valid; use ``is_temporary_upn`` to flag them.
    """
    if len(upn) != _UPN_LENGTH:
        return "length"
    body = upn[1:]
    if upn[0] not in _LETTER_VALUE or not _body_well_formed(body):
        return "characters"
    if upn[0] != upn_check_letter(body):
        return "check_letter"
    if upn[1:4] not in VALID_LA_CODES:
        return "la_code"
    return None


def is_valid_upn(upn: str) -> bool:
    """True for a valid permanent or temporary UPN."""
    return upn_problem(upn) is None


def is_temporary_upn(upn: str) -> bool:
    """True only for a *valid* temporary UPN (final character a letter): flag it for replacement."""
    return upn_problem(upn) is None and upn[-1] in _LETTER_VALUE


def make_upn(la: str, estab: str, year2: int, serial: int, temporary: bool = False) -> str:
    """Build a valid UPN allocated by establishment ``la``/``estab`` in the academic year ``year2``.

    Permanent: ``serial`` 0-999 becomes the 3-digit serial. Temporary: ``serial`` 0-2299 becomes two
    digits (``serial % 100``) plus the letter ``UPN_ALPHABET[serial // 100]``, so serial 1 gives
    ``...01A`` and serial 102 gives ``...02B`` (the shapes of the published examples).
    """
    if la not in VALID_LA_CODES:
        raise ValueError("LA code is not in the census list")
    if len(estab) != 4 or not all(c in _DIGITS for c in estab):
        raise ValueError("establishment number must be 4 digits")
    if not 0 <= year2 <= 99:
        raise ValueError("year2 must be 0-99")
    if temporary:
        if not 0 <= serial < 100 * len(UPN_ALPHABET):
            raise ValueError("temporary serial must be 0-2299")
        tail = f"{serial % 100:02d}{UPN_ALPHABET[serial // 100]}"
    else:
        if not 0 <= serial <= 999:
            raise ValueError("permanent serial must be 0-999")
        tail = f"{serial:03d}"
    body = f"{la}{estab}{year2:02d}{tail}"
    return upn_check_letter(body) + body


_SCN_WEIGHTS: Final = (3, 2, 7, 6, 5, 4, 3, 2)


def scn_check_digit(data8: str) -> int | None:
    """Return the SCN check digit for 8 data digits, or None when it would be 10 (no valid SCN).

    ``check = 11 - (sum mod 11)``, with 11 meaning 0. Raises ``ValueError`` if not 8 ASCII digits.
    """
    if len(data8) != 8 or not all(c in _DIGITS for c in data8):
        raise ValueError("SCN data part must be 8 digits")
    check = 11 - sum(w * (ord(c) - 48) for w, c in zip(_SCN_WEIGHTS, data8, strict=True)) % 11
    if check == 10:
        return None
    return 0 if check == 11 else check


def scn_problem(scn: str) -> ScnProblem | None:
    """Return why an SCN is invalid (``"length"``, ``"characters"``, ``"check_digit"``) or None."""
    if len(scn) != 9:
        return "length"
    if not all(c in _DIGITS for c in scn):
        return "characters"
    check = scn_check_digit(scn[:8])
    if check is None or check != ord(scn[8]) - 48:
        return "check_digit"
    return None


def is_valid_scn(scn: str) -> bool:
    """True for 9 digits whose last is the check digit; leading zeros are significant (keep strings)."""
    return scn_problem(scn) is None


def make_scn(year2: int, serial: int) -> str:
    """Build an SCN issued in year ``year2`` (0-99) with a 6-digit ``serial``.

    About one serial in eleven has no valid check digit (it would be 10); those raise ``ValueError``
    so callers pick another serial, as the issuing body does.
    """
    if not 0 <= year2 <= 99 or not 0 <= serial <= 999_999:
        raise ValueError("year2 must be 0-99 and serial 0-999999")
    data = f"{year2:02d}{serial:06d}"
    check = scn_check_digit(data)
    if check is None:
        raise ValueError("this serial has no valid SCN check digit")
    return f"{data}{check}"


def _problems(series: pd.Series, check: Callable[[str], str | None]) -> pd.Series:
    """Apply a scalar checker once per distinct non-null value; nulls stay NA (missing is not malformed)."""
    text = series.astype("string")
    values = text.dropna().unique()
    codes = {value: check(value) for value in values}
    return text.map(codes, na_action="ignore").astype("string")


def upn_problems(series: pd.Series) -> pd.Series:
    """Per row, the ``upn_problem`` reason code, or NA for a valid or missing UPN.

    Checks each distinct value once (50k rows in well under a second). Missing UPNs are left NA on
    purpose: whether a missing UPN is an error depends on the school type, which the caller knows.
    """
    return _problems(series, upn_problem)


def temporary_upns(series: pd.Series) -> pd.Series:
    """Per row, True for a valid temporary UPN (boolean dtype; NA where the UPN is missing)."""
    text = series.astype("string")
    codes = {value: is_temporary_upn(value) for value in text.dropna().unique()}
    return text.map(codes, na_action="ignore").astype("boolean")


def scn_problems(series: pd.Series) -> pd.Series:
    """Per row, the ``scn_problem`` reason code, or NA for a valid or missing SCN."""
    return _problems(series, scn_problem)
