"""Display names per role: ``"{first_name} {last_name}"`` for pupils, ``"{title} {first_initial}.
{last_name}"`` ("Mr A. Smith") for staff, with a fallback when a field is missing.

Uses the same small pattern language as usernames (``mis_sync.usernames``) but keeps the names as
they are written: display names carry diacritics, apostrophes and spaces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator, model_validator

from mis_sync.usernames import ROLES, _fields, _parse, _Strict, _text, chosen_names, expand_staff_shorthand

if TYPE_CHECKING:
    import pandas as pd

DISPLAY_FIELDS = ("title", "first_name", "first_initial", "last_name", "last_initial")


class DisplayNamePolicy(_Strict):
    """How a display name is built, e.g. ``"{title} {first_initial}. {last_name}"`` → "Mr A. Smith".

    Fields: title, first_name, first_initial, last_name, last_initial (names as in the MIS, not
    transliterated). When a field the pattern uses is empty for a person (no title), ``fallback`` is
    used instead.
    """

    pattern: str = "{first_name} {last_name}"
    fallback: str = "{first_name} {last_name}"
    name_source: Literal["preferred", "legal"] = "preferred"
    """Legal names in display names only as an explicit school choice (uk-data-rules.md §7.1)."""

    @field_validator("pattern", "fallback")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        used = _fields(_parse(value, DISPLAY_FIELDS, False))
        if not used & {"first_name", "last_name"}:
            raise ValueError("pattern must use {last_name} or {first_name}")
        return value


_STAFF_DISPLAY = DisplayNamePolicy(
    pattern="{title} {first_initial}. {last_name}", fallback="{first_name} {last_name}"
)


class DisplayNamePolicies(_Strict):
    """Display names per role; ``staff:`` in YAML sets both staff roles."""

    pupil: DisplayNamePolicy = DisplayNamePolicy()
    teaching_staff: DisplayNamePolicy = _STAFF_DISPLAY
    non_teaching_staff: DisplayNamePolicy = _STAFF_DISPLAY
    parent: DisplayNamePolicy = DisplayNamePolicy()

    @model_validator(mode="before")
    @classmethod
    def _staff_shorthand(cls, data: Any) -> Any:
        return expand_staff_shorthand(data)

    def for_role(self, role: str) -> DisplayNamePolicy:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        return getattr(self, role)


def _initial(name: str) -> str:
    for ch in name:
        if ch.isalnum():
            return ch.upper()
    return ""


def _display(pattern: str, values: Mapping[str, str]) -> str:
    segments = _parse(pattern, DISPLAY_FIELDS, False)
    text = "".join(values[s.field] if s.field else s.text for s in segments)
    return re.sub(r"\s+", " ", text).strip()


def display_names(people: pd.DataFrame, policy: DisplayNamePolicy) -> pd.Series:
    """A display name per row: first_name, last_name (preferred), legal_first_name, legal_last_name
    and, optionally, title. Whitespace is normalised; empty when a person has no name at all."""
    import pandas as pd

    first, last = chosen_names(people, policy.name_source)
    title = _text(people, "title")
    pattern_fields = _fields(_parse(policy.pattern, DISPLAY_FIELDS, False))
    out = []
    for forename, surname, honorific in zip(
        first.fillna("").tolist(), last.fillna("").tolist(), title.fillna("").tolist(), strict=True
    ):
        forename, surname = re.sub(r"\s+", " ", forename), re.sub(r"\s+", " ", surname)
        values = {
            "title": honorific,
            "first_name": forename,
            "first_initial": _initial(forename),
            "last_name": surname,
            "last_initial": _initial(surname),
        }
        complete = all(values[name] for name in pattern_fields)
        out.append(_display(policy.pattern if complete else policy.fallback, values))
    return pd.Series(out, index=people.index, dtype="string", name="display_name")
