"""Name pools and name edge cases for the synthetic generator.

Why pools and not one Faker call per person: a trust has ~140k people, and Faker's weighted
``last_name()`` costs ~40 us a call. We take Faker's en_GB name data, sample it in bulk through the
seeded Faker instance (``random_elements``), and mix in curated lists: modern children's names (Faker's
en_GB first names are mostly adults' names), names common in UK schools but missing from Faker, and
the edge cases ``sizing.md`` section 5.3 requires (diacritics, letters NFKD leaves alone, apostrophes,
hyphens, long names).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from anyascii import anyascii
from faker import Faker
from faker.providers.person.en_GB import Provider as EnGbPersonProvider

CHILD_FIRST_F: tuple[str, ...] = (
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Ivy",
    "Lily",
    "Isabella",
    "Sophia",
    "Grace",
    "Freya",
    "Florence",
    "Willow",
    "Evie",
    "Poppy",
    "Ella",
    "Emily",
    "Sophie",
    "Ruby",
    "Chloe",
    "Daisy",
    "Phoebe",
    "Millie",
    "Maya",
    "Aisha",
    "Fatima",
    "Zara",
    "Hannah",
    "Layla",
    "Maryam",
    "Esme",
    "Ellie",
    "Harper",
    "Matilda",
    "Rosie",
    "Holly",
    "Lucy",
    "Erin",
    "Eva",
    "Amara",
    "Hafsa",
    "Niamh",
    "Aoife",
    "Seren",
    "Cerys",
    "Nia",
    "Priya",
    "Anaya",
    "Zuzanna",
    "Maja",
    "Alice",
    "Jessica",
)
CHILD_FIRST_M: tuple[str, ...] = (
    "Oliver",
    "George",
    "Noah",
    "Arthur",
    "Muhammad",
    "Leo",
    "Oscar",
    "Harry",
    "Archie",
    "Jack",
    "Henry",
    "Charlie",
    "Freddie",
    "Theodore",
    "Thomas",
    "Alfie",
    "Jacob",
    "Joshua",
    "William",
    "James",
    "Ethan",
    "Isaac",
    "Samuel",
    "Max",
    "Lucas",
    "Logan",
    "Mason",
    "Finley",
    "Reuben",
    "Harrison",
    "Adam",
    "Ibrahim",
    "Yusuf",
    "Zain",
    "Ali",
    "Dylan",
    "Riley",
    "Toby",
    "Ollie",
    "Sebastian",
    "Rhys",
    "Dafydd",
    "Callum",
    "Cian",
    "Arjun",
    "Kacper",
    "Jakub",
    "Kai",
    "Elijah",
    "Luca",
)
EXTRA_SURNAMES: tuple[str, ...] = (
    "Khan",
    "Patel",
    "Begum",
    "Ali",
    "Hussain",
    "Ahmed",
    "Rahman",
    "Islam",
    "Singh",
    "Kaur",
    "Chen",
    "Wang",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Osei",
    "Mohamed",
    "Ibrahim",
    "Nguyen",
    "Kaya",
    "Yılmaz",
    "Popescu",
    "Silva",
    "Santos",
    "Murphy",
    "Doherty",
    "Jones",
    "Evans",
    "Llewellyn",
    "MacDonald",
    "McLeod",
    "Ní Bhriain",
    "Müller",
    "Wójcik",
    "García",
)
"""Surnames common in UK schools that Faker's en_GB list lacks; a few carry diacritics on purpose."""

