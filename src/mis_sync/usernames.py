"""Usernames and display names from MIS names: transliteration, a small template language, truncation
and collision suffixes.

A username pattern mixes fields and literal text::

    "{first_initial}{last_name}"            asmith
    "{intake_yy}{first_initial}{last_name}" 24asmith
    "{first_name}.{last_name}"              alex.smith
    "stu-{last_name}{first_initial}"        stu-smitha

Fields: ``first_name``, ``first_initial``, ``last_name``, ``last_initial``, ``intake_yy`` and
``intake_yyyy`` (year of entry: the start year of the academic year of the admission date; academic
years start on 1 September). Literal text may hold letters, digits and ``. - _``.

Output is ``[a-z0-9]`` (or upper case) plus the separators ``. - _``, never two in a row and never at
either end, which Microsoft Entra, Google Workspace and AD all accept (``uk-data-rules.md`` §9). A
username, once allocated, is never reused: callers pass every name the establishment has ever issued
as ``taken``, compared without regard to case (Google lower-cases, Entra ignores case).

This module must not import ``mis_sync.config`` (config imports the policy models from here), and
imports pandas only inside the DataFrame functions: config is read at DAG-parse time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from anyascii import anyascii
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mis_sync.academic_year import academic_year_start, academic_year_starts

if TYPE_CHECKING:
    import pandas as pd

ROLES = ("pupil", "teaching_staff", "non_teaching_staff", "parent")
"""Directory roles a policy can be set for (``directory_users.role``)."""
STAFF_ROLES = ("teaching_staff", "non_teaching_staff")

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
USERNAME_FIELDS = ("first_name", "first_initial", "last_name", "last_initial", "intake_yy", "intake_yyyy")
_FIELD = re.compile(r"\{([^{}]*)\}")
_LITERAL = re.compile(r"^[A-Za-z0-9._-]*$")
_SURNAME_FLOOR = 3
"""Truncation never cuts the surname below this many characters unless nothing else is left to cut."""


# --------------------------------------------------------------------------------------------------
# Transliteration


@lru_cache(maxsize=65536)
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


def _apply_hyphens(folded: str, hyphens: str) -> str:
    if hyphens == "drop":
        return folded.replace("-", "")
    if hyphens == "first_part":
        return folded.split("-")[0]
    return folded


# --------------------------------------------------------------------------------------------------
# Patterns


@dataclass(frozen=True)
class _Segment:
    field: str | None
    """The field name, or None for literal text."""
    text: str = ""


@lru_cache(maxsize=256)
def _parse(pattern: str, known: tuple[str, ...], literal_rule: bool) -> tuple[_Segment, ...]:
    """Split a pattern into field and literal segments, raising ``ValueError`` naming the problem."""
    segments: list[_Segment] = []
    unknown: list[str] = []
    position = 0
    for match in _FIELD.finditer(pattern):
        if match.start() > position:
            segments.append(_Segment(None, pattern[position : match.start()]))
        name = match.group(1).strip()
        if not name:
            raise ValueError("empty field {} in pattern")
        if name not in known:
            unknown.append(name)
        segments.append(_Segment(name))
        position = match.end()
    if position < len(pattern):
        segments.append(_Segment(None, pattern[position:]))
    if unknown:
        raise ValueError(
            f"unknown pattern fields: {', '.join(sorted(set(unknown)))} (known: {', '.join(sorted(known))})"
        )
    for segment in segments:
        if segment.field is None and ("{" in segment.text or "}" in segment.text):
            raise ValueError("unbalanced { or } in pattern")
        if literal_rule and segment.field is None and not _LITERAL.match(segment.text):
            bad = sorted({ch for ch in segment.text if not _LITERAL.match(ch)})
            raise ValueError(
                "literal text in a username pattern may only hold letters, digits and . - _ "
                f"(found {' '.join(repr(ch) for ch in bad)})"
            )
    return tuple(segments)


def _fields(segments: Iterable[_Segment]) -> set[str]:
    return {s.field for s in segments if s.field}


def _minimum_length(segments: tuple[_Segment, ...]) -> int:
    """Shortest a rendered username can be: literals, initials, years, one character per name."""
    fixed = {"first_initial": 1, "last_initial": 1, "intake_yy": 2, "intake_yyyy": 4}
    total = 0
    for segment in segments:
        if segment.field is None:
            total += len(segment.text)
        else:
            total += fixed.get(segment.field, 1)
    return total


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollisionPolicy(_Strict):
    """Suffix for a username already taken: ``asmith`` then ``asmith1``… (or ``asmith2``…)."""

    start: Literal[1, 2] = 1
    """First number used: 1 gives asmith, asmith1, asmith2; 2 gives asmith, asmith2, asmith3."""
    min_digits: Annotated[int, Field(ge=1, le=3)] = 1
    """Zero-padding: 2 gives asmith, asmith01, asmith02."""


class UsernamePolicy(_Strict):
    """How a new account's username is built (see the module docstring for the pattern language)."""

    pattern: str = "{first_initial}{last_name}"
    name_source: Literal["preferred", "legal"] = "preferred"
    """Legal names only as an explicit school choice (safeguarding: uk-data-rules.md §7.1)."""
    max_length: Annotated[int, Field(ge=3, le=64)] = 20
    """20 is the AD sAMAccountName limit; Entra and Google allow 64 before the @."""
    case: Literal["lower", "upper"] = "lower"
    """Google Workspace always lower-cases usernames; ``upper`` only shows in Entra / AD."""
    hyphens: Literal["keep", "drop", "first_part"] = "keep"
    """Double-barrelled names: smith-jones, smithjones or smith."""
    collision: CollisionPolicy = CollisionPolicy()

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        segments = _parse(value, USERNAME_FIELDS, True)
        used = _fields(segments)
        if not used & {"first_name", "last_name"}:
            raise ValueError(
                "pattern must use {last_name} or {first_name} "
                "(initials, years and literal text alone yield no name part)"
            )
        return value

    @model_validator(mode="after")
    def _fits(self) -> UsernamePolicy:
        needed = _minimum_length(_parse(self.pattern, USERNAME_FIELDS, True))
        if needed > self.max_length:
            raise ValueError(
                f"pattern needs at least {needed} characters but max_length is {self.max_length}"
            )
        return self

    @property
    def first_suffix(self) -> int:
        """The first collision number (kept for callers of the earlier policy model)."""
        return self.collision.start

    @property
    def uses_intake(self) -> bool:
        return bool(self._fields_used() & {"intake_yy", "intake_yyyy"})

    def _fields_used(self) -> set[str]:
        return _fields(_parse(self.pattern, USERNAME_FIELDS, True))


