"""UPN and SCN rules: every worked example in uk-data-rules 1.4 and 2.2, plus property tests."""

from __future__ import annotations

import re
import string
import time
from importlib import resources

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mis_sync.identifiers import (
    LA_CODES_RESOURCE,
    UPN_ALPHABET,
    VALID_LA_CODES,
    is_temporary_upn,
    is_valid_scn,
    is_valid_upn,
    make_scn,
    make_upn,
    parse_la_codes,
    scn_check_digit,
    scn_problem,
    scn_problems,
    temporary_upns,
    upn_check_letter,
    upn_problem,
    upn_problems,
)

# uk-data-rules 1.4: UPN -> (sum of positions 2-13, expected problem or None).
WORKED_UPNS: dict[str, tuple[int | None, str | None]] = {
    "B801200005001": (93, None),
    "B380209325001": (208, None),
    "Q380209325002": (221, None),
    "E380209325003": (234, None),
    "M886400124117": (264, None),
    "B201100024007": (162, None),
    "E660400125003": (165, None),
    "A38020932501A": (207, None),
    "C38020932502B": (232, None),
    "P207000016049": (266, None),
    "Q207000016049": (266, "check_letter"),  # the widely published wrong example: 266 -> P, not Q
    "A801200005001": (93, "check_letter"),
    "T999200005001": (154, "la_code"),
    "P473368326012": (288, "check_letter"),
    "B80120000500": (None, "length"),
    "B8012O0005001": (None, "characters"),
}


def _weighted_sum(upn: str) -> int:
    value = {c: i for i, c in enumerate(UPN_ALPHABET)}
    return sum(p * (int(c) if c.isdigit() else value[c]) for p, c in enumerate(upn[1:], start=2))


@pytest.mark.parametrize(("upn", "expected"), list(WORKED_UPNS.items()))
def test_worked_upn_examples(upn: str, expected: tuple[int | None, str | None]) -> None:
    total, problem = expected
    assert upn_problem(upn) == problem
    assert is_valid_upn(upn) is (problem is None)
    if total is not None:
        assert _weighted_sum(upn) == total
        assert upn_check_letter(upn[1:]) == UPN_ALPHABET[total % 23]


def test_disputed_example_term_breakdown() -> None:
    assert 2 * 2 + 4 * 7 + 9 * 1 + 10 * 6 + 12 * 4 + 13 * 9 == 266
    assert upn_check_letter("207000016049") == "P"


def test_alphabet_and_la_codes() -> None:
    assert len(UPN_ALPHABET) == 23
    assert not set("IOS") & set(UPN_ALPHABET)
    assert {"001", "005", "201", "420", "660", "681", "701", "708", "815", "886", "938"} <= VALID_LA_CODES
    assert not {"000", "006", "200", "214", "473", "659", "682", "709", "804", "939", "999"} & VALID_LA_CODES
    assert all(len(code) == 3 and code.isdigit() for code in VALID_LA_CODES)
    assert len(VALID_LA_CODES) == 195


# Authorities made since April 2019 (issue 13 item 14): their schools' UPNs were rejected as "la_code".
NEW_AUTHORITIES = {
    "838": "Dorset",
    "839": "Bournemouth, Christchurch and Poole",
    "940": "North Northamptonshire",
    "941": "West Northamptonshire",
    "942": "Cumberland",
    "943": "Westmorland and Furness",
}


@pytest.mark.parametrize("la", sorted(NEW_AUTHORITIES))
def test_upns_from_new_authorities_are_valid(la: str) -> None:
    body = f"{la}2001" + "25" + "017"
    upn = upn_check_letter(body) + body
    assert upn_problem(upn) is None
    assert make_upn(la, "2001", 25, 17) == upn
    # the abolished authorities they replaced keep their codes: older UPNs carry them for life
    assert {"835", "836", "837", "909", "928"} <= VALID_LA_CODES


