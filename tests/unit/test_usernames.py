"""Usernames and display names: transliteration (uk-data-rules.md §8.3), the pattern language,
truncation, collisions, retired names never reissued, year of entry, and Microsoft/Google validity."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mis_sync.config import Establishment, UsernamePolicies
from mis_sync.display_names import DisplayNamePolicies, DisplayNamePolicy, display_names
from mis_sync.usernames import (
    CollisionPolicy,
    UsernamePolicy,
    academic_year_start,
    allocate,
    allocate_usernames,
    base_username,
    fold_name,
    year_of_entry,
)

USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9.\-_]*[a-z0-9])?$")
DEFAULT = UsernamePolicy()
JUNE_2025 = date(2025, 6, 1)


def microsoft_ok(username: str) -> bool:
    """Entra UPN local part: A-Z a-z 0-9 ' . - _ ! # ^ ~, no accents, ≤ 64, no . at either end or twice."""
    return (
        bool(re.fullmatch(r"[A-Za-z0-9'.\-_!#^~]{1,64}", username))
        and not username.startswith(".")
        and not username.endswith(".")
        and ".." not in username
    )


def google_ok(username: str) -> bool:
    """Google Workspace: lower-case letters, digits, - _ ' . ; no consecutive dots; no . at an end; ≤ 64."""
    return (
        bool(re.fullmatch(r"[a-z0-9'.\-_]{1,64}", username))
        and not username.startswith(".")
        and not username.endswith(".")
        and ".." not in username
    )


def people_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    columns = ["first_name", "last_name", "legal_first_name", "legal_last_name", "enrolment_status"]
    frame = pd.DataFrame(rows)
    for column in [*columns, "admission_date"]:
        if column not in frame.columns:
            frame[column] = None
    frame["admission_date"] = pd.to_datetime(frame["admission_date"])
    frame["enrolment_status"] = frame["enrolment_status"].fillna("on_roll")
    return frame


def person(first: str | None, last: str | None, admitted: str | None = None, **extra: object) -> dict:
    return {"first_name": first, "last_name": last, "admission_date": admitted, **extra}


# --------------------------------------------------------------------------------------------------
# Transliteration


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Zoë", "zoe"),
        ("Siân", "sian"),
        ("Llŷr", "llyr"),
        ("Seán Ó Súilleabháin", "seanosuilleabhain"),
        ("Chloé", "chloe"),
        ("Ødegaard", "odegaard"),
        ("Łukasz", "lukasz"),
        ("Đorđević", "dordevic"),
        ("Þór", "thor"),
        ("Straße", "strasse"),
        ("Æsa", "aesa"),
        ("O'Brien", "obrien"),
        ("D’Souza", "dsouza"),
        ("Smith-Jones", "smith-jones"),
        ("İlkay", "ilkay"),
        ("Nguyễn", "nguyen"),
        ("Œdipe", "oedipe"),
    ],
)
def test_fold_name_reference_table(name: str, expected: str) -> None:
    assert fold_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Søren", "soren"),
        ("Ðan", "dan"),
        ("ʻOhana", "ohana"),
        ("Mary Jane", "maryjane"),
        ("St. John", "stjohn"),
        ("--Smith--Jones--", "smith-jones"),
        ("Anne‘Marie`", "annemarie"),
        ("Iñaki", "inaki"),
        ("", ""),
        ("   ", ""),
        ("!!!", ""),
        ("Ｚｏｅ", "zoe"),  # full-width letters fold by NFKD
        ("Dmitrii Иванов", "dmitriiivanov"),  # any other script through anyascii
    ],
)
def test_fold_name_other_cases(name: str, expected: str) -> None:
    assert fold_name(name) == expected


