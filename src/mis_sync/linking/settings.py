"""Link-mode settings: thresholds and scoring weights (typed, so the establishment YAML can carry them).

Every field has a default chosen so a school can switch Link mode on without tuning anything; see
``docs/link-mode.md`` for what each number means to an IT admin.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Unit = Annotated[float, Field(ge=0, le=1)]
Points = Annotated[float, Field(ge=0, le=2)]


class LinkThresholds(BaseModel):
    """Score bands: ``score >= likely`` is a likely match, ``possible <= score < likely`` a possible one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    likely: Unit = 0.9
    possible: Unit = 0.7

    @model_validator(mode="after")
    def _ordered(self) -> LinkThresholds:
        if self.possible > self.likely:
            raise ValueError("possible must not be above likely")
        if self.possible <= 0:
            raise ValueError("possible must be above 0 (a zero threshold would suggest everyone)")
        return self


class LinkWeights(BaseModel):
    """Points each field adds when it agrees (or takes away when it clearly disagrees).

    ``score = min(1, sum of points)``, floored at 0. Name points are scaled by the name similarity
    (1 exact, 0.88-0.99 fuzzy, 0 below ``fuzzy_floor``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    upn: Points = 0.6
    upn_mismatch: Points = 0.3
    """Both sides have a UPN (current or former) and they differ: UPNs are unique, so this counts against."""
    email: Points = 0.4
    dob: Points = 0.2
    dob_mismatch: Points = 0.2
    last_name: Points = 0.45
    first_name: Points = 0.35
    role: Points = 0.05
    role_mismatch: Points = 0.1
    """Teaching vs non-teaching staff disagree (generic ``staff`` never disagrees)."""
    mis_id: Points = 0.6
    """Only used when an equal MIS id could not link outright (the id is on several users)."""
    fuzzy_floor: Unit = 0.88
    """Jaro-Winkler similarity from which a differing name still counts as a fuzzy (``~``) agreement."""