# (first name, gender) planted on pupils; each must appear in a mid-sized school (sizing.md 5.3).
EDGE_FIRST_NAMES: tuple[tuple[str, str], ...] = (
    ("Zoë", "F"),
    ("Siân", "F"),
    ("Llŷr", "M"),
    ("İlkay", "M"),
    ("Łukasz", "M"),
    ("Þór", "M"),
    ("Æsa", "F"),
    ("Œdipe", "M"),
    ("Chloé", "F"),
    ("Søren", "M"),
    ("Eilís", "F"),
    ("Siôn", "M"),
)
EDGE_SURNAMES: tuple[str, ...] = (
    "Nguyễn",
    "Ødegaard",
    "Đorđević",
    "Straße",
    "De La Cruz",
    "St. John",
    "Ní Bhriain",
    "Yılmaz",
)
EDGE_FULL_NAMES: tuple[tuple[str, str, str], ...] = (("Seán", "Ó Súilleabháin", "M"),)
APOSTROPHE_SURNAMES_ASCII: tuple[str, ...] = ("O'Brien", "O'Neill", "D'Souza", "O'Connor", "D'Arcy")
APOSTROPHE_SURNAMES_TYPOGRAPHIC: tuple[str, ...] = ("D’Souza", "O’Reilly", "O’Sullivan", "O’Hara")
HYPHENATED_SURNAMES: tuple[str, ...] = ("Smith-Jones", "Taylor-Khan", "Evans-Okafor", "Hughes-Patel")
LONG_FIRST_NAMES: tuple[tuple[str, str], ...] = (
    ("Maximilian", "M"),
    ("Bartholomew", "M"),
    ("Constantine", "M"),
    ("Christopher", "M"),
    ("Alexandrina", "F"),
    ("Evangeline", "F"),
    ("Wilhelmina", "F"),
    ("Anastasia", "F"),
)
LONG_SURNAMES: tuple[str, ...] = (
    "Llewelyn-Bowen",
    "Featherstonehaugh",
    "Fotheringham-Smythe",
    "Montgomery-Cuthbertson",
    "Hetherington-Winterbottom",
    "Wolstenholme-Blackburn",
    "Abernethy-Macdonald",
)
NICKNAMES: dict[str, str] = {
    "Alexander": "Alex",
    "Elizabeth": "Beth",
    "Katherine": "Kate",
    "Samuel": "Sam",
    "Joshua": "Josh",
    "Matthew": "Matt",
    "Christopher": "Chris",
    "Jessica": "Jess",
    "Rebecca": "Becky",
    "William": "Will",
    "Benjamin": "Ben",
    "Thomas": "Tom",
    "Daniel": "Dan",
    "Oliver": "Ollie",
    "Isabella": "Bella",
    "Amelia": "Millie",
    "Theodore": "Teddy",
    "Frederick": "Freddie",
    "Victoria": "Tori",
    "Jacqueline": "Jackie",
    "Nicholas": "Nick",
    "Jonathan": "Jon",
    "Samantha": "Sam",
    "Margaret": "Maggie",
}
"""Legal -> preferred forename for the common "preferred differs from legal" case."""


def _weights(names: Sequence[str]) -> np.ndarray:
    """Zipf-like weights so the first names in a curated list are the most common, as in real data."""
    w = 1.0 / np.arange(1, len(names) + 1) ** 0.6
    return w / w.sum()


class NamePool:
    """Bulk name sampling from Faker's en_GB data plus the curated lists, all through seeded RNGs."""

    def __init__(self, fake: Faker, rng: np.random.Generator) -> None:
        self.fake = fake
        self.rng = rng

    def _faker_elements(self, elements: Sequence[str] | dict[str, float], n: int) -> np.ndarray:
        if n == 0:
            return np.array([], dtype=object)
        drawn = self.fake.random_elements(elements, length=n, use_weighting=True)  # type: ignore[arg-type]
        return np.array(list(drawn), dtype=object)

    def surnames(self, n: int, extra_share: float = 0.12) -> np.ndarray:
        """Faker en_GB surnames (weighted), with ``extra_share`` from the curated list."""
        out = self._faker_elements(EnGbPersonProvider.last_names, n)
        extra = self.rng.random(n) < extra_share
        out[extra] = self.rng.choice(np.array(EXTRA_SURNAMES, dtype=object), int(extra.sum()))
        return out

    def child_first_names(self, genders: np.ndarray) -> np.ndarray:
        """Modern children's names (70 %) and Faker's en_GB names (30 %), matching ``genders``."""
        return self._first_names(genders, child_share=0.7)

    def adult_first_names(self, genders: np.ndarray) -> np.ndarray:
        """Faker's en_GB first names (90 %), some children's-list names for younger adults."""
        return self._first_names(genders, child_share=0.1)

    def _first_names(self, genders: np.ndarray, child_share: float) -> np.ndarray:
        n = len(genders)
        out = np.empty(n, dtype=object)
        child = self.rng.random(n) < child_share
        for gender, curated, faker_names in (
            ("F", CHILD_FIRST_F, EnGbPersonProvider.first_names_female),
            ("M", CHILD_FIRST_M, EnGbPersonProvider.first_names_male),
        ):
            mine = genders == gender
            from_list = mine & child
            out[from_list] = self.rng.choice(
                np.array(curated, dtype=object), int(from_list.sum()), p=_weights(curated)
            )
            from_faker = mine & ~child
            out[from_faker] = self._faker_elements(faker_names, int(from_faker.sum()))
        return out


_NON_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=65_536)
def ascii_slug(name: str) -> str:
    """Lower-case ASCII letters and digits only: ``D’Souza`` -> ``dsouza``, ``Þór`` -> ``thor``.

    Used for synthetic email local parts only; the real username rules live in ``mis_sync.usernames``.
    """
    return _NON_ALNUM.sub("", anyascii(name).lower())


def slugs(values: np.ndarray) -> np.ndarray:
    """``ascii_slug`` over an array, computed once per distinct value."""
    unique, inverse = np.unique(values.astype(str), return_inverse=True)
    return np.array([ascii_slug(v) for v in unique], dtype=object)[inverse]