# --------------------------------------------------------------------------------------------------
# Patterns and base usernames


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Alex", "Smith", "asmith"),
        ("Zoë", "O'Brien", "zobrien"),
        ("Þór", "Ødegaard", "todegaard"),
        ("Seán", "Ó Súilleabháin", "sosuilleabhain"),
        ("Siân", "Smith-Jones", "ssmith-jones"),
    ],
)
def test_base_username_default_policy(first: str, last: str, expected: str) -> None:
    assert base_username(first, last, DEFAULT) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("{first_name}.{last_name}", "alex.smith"),
        ("{last_name}{first_initial}", "smitha"),
        ("stu-{last_name}{first_initial}", "stu-smitha"),
        ("{first_initial}{last_initial}_{last_name}", "as_smith"),
        ("{intake_yy}{first_initial}{last_name}", "24asmith"),
        ("{first_name}.{last_name}{intake_yyyy}", "alex.smith2024"),
        ("Staff.{first_name}", "staff.alex"),
    ],
)
def test_patterns(pattern: str, expected: str) -> None:
    assert base_username("Alex", "Smith", UsernamePolicy(pattern=pattern), intake_year=2024) == expected


def test_empty_name_parts_leave_no_stray_separators() -> None:
    dotted = UsernamePolicy(pattern="{first_name}.{last_name}")
    assert base_username("Madonna", "", dotted) == "madonna.madonna"
    assert base_username("", "", dotted) == "user"
    assert base_username("!!!", "", UsernamePolicy(pattern="stu-{first_name}")) == "stu-user"


def test_pattern_using_the_year_needs_one() -> None:
    with pytest.raises(ValueError, match="year of entry"):
        base_username("Alex", "Smith", UsernamePolicy(pattern="{intake_yy}{last_name}"))


@pytest.mark.parametrize(
    ("hyphens", "expected"),
    [("keep", "anne-marie.smith-jones"), ("drop", "annemarie.smithjones"), ("first_part", "anne.smith")],
)
def test_hyphen_policies(hyphens: str, expected: str) -> None:
    policy = UsernamePolicy(pattern="{first_name}.{last_name}", hyphens=hyphens, max_length=30)
    assert base_username("Anne-Marie", "Smith-Jones", policy) == expected


def test_hyphen_policy_with_initial_pattern() -> None:
    assert base_username("Siân", "Llewelyn-Bowen", UsernamePolicy(hyphens="drop")) == "sllewelynbowen"
    assert base_username("Siân", "Llewelyn-Bowen", UsernamePolicy(hyphens="first_part")) == "sllewelyn"


def test_upper_case() -> None:
    policy = UsernamePolicy(case="upper", pattern="stu-{last_name}{first_initial}")
    assert base_username("Zoë", "O'Brien", policy) == "STU-OBRIENZ"
    assert allocate([("Alex", "Smith")] * 3, UsernamePolicy(case="upper"), set()) == [
        "ASMITH",
        "ASMITH1",
        "ASMITH2",
    ]


def test_literal_letters_follow_the_case() -> None:
    assert base_username("Alex", "Smith", UsernamePolicy(pattern="STU-{last_name}")) == "stu-smith"


# --------------------------------------------------------------------------------------------------
# Truncation


def test_truncation_keeps_initial_and_surname_start() -> None:
    username = base_username("Bartholomew", "Llewelyn-Bowen-Fotheringham", DEFAULT)
    assert username == "bllewelyn-bowen-foth"
    assert len(username) == 20


def test_truncation_respects_short_max_length() -> None:
    policy = UsernamePolicy(max_length=8)
    assert base_username("Bartholomew", "Fotheringham", policy) == "bfotheri"


def test_truncation_never_ends_on_a_separator() -> None:
    # "a" + "smith-jones" cut at 7 would be "asmith-": the trailing hyphen is dropped.
    assert base_username("Alex", "Smith-Jones", UsernamePolicy(max_length=7)) == "asmith"


def test_truncation_order_surname_to_three_then_forename_then_literals() -> None:
    policy = UsernamePolicy(pattern="{first_name}.{last_name}")
    # The surname's end goes first…
    assert base_username("Christopher", "Montgomery", policy) == "christopher.montgome"
    # …but never below 3 characters while the forename can still give way.
    short = UsernamePolicy(pattern="{first_name}.{last_name}", max_length=10)
    assert base_username("Christopher", "Montgomery", short) == "christ.mon"
    # Literal text (the prefix) only after the forename is down to one character.
    prefixed = UsernamePolicy(pattern="stu-{first_name}{last_name}", max_length=7)
    assert base_username("Alex", "Montgomery", prefixed) == "stu-mon"[:3] + "amon"[:4]
    assert base_username("Alex", "Montgomery", prefixed) == "stuamon"


