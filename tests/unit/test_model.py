"""The canonical model: coercion to exact columns and dtypes, errors without values, Extract invariants."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mis_sync.model import (
    ENTITIES,
    PUPILS,
    RELATIONSHIPS,
    STAFF,
    CoercionError,
    Extract,
)

SECRET = "Zoë-secret"


def pupils(**columns: list) -> pd.DataFrame:
    n = len(next(iter(columns.values()))) if columns else 2
    base = {"mis_id": [f"P{i}" for i in range(1, n + 1)], "enrolment_status": ["on_roll"] * n}
    return pd.DataFrame({**base, **columns})


def relationships(**columns: list) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"contact_id": [f"C{i}" for i in range(n)], "pupil_id": [f"P{i}" for i in range(n)]}
    return pd.DataFrame({**base, **columns})


def test_entities_are_the_six_canonical_tables() -> None:
    assert list(ENTITIES) == ["pupils", "staff", "contacts", "groups", "memberships", "relationships"]
    assert PUPILS.required_columns == ["mis_id", "enrolment_status"]
    assert RELATIONSHIPS.key == ("contact_id", "pupil_id")
    assert "date_of_birth" in PUPILS.personal_columns
    assert "mis_id" not in PUPILS.personal_columns


def test_coerce_adds_missing_columns_and_drops_unknown_ones() -> None:
    frame = pupils(legal_first_name=["Zoë", "Alex"], shoe_size=["5", "6"])
    out = PUPILS.coerce(frame)
    assert list(out.columns) == PUPILS.column_names
    assert "shoe_size" not in out.columns
    assert out["email"].isna().all()
    assert out["date_of_birth"].isna().all()
    assert out["legal_first_name"].tolist() == ["Zoë", "Alex"]
    assert len(out) == 2


def test_coerce_column_order_follows_the_entity() -> None:
    frame = pd.DataFrame({"role": ["pupil"], "person_id": ["P1"], "group_id": ["G1"]})
    out = ENTITIES["memberships"].coerce(frame)
    assert list(out.columns) == ["group_id", "person_id", "role", "unreadable_fields"]
    assert out.iloc[0].tolist()[:3] == ["G1", "P1", "pupil"]


@pytest.mark.parametrize("name", list(ENTITIES))
def test_canonical_dtypes(name: str) -> None:
    entity = ENTITIES[name]
    out = entity.coerce(pd.DataFrame({"unrelated": ["x"]}))
    expected = {"string": "string", "date": "datetime64[s]", "boolean": "boolean", "int": "Int32"}
    for column in entity.columns:
        assert str(out[column.name].dtype) == expected[column.type], column.name
    assert out.dtypes.equals(entity.empty_frame().dtypes)


def test_empty_frame_matches_arrow_schema() -> None:
    for entity in ENTITIES.values():
        assert entity.empty_frame().empty
        assert list(entity.empty_frame().columns) == entity.column_names
        assert entity.arrow_schema().names == entity.column_names


def test_strings_are_stripped_and_blank_is_null() -> None:
    out = PUPILS.coerce(pupils(gender=["  F ", "   "], upn=["", "A1"]))
    assert out["gender"].tolist()[0] == "F"
    assert out["gender"].isna().tolist() == [False, True]
    assert out["upn"].isna().tolist() == [True, False]


def test_parses_iso_dates() -> None:
    out = PUPILS.coerce(
        pupils(date_of_birth=["2013-10-02", "2014-01-15T00:00:00", ""], mis_id=["P1", "P2", "P3"])
    )
    assert str(out["date_of_birth"].dtype) == "datetime64[s]"
    assert out["date_of_birth"].tolist()[:2] == [pd.Timestamp("2013-10-02"), pd.Timestamp("2014-01-15")]
    assert pd.isna(out["date_of_birth"].iloc[2])


def test_dates_already_datetime_pass_through() -> None:
    frame = pupils(date_of_birth=pd.to_datetime(["2013-10-02", "2014-01-15"]))
    out = PUPILS.coerce(frame)
    assert out["date_of_birth"].tolist() == [pd.Timestamp("2013-10-02"), pd.Timestamp("2014-01-15")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("yes", True),
        ("Yes", True),
        ("1", True),
        ("y", True),
        ("t", True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("No", False),
        ("0", False),
        ("n", False),
        ("f", False),
    ],
)
def test_parses_booleans(raw: str, expected: bool) -> None:
    out = RELATIONSHIPS.coerce(relationships(parental_responsibility=[raw]))
    assert str(out["parental_responsibility"].dtype) == "boolean"
    assert out["parental_responsibility"].tolist() == [expected]


def test_blank_boolean_is_null() -> None:
    out = RELATIONSHIPS.coerce(relationships(parental_responsibility=["", " true "]))
    assert out["parental_responsibility"].isna().tolist() == [True, False]
    assert bool(out["parental_responsibility"].iloc[1]) is True


def test_booleans_already_bool_pass_through() -> None:
    frame = pd.DataFrame(
        {"mis_id": ["S1", "S2"], "is_teaching": [True, False], "enrolment_status": ["on_roll"] * 2}
    )
    out = STAFF.coerce(frame)
    assert out["is_teaching"].tolist() == [True, False]
    assert str(out["is_teaching"].dtype) == "boolean"


def test_parses_ints() -> None:
    out = RELATIONSHIPS.coerce(relationships(priority=["1", " 2 ", "007", "3.0", "", "-4"]))
    assert str(out["priority"].dtype) == "Int32"
    assert out["priority"].tolist()[:4] == [1, 2, 7, 3]
    assert pd.isna(out["priority"].iloc[4])
    assert out["priority"].iloc[5] == -4


def test_int32_limits() -> None:
    out = RELATIONSHIPS.coerce(relationships(priority=["2147483647", "-2147483648"]))
    assert out["priority"].tolist() == [2_147_483_647, -2_147_483_648]


@pytest.mark.parametrize("raw", ["2147483648", "9999999999", "-9999999999", "1e300", "inf"])
def test_ints_outside_int32_are_errors_not_wrapped(raw: str) -> None:
    with pytest.raises(CoercionError) as info:
        RELATIONSHIPS.coerce(relationships(priority=["1", raw]), strict=True)
    assert info.value.rows == [1]


def test_index_is_reset() -> None:
    frame = pupils(mis_id=["P1", "P2"]).set_axis([10, 20])
    assert PUPILS.coerce(frame).index.tolist() == [0, 1]


def test_bad_date_error_names_entity_column_and_rows_not_the_value() -> None:
    frame = pupils(date_of_birth=["2013-10-02", SECRET, "2013-02-30"], mis_id=["P1", "P2", "P3"])
    with pytest.raises(CoercionError) as info:
        PUPILS.coerce(frame, strict=True)
    exc = info.value
    assert str(exc) == (
        "pupils.date_of_birth: 2 value(s) are not valid dates (data rows 1, 2, counting from 0)"
    )
    assert (exc.entity, exc.column, exc.rows, exc.count) == ("pupils", "date_of_birth", [1, 2], 2)
    assert SECRET not in str(exc)
    assert "Zoë" not in repr(exc)
    assert isinstance(exc, ValueError)


def test_bad_boolean_error() -> None:
    with pytest.raises(CoercionError) as info:
        RELATIONSHIPS.coerce(relationships(parental_responsibility=["true", SECRET, "maybe"]), strict=True)
    assert str(info.value) == (
        "relationships.parental_responsibility: 2 value(s) are not valid booleans "
        "(data rows 1, 2, counting from 0)"
    )
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("bad", [SECRET, "1.5", "nan", "one"])
def test_bad_int_error(bad: str) -> None:
    with pytest.raises(CoercionError) as info:
        RELATIONSHIPS.coerce(relationships(priority=["1", bad]), strict=True)
    assert str(info.value) == (
        "relationships.priority: 1 value(s) are not valid ints (data rows 1, counting from 0)"
    )
    assert bad not in str(info.value)


def test_many_bad_rows_show_five_and_count_the_rest() -> None:
    with pytest.raises(CoercionError) as info:
        RELATIONSHIPS.coerce(relationships(priority=[SECRET] * 8), strict=True)
    assert info.value.rows == [0, 1, 2, 3, 4]
    assert info.value.count == 8
    assert str(info.value) == (
        "relationships.priority: 8 value(s) are not valid ints (data rows 0, 1, 2, 3, 4 and 3 more, "
        "counting from 0)"
    )


def test_rows_are_positions_not_index_labels() -> None:
    frame = relationships(priority=["1", SECRET]).set_axis([100, 200])
    with pytest.raises(CoercionError) as info:
        RELATIONSHIPS.coerce(frame, strict=True)
    assert info.value.rows == [1]


def _tables() -> dict[str, pd.DataFrame]:
    return {name: entity.empty_frame() for name, entity in ENTITIES.items()}


def test_extract_accepts_all_entities_with_aware_time() -> None:
    stamp = pd.Timestamp("2026-11-27T06:00:00", tz="UTC")
    extract = Extract(_tables(), stamp, "file_drop")
    assert extract.counts() == {name: 0 for name in ENTITIES}


def test_extract_rejects_missing_entities() -> None:
    tables = _tables()
    del tables["memberships"]
    del tables["contacts"]
    with pytest.raises(ValueError, match=r"^extract is missing entities: contacts, memberships$"):
        Extract(tables, pd.Timestamp("2026-11-27", tz="UTC"), "file_drop")


def test_extract_rejects_naive_timestamps() -> None:
    with pytest.raises(ValueError, match="snapshot_at must be timezone-aware"):
        Extract(_tables(), pd.Timestamp("2026-11-27T06:00:00"), "file_drop")


def test_extract_accepts_non_utc_offsets() -> None:
    stamp = pd.Timestamp(dt.datetime(2026, 6, 1, 6, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    assert Extract(_tables(), stamp, "x").snapshot_at.utcoffset() == dt.timedelta(hours=1)


def test_counts() -> None:
    tables = _tables()
    tables["pupils"] = PUPILS.coerce(pupils(mis_id=["P1", "P2", "P3"]))
    extract = Extract(tables, pd.Timestamp("2026-11-27", tz="UTC"), "x")
    assert extract.counts()["pupils"] == 3
    assert extract.counts()["staff"] == 0


def test_unreadable_values_mark_the_record_instead_of_stopping() -> None:
    """A value that is not of its type drops out and names its field; the other rows are untouched."""
    frame = pupils(date_of_birth=["2013-10-02", SECRET, "2013-02-30"], mis_id=["P1", "P2", "P3"])
    out = PUPILS.coerce(frame)
    assert out["unreadable_fields"].tolist()[1:] == ["date_of_birth", "date_of_birth"]
    assert pd.isna(out["unreadable_fields"].iloc[0])
    assert out["date_of_birth"].isna().tolist() == [False, True, True]
    assert SECRET not in out.to_csv(), "the unreadable value itself is not kept"
    again = PUPILS.coerce(out)
    assert again["unreadable_fields"].tolist() == out["unreadable_fields"].tolist(), "kept when re-coerced"
    bad_int = RELATIONSHIPS.coerce(relationships(priority=["1", "one"]))
    assert bad_int["unreadable_fields"].tolist()[1] == "priority"