def expand_staff_shorthand(data: Any, *, keep: bool = False) -> Any:
    """``staff:`` in YAML sets both staff roles unless they are given explicitly.

    ``keep`` leaves the ``staff`` key in place (for models that still have a ``staff`` field).
    """
    if isinstance(data, Mapping) and "staff" in data:
        data = dict(data)
        staff = data["staff"] if keep else data.pop("staff")
        for role in STAFF_ROLES:
            data.setdefault(role, staff)
    return data


# --------------------------------------------------------------------------------------------------
# Year of entry


def year_of_entry(
    admission_date: date | None,
    enrolment_status: str | None = None,
    as_of: date | None = None,
    country: str = "england",
) -> int:
    """The year of entry from the admission date: the start year of its academic year.

    A pre-admission pupil admitted on 3 September 2025 gets 2025 even when the account is made in June
    2025 (RM Unify gives the current year and never corrects it). Without an admission date, the
    academic year of ``as_of`` (today) is used, or the next one for a pre-admission pupil.
    """
    if admission_date is not None and admission_date == admission_date:  # NaT != NaT
        return academic_year_start(admission_date, country)
    current = academic_year_start(as_of or date.today(), country)
    return current + 1 if enrolment_status == "pre_admission" else current


# --------------------------------------------------------------------------------------------------
# Rendering


def _clean(text: str) -> str:
    """Collapse runs of separators to their first character and strip separators at either end."""
    text = re.sub(rf"[{re.escape(_SEPARATORS)}]{{2,}}", lambda m: m.group(0)[0], text)
    return text.strip(_SEPARATORS)