def test_truncation_keeps_prefix_and_three_letters_of_surname() -> None:
    policy = UsernamePolicy(pattern="stu-{last_name}{first_initial}", max_length=8)
    assert base_username("Alex", "Fotheringham", policy) == "stu-fota"


def test_surname_below_three_only_when_unavoidable() -> None:
    policy = UsernamePolicy(pattern="{first_initial}.{last_name}", max_length=3)
    assert base_username("Alex", "Smith", policy) == "asm"


def test_year_is_never_cut() -> None:
    policy = UsernamePolicy(pattern="{intake_yyyy}{first_initial}{last_name}", max_length=10)
    assert base_username("Bartholomew", "Fotheringham", policy, intake_year=2025) == "2025bfothe"


def test_mononym_with_empty_surname_uses_the_forename() -> None:
    assert base_username("Madonna", "", DEFAULT) == "mmadonna"
    assert base_username("Madonna", "   ", DEFAULT) == "mmadonna"


def test_mononym_with_empty_forename_uses_the_surname() -> None:
    assert base_username("", "Cher", DEFAULT) == "ccher"


def test_nothing_usable_falls_back_to_user() -> None:
    assert base_username("", "", DEFAULT) == "user"
    assert base_username("!!!", "???", DEFAULT) == "user"


def test_fallback_respects_max_length() -> None:
    assert base_username("", "", UsernamePolicy(max_length=3)) == "use"


# --------------------------------------------------------------------------------------------------
# Collisions and retired names


def test_cohort_of_identical_names() -> None:
    names = [("Alex", "Smith")] * 10
    assert allocate(names, DEFAULT, set()) == ["asmith", *(f"asmith{n}" for n in range(1, 10))]


def test_collisions_first_suffix_1() -> None:
    names = [("Alex", "Smith")] * 12
    assert allocate(names, DEFAULT, set()) == ["asmith", *(f"asmith{n}" for n in range(1, 12))]


def test_collisions_start_at_2() -> None:
    names = [("Alex", "Smith")] * 4
    policy = UsernamePolicy(collision=CollisionPolicy(start=2))
    assert policy.first_suffix == 2
    assert allocate(names, policy, set()) == ["asmith", "asmith2", "asmith3", "asmith4"]


@pytest.mark.parametrize(
    ("start", "digits", "expected"),
    [
        (1, 2, ["asmith", "asmith01", "asmith02", "asmith03"]),
        (2, 2, ["asmith", "asmith02", "asmith03", "asmith04"]),
        (1, 3, ["asmith", "asmith001", "asmith002", "asmith003"]),
    ],
)
def test_min_digits(start: int, digits: int, expected: list[str]) -> None:
    policy = UsernamePolicy(collision=CollisionPolicy(start=start, min_digits=digits))
    assert allocate([("Alex", "Smith")] * 4, policy, set()) == expected


def test_min_digits_grow_past_the_minimum() -> None:
    policy = UsernamePolicy(collision=CollisionPolicy(min_digits=2))
    allocated = allocate([("Alex", "Smith")] * 102, policy, set())
    assert allocated[99:] == ["asmith99", "asmith100", "asmith101"]
    assert len(set(allocated)) == 102


def test_different_people_with_the_same_base_collide() -> None:
    names = [("Alex", "Smith"), ("Anna", "Smith"), ("Zoë", "O'Brien"), ("Zak", "O’Brien")]
    assert allocate(names, DEFAULT, set()) == ["asmith", "asmith1", "zobrien", "zobrien1"]