def test_la_code_list_is_data_with_source_and_date() -> None:
    text = resources.files("mis_sync").joinpath(LA_CODES_RESOURCE).read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "Source" in header and "get-information-schools.service.gov.uk" in header
    assert re.search(r"Compiled: \d{4}-\d{2}-\d{2}", header)
    assert parse_la_codes(text) == VALID_LA_CODES


@pytest.mark.parametrize("bad", ["83", "838-", "8a8", "940-94"])
def test_la_code_list_rejects_a_bad_line(bad: str) -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_la_codes(f"# header\n{bad}\n")


@pytest.mark.parametrize(
    ("upn", "problem"),
    [
        ("", "length"),
        ("B8012000050011", "length"),
        ("b801200005001", "characters"),  # lower-case check letter
        ("I801200005001", "characters"),  # I is never a check letter
        ("1801200005001", "characters"),
        ("B80120000500a", "characters"),
        ("B80120000500I", "characters"),  # I, O, S are not in the alphabet, even as a temporary suffix
        ("B8012000050 1", "characters"),
        ("B80120000５001", "characters"),  # a full-width digit is not an ASCII digit
    ],
)
def test_malformed_upns(upn: str, problem: str) -> None:
    assert upn_problem(upn) == problem


def test_temporary_upns() -> None:
    assert is_temporary_upn("A38020932501A")
    assert is_temporary_upn("C38020932502B")
    assert not is_temporary_upn("B801200005001")
    assert not is_temporary_upn("B38020932501A")  # wrong check letter: not a valid temporary UPN


def test_make_upn_reproduces_examples() -> None:
    assert make_upn("801", "2000", 5, 1) == "B801200005001"
    assert make_upn("380", "2093", 25, 3) == "E380209325003"
    assert make_upn("380", "2093", 25, 1, temporary=True) == "A38020932501A"
    assert make_upn("380", "2093", 25, 102, temporary=True) == "C38020932502B"


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"la": "999", "estab": "2000", "year2": 0, "serial": 1}, "999"),
        ({"la": "801", "estab": "200", "year2": 0, "serial": 1}, "200"),
        ({"la": "801", "estab": "2000", "year2": 100, "serial": 1}, "100"),
        ({"la": "801", "estab": "2000", "year2": 0, "serial": 1000}, "1000"),
        ({"la": "801", "estab": "2000", "year2": 0, "serial": 2300, "temporary": True}, "2300"),
    ],
)
def test_make_upn_rejects_bad_parts(kwargs: dict[str, object], bad: str) -> None:
    with pytest.raises(ValueError, match=r"\S") as caught:
        make_upn(**kwargs)  # type: ignore[arg-type]
    assert bad not in str(caught.value)  # messages never echo the (personal) values


def test_check_letter_rejects_bad_body() -> None:
    with pytest.raises(ValueError, match="UPN body"):
        upn_check_letter("80120000500")


_upn_parts = st.tuples(
    st.sampled_from(sorted(VALID_LA_CODES)),
    st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    st.integers(0, 99),
    st.booleans(),
    st.integers(0, 2299),
)


@given(_upn_parts)
def test_every_made_upn_is_valid(parts: tuple[str, str, int, bool, int]) -> None:
    la, estab, year2, temporary, serial = parts
    upn = make_upn(la, estab, year2, serial if temporary else serial % 1000, temporary=temporary)
    assert upn_problem(upn) is None
    assert is_temporary_upn(upn) is temporary
    assert upn[1:4] == la


def _equal_value_swap(original: str, replacement: str) -> bool:
    """Position 13 only: digit d <-> the letter worth d (A=0 ... K=9) leaves the sum unchanged."""
    pairs = {str(d): UPN_ALPHABET[d] for d in range(10)}
    return pairs.get(original) == replacement or pairs.get(replacement) == original