def _render(segments: tuple[_Segment, ...], values: Mapping[str, str], max_length: int) -> str:
    """Fill the pattern and truncate to ``max_length``, keeping the surname readable.

    Cut order: the surname's end down to 3 characters, then the forename's end down to 1, then literal
    text (rightmost first), then the surname below 3; initials and years are never cut. Name parts
    never end on a separator.
    """
    parts = [values[s.field] if s.field else s.text for s in segments]

    def length() -> int:
        return len(_clean("".join(parts)))

    stages: list[tuple[list[int], int]] = [
        ([i for i, s in enumerate(segments) if s.field == "last_name"], _SURNAME_FLOOR),
        ([i for i, s in enumerate(segments) if s.field == "first_name"], 1),
        ([i for i, s in reversed(list(enumerate(segments))) if s.field is None], 0),
        ([i for i, s in enumerate(segments) if s.field == "last_name"], 1),
    ]
    for indexes, floor in stages:
        for index in indexes:
            while (overflow := length() - max_length) > 0 and len(parts[index]) > floor:
                keep = max(floor, len(parts[index]) - overflow)
                trimmed = parts[index][:keep]
                if segments[index].field:
                    trimmed = trimmed.rstrip(_SEPARATORS) or trimmed[:1]
                parts[index] = trimmed
    return _clean("".join(parts))[:max_length].rstrip(_SEPARATORS)


@dataclass(frozen=True)
class _Person:
    first: str
    last: str
    year: int | None


def _values(person: _Person, policy: UsernamePolicy) -> dict[str, str]:
    first = _apply_hyphens(fold_name(person.first), policy.hyphens)
    last = _apply_hyphens(fold_name(person.last), policy.hyphens)
    last = last or first  # mononyms stored only as a forename…
    first = first or last  # …or only as a surname
    if not last:
        # Nothing usable: a neutral placeholder in the name part the pattern has, suffixed like any
        # other collision.
        if "last_name" in policy._fields_used():
            last = "user"
        else:
            first = "user"
    values = {
        "first_name": first,
        "first_initial": first[:1],
        "last_name": last,
        "last_initial": last[:1],
        "intake_yy": "",
        "intake_yyyy": "",
    }
    if person.year is not None:
        values["intake_yy"] = f"{person.year % 100:02d}"
        values["intake_yyyy"] = f"{person.year:04d}"
    elif policy.uses_intake:
        raise ValueError("the username pattern uses the year of entry but none was given")
    return values


def _case(text: str, policy: UsernamePolicy) -> str:
    return text.upper() if policy.case == "upper" else text.lower()


def _base(person: _Person, policy: UsernamePolicy, max_length: int) -> str:
    segments = _parse(policy.pattern, USERNAME_FIELDS, True)
    rendered = _render(segments, _values(person, policy), max_length)
    if not re.search(r"[a-z]", rendered, re.IGNORECASE):
        rendered = _render((_Segment(None, "user"),), {}, max_length)
    return _case(rendered, policy)


def base_username(
    first_name: str, last_name: str, policy: UsernamePolicy, *, intake_year: int | None = None
) -> str:
    """The username before collision handling, truncated to leave the surname readable."""
    return _base(_Person(first_name, last_name, intake_year), policy, policy.max_length)


def _joiner(policy: UsernamePolicy) -> str:
    """Separator between a base ending in a digit and the collision number (``smith24-1``)."""
    for segment in _parse(policy.pattern, USERNAME_FIELDS, True):
        if segment.field is None:
            for ch in segment.text:
                if ch in _SEPARATORS:
                    return ch
    return "-"


class _Allocator:
    """Hands out unique usernames against ``taken``, case-insensitively, in call order."""

    def __init__(self, policy: UsernamePolicy, taken: set[str]) -> None:
        self.policy = policy
        self.taken = taken
        self.lowered = {name.lower() for name in taken}
        self.next_number: dict[_Person, int] = {}
        self.bases: dict[tuple[_Person, int], str] = {}

    def _base(self, person: _Person, max_length: int) -> str:
        if max_length <= 0:
            return ""  # only when a counter outgrows a tiny max_length: the number alone is left
        key = (person, max_length)
        if key not in self.bases:
            self.bases[key] = _base(person, self.policy, max_length)
        return self.bases[key]

    def _free(self, candidate: str) -> bool:
        return candidate.lower() not in self.lowered

    def _with_number(self, person: _Person, number: int) -> str:
        policy = self.policy
        suffix = f"{number:0{policy.collision.min_digits}d}"
        base = self._base(person, policy.max_length - len(suffix))
        if base[-1:].isdigit():
            base = self._base(person, policy.max_length - len(suffix) - 1) + _joiner(policy)
        return base + suffix

    def allocate(self, person: _Person) -> str:
        username = self._base(person, self.policy.max_length)
        if not self._free(username):
            number = self.next_number.get(person, self.policy.collision.start)
            while not self._free(username := self._with_number(person, number)):
                number += 1
            self.next_number[person] = number + 1
        self.taken.add(username)
        self.lowered.add(username.lower())
        return username


