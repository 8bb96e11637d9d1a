"""Usernames from names: transliteration, a small pattern language, truncation and collision suffixes.

Output is ``[a-z0-9]`` plus at most the separators the pattern itself contains (``.``, ``-``, ``_``),
never starting or ending with one, which Microsoft Entra, Google Workspace and AD all accept
(``uk-data-rules.md`` §9). A username, once allocated, is never reused: callers pass every name the
establishment has ever issued as ``taken``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

from anyascii import anyascii

from mis_sync.config import UsernamePolicy

EXPLICIT_MAP = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "ß": "ss",
        "æ": "ae",
        "Æ": "Ae",
        "œ": "oe",
        "Œ": "Oe",
        "ı": "i",
        "’": "",
        "ʻ": "",
        "'": "",
        "‘": "",
        "`": "",
    }
)
"""Letters NFKD does not decompose, mapped the way UK schools expect (``Þór`` → ``thor``)."""

_SEPARATORS = ".-_"


def fold_name(name: str) -> str:
    """Transliterate a name to lower-case ``[a-z0-9-]``: ``Seán Ó Súilleabháin`` → ``seanosuilleabhain``.

    Order matters: the explicit map first (our choices win over the library's), NFKD to drop
    combining marks, anyascii for any other script, lower-casing last (``İ``.lower() adds a dot).
    """
    mapped = unicodedata.normalize("NFKD", name.translate(EXPLICIT_MAP))
    stripped = "".join(ch for ch in mapped if not unicodedata.combining(ch))
    ascii_text = anyascii(stripped).lower()
    ascii_text = re.sub(r"[\s.]+", "", ascii_text)
    ascii_text = re.sub(r"[^a-z0-9-]", "", ascii_text)
    return re.sub(r"-{2,}", "-", ascii_text).strip("-")


def _first_part(value: str) -> str:
    return value.split("-")[0] if value else value


def base_username(first_name: str, last_name: str, policy: UsernamePolicy) -> str:
    """The username before collision handling, truncated to leave the surname readable.

    Truncation trims the surname's end but keeps the first character of every field the pattern
    uses, so ``{first_initial}{last_name}`` stays ``a`` + surname start.
    """
    first = fold_name(first_name)
    last = fold_name(last_name)
    if not last:
        last = first  # mononyms stored only as a forename
    if not first:
        first = last
    fields = {"first_name": first, "first_initial": first[:1], "last_name": last}
    candidate = policy.pattern.format(**fields)
    if len(candidate) > policy.max_length:
        overflow = len(candidate) - policy.max_length
        if "{last_name}" in policy.pattern and len(last) - overflow >= 1:
            fields["last_name"] = last[: len(last) - overflow]
        else:
            fields["last_name"] = _first_part(last)[:3]
            fields["first_name"] = first[: max(1, policy.max_length - len(policy.pattern))]
        candidate = policy.pattern.format(**fields)[: policy.max_length]
    candidate = re.sub(rf"[{re.escape(_SEPARATORS)}]{{2,}}", lambda m: m.group(0)[0], candidate)
    candidate = candidate.strip(_SEPARATORS)
    return candidate or "user"[: policy.max_length]


def _with_suffix(base: str, number: int, max_length: int) -> str:
    suffix = str(number)
    return base[: max_length - len(suffix)].rstrip(_SEPARATORS) + suffix


def _suffixes(policy: UsernamePolicy) -> Iterator[int]:
    number = policy.first_suffix
    while True:
        yield number
        number += 1


def allocate(names: Iterable[tuple[str, str]], policy: UsernamePolicy, taken: set[str]) -> list[str]:
    """Allocate one unique username per (first, last) pair, in order, adding each to ``taken``.

    The first ``asmith`` keeps the bare name; later ones get ``1, 2, 3…`` (or ``2, 3…``) suffixes,
    truncating the base so the whole name still fits ``max_length``.
    """
    allocated = []
    for first_name, last_name in names:
        base = base_username(first_name, last_name, policy)
        username = base
        if username in taken:
            username = next(
                candidate
                for candidate in (_with_suffix(base, n, policy.max_length) for n in _suffixes(policy))
                if candidate not in taken
            )
        taken.add(username)
        allocated.append(username)
    return allocated
