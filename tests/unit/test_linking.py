"""Link mode: CSV import, explainable matching on a perturbed generated school, decisions, mode switch.

Assertions and messages use ids, categories and counts only: the generated names are synthetic, but
tests follow the same rule as the code (no names, UPNs, dates of birth or emails in output).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import time
import unicodedata
from dataclasses import dataclass, field

import pandas as pd
import pytest

from mis_sync.errors import DataError
from mis_sync.generator import generate_school
from mis_sync.linking import (
    DecisionError,
    ExistingUsersError,
    LinkCategory,
    LinkThresholds,
    LinkToCreateRefused,
    check_link_to_create,
    effective,
    existing_users_frame,
    link_report,
    parse_existing_users,
    render_link_report,
    report_counts,
    run_matching,
)
from mis_sync.linking.decisions import check_decision
from mis_sync.linking.normalise import normalise_name
from mis_sync.model import Extract

AS_OF = dt.date(2026, 11, 1)
HEADER = ["Username", "First Name", "last_name", " ROLE ", "E-mail", "MIS ID", "upn", "Date of Birth"]
LIKELY_CLASSES = ("upn_dob", "typo_dob", "swap_dob", "diacritics_dob", "email_no_dob")
POSSIBLE_CLASSES = ("names_only", "fuzzy_only", "swap_names_only", "diacritics_names_only")


# --------------------------------------------------------------------------------------------------
# Building a perturbed existing-users CSV from a generated school, recording the truth


@dataclass
class Case:
    csv_text: str = field(repr=False)
    truth: dict[str, tuple[str, str | None]] = field(default_factory=dict, repr=False)
    """username -> (perturbation class, true MIS id or None for people not in the MIS)"""
    left_out: set[str] = field(default_factory=set, repr=False)

    def expected(self, extract: Extract) -> dict[str, int]:
        classes = pd.Series([c for c, _ in self.truth.values()], dtype="object")
        in_csv = {mis_id for _, mis_id in self.truth.values() if mis_id}
        current = [
            frame.loc[frame["enrolment_status"].astype("string") != "leaver", "mis_id"]
            for frame in (extract.tables["pupils"], extract.tables["staff"])
        ]
        return {
            "linked": int((classes == "exact_id").sum()),
            "not_in_mis": 0,
            "likely": int(classes.isin(LIKELY_CLASSES).sum()),
            "possible": int(classes.isin(POSSIBLE_CLASSES).sum()),
            "not_matched": int((classes == "fake").sum()),
            "mis_no_account": 0,
            "mis_not_matched": int(sum((~ids.isin(in_csv)).sum() for ids in current)),
        }


def strip_diacritics(text: str) -> str:
    """What a careless export does: drop accents, keep the base letter (ø → o, ł → l, ß → s)."""
    base = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return base.translate(str.maketrans("øØłŁđĐæÆœŒßþÞðÐı’", "oOlLdDaAoOstTdDi'"))


def one_typo(rng: random.Random, text: str) -> str:
    """One substitution, deletion, insertion or transposition, never on the first letter."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = rng.randrange(1, len(text)) if len(text) > 1 else 0
    operation = rng.choice(["sub", "del", "ins", "swap"]) if len(text) > 3 else "sub"
    if operation == "sub":
        return text[:i] + rng.choice([c for c in letters if c != text[i].lower()]) + text[i + 1 :]
    if operation == "del":
        return text[:i] + text[i + 1 :]
    if operation == "ins":
        return text[:i] + rng.choice(letters) + text[i:]
    i = min(i, len(text) - 2)
    if text[i] == text[i + 1]:
        return text[:i] + rng.choice([c for c in letters if c != text[i].lower()]) + text[i + 1 :]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def made_up_name(rng: random.Random) -> tuple[str, str]:
    """Names no generated person has: syllables outside the generator's name lists."""
    parts = ["zor", "vax", "quil", "brix", "thul", "kesp", "yorv", "drav", "plim", "grox", "vesk", "nyth"]

    def word(n: int) -> str:
        return "".join(rng.choice(parts) for _ in range(n)).capitalize()

    return word(2), word(3)