def test_suffixes_keep_within_max_length() -> None:
    names = [("Bartholomew", "Llewelyn-Bowen-Fotheringham")] * 12
    allocated = allocate(names, DEFAULT, set())
    assert allocated[:3] == ["bllewelyn-bowen-foth", "bllewelyn-bowen-fot1", "bllewelyn-bowen-fot2"]
    assert allocated[10:] == ["bllewelyn-bowen-fo10", "bllewelyn-bowen-fo11"]
    assert all(len(u) <= 20 for u in allocated)
    assert len(set(allocated)) == 12


def test_suffix_does_not_leave_a_separator_before_the_digit() -> None:
    policy = UsernamePolicy(max_length=7)
    allocated = allocate([("Alex", "Smith-Jones")] * 2, policy, set())
    assert allocated == ["asmith", "asmith1"]
    dotted = UsernamePolicy(pattern="{first_initial}.{last_name}", max_length=4)
    # No room for "a.li1": the dot goes before the surname is cut below three letters.
    allocated = allocate([("Alex", "Li")] * 2, dotted, set())
    assert allocated == ["a.li", "ali1"]
    assert all(USERNAME.match(u) for u in allocated)


def test_counter_after_a_year_is_separated() -> None:
    policy = UsernamePolicy(pattern="{last_name}{intake_yy}")
    assert allocate([("Alex", "Smith", 2024)] * 3, policy, set()) == ["smith24", "smith24-1", "smith24-2"]
    dotted = UsernamePolicy(pattern="{first_name}.{last_name}{intake_yy}")
    assert allocate([("Al", "Li", 2024)] * 2, dotted, set()) == ["al.li24", "al.li24.1"]


def test_taken_names_are_never_reissued() -> None:
    taken = {"asmith", "asmith1", "asmith3"}
    allocated = allocate([("Alex", "Smith")] * 3, DEFAULT, taken)
    assert allocated == ["asmith2", "asmith4", "asmith5"]
    assert taken == {"asmith", "asmith1", "asmith2", "asmith3", "asmith4", "asmith5"}


def test_taken_is_compared_without_case() -> None:
    taken = {"ASmith", "ASMITH1"}
    assert allocate([("Alex", "Smith")], DEFAULT, taken) == ["asmith2"]
    assert allocate([("Alex", "Smith")], UsernamePolicy(case="upper"), {"asmith"}) == ["ASMITH1"]


def test_retired_names_stay_retired_across_runs() -> None:
    """A leaver's name, still in ``taken`` (every name ever issued), is never given to a newcomer."""
    ever_issued = {"asmith"}  # the first Alex Smith left years ago; their account was deleted
    assert allocate([("Alex", "Smith")], DEFAULT, set(ever_issued)) == ["asmith1"]


def test_taken_accumulates_across_calls() -> None:
    taken: set[str] = set()
    assert allocate([("Alex", "Smith")], DEFAULT, taken) == ["asmith"]
    assert allocate([("Alex", "Smith")], DEFAULT, taken) == ["asmith1"]
    assert allocate([("Alex", "Smith")], DEFAULT, taken) == ["asmith2"]


def test_allocate_empty() -> None:
    assert allocate([], DEFAULT, set()) == []


# --------------------------------------------------------------------------------------------------
# Year of entry


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 9, 1), 2024),
        (date(2025, 8, 31), 2024),
        (date(2025, 1, 10), 2024),
        (date(2025, 9, 3), 2025),
    ],
)
def test_academic_year_starts_on_1_september(day: date, expected: int) -> None:
    assert academic_year_start(day) == expected


def test_year_of_entry() -> None:
    assert year_of_entry(date(2025, 9, 3), "pre_admission", as_of=JUNE_2025) == 2025
    assert year_of_entry(date(2023, 9, 5), "on_roll", as_of=JUNE_2025) == 2023
    assert year_of_entry(None, "on_roll", as_of=JUNE_2025) == 2024
    assert year_of_entry(None, "pre_admission", as_of=JUNE_2025) == 2025


