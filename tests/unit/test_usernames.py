"""Usernames: transliteration (uk-data-rules.md §8.3), pattern, truncation, collisions, never reissued."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mis_sync.config import UsernamePolicy
from mis_sync.usernames import allocate, base_username, fold_name

USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9.\-_]*[a-z0-9])?$")
DEFAULT = UsernamePolicy()


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


def test_base_username_other_patterns() -> None:
    dotted = UsernamePolicy(pattern="{first_name}.{last_name}")
    assert base_username("Alex", "Smith", dotted) == "alex.smith"
    assert base_username("Alex", "Smith", UsernamePolicy(pattern="{last_name}{first_initial}")) == "smitha"


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


def test_collisions_first_suffix_1() -> None:
    names = [("Alex", "Smith")] * 12
    assert allocate(names, DEFAULT, set()) == ["asmith", *(f"asmith{n}" for n in range(1, 12))]


def test_collisions_first_suffix_2() -> None:
    names = [("Alex", "Smith")] * 4
    policy = UsernamePolicy(first_suffix=2)
    assert allocate(names, policy, set()) == ["asmith", "asmith2", "asmith3", "asmith4"]


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
    # base "asmith" (from "asmith-jones" trimmed); cut for a suffix would be "asmith"[:6] == "asmith"
    allocated = allocate([("Alex", "Smith-Jones")] * 2, policy, set())
    assert allocated == ["asmith", "asmith1"]
    dotted = UsernamePolicy(pattern="{first_initial}.{last_name}", max_length=4)
    allocated = allocate([("Alex", "Li")] * 2, dotted, set())
    assert allocated == ["a.li", "a.l1"]
    assert all(USERNAME.match(u) for u in allocated)


def test_taken_names_are_never_reissued() -> None:
    taken = {"asmith", "asmith1", "asmith3"}
    allocated = allocate([("Alex", "Smith")] * 3, DEFAULT, taken)
    assert allocated == ["asmith2", "asmith4", "asmith5"]
    assert taken == {"asmith", "asmith1", "asmith2", "asmith3", "asmith4", "asmith5"}


def test_taken_accumulates_across_calls() -> None:
    taken: set[str] = set()
    assert allocate([("Alex", "Smith")], DEFAULT, taken) == ["asmith"]
    assert allocate([("Alex", "Smith")], DEFAULT, taken) == ["asmith1"]
    assert allocate([("Alex", "Smith")], DEFAULT, taken) == ["asmith2"]


def test_allocate_empty() -> None:
    assert allocate([], DEFAULT, set()) == []


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
        ]
    ),
    max_length=st.integers(min_value=3, max_value=30),
    first_suffix=st.sampled_from([1, 2]),
)


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
    people=st.lists(st.tuples(names, names), max_size=20),
    policy=policies,
    taken=st.sets(st.from_regex(r"[a-z]{1,3}[0-9]?", fullmatch=True), max_size=10),
)
def test_property_any_policy_and_taken(
    people: list[tuple[str, str]], policy: UsernamePolicy, taken: set[str]
) -> None:
    before = set(taken)
    allocated = allocate(people, policy, taken)
    for username in allocated:
        assert USERNAME.match(username), username
        assert len(username) <= policy.max_length
        assert username not in before
    assert len(set(allocated)) == len(allocated)
    assert taken == before | set(allocated)


@settings(max_examples=50, deadline=None)
@given(first=names, last=names, count=st.integers(min_value=2, max_value=15))
def test_property_identical_names_all_unique(first: str, last: str, count: int) -> None:
    allocated = allocate([(first, last)] * count, DEFAULT, set())
    assert len(set(allocated)) == count
    assert all(len(u) <= 20 and USERNAME.match(u) for u in allocated)
