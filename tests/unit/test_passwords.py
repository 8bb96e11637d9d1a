"""Initial passwords: policies, generation, the word list, keys from a Connection, encryption."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mis_sync import passwords
from mis_sync.connections import ConnectionInfo
from mis_sync.errors import SetupError
from mis_sync.passwords import (
    AMBIGUOUS,
    AWKWARD,
    BLOCKED_SUBSTRINGS,
    DIGITS,
    SYMBOLS,
    CredentialKeyError,
    PasswordPolicies,
    PasswordPolicy,
    WordsOptions,
    decrypt_password,
    encrypt_password,
    generate_password,
    generate_passwords,
    keys_from_connection,
    parse_wordlist,
    wordlist,
)

WORDLIST_FILE = Path(passwords.__file__).with_name("data") / "wordlist.txt"
WORDS_POLICY = PasswordPolicies().pupil


def word_parts(password: str, options: WordsOptions) -> tuple[list[str], str]:
    parts = (
        password.split(options.separator) if options.separator else re.findall(r"[A-Z][a-z]+|\d+", password)
    )
    digits = parts.pop() if options.digits else ""
    return parts, digits


# --------------------------------------------------------------------------------------------------
# Word list


def test_wordlist_is_big_clean_and_child_friendly() -> None:
    words = wordlist()
    assert len(words) >= 600
    assert len(set(words)) == len(words)
    for word in words:
        assert re.fullmatch(r"[a-z]{3,8}", word), word
        assert word[0] not in "io", word  # capital I / O read as l / 0
        assert not any(bad in word for bad in BLOCKED_SUBSTRINGS), word


@pytest.mark.parametrize(
    ("word", "message"),
    [("Tiger", "not 3–8 lower-case"), ("igloo", "not starting i/o"), ("grape", "blocked letter sequence")],
)
def test_bad_words_are_refused(word: str, message: str) -> None:
    good = "\n".join(wordlist())
    with pytest.raises(SetupError, match=message):
        parse_wordlist(f"# header\n{good}\n{word}\n")


def test_short_wordlist_is_refused() -> None:
    with pytest.raises(SetupError, match="at least 600"):
        parse_wordlist("tiger\nmaple\n")


def test_wordlist_is_package_data_listed_in_pyproject() -> None:
    assert WORDLIST_FILE.is_file()
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"data/*.txt"' in pyproject


# --------------------------------------------------------------------------------------------------
# Policies


def test_default_policies_per_role() -> None:
    policies = PasswordPolicies()
    assert policies.pupil.style == "words"
    assert (policies.pupil.words.count, policies.pupil.words.separator, policies.pupil.words.digits) == (
        2,
        "-",
        2,
    )
    for role in ("teaching_staff", "non_teaching_staff"):
        assert policies.for_role(role).style == "random"
        assert policies.for_role(role).length == 16
    assert policies.parent.style == "random" and policies.parent.length == 14
    assert all(policies.for_role(r).force_change_at_first_sign_in for r in passwords.ROLES)
    assert policies.key_connection_id == "misync_credentials_key"


def test_staff_shorthand() -> None:
    policies = PasswordPolicies.model_validate({"staff": {"length": 20}, "teaching_staff": {"length": 24}})
    assert policies.teaching_staff.length == 24
    assert policies.non_teaching_staff.length == 20
    with pytest.raises(ValueError, match="unknown role"):
        policies.for_role("visitor")


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"length": 6}, "greater than or equal to 8"),
        ({"style": "pin"}, "'words' or 'random'"),
        ({"style": "words", "words": {"count": 1, "digits": 0}}, "could be 3 characters long"),
        ({"style": "words", "words": {"count": 7}}, "less than or equal to 6"),
        ({"style": "words", "words": {"separator": "/"}}, "Input should be"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_policies_name_the_problem(settings_: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        PasswordPolicy.model_validate(settings_)


# --------------------------------------------------------------------------------------------------
# Generation


def test_word_password_shape() -> None:
    words = set(wordlist())
    for password in generate_passwords(WORDS_POLICY, 200):
        assert re.fullmatch(r"[A-Z][a-z]{2,7}-[A-Z][a-z]{2,7}-[2-9]{2}", password), password
        parts, digits = word_parts(password, WORDS_POLICY.words)
        assert len(parts) == 2 and all(part.lower() in words for part in parts), password
        assert len(digits) == 2
        assert len(password) >= 8


def test_word_password_options() -> None:
    policy = PasswordPolicy(
        style="words", words=WordsOptions(count=3, separator="", digits=0, capitalise=False)
    )
    words = set(wordlist())
    password = generate_password(policy)
    assert re.fullmatch(r"[a-z]{9,24}", password)
    # Three list words glued together (the split is ambiguous, so check a split exists).
    assert any(
        password[:i] in words and password[i:j] in words and password[j:] in words
        for i in range(3, 9)
        for j in range(i + 3, i + 9)
    )


def test_random_password_meets_policy() -> None:
    for policy in (PasswordPolicies().teaching_staff, PasswordPolicies().parent, PasswordPolicy(length=8)):
        for password in generate_passwords(policy, 200):
            assert len(password) == policy.length
            assert password[0].isalpha()  # no spreadsheet formula when the CSV is opened
            assert any(c.islower() for c in password)
            assert any(c.isupper() for c in password)
            assert any(c in DIGITS for c in password)
            assert any(c in SYMBOLS for c in password)


def test_generated_passwords_differ() -> None:
    assert len(set(generate_passwords(PasswordPolicies().teaching_staff, 500))) == 500
    assert len(set(generate_passwords(WORDS_POLICY, 200))) > 150


def test_generation_uses_secrets_only() -> None:
    source = Path(passwords.__file__).read_text(encoding="utf-8")
    assert "import random" not in source and "from random" not in source
    assert "secrets.choice" in source


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(min_value=8, max_value=64),
    count=st.integers(min_value=1, max_value=6),
    digits=st.integers(min_value=0, max_value=4),
    separator=st.sampled_from(["-", ".", "_", ""]),
)
def test_property_no_ambiguous_characters(length: int, count: int, digits: int, separator: str) -> None:
    random_password = generate_password(PasswordPolicy(length=length))
    assert not set(random_password) & (AMBIGUOUS | AWKWARD), random_password
    try:
        policy = PasswordPolicy(
            style="words", words=WordsOptions(count=count, digits=digits, separator=separator)
        )
    except ValidationError:
        return  # too short to be allowed
    word_password = generate_password(policy)
    # Words may hold a lower-case l or o (read in context), never a capital I or O, 0, 1 or |.
    assert not set(word_password) & (AMBIGUOUS - {"l", "o"}), word_password
    assert not set(word_password) & (AWKWARD - {"."}), word_password  # "." only as a chosen separator


# --------------------------------------------------------------------------------------------------
# Keys and encryption


def conn(password: str | None) -> ConnectionInfo:
    return ConnectionInfo(conn_id="misync_credentials_key", conn_type="generic", password=password)


def test_keys_from_connection_one_or_many() -> None:
    first, second = Fernet.generate_key(), Fernet.generate_key()
    assert keys_from_connection(conn(first.decode())) == [first]
    assert keys_from_connection(conn(f" {first.decode()} , {second.decode()},")) == [first, second]
    assert keys_from_connection(conn(f"{first.decode()},{first.decode()}")) == [first]


@pytest.mark.parametrize("value", [None, "", "   ", ","])
def test_missing_key_is_a_setup_error(value: str | None) -> None:
    with pytest.raises(SetupError, match="'misync_credentials_key' has no password") as info:
        keys_from_connection(conn(value))
    assert "Fernet.generate_key" in str(info.value)


def test_invalid_key_is_named_by_position_never_echoed() -> None:
    good = Fernet.generate_key().decode()
    secret = "not-a-real-key-but-secret-looking-value"
    with pytest.raises(
        SetupError, match="key 2 of 2 in the password field is not a valid Fernet key"
    ) as info:
        keys_from_connection(conn(f"{good},{secret}"))
    assert secret not in str(info.value) and good not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_ciphertext_is_not_the_password_and_decrypts_with_the_key() -> None:
    keys = [Fernet.generate_key()]
    token = encrypt_password("Tiger-Maple-42", keys)
    assert "Tiger" not in token and "Maple" not in token
    assert encrypt_password("Tiger-Maple-42", keys) != token  # random IV
    assert decrypt_password(token, keys) == "Tiger-Maple-42"


def test_wrong_key_raises() -> None:
    token = encrypt_password("Tiger-Maple-42", [Fernet.generate_key()])
    with pytest.raises(CredentialKeyError, match="cannot be decrypted") as info:
        decrypt_password(token, [Fernet.generate_key()])
    assert "Tiger" not in str(info.value)
    assert isinstance(info.value, SetupError)


def test_key_rotation_first_encrypts_all_decrypt() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    old_token = encrypt_password("Otter-Cloud-77", [old])
    rotated_keys = [new, old]
    assert decrypt_password(old_token, rotated_keys) == "Otter-Cloud-77"
    new_token = encrypt_password("Robin-Lake-23", rotated_keys)
    assert decrypt_password(new_token, [new]) == "Robin-Lake-23"
    with pytest.raises(CredentialKeyError):
        decrypt_password(new_token, [old])
    with pytest.raises(SetupError, match="no encryption key"):
        encrypt_password("x", [])