def test_pre_admission_pupil_gets_the_year_of_their_admission_not_the_current_year() -> None:
    policy = UsernamePolicy(pattern="{intake_yy}{first_initial}{last_name}")
    people = people_frame(
        [
            person("Alex", "Smith", "2025-09-03", enrolment_status="pre_admission"),
            person("Ben", "Jones", "2021-09-06", enrolment_status="on_roll"),
            person("Cara", "Khan", "2025-01-13", enrolment_status="on_roll"),  # mid-year: 2024/25
            person("Dan", "Lee", None, enrolment_status="pre_admission"),
            person("Eve", "Ng", None, enrolment_status="on_roll"),
        ]
    )
    usernames = allocate_usernames(people, policy, set(), as_of=JUNE_2025)
    assert usernames.tolist() == ["25asmith", "21bjones", "24ckhan", "25dlee", "24eng"]
    four = UsernamePolicy(pattern="{first_name}.{last_name}{intake_yyyy}")
    assert allocate_usernames(people.head(1), four, set(), as_of=JUNE_2025).tolist() == ["alex.smith2025"]


# --------------------------------------------------------------------------------------------------
# allocate_usernames (the planner's entry point)


def test_allocate_usernames_keeps_index_and_row_order() -> None:
    people = people_frame([person("Alex", "Smith")] * 3).set_axis([30, 10, 20])
    usernames = allocate_usernames(people, DEFAULT, set())
    assert usernames.index.tolist() == [30, 10, 20]
    assert usernames.tolist() == ["asmith", "asmith1", "asmith2"]
    assert usernames.name == "username"
    assert str(usernames.dtype) == "string"


def test_allocate_usernames_is_deterministic() -> None:
    people = people_frame([person("Alex", "Smith"), person("Anna", "Smith"), person("Zoë", "Øst")])
    first = allocate_usernames(people, DEFAULT, {"asmith"})
    again = allocate_usernames(people, DEFAULT, {"asmith"})
    assert first.tolist() == again.tolist() == ["asmith1", "asmith2", "zost"]


def test_allocate_usernames_name_sources() -> None:
    people = people_frame(
        [
            person("Sam", "Smith", legal_first_name="Samantha", legal_last_name="Smith"),
            person(None, "Jones", legal_first_name="Robert", legal_last_name="Jones"),
            person("  ", "Khan", legal_first_name="Aisha", legal_last_name="Khan"),
        ]
    )
    dotted = UsernamePolicy(pattern="{first_name}.{last_name}")
    assert allocate_usernames(people, dotted, set()).tolist() == ["sam.smith", "robert.jones", "aisha.khan"]
    legal = UsernamePolicy(pattern="{first_name}.{last_name}", name_source="legal")
    assert allocate_usernames(people, legal, set()).tolist() == [
        "samantha.smith",
        "robert.jones",
        "aisha.khan",
    ]


def test_allocate_usernames_shares_taken_across_roles() -> None:
    taken: set[str] = set()
    pupils = allocate_usernames(people_frame([person("Alex", "Smith")]), DEFAULT, taken)
    staff = allocate_usernames(people_frame([person("Alex", "Smith")]), DEFAULT, taken)
    assert (pupils.tolist(), staff.tolist()) == (["asmith"], ["asmith1"])
    assert taken == {"asmith", "asmith1"}


def test_allocate_usernames_empty_frame() -> None:
    assert allocate_usernames(people_frame([]), DEFAULT, set()).tolist() == []