def _people(extract: Extract) -> pd.DataFrame:
    """Every pupil and staff member; ``in_csv_pool``: on-roll pupils and current staff (who get rows)."""
    pupils = extract.tables["pupils"].assign(kind="pupil", role="pupil")
    pupils["in_csv_pool"] = pupils["enrolment_status"].astype("string") == "on_roll"
    staff = extract.tables["staff"].assign(kind="staff")
    staff["in_csv_pool"] = staff["enrolment_status"].astype("string") != "leaver"
    staff["role"] = staff["is_teaching"].map({True: "teaching_staff", False: "non_teaching_staff"})
    people = pd.concat([pupils, staff], ignore_index=True)
    for column in ("legal_first_name", "legal_last_name", "preferred_first_name", "preferred_last_name"):
        people[column] = people[column].astype("object")
    people["preferred_first_name"] = people["preferred_first_name"].fillna(people["legal_first_name"])
    people["preferred_last_name"] = people["preferred_last_name"].fillna(people["legal_last_name"])
    return people


def _eligibility(people: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Who can carry which perturbation without becoming ambiguous by construction.

    Name-only cases need a full name (any legal/preferred variant) no one else of the kind has; a
    one-typo name-only case also needs a surname no one else of the kind has, so that the typo cannot
    make someone else the better match.
    """
    swapped = (people["legal_first_name"] != people["preferred_first_name"]) | (
        people["legal_last_name"] != people["preferred_last_name"]
    )
    text = people["preferred_first_name"] + people["preferred_last_name"]
    accented = text.map(lambda s: strip_diacritics(s) != s)

    def variants(*columns: str) -> pd.DataFrame:
        parts = []
        for first, last in (
            ("legal_first_name", "legal_last_name"),
            ("preferred_first_name", "preferred_last_name"),
        ):
            used = (first, last) if len(columns) == 2 else (last,)
            names = [" | ".join(n) for n in zip(*(people[c].map(normalise_name) for c in used), strict=True)]
            parts.append(pd.DataFrame({"kind": people["kind"], "i": people.index, "name": names}))
        return pd.concat(parts).drop_duplicates()

    def unique(frame: pd.DataFrame) -> pd.Series:
        shared = frame.duplicated(["kind", "name"], keep=False)
        return pd.Series(~people.index.isin(frame.loc[shared, "i"]), index=people.index)

    return swapped, accented, unique(variants("first", "last")), unique(variants("last"))


def build_case(extract: Extract, seed: int, fakes: int = 40) -> Case:
    """An existing-users CSV from the school's on-roll pupils and current staff, perturbed by class."""
    rng = random.Random(seed)
    people = _people(extract)
    swapped, accented, unique, unique_surname = _eligibility(people)
    order = list(people.index[people["in_csv_pool"].astype(bool)])
    rng.shuffle(order)
    cls: dict[int, str] = {}
    for i in order:
        if swapped[i]:
            cls[i] = "swap_names_only" if len(cls) % 2 and unique[i] else "swap_dob"
        elif accented[i]:
            cls[i] = "diacritics_dob" if rng.random() < 0.5 or not unique[i] else "diacritics_names_only"
    plan = [
        ("left_out", 0.08),
        ("upn_dob", 0.10),
        ("typo_dob", 0.07),
        ("email_no_dob", 0.06),
        ("names_only", 0.05),
        ("fuzzy_only", 0.05),
    ]
    rest = [i for i in order if i not in cls]
    for name, share in plan:
        want = round(share * len(people))
        for i in [i for i in rest if i not in cls]:
            if want == 0:
                break
            if (name == "names_only" and not unique[i]) or (name == "fuzzy_only" and not unique_surname[i]):
                continue
            if name == "email_no_dob" and pd.isna(people.at[i, "email"]):
                continue
            cls[i], want = name, want - 1
    for i in rest:
        cls.setdefault(i, "exact_id")

    case = Case(csv_text="")
    rows = []
    for n, i in enumerate(order):
        person, c = people.loc[i], cls[i]
        if c == "left_out":
            case.left_out.add(str(person["mis_id"]))
            continue
        rows.append(_row(rng, person, c, f"user{n:05d}"))
        case.truth[f"user{n:05d}"] = (c, str(person["mis_id"]))
    for n in range(fakes):
        first, last = made_up_name(rng)
        role = rng.choice(["pupil", "teaching_staff", "non_teaching_staff", "staff"])
        born = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(2000))
        rows.append([f"fake{n:03d}", first, last, role, "", "", "", born.isoformat()])
        case.truth[f"fake{n:03d}"] = ("fake", None)
    rng.shuffle(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    case.csv_text = buffer.getvalue()
    return case


def _row(rng: random.Random, person: pd.Series, c: str, username: str) -> list[str]:
    first, last = str(person["preferred_first_name"]), str(person["preferred_last_name"])
    email = "" if pd.isna(person["email"]) else str(person["email"])
    upn = "" if pd.isna(person.get("upn")) else str(person["upn"])
    dob = "" if pd.isna(person["date_of_birth"]) else person["date_of_birth"]
    dob_text = (
        dob.strftime("%d/%m/%Y") if dob != "" and rng.random() < 0.3 else (dob and dob.date().isoformat())
    )
    role = person["role"] if rng.random() < 0.8 or person["kind"] == "pupil" else "staff"
    mis_id = ""
    if c == "exact_id":
        mis_id = str(person["mis_id"])
    elif c == "upn_dob":
        first, last = first.upper(), last.lower()  # case never matters
    elif c in ("typo_dob", "fuzzy_only"):
        if rng.random() < 0.5 and len(first) > 2:
            first = one_typo(rng, first)
        else:
            last = one_typo(rng, last)
    elif c in ("swap_dob", "swap_names_only"):
        first, last = str(person["legal_first_name"]), str(person["legal_last_name"])
    elif c in ("diacritics_dob", "diacritics_names_only"):
        first, last = strip_diacritics(first), strip_diacritics(last)
    if c not in ("exact_id", "upn_dob", "email_no_dob"):
        email = ""
    if c not in ("exact_id", "upn_dob"):
        upn = ""
    if c in ("email_no_dob", *POSSIBLE_CLASSES):
        dob_text = ""
    return [username, first, last, role, email, mis_id, upn, dob_text]


# --------------------------------------------------------------------------------------------------
# The key test: a generated secondary school, perturbed


@pytest.fixture(scope="module")
def secondary() -> Extract:
    return generate_school("secondary", 3, AS_OF)


@pytest.fixture(scope="module")
def case(secondary: Extract) -> Case:
    return build_case(secondary, seed=20261101)


@pytest.fixture(scope="module")
def result(secondary: Extract, case: Case):  # type: ignore[no-untyped-def]
    users = parse_existing_users(case.csv_text.encode("utf-8-sig"), source="existing.csv")
    return run_matching(users, secondary, None, LinkThresholds())


def test_category_counts_are_as_constructed(result, case: Case, secondary: Extract) -> None:  # type: ignore[no-untyped-def]
    classes = pd.Series([c for c, _ in case.truth.values()]).value_counts().to_dict()
    assert all(classes.get(c, 0) >= 10 for c in (*LIKELY_CLASSES, *POSSIBLE_CLASSES, "fake")), classes
    assert result.counts == case.expected(secondary)
    print("\nconstructed classes:", dict(sorted(classes.items())))
    print(render_link_report(link_report(result), title="secondary-3 link report"))


def test_likely_points_at_the_right_record(result, case: Case) -> None:  # type: ignore[no-untyped-def]
    likely = result.links[result.links["category"] == "likely"]
    right = sum(case.truth[u][1] == m for u, m in zip(likely["username"], likely["mis_id"], strict=True))
    precision = right / len(likely)
    print(f"\nlikely: {len(likely)} suggestions, precision {precision:.4f}")
    assert precision >= 0.99


def test_every_user_lands_in_the_category_of_its_class(result, case: Case) -> None:  # type: ignore[no-untyped-def]
    expected = {"exact_id": "linked", "fake": "not_matched"}
    expected |= dict.fromkeys(LIKELY_CLASSES, "likely") | dict.fromkeys(POSSIBLE_CLASSES, "possible")
    users = result.links[result.links["username"].notna()]
    wrong = [
        (case.truth[u][0], cat)
        for u, cat in zip(users["username"], users["category"], strict=True)
        if expected[case.truth[u][0]] != cat
    ]
    assert wrong == []


def test_suggestions_carry_score_and_agreed_fields(result) -> None:  # type: ignore[no-untyped-def]
    links = result.links
    suggested = links[links["category"].isin(["likely", "possible", "linked"])]
    assert suggested["score"].between(0, 1).all()
    assert all(len(fields) > 0 for fields in suggested["agreed_fields"])
    likely = links[links["category"] == "likely"]
    assert (likely["score"] >= 0.9).all()
    possible = links[links["category"] == "possible"]
    assert possible["score"].between(0.7, 1).all()
    assert (links.loc[links["category"] == "linked", "source"] == "mis_id").all()
    fuzzy = [f for fields in possible["agreed_fields"] for f in fields if f.endswith("~")]
    assert fuzzy, "one-typo names must agree as fuzzy fields (name~)"


def test_report_and_mode_switch_name_counts_only(result, case: Case) -> None:  # type: ignore[no-untyped-def]
    report = link_report(result)
    assert list(report.index) == [c.value for c in LinkCategory]
    assert report.loc["likely", "total"] == result.counts["likely"]
    text = render_link_report(report)
    assert not any(u in text for u in case.truth)
    with pytest.raises(LinkToCreateRefused) as refused:
        check_link_to_create(report)
    message = str(refused.value)
    for category in ("likely", "possible", "not_matched"):
        assert f"{result.counts[category]} {category.replace('_', ' ')}" in message
    assert isinstance(refused.value, DataError)
    assert report_counts(result) == result.counts


def test_mode_switch_allowed_when_buckets_are_empty() -> None:
    counts = dict.fromkeys([c.value for c in LinkCategory], 0) | {"linked": 900, "mis_not_matched": 12}
    check_link_to_create(counts)
    with pytest.raises(LinkToCreateRefused, match=r"refused: .*3 possible") as refused:
        check_link_to_create(counts | {"possible": 3})
    assert "likely" not in str(refused.value).split("refused:")[1].split("(")[0]


# --------------------------------------------------------------------------------------------------
# Runtime on a large secondary


def test_matching_runtime_large_secondary() -> None:
    extract = generate_school("large-secondary", 1, AS_OF)
    case = build_case(extract, seed=7, fakes=100)
    users = parse_existing_users(case.csv_text)
    started = time.perf_counter()
    result = run_matching(users, extract, None, LinkThresholds())
    elapsed = time.perf_counter() - started
    pupils, staff = len(extract.tables["pupils"]), len(extract.tables["staff"])
    print(
        f"\nlarge-secondary: {pupils} pupils + {staff} staff vs {len(users)} users: "
        f"{result.candidate_pairs} candidate pairs, matching {elapsed:.2f} s"
    )
    assert result.counts == case.expected(extract)
    assert elapsed < 5.0


# --------------------------------------------------------------------------------------------------
# Decisions (pure: the database round trip is in tests/integration/test_linking_db.py)


def _decisions(*rows: tuple[str | None, str, str | None, str | None]) -> pd.DataFrame:
    start = pd.Timestamp("2026-11-02T09:00Z")
    return pd.DataFrame(
        [
            {
                "id": n,
                "username": user,
                "decision": decision,
                "person_kind": kind,
                "mis_id": mis_id,
                "decided_at": start + pd.Timedelta(minutes=n),
            }
            for n, (user, decision, kind, mis_id) in enumerate(rows)
        ]
    )


class Small(tuple):  # type: ignore[type-arg]
    """(extract, users, ids) whose repr shows no data, should a failing test print its arguments."""

    def __repr__(self) -> str:
        return "Small(...)"


@pytest.fixture(scope="module")
def small() -> Small:
    extract = generate_school("secondary", 3, AS_OF)
    pupils = extract.tables["pupils"].head(6)
    rows = [
        ["exact", pupils.iloc[0]["preferred_first_name"], pupils.iloc[0]["preferred_last_name"], "pupil", ""],
        [
            "likely",
            pupils.iloc[1]["preferred_first_name"],
            pupils.iloc[1]["preferred_last_name"],
            "pupil",
            "",
        ],
        [
            "possible",
            pupils.iloc[2]["preferred_first_name"],
            pupils.iloc[2]["preferred_last_name"],
            "pupil",
            "",
        ],
    ]
    rows[0] += [pupils.iloc[0]["mis_id"], "", ""]
    rows[1] += ["", pupils.iloc[1]["upn"], pupils.iloc[1]["date_of_birth"].date().isoformat()]
    rows[2] += ["", "", ""]
    frame = pd.DataFrame(rows, columns=["username", "first_name", "last_name", "role", "email", *HEADER[5:]])
    users = parse_existing_users(frame.to_csv(index=False))
    ids = {name: str(pupils.iloc[n]["mis_id"]) for n, name in enumerate(["exact", "likely", "possible"])}
    ids["spare"] = str(pupils.iloc[5]["mis_id"])
    return Small((extract, users, ids))


def _category(result, username: str) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    row = result.links[result.links["username"] == username].iloc[0]
    return str(row["category"]), None if pd.isna(row["mis_id"]) else str(row["mis_id"])


def test_without_decisions(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, ids = small
    result = run_matching(users, extract)
    assert _category(result, "exact") == ("linked", ids["exact"])
    assert _category(result, "likely") == ("likely", ids["likely"])
    assert _category(result, "possible")[0] == "possible"
    assert result.counts["mis_not_matched"] == len(extract.tables["pupils"]) + len(
        extract.tables["staff"]
    ) - 3 - (
        (extract.tables["pupils"]["enrolment_status"] == "leaver").sum()
        + (extract.tables["staff"]["enrolment_status"] == "leaver").sum()
    )


def test_reject_beats_equal_mis_id_and_scores(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, ids = small
    decisions = _decisions(
        ("exact", "reject", "pupil", ids["exact"]), ("likely", "reject", "pupil", ids["likely"])
    )
    result = run_matching(users, extract, decisions)
    assert _category(result, "exact")[1] != ids["exact"]
    assert _category(result, "likely")[1] != ids["likely"]
    assert _category(result, "likely")[0] != "likely"


def test_not_in_mis_is_never_auto_linked(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, _ = small
    decisions = _decisions(("EXACT", "not_in_mis", None, None), ("likely", "not_in_mis", None, None))
    result = run_matching(users, extract, decisions, auto_link_likely=True)
    assert _category(result, "exact") == ("not_in_mis", None)
    assert _category(result, "likely") == ("not_in_mis", None)
    assert result.counts["not_in_mis"] == 2


def test_has_no_account_is_never_suggested(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, ids = small
    decisions = _decisions(("", "has_no_account", "pupil", ids["likely"]))
    result = run_matching(users, extract, decisions)
    assert _category(result, "likely")[1] != ids["likely"]
    no_account = result.links[result.links["category"] == "mis_no_account"]
    assert no_account["mis_id"].tolist() == [ids["likely"]]
    assert ids["likely"] not in result.links.loc[result.links["username"].notna(), "mis_id"].dropna().tolist()


def test_admin_link_wins_over_scores_and_clear_undoes(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, ids = small
    link = ("possible", "link", "pupil", ids["spare"])
    result = run_matching(users, extract, _decisions(link))
    assert _category(result, "possible") == ("linked", ids["spare"])
    assert result.links.loc[result.links["username"] == "possible", "source"].item() == "admin"
    cleared = run_matching(users, extract, _decisions(link, ("possible", "clear", None, None)))
    assert _category(cleared, "possible")[0] == "possible"
    stolen = _decisions(("exact", "link", "pupil", ids["spare"]), ("likely", "link", "pupil", ids["spare"]))
    state = effective(stolen)
    assert state.links == {"likely": ("pupil", ids["spare"])}


def test_auto_link_likely_is_off_by_default(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, ids = small
    assert _category(run_matching(users, extract), "likely")[0] == "likely"
    auto = run_matching(users, extract, auto_link_likely=True)
    assert _category(auto, "likely") == ("linked", ids["likely"])
    assert auto.links.loc[auto.links["username"] == "likely", "source"].item() == "likely"


def test_decision_checks_name_fields_not_values() -> None:
    with pytest.raises(DecisionError, match="needs person_kind and mis_id"):
        check_decision("link", "someone", None, None)
    with pytest.raises(DecisionError, match="unknown decision"):
        check_decision("merge", "someone", None, None)
    with pytest.raises(DecisionError, match="go together"):
        check_decision("reject", "someone", "P1", None)
    check_decision("has_no_account", None, "P1", "pupil")


# --------------------------------------------------------------------------------------------------
# Conflicts, names, parents


def _frame(rows: list[list[str]]) -> pd.DataFrame:
    columns = ["username", "first_name", "last_name", "role", "email", "mis_id", "upn", "date_of_birth"]
    text = pd.DataFrame(rows, columns=columns).to_csv(index=False)
    return parse_existing_users(text)


def test_one_mis_record_is_likely_for_at_most_one_user(small) -> None:  # type: ignore[no-untyped-def]
    extract, _, _ = small
    pupil = extract.tables["pupils"].iloc[1]
    first, last = str(pupil["preferred_first_name"]), str(pupil["preferred_last_name"])
    dob = pupil["date_of_birth"].date().isoformat()
    users = _frame(
        [
            ["best", first, last, "pupil", "", "", str(pupil["upn"]), dob],
            ["second", first, last, "pupil", "", "", "", dob],
        ]
    )
    result = run_matching(users, extract)
    assert _category(result, "best") == ("likely", pupil["mis_id"])
    assert _category(result, "second")[0] == "possible"
    tie = _frame([["a", first, last, "pupil", "", "", "", dob], ["b", first, last, "pupil", "", "", "", dob]])
    tied = run_matching(tie, extract)
    assert _category(tied, "a") == ("possible", pupil["mis_id"])
    assert _category(tied, "b") == ("possible", pupil["mis_id"])


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Seán Ó Súilleabháin", "sean o suilleabhain"),
        ("O’Brien-Smith", "obrien smith"),
        ("St. John", "st john"),
        ("  ÞÓR  ", "thor"),
        ("Łukasz", "lukasz"),
        ("De La Cruz", "de la cruz"),
        ("İlkay", "ilkay"),
    ],
)
def test_names_fold_but_keep_word_boundaries(raw: str, folded: str) -> None:
    assert normalise_name(raw) == folded


def test_names_match_legal_preferred_and_parts(small) -> None:  # type: ignore[no-untyped-def]
    extract, _, _ = small
    pupils = extract.tables["pupils"]
    differs = pupils[pupils["legal_first_name"] != pupils["preferred_first_name"]].iloc[0]
    hyphen = pupils[pupils["legal_last_name"].str.contains("-", regex=False)].iloc[0]
    users = _frame(
        [
            ["legal", differs["legal_first_name"], differs["legal_last_name"], "pupil", "", "", "",
             differs["date_of_birth"].date().isoformat()],
            ["part", hyphen["preferred_first_name"], hyphen["legal_last_name"].split("-")[0], "pupil",
             "", "", "", hyphen["date_of_birth"].date().isoformat()],
        ]
    )  # fmt: skip
    result = run_matching(users, extract)
    assert _category(result, "legal") == ("likely", differs["mis_id"])
    assert "first_name" in result.links.loc[result.links["username"] == "legal", "agreed_fields"].item()
    assert _category(result, "part") == ("likely", hyphen["mis_id"])
    assert "last_name~" in result.links.loc[result.links["username"] == "part", "agreed_fields"].item()


def test_parents_match_contacts_by_email(small) -> None:  # type: ignore[no-untyped-def]
    extract, _, _ = small
    contacts = extract.tables["contacts"]
    parent = contacts[contacts["email"].notna()].iloc[0]
    users = _frame(
        [["parent", parent["preferred_first_name"], parent["preferred_last_name"], "parent",
          str(parent["email"]).upper(), "", "", ""]]
    )  # fmt: skip
    result = run_matching(users, extract)
    assert _category(result, "parent") == ("likely", parent["mis_id"])
    row = result.links[result.links["username"] == "parent"].iloc[0]
    assert row["person_kind"] == "contact"
    assert {"email", "first_name", "last_name", "role"} <= set(row["agreed_fields"])
    without = run_matching(users, extract, include_parents=False)
    assert _category(without, "parent")[0] == "not_matched"
    assert report_counts(without)["mis_not_matched"] < report_counts(result)["mis_not_matched"]


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="possible must not be above likely"):
        LinkThresholds(likely=0.6, possible=0.8)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        LinkThresholds(likely=1.5)


# --------------------------------------------------------------------------------------------------
# The CSV


def test_csv_headers_bom_dates_and_roles() -> None:
    text = (
        "\ufeffUser Name,FIRST NAME,Last-Name, Role ,Email,MIS_ID,Date of Birth,Department\r\n"
        "a.one,Ann,One,Teaching Staff,a.one@example.org,S1,01/02/1980,Maths\r\n"
        "\r\n"
        'b.two,"Bo, Jr",Two,PUPIL,,,2014-03-04,\r\n'
    )
    users = parse_existing_users(text.encode("utf-8"))
    assert users["username"].tolist() == ["a.one", "b.two"]
    assert users["role"].tolist() == ["teaching_staff", "pupil"]
    assert users["date_of_birth"].dt.date.tolist() == [dt.date(1980, 2, 1), dt.date(2014, 3, 4)]
    assert users["line"].tolist() == [2, 4]
    assert users["upn"].isna().all()


CSV_HEAD = "username,first_name,last_name,role,email"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("username,first_name,last_name,email\nx,A,B,\n", "missing required column(s) role"),
        (f"{CSV_HEAD}\nx,Ann,Bee,student,\n", "line 2, column 'role': not one of"),
        (f"{CSV_HEAD}\nZed,A,B,pupil,\nzed,C,D,pupil,\n", "line 3, column 'username': duplicate of line 2"),
        (f"{CSV_HEAD},dob\nx,A,B,pupil,,31/31/2010\n", "line 2, column 'date_of_birth'"),
        (f"{CSV_HEAD}\nx,A,B,pupil\n", "line 2: 4 field(s), the header has 5"),
        (f"{CSV_HEAD}\n,A,B,pupil,\n", "line 2, column 'username': empty"),
        (f"{CSV_HEAD}\nx,A,B,pupil,not-an-address\n", "column 'email'"),
        (f"{CSV_HEAD},Email\nx,A,B,pupil,,\n", "column 'email' appears twice"),
        ("", "the file is empty"),
    ],
)
def test_csv_errors_name_file_line_and_column_never_values(text: str, expected: str) -> None:
    with pytest.raises(ExistingUsersError) as error:
        parse_existing_users(text.encode(), source="staff-export.csv")
    message = str(error.value)
    assert message.startswith("staff-export.csv: ")
    assert expected in message
    for value in ("Ann", "Bee", "zed", "Zed", "31/31/2010", "not-an-address", "student"):
        assert value not in message.replace("staff-export", "")


def test_csv_that_is_not_utf8_names_the_line() -> None:
    data = "username,first_name,last_name,role,email\nx,Zoë,B,pupil,\n".encode("cp1252")
    with pytest.raises(ExistingUsersError, match=r"line 2: not UTF-8 text \(save it as 'CSV UTF-8'"):
        parse_existing_users(data, source="export.csv")


# --------------------------------------------------------------------------------------------------
# The scoring examples documented in docs/link-mode.md


def _tiny_extract(pupils: list[dict[str, str]]) -> Extract:
    from mis_sync.model import ENTITIES

    tables = {name: entity.empty_frame() for name, entity in ENTITIES.items()}
    base = {"enrolment_status": "on_roll", "legal_first_name": "Amir", "legal_last_name": "Okafor-Byrne"}
    tables["pupils"] = ENTITIES["pupils"].coerce(pd.DataFrame([base | p for p in pupils]))
    return Extract(tables=tables, snapshot_at=pd.Timestamp("2026-11-01T06:00Z"), source="test")


@pytest.mark.parametrize(
    ("user", "score", "category", "agreed"),
    [
        ({"upn": "A123456789012"}, 1.0, "likely", ["upn", "last_name", "first_name", "role"]),
        ({"date_of_birth": "2014-05-06"}, 1.0, "likely", ["dob", "last_name", "first_name", "role"]),
        ({"first_name": "Amri", "date_of_birth": "2014-05-06"}, 1.0, "likely", ["dob", "first_name~"]),
        ({"email": "AOKAFOR@school.example"}, 1.0, "likely", ["email", "last_name", "first_name", "role"]),
        ({}, 0.85, "possible", ["last_name", "first_name", "role"]),
        ({"last_name": "Okafor-Bryne"}, (0.8, 0.85), "possible", ["last_name~", "first_name", "role"]),
        ({"last_name": "Okafor"}, 0.805, "possible", ["last_name~", "first_name", "role"]),
        ({"first_name": "Amr"}, (0.8, 0.85), "possible", ["last_name", "first_name~", "role"]),
        (
            {"first_name": "Zainab", "date_of_birth": "2014-05-06"},
            0.7,
            "possible",
            ["dob", "last_name", "role"],
        ),
        ({"date_of_birth": "2014-05-07"}, None, "not_matched", []),
    ],
)
def test_documented_score_examples(user: dict[str, str], score: object, category: str, agreed) -> None:  # type: ignore[no-untyped-def]
    extract = _tiny_extract(
        [
            {
                "mis_id": "P1",
                "upn": "A123456789012",
                "date_of_birth": "2014-05-06",
                "email": "aokafor@school.example",
            }
        ]
    )
    row = {"username": "u1", "first_name": "Amir", "last_name": "Okafor-Byrne", "role": "pupil", "email": ""}
    merged = row | user
    columns = ["username", "first_name", "last_name", "role", "email", "mis_id", "upn", "date_of_birth"]
    users = _frame([[merged.get(c, "") for c in columns]])
    result = run_matching(users, extract)
    got = result.links.iloc[0]
    assert got["category"] == category
    if score is None:
        assert pd.isna(got["score"])
    else:
        low, high = score if isinstance(score, tuple) else (score, score)
        assert low - 1e-9 <= got["score"] <= high + 1e-9
        assert set(agreed) <= set(got["agreed_fields"])


def test_namesake_with_other_date_of_birth_scores_065() -> None:
    extract = _tiny_extract([{"mis_id": "P1", "date_of_birth": "2014-05-06"}])
    users = _frame([["u1", "Amir", "Okafor-Byrne", "pupil", "", "", "", "2014-05-07"]])
    from mis_sync.linking.matching import score_pairs
    from mis_sync.linking.people import prepare_mis, prepare_users
    from mis_sync.linking.settings import LinkWeights

    scored = score_pairs(
        prepare_users(users), prepare_mis(extract, False), *[pd.Series([0]).to_numpy()] * 2, LinkWeights()
    )
    assert scored["score"].item() == pytest.approx(0.65)
    assert scored["mismatch"].item() == 2  # MISMATCH_FLAGS["dob"]


def test_empty_inputs_and_frames_from_other_sources(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, _ = small
    nobody = parse_existing_users(f"{CSV_HEAD}\n")
    result = run_matching(nobody, extract)
    assert sum(result.counts[c] for c in ("linked", "likely", "possible", "not_matched")) == 0
    assert result.counts["mis_not_matched"] > 0
    empty = _tiny_extract([])
    assert run_matching(users, empty).counts["not_matched"] == len(users)
    again = existing_users_frame(users.drop(columns=["line"]), source="graph export")
    pd.testing.assert_frame_equal(again.drop(columns=["line"]), users.drop(columns=["line"]))


def test_stale_decisions_are_counted_not_applied(small) -> None:  # type: ignore[no-untyped-def]
    extract, users, ids = small
    decisions = _decisions(("gone", "link", "pupil", ids["spare"]), ("exact", "link", "pupil", "P-GONE"))
    result = run_matching(users, extract, decisions)
    assert result.stale_decisions == 2
    assert _category(result, "exact") == ("linked", ids["exact"])


def test_run_summary_counts_linked_and_not_linked_accounts() -> None:
    from mis_sync.linking import render_run_summary, run_summary

    links = pd.DataFrame(
        {
            "category": ["linked", "linked", "likely", "not_matched", "not_in_mis", "mis_not_matched"],
            "person_kind": ["pupil", "staff", "pupil", "pupil", None, "contact"],
        }
    )
    summary = run_summary(links)
    assert (summary["accounts_linked"], summary["accounts_not_linked"]) == (2, 3)
    assert summary["mis_records_not_linked"] == 1
    assert summary["categories"]["linked"] == {
        "pupils": 1,
        "staff": 1,
        "parents": 0,
        "unknown": 0,
        "total": 2,
    }
    lines = render_run_summary(
        dict(summary, categories={k: dict(sorted(v.items())) for k, v in summary["categories"].items()})
    )
    assert "2 of 5 existing accounts linked, 3 not linked" in lines[0]
    assert lines[1].split()[-5:] == ["pupils", "staff", "parents", "unknown", "total"]
    assert len(lines) == 2 + 7