def test_single_substitution_claim_checked_exhaustively() -> None:
    """The brief's claim "any single substitution is caught" needs one exception, verified here.

    With 23 (prime) check values and weights 2..13, a substitution changes the sum by weight x delta,
    never 0 mod 23, unless the value does not change: that happens only at position 13, where a
    digit and the check-alphabet letter of the same value (``0``/``A`` ... ``9``/``K``) are both
    allowed. Such a swap turns a valid permanent UPN into a valid temporary one and back.
    """
    upn = "B801200005001"
    missed = set()
    for i in range(13):
        for c in string.ascii_letters + string.digits:
            if c != upn[i] and is_valid_upn(upn[:i] + c + upn[i + 1 :]):
                missed.add((i, c))
    assert missed == {(12, "B")}
    assert is_temporary_upn("B80120000500B")


@settings(max_examples=300)
@given(_upn_parts, st.integers(0, 12), st.sampled_from(string.ascii_letters + string.digits))
def test_any_single_substitution_is_caught(
    parts: tuple[str, str, int, bool, int], position: int, replacement: str
) -> None:
    la, estab, year2, temporary, serial = parts
    upn = make_upn(la, estab, year2, serial if temporary else serial % 1000, temporary=temporary)
    if replacement == upn[position] or (position == 12 and _equal_value_swap(upn[12], replacement)):
        return
    assert upn_problem(upn[:position] + replacement + upn[position + 1 :]) is not None


def test_upn_problems_vectorised_and_fast() -> None:
    valid = [make_upn("380", "2093", i % 100, i % 1000) for i in range(50_000)]
    series = pd.Series([*valid, None, "Q207000016049", "T999200005001", "B80120000500", "B8012O0005001"])
    started = time.perf_counter()
    problems = upn_problems(series)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert problems.dtype == "string"
    assert problems.iloc[: len(valid) + 1].isna().all()  # valid rows and the missing UPN are NA
    assert problems.iloc[-4:].tolist() == ["check_letter", "la_code", "length", "characters"]
    flags = temporary_upns(pd.Series(["A38020932501A", None, "B801200005001"]))
    assert flags.tolist() == [True, pd.NA, False]


# uk-data-rules 2.2
@pytest.mark.parametrize(
    ("scn", "valid"),
    [("123456785", True), ("090000012", True), ("240012340", True), ("123456780", False)],
)
def test_worked_scn_examples(scn: str, valid: bool) -> None:
    assert is_valid_scn(scn) is valid


def test_scn_check_digits() -> None:
    assert scn_check_digit("12345678") == 5
    assert scn_check_digit("09000001") == 2  # leading zero kept: strings, not integers
    assert scn_check_digit("24001234") == 0  # 11 - 0 = 11 -> 0
    assert scn_check_digit("23000157") is None  # would be 10: no valid SCN
    assert not any(is_valid_scn(f"23000157{x}") for x in range(10))


def test_scn_problems_and_make_scn() -> None:
    assert scn_problem("12345678") == "length"
    assert scn_problem("12345678X") == "characters"
    assert scn_problem("123456780") == "check_digit"
    assert scn_problem("230001570") == "check_digit"
    assert make_scn(9, 1) == "090000012"
    with pytest.raises(ValueError, match="no valid SCN check digit"):
        make_scn(23, 157)
    with pytest.raises(ValueError, match="8 digits"):
        scn_check_digit("1234567")
    result = scn_problems(pd.Series(["123456785", None, "123456780"]))
    assert result.isna().tolist() == [True, True, False]
    assert result.iloc[2] == "check_digit"


@given(st.integers(0, 99), st.integers(0, 999_999))
def test_every_made_scn_is_valid(year2: int, serial: int) -> None:
    data = f"{year2:02d}{serial:06d}"
    if scn_check_digit(data) is None:
        with pytest.raises(ValueError, match="no valid SCN"):
            make_scn(year2, serial)
    else:
        scn = make_scn(year2, serial)
        assert is_valid_scn(scn)
        assert scn.startswith(data)