# --------------------------------------------------------------------------------------------------
# Policy validation


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{first_initial}{surname}", "unknown pattern fields: surname"),
        ("{first_initial}", "pattern must use {last_name} or {first_name}"),
        ("{intake_yy}-{first_initial}{last_initial}", "yield no name part"),
        ("stu", "pattern must use {last_name} or {first_name}"),
        ("{first_initial} {last_name}", "may only hold letters, digits and . - _"),
        ("{first_initial}@{last_name}", "found '@'"),
        ("{first_initial}{last_name", "unbalanced { or }"),
        ("{}{last_name}", "empty field {}"),
    ],
)
def test_pattern_errors_name_the_problem(pattern: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        UsernamePolicy(pattern=pattern)


def test_pattern_must_fit_max_length() -> None:
    with pytest.raises(ValidationError, match="needs at least 10 characters but max_length is 8"):
        UsernamePolicy(pattern="stu-{intake_yyyy}{first_initial}{last_name}", max_length=8)


@pytest.mark.parametrize(
    "settings_",
    [
        {"max_len": 12},
        {"case": "title"},
        {"hyphens": "maybe"},
        {"collision": {"start": 3}},
        {"collision": {"min_digits": 4}},
    ],
)
def test_bad_settings_are_refused(settings_: dict) -> None:
    with pytest.raises(ValidationError):
        UsernamePolicy.model_validate(settings_)


def test_policy_is_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        DEFAULT.max_length = 10  # type: ignore[misc]


def test_role_policies_and_staff_shorthand() -> None:
    defaults = UsernamePolicies()
    assert defaults.for_role("pupil") == DEFAULT
    assert defaults.for_role("teaching_staff") == DEFAULT
    assert defaults.for_role("parent").pattern == "{first_name}.{last_name}"
    shorthand = UsernamePolicies.model_validate(
        {"staff": {"pattern": "{first_name}.{last_name}"}, "non_teaching_staff": {"max_length": 15}}
    )
    assert shorthand.staff.pattern == "{first_name}.{last_name}"
    assert shorthand.teaching_staff.pattern == "{first_name}.{last_name}"
    assert shorthand.non_teaching_staff == UsernamePolicy(max_length=15)
    with pytest.raises(ValueError, match="unknown role"):
        defaults.for_role("governor")


def test_establishment_yaml_shape() -> None:
    config = Establishment.model_validate(
        {
            "id": "test-school",
            "name": "Test",
            "laestab": "3804123",
            "mis": {"type": "file_drop", "connection_id": "mis"},
            "usernames": {
                "pupil": {"pattern": "{intake_yy}{first_initial}{last_name}", "collision": {"min_digits": 2}},
                "staff": {"pattern": "{first_name}.{last_name}", "hyphens": "drop"},
            },
            "display_names": {"staff": {"pattern": "{title} {last_name}"}},
            "passwords": {"pupil": {"style": "words", "words": {"count": 3}}},
        }
    )
    assert config.usernames.for_role("pupil").collision.min_digits == 2
    assert config.usernames.for_role("non_teaching_staff").hyphens == "drop"
    assert config.display_names.for_role("teaching_staff").pattern == "{title} {last_name}"
    assert config.passwords.for_role("pupil").words.count == 3
    assert config.passwords.for_role("teaching_staff").style == "random"


# --------------------------------------------------------------------------------------------------
# Display names


def test_display_name_defaults() -> None:
    people = people_frame(
        [
            person("Alex", "Smith", title="Mr"),
            person("Zoë", "O'Brien", title=None),
            person("Siân", "Llewelyn-Bowen", title="Dr"),
            person("Madonna", None, title="Ms"),
        ]
    )
    policies = DisplayNamePolicies()
    assert display_names(people, policies.pupil).tolist() == [
        "Alex Smith",
        "Zoë O'Brien",
        "Siân Llewelyn-Bowen",
        "Madonna",
    ]
    assert display_names(people, policies.teaching_staff).tolist() == [
        "Mr A. Smith",
        "Zoë O'Brien",
        "Dr S. Llewelyn-Bowen",
        "Madonna",
    ]


def test_display_names_prefer_preferred_names_and_normalise_spaces() -> None:
    people = people_frame(
        [
            person("Sam", "Smith", legal_first_name="Samantha", legal_last_name="Smith"),
            person(None, " De  La Cruz ", legal_first_name="Ana", legal_last_name="De La Cruz"),
        ]
    )
    assert display_names(people, DisplayNamePolicy()).tolist() == ["Sam Smith", "Ana De La Cruz"]
    legal = DisplayNamePolicy(name_source="legal")
    assert display_names(people, legal).tolist() == ["Samantha Smith", "Ana De La Cruz"]


def test_display_name_staff_shorthand_and_errors() -> None:
    policies = DisplayNamePolicies.model_validate({"staff": {"pattern": "{first_name} {last_name}"}})
    assert policies.teaching_staff == policies.non_teaching_staff == DisplayNamePolicy()
    with pytest.raises(ValidationError, match="unknown pattern fields: nickname"):
        DisplayNamePolicy(pattern="{nickname} {last_name}")
    with pytest.raises(ValidationError, match="pattern must use"):
        DisplayNamePolicy(pattern="{title}")


# --------------------------------------------------------------------------------------------------
# Properties: valid for Microsoft and Google, unique in the establishment


names = st.text(max_size=40)
policies = st.builds(
    UsernamePolicy,
    pattern=st.sampled_from(
        [
            "{first_initial}{last_name}",
            "{first_name}.{last_name}",
            "{last_name}_{first_initial}",
            "{first_name}-{last_name}",
            "{first_name}",
            "{intake_yy}{first_initial}{last_name}",
            "stu-{last_name}{first_initial}",
            "{first_name}.{last_name}{intake_yyyy}",
            ".{first_name}..{last_name}.",
        ]
    ),
    max_length=st.integers(min_value=12, max_value=64),
    case=st.sampled_from(["lower", "upper"]),
    hyphens=st.sampled_from(["keep", "drop", "first_part"]),
    collision=st.builds(
        CollisionPolicy, start=st.sampled_from([1, 2]), min_digits=st.integers(min_value=1, max_value=3)
    ),
)
admissions = st.one_of(st.none(), st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))


