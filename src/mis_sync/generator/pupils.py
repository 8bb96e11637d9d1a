"""Pupils: the roll (year groups, statuses, dates), their names with planted edge cases, UPNs, emails.

Why statuses and dates are built together: leavers, joiners and pre-admissions are defined by their
dates relative to the snapshot (``sizing.md`` 5.1), and DOBs must fit the year group (uk-data-rules
4.3) for all but a few pupils who are legitimately one year out of cohort.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mis_sync.academic_year import academic_year_starts_np
from mis_sync.generator.context import DAY, SchoolContext, day
from mis_sync.generator.names import (
    EDGE_FIRST_NAMES,
    EDGE_FULL_NAMES,
    LONG_FIRST_NAMES,
    LONG_SURNAMES,
    NICKNAMES,
    NamePool,
    slugs,
)
from mis_sync.generator.profiles import NC_INDEX
from mis_sync.identifiers import make_upn

ON_ROLL, PRE_ADMISSION, LEAVER = "on_roll", "pre_admission", "leaver"
PUPIL_DOMAIN = "pupils.example.sch.uk"


def build_roll(ctx: SchoolContext) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return one row per pupil (on roll, leavers, pre-admissions) and the forms per year group.

    Rows come sorted by admission date, so the ascending MIS ids given later follow admission order
    the way a real MIS's do.
    """
    rng, today, y0 = ctx.rng, ctx.today, ctx.year_start
    cohorts = ctx.profile.cohorts
    forms = {c.year: int(rng.choice(c.forms)) for c in cohorts}
    sizes = {c.year: int(rng.integers(c.pupils[0], c.pupils[1] + 1)) for c in cohorts}
    on_roll = sum(sizes.values())
    year_codes = np.array([c.year for c in cohorts], dtype=object)
    entry_year = cohorts[0].year
    entry_nc = NC_INDEX[entry_year]

    n_leave = max(3, round(on_roll * rng.uniform(0.01, 0.02)))
    n_pre = max(3, round(on_roll * 0.012))
    n_next = round(n_pre * 0.4)
    weights = np.array([sizes[c.year] for c in cohorts], dtype=float)
    later = weights * (np.arange(len(cohorts)) > 0)
    years = np.concatenate(
        [
            np.repeat(year_codes, [sizes[c.year] for c in cohorts]),
            rng.choice(year_codes, n_leave, p=later / later.sum()),
            rng.choice(year_codes, n_pre - n_next, p=weights / weights.sum()),
            np.full(n_next, entry_year, dtype=object),
        ]
    )
    status = np.repeat(
        np.array([ON_ROLL, LEAVER, PRE_ADMISSION, PRE_ADMISSION], dtype=object),
        [on_roll, n_leave, n_pre - n_next, n_next],
    )
    n = len(years)
    nc = np.array([NC_INDEX[y] for y in years], dtype=np.int64)
    next_intake = np.zeros(n, dtype=bool)
    next_intake[n - n_next :] = True

    # Dates of birth: the cohort's range; 0.5 % a year older (retained or deferred); next September's
    # intake are a year younger than this year's entry cohort.
    dob_nc = nc.copy()
    older = (rng.random(n) < 0.005) & (status == ON_ROLL)
    dob_nc[older] += 1
    dob_nc[next_intake] -= 1
    dob = ctx.dob_for_nc(dob_nc)

    # Admission: the school's entry year (primaries: nursery or Reception; secondaries: Year 7, some
    # sixth formers from outside at Year 12); 8 % in-year transfers since then.
    pupil_entry = np.full(n, entry_nc)
    if ctx.profile.phase == "primary":
        pupil_entry[(nc >= 0) & (rng.random(n) < 0.5)] = 0
    else:
        pupil_entry[(nc >= 12) & (rng.random(n) < 0.25)] = 12
    pupil_entry = np.minimum(pupil_entry, nc)
    # Leavers joined in an earlier academic year, so they have a past to leave from.
    pupil_entry[status == LEAVER] = np.minimum(pupil_entry, nc - 1)[status == LEAVER]
    first_day = np.array([day(int(y), 9, 1) for y in range(y0 - 20, y0 + 2)], dtype="datetime64[D]")
    admission = first_day[y0 - (nc - pupil_entry) - (y0 - 20)]
    transfer = (rng.random(n) < 0.08) & (status != PRE_ADMISSION)
    span = (today - 31 * DAY - admission) // DAY
    transfer &= span > 1
    admission[transfer] = ctx.random_days(admission[transfer], span[transfer])

    joiners = ctx.pick(np.flatnonzero(status == ON_ROLL), max(3, round(on_roll * 0.01)))
    admission[joiners] = today - rng.integers(0, 31, len(joiners)) * DAY
    pre = np.flatnonzero((status == PRE_ADMISSION) & ~next_intake)
    admission[pre] = ctx.random_days(today + 3 * DAY, np.full(len(pre), 43))
    admission[next_intake] = day(y0 + 1, 9, 1)

    leaving = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    leavers = np.flatnonzero(status == LEAVER)
    earliest = np.maximum(admission[leavers] + DAY, today - 150 * DAY)
    leaving[leavers] = ctx.random_days(earliest, (today - earliest) // DAY)
    stable = np.flatnonzero((status == ON_ROLL) & (admission < today - 60 * DAY))
    going = ctx.pick(stable, max(1, on_roll // 500))
    leaving[going] = ctx.random_days(today + 5 * DAY, np.full(len(going), 56))

    is_joiner = np.zeros(n, dtype=bool)
    is_joiner[joiners] = True
    roll = pd.DataFrame(
        {
            "year": years,
            "nc": nc,
            "status": status,
            "dob": dob,
            "gender": np.where(rng.random(n) < 0.49, "F", "M").astype(object),
            "admission": admission,
            "leaving": leaving,
            "joiner": is_joiner,
        }
    )
    roll["admission_year"] = academic_year_starts_np(roll["admission"].to_numpy())
    roll = roll.sort_values("admission", kind="stable").reset_index(drop=True)
    return roll, forms


def name_pupils(ctx: SchoolContext, roll: pd.DataFrame, family_surname: np.ndarray, pool: NamePool) -> None:
    """Add legal and preferred names to ``roll`` in place, planting the name edge cases.

    Plants are counted from the roll so a 1,000-pupil secondary has several of each: diacritics and
    letters NFKD leaves alone, long names (> 20 characters for ``{first}.{last}``), preferred names
    different from legal ones, and identical names two and three times in one year group.
    """
    rng = ctx.rng
    gender = roll["gender"].to_numpy().copy()
    first = pool.child_first_names(gender)
    last = family_surname.copy()
    on_roll = np.flatnonzero(roll["status"].to_numpy() == ON_ROLL)
    size = len(on_roll)
    free = np.ones(len(roll), dtype=bool)

    def take(k: int, among: np.ndarray | None = None) -> np.ndarray:
        pool_idx = on_roll if among is None else among
        chosen = ctx.pick(pool_idx[free[pool_idx]], k)
        free[chosen] = False
        return chosen

    for name, sex in EDGE_FIRST_NAMES:
        chosen = take(max(1, size // 450))
        first[chosen], gender[chosen] = name, sex
    for given, family, sex in EDGE_FULL_NAMES:
        chosen = take(max(1, size // 450))
        first[chosen], last[chosen], gender[chosen] = given, family, sex
    for i in take(max(2, size // 250)):
        given, sex = LONG_FIRST_NAMES[rng.integers(len(LONG_FIRST_NAMES))]
        first[i], gender[i], last[i] = given, sex, LONG_SURNAMES[rng.integers(len(LONG_SURNAMES))]

    pref_first, pref_last = first.copy(), last.copy()
    differs = take(max(3, round(size * 0.03)))
    kinds = rng.random(len(differs))
    same_gender = pool.child_first_names(gender[differs])
    opposite = pool.child_first_names(np.where(gender[differs] == "F", "M", "F"))
    other_last = pool.surnames(len(differs))
    for j, i in enumerate(differs):
        if kinds[j] < 0.5 and first[i] in NICKNAMES:
            pref_first[i] = NICKNAMES[first[i]]
        elif kinds[j] < 0.75:
            pref_first[i] = same_gender[j]  # known by a middle name
        elif kinds[j] < 0.9:
            pref_first[i] = opposite[j]  # e.g. a trans pupil: the legal forename must never be shown
        else:
            pref_last[i] = other_last[j]  # e.g. a step-family surname
        if pref_first[i] == first[i] and pref_last[i] == last[i]:
            pref_first[i] = next(n for n in (same_gender[j], opposite[j], "Sam") if n != first[i])

    # Namesakes in one year group: pairs, then triples (username collisions, counters 2 and 3).
    years = roll["year"].to_numpy()
    for copies in [1] * max(1, size // 250) + [2] * max(1, size // 600):
        year = years[on_roll[rng.integers(size)]]
        same_year = on_roll[years[on_roll] == year]
        donor = take(1, same_year)
        targets = take(copies, same_year)
        if len(donor) == 0:
            continue
        d = donor[0]
        for arr in (first, last, pref_first, pref_last, gender):
            arr[targets] = arr[d]

    roll["legal_first_name"], roll["legal_last_name"] = first, last
    roll["preferred_first_name"], roll["preferred_last_name"] = pref_first, pref_last
    roll["gender"] = gender


def assign_upns(ctx: SchoolContext, roll: pd.DataFrame) -> None:
    """Add ``upn`` and ``former_upn``: permanent UPNs allocated by this establishment in the pupil's
    admission year, temporary UPNs for some recent joiners (and as ``former_upn`` where one was
    replaced), and no UPN for about half the pre-admissions and a few brand-new joiners.
    """
    rng, n = ctx.rng, len(roll)
    status = roll["status"].to_numpy()
    joiners = np.flatnonzero(roll["joiner"].to_numpy())
    on_roll = np.flatnonzero(status == ON_ROLL)
    size = len(on_roll)

    no_upn = np.zeros(n, dtype=bool)
    no_upn[status == PRE_ADMISSION] = rng.random(int((status == PRE_ADMISSION).sum())) < 0.5
    new_joiners = ctx.pick(joiners, max(1, size // 700))
    no_upn[new_joiners] = True
    temporary = np.zeros(n, dtype=bool)
    temporary[ctx.pick(np.setdiff1d(joiners, new_joiners), max(2, round(len(joiners) * 0.3)))] = True
    replaced = np.zeros(n, dtype=bool)
    replaced[ctx.pick(on_roll[~roll["joiner"].to_numpy()[on_roll]], max(2, size // 400))] = True

    yy = (roll["admission_year"].to_numpy() % 100).astype(np.int64)
    permanent = ~no_upn & ~temporary
    perm_serial = pd.Series(yy[permanent]).groupby(yy[permanent]).cumcount().to_numpy() + 1
    temp_rows = temporary | replaced
    temp_serial = pd.Series(yy[temp_rows]).groupby(yy[temp_rows]).cumcount().to_numpy() + 1
    la, estab = ctx.la, ctx.estab

    upn = np.full(n, None, dtype=object)
    upn[permanent] = [
        make_upn(la, estab, int(y), int(s)) for y, s in zip(yy[permanent], perm_serial, strict=True)
    ]
    temp_codes = np.array(
        [
            make_upn(la, estab, int(y), int(s), temporary=True)
            for y, s in zip(yy[temp_rows], temp_serial, strict=True)
        ],
        dtype=object,
    )
    former = np.full(n, None, dtype=object)
    temp_index = np.flatnonzero(temp_rows)
    upn[temp_index[temporary[temp_rows]]] = temp_codes[temporary[temp_rows]]
    former[temp_index[replaced[temp_rows]]] = temp_codes[replaced[temp_rows]]
    roll["upn"], roll["former_upn"] = upn, former


def pupil_emails(roll: pd.DataFrame) -> np.ndarray:
    """``{intake yy}{initial}{surname}@pupils.example.sch.uk`` from preferred names; none before
    admission. Duplicates get ``2``, ``3``... as a school's account script would add.
    """
    initial = pd.Series(slugs(roll["preferred_first_name"].to_numpy())).str[:1]
    local = pd.Series(roll["admission_year"].to_numpy() % 100).astype(str).str.zfill(2)
    local = local + initial + pd.Series(slugs(roll["preferred_last_name"].to_numpy()))
    counter = local.groupby(local).cumcount()
    local = local.where(counter == 0, local + (counter + 1).astype(str))
    emails = (local + "@" + PUPIL_DOMAIN).to_numpy(dtype=object)
    emails[roll["status"].to_numpy() == PRE_ADMISSION] = None
    return emails