def allocate(
    names: Iterable[tuple[str, str] | tuple[str, str, int | None]],
    policy: UsernamePolicy,
    taken: set[str],
) -> list[str]:
    """Allocate one unique username per (first, last[, year of entry]), in order, adding each to ``taken``.

    The first ``asmith`` keeps the bare name; later ones get ``1, 2, 3…`` (or ``2, 3…``) suffixes,
    truncating the base so the whole name still fits ``max_length``. A name in ``taken`` (in any
    case) is never given out again.
    """
    allocator = _Allocator(policy, taken)
    allocated = []
    for entry in names:
        first, last = entry[0], entry[1]
        year = entry[2] if len(entry) > 2 else None  # type: ignore[misc]
        allocated.append(allocator.allocate(_Person(first or "", last or "", year)))
    return allocated


def _text(people: pd.DataFrame, column: str) -> pd.Series:
    """A column as strings with blanks as missing; an absent column is all missing."""
    import pandas as pd

    if column not in people.columns:
        return pd.Series(pd.NA, index=people.index, dtype="string")
    values = people[column].astype("string").str.strip()
    return values.mask(values == "", pd.NA)


def chosen_names(people: pd.DataFrame, name_source: str) -> tuple[pd.Series, pd.Series]:
    """First and last names by source: preferred (``first_name``/``last_name``) or legal, each falling
    back to the other when missing."""
    preferred = _text(people, "first_name"), _text(people, "last_name")
    legal = _text(people, "legal_first_name"), _text(people, "legal_last_name")
    if name_source == "legal":
        return legal[0].fillna(preferred[0]), legal[1].fillna(preferred[1])
    return preferred[0].fillna(legal[0]), preferred[1].fillna(legal[1])


def years_of_entry(people: pd.DataFrame, as_of: date | None = None, country: str = "england") -> pd.Series:
    """Year of entry per row (vectorised ``year_of_entry``)."""
    import pandas as pd

    if "admission_date" in people.columns:
        admitted = pd.to_datetime(people["admission_date"], errors="coerce")
    else:
        admitted = pd.Series(pd.NaT, index=people.index, dtype="datetime64[s]")
    from_date = academic_year_starts(admitted, country)
    current = academic_year_start(as_of or date.today(), country)
    status = _text(people, "enrolment_status")
    fallback = pd.Series(current, index=people.index).where(
        status.ne("pre_admission").fillna(True), current + 1
    )
    return from_date.fillna(fallback).astype("Int64")


def allocate_usernames(
    people: pd.DataFrame,
    policy: UsernamePolicy,
    taken: set[str],
    *,
    as_of: date | None = None,
    country: str = "england",
) -> pd.Series:
    """A unique username per row of ``people``, in row order, adding each to ``taken``.

    ``people`` has first_name, last_name (preferred), legal_first_name, legal_last_name,
    admission_date (may be NaT) and enrolment_status. ``as_of`` (default today) is only used for rows
    without an admission date when the pattern uses the year of entry. Call once per role with the
    same ``taken`` (every username the establishment ever issued) so roles never share a name.
    """
    import pandas as pd

    first, last = chosen_names(people, policy.name_source)
    if policy.uses_intake:
        years: list[int | None] = [int(y) for y in years_of_entry(people, as_of, country)]
    else:
        years = [None] * len(people)
    allocator = _Allocator(policy, taken)
    usernames = [
        allocator.allocate(_Person(forename, surname, year))
        for forename, surname, year in zip(
            first.fillna("").tolist(), last.fillna("").tolist(), years, strict=True
        )
    ]
    return pd.Series(usernames, index=people.index, dtype="string", name="username")