@settings(max_examples=200, deadline=None)
@given(people=st.lists(st.tuples(names, names), max_size=20))
def test_property_default_policy(people: list[tuple[str, str]]) -> None:
    allocated = allocate(people, DEFAULT, set())
    assert len(allocated) == len(people)
    for username in allocated:
        assert USERNAME.match(username), username
        assert len(username) <= DEFAULT.max_length
    assert len(set(allocated)) == len(allocated)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(names, names, names, admissions, st.sampled_from(["on_roll", "pre_admission"])), max_size=25
    ),
    policy=policies,
    taken=st.sets(st.from_regex(r"[a-zA-Z]{1,4}[0-9]{0,2}", fullmatch=True), max_size=10),
)
def test_property_valid_for_microsoft_and_google_and_unique(
    rows: list[tuple[str, str, str, date | None, str]], policy: UsernamePolicy, taken: set[str]
) -> None:
    people = people_frame(
        [
            {
                "first_name": f,
                "last_name": last,
                "legal_first_name": g,
                "admission_date": a,
                "enrolment_status": s,
            }
            for f, last, g, a, s in rows
        ]
    )
    before = {name.lower() for name in taken}
    usernames = allocate_usernames(people, policy, taken, as_of=JUNE_2025).tolist()
    assert len(usernames) == len(rows)
    for username in usernames:
        assert microsoft_ok(username), username
        assert google_ok(username.lower()), username  # Google lower-cases on its side
        assert USERNAME.match(username.lower()), username
        assert len(username) <= policy.max_length
        assert username.lower() not in before  # never a name already issued, in any case
        assert username == (username.upper() if policy.case == "upper" else username.lower())
    assert len({u.lower() for u in usernames}) == len(usernames)  # unique in the establishment


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(st.tuples(names, names), max_size=20),
    policy=policies.filter(lambda p: not p.uses_intake),
    taken=st.sets(st.from_regex(r"[a-z]{1,3}[0-9]?", fullmatch=True), max_size=10),
)
def test_property_any_policy_and_taken(
    people: list[tuple[str, str]], policy: UsernamePolicy, taken: set[str]
) -> None:
    before = set(taken)
    allocated = allocate(people, policy, taken)
    for username in allocated:
        assert USERNAME.match(username.lower()), username
        assert len(username) <= policy.max_length
        assert username.lower() not in before
    assert len(set(allocated)) == len(allocated)
    assert taken == before | set(allocated)


@settings(max_examples=50, deadline=None)
@given(first=names, last=names, count=st.integers(min_value=2, max_value=15))
def test_property_identical_names_all_unique(first: str, last: str, count: int) -> None:
    allocated = allocate([(first, last)] * count, DEFAULT, set())
    assert len(set(allocated)) == count
    assert all(len(u) <= 20 and USERNAME.match(u) for u in allocated)
