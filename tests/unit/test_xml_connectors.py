"""SIMS CommandReporter and iSAMS Batch API connectors: hand-written fixtures, generated-school round
trips (file and HTTP), hostile and broken XML, and the fake Batch API's faults. What each shape cannot
carry (left out of the round-trip comparison) is listed in ``sims_carries``/``isams_carries`` below and
in the shape writers' docstrings (``mis_sync.generator.shapes``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.catalog import CATALOGUE
from mis_sync.connectors.xml_source import decode_name, encode_name
from mis_sync.errors import DataError, ExtractError, SetupError, SourceUnavailableError
from mis_sync.fakes.isams_batch import message_document, running_fake_isams_batch
from mis_sync.generator import generate_school
from mis_sync.generator.shapes.isams_batch import render_isams_batch, write_isams_batch
from mis_sync.generator.shapes.sims_commandreporter import write_sims_commandreporter
from mis_sync.model import ENTITIES, Extract

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIMS = FIXTURES / "sims-commandreporter"
ISAMS = FIXTURES / "isams-batch"
AS_OF = dt.date(2026, 3, 2)
PERSONAL = (
    "Ada", "Examplewood", "Addy", "O'Sample", "Testington", "A999000000001", "2014-05-04", "11/12/2013",
    "Max", "Fictive", "Maxi", "P473368326012", "2013-05-15", "Ollie", "max.fictive", "Placeholder",
)  # fmt: skip
"""Personal values in the fixtures: no error message may contain any of them."""


def extract(mis_type: str, folder: Path, **options: object) -> Extract:
    connection = ConnectionInfo(conn_id="t", extra={"path": str(folder)})
    return connector_for(mis_type, connection, options).extract()


def http_extract(base_url: str, key: str, **options: object) -> Extract:
    connection = ConnectionInfo(conn_id="isams", password=key, extra={"base_url": base_url})
    return connector_for("isams_batch", connection, {"backoff_seconds": 0, **options}).extract()


def assert_clean(message: str) -> None:
    leaked = [value for value in PERSONAL if value in message]
    assert not leaked, f"personal data in error message: {leaked}"


def copy(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    return folder


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


# ---- the normalising comparison ----------------------------------------------------------------------


def normalised(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Canonical dtypes, rows sorted by each entity's key: order is not part of the data."""
    out = {}
    for name, entity in ENTITIES.items():
        frame = entity.coerce(tables[name].reset_index(drop=True))
        out[name] = frame.sort_values(list(entity.key)).reset_index(drop=True)
    return out


def blank(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    return frame.assign(**{c: pd.Series(pd.NA, index=frame.index, dtype=frame[c].dtype) for c in columns})


def sims_carries(school: Extract) -> dict[str, pd.DataFrame]:
    tables = dict(school.tables)
    tables["contacts"] = blank(tables["contacts"], "staff_mis_id")
    return tables


def isams_carries(school: Extract) -> dict[str, pd.DataFrame]:
    t = school.tables
    prefix = {"year": "year:", "registration": "form:", "teaching": "set:"}
    pupils = blank(t["pupils"], "preferred_last_name", "former_upn", "scn", "leaving_date")
    pupils = pupils[pupils["enrolment_status"] == "on_roll"]
    pupils = pupils.assign(registration_group_id="form:" + pupils["registration_group_id"])
    staff = blank(t["staff"], "preferred_last_name", "date_of_birth", "start_date", "leaving_date")
    staff = staff[staff["enrolment_status"] == "on_roll"]
    relationships = t["relationships"][t["relationships"]["pupil_id"].isin(pupils["mis_id"])]
    contacts = blank(t["contacts"], "preferred_first_name", "preferred_last_name", "staff_mis_id")
    contacts = contacts[contacts["mis_id"].isin(relationships["contact_id"])]
    groups = t["groups"]
    kind_of = dict(zip(groups["mis_id"], groups["kind"], strict=True))
    groups = groups.assign(
        mis_id=groups["kind"].map(prefix) + groups["mis_id"],
        code=groups["code"].where(groups["kind"] != "registration", groups["name"]),
    )
    members = t["memberships"]
    members = members.assign(group_id=members["group_id"].map(kind_of).map(prefix) + members["group_id"])
    return {
        "pupils": pupils, "staff": staff, "contacts": contacts, "groups": groups,
        "memberships": members, "relationships": relationships,
    }  # fmt: skip


def assert_same(expected: dict[str, pd.DataFrame], actual: Extract) -> None:
    want, got = normalised(expected), normalised(actual.tables)
    for name in ENTITIES:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


@pytest.fixture(scope="module")
def school() -> Extract:
    return generate_school("large-secondary", 7, AS_OF)


# ---- catalogue, names --------------------------------------------------------------------------------


def test_catalogue_lists_the_xml_sources() -> None:
    assert CATALOGUE["sims_commandreporter"].implementation.endswith(":SimsCommandReporterConnector")
    assert CATALOGUE["isams_batch"].implementation.endswith(":IsamsBatchConnector")


@pytest.mark.parametrize(
    ("caption", "element"),
    [("Legal Surname", "Legal_x0020_Surname"), ("Person_ID", "Person_ID"),
     ("2nd Name", "_x0032_nd_x0020_Name"), ("Odd_x0041_", "Odd_x005F_x0041_"),
     ("Parent/Carer", "Parent_x002F_Carer")],
)  # fmt: skip
def test_caption_names_encode_like_dotnet_and_decode_back(caption: str, element: str) -> None:
    assert encode_name(caption) == element
    assert decode_name(element) == caption


# ---- hand-written fixtures ---------------------------------------------------------------------------


def test_sims_fixture(tmp_path: Path) -> None:
    folder = copy(SIMS, tmp_path)
    for path in folder.iterdir():
        os.utime(path, (1_772_431_200, 1_772_431_200))  # 2026-03-02 06:00 UTC
    t = extract("sims_commandreporter", folder).tables
    pupils = t["pupils"].set_index("mis_id")
    assert list(pupils.index) == ["1001", "1002", "1003"]
    assert pupils.loc["1001", "year_group"] == "7"  # "Year  7", two spaces
    assert pupils.loc["1001", "registration_group_id"] == "502"  # Reg "7A" → the reg group's id
    assert pupils.loc["1001", "preferred_first_name"] == "Addy"
    assert pupils.loc["1001", "admission_date"] == pd.Timestamp("2025-09-01")  # UK date
    assert pupils.loc["1002", "date_of_birth"] == pd.Timestamp("2013-12-11")
    assert pupils.loc["1003", "enrolment_status"] == "leaver"
    assert pupils["gender"].tolist() == ["F", "M", "F"]
    assert t["staff"]["is_teaching"].tolist() == [True, False]
    assert t["contacts"]["mis_id"].tolist() == ["3001", "3002"]  # cross product de-duplicated
    rel = t["relationships"]
    assert rel[["contact_id", "pupil_id", "parental_responsibility"]].values.tolist() == [
        ["3001", "1001", True], ["3001", "1003", False],
    ]  # fmt: skip
    groups = t["groups"].set_index("mis_id")
    kinds = {"501": "year", "502": "registration", "503": "teaching", "504": "teaching"}
    assert groups["kind"].to_dict() == kinds
    assert groups.loc["503", "subject"] == "Art & Design"
    assert set(groups["academic_year"]) == {"2025/26"}  # "2025/2026"; blank → the snapshot's year
    members = t["memberships"]
    assert len(members) == 7 and "504" not in set(members["group_id"])
    assert members.loc[members["person_id"] == "2001", "role"].tolist() == ["teacher", "teacher"]


def test_sims_report_without_status_is_all_on_roll_and_contacts_are_optional(tmp_path: Path) -> None:
    folder = copy(SIMS, tmp_path)
    (folder / "Contacts.xml").unlink()
    text = (folder / "Students.xml").read_text(encoding="utf-8")
    for status in ("Current", "Leaver"):
        text = text.replace(f"<Status>{status}</Status>", "")
    (folder / "Students.xml").write_text(text, encoding="utf-8")
    result = extract("sims_commandreporter", folder)
    assert set(result.tables["pupils"]["enrolment_status"]) == {"on_roll"}
    assert result.counts()["contacts"] == result.counts()["relationships"] == 0


def test_isams_fixture(tmp_path: Path) -> None:
    t = extract("isams_batch", ISAMS).tables
    pupils = t["pupils"].set_index("mis_id")
    assert pupils.loc["145629077495", "registration_group_id"] == "form:7/JVK"
    assert pupils["year_group"].to_dict() == {"145629077495": "7", "145629077496": "N1"}  # NCYear -2
    assert set(pupils["enrolment_status"]) == {"on_roll"}
    assert t["staff"]["staff_code"].tolist() == ["JVK", "KLM"]
    groups = t["groups"].set_index("mis_id")
    assert list(groups.index) == ["year:-2", "year:7", "form:7/JVK", "set:7"]  # year 7 and set 7 apart
    assert groups.loc["set:7", "subject"] == "Mathematics"
    pairs = set(map(tuple, t["memberships"][["group_id", "person_id", "role"]].to_numpy().tolist()))
    assert ("form:7/JVK", "381", "teacher") in pairs  # assistant tutor found by user code only
    assert ("year:-2", "381", "teacher") in pairs
    assert ("set:7", "145629077495", "pupil") in pairs  # SetList PupilId = Pupil/@Id, resolved
    assert ("set:7", "380", "teacher") in pairs
    rel = t["relationships"].set_index(["contact_id", "pupil_id"])["parental_responsibility"]
    assert rel[("77", "145629077495")] == True  # noqa: E712 — "Default" → Father's contact type
    assert rel[("77", "145629077496")] == False  # noqa: E712
    assert pd.isna(rel[("78", "145629077496")])  # "Default", no such contact type: unknown
    assert t["contacts"]["mis_id"].tolist() == ["77", "78"]


# ---- round trips of a generated large secondary ------------------------------------------------------


def test_sims_round_trips_a_large_secondary(school: Extract, tmp_path: Path) -> None:
    written = write_sims_commandreporter(school, tmp_path)
    assert sorted(p.name for p in written) == ["Contacts.xml", "Groups.xml", "Staff.xml", "Students.xml"]
    assert "<Year>Year  7</Year>" in (tmp_path / "Students.xml").read_text(encoding="utf-8")
    result = extract("sims_commandreporter", tmp_path)
    assert result.snapshot_at == school.snapshot_at
    assert_same(sims_carries(school), result)


def test_isams_file_round_trips_a_large_secondary(school: Extract, tmp_path: Path) -> None:
    write_isams_batch(school, tmp_path)
    result = extract("isams_batch", tmp_path)
    assert result.snapshot_at == school.snapshot_at
    assert_same(isams_carries(school), result)


def test_isams_http_round_trip_retries_5xx(school: Extract, caplog: pytest.LogCaptureFixture) -> None:
    document = render_isams_batch(school)
    caplog.set_level(logging.INFO, logger="httpx")
    with running_fake_isams_batch(
        document=document, fail_next=2, seed=3, last_modified=school.snapshot_at.to_pydatetime()
    ) as fake:
        result = http_extract(fake.base_url, fake.api_key)
        assert fake.counters["requests"] == 3 and fake.counters["faults"] == 2
        assert fake.counters["served"] == 1
        assert [r[1] for r in fake.requests] == ["/api/batch/1.0/xml.ashx"] * 3
    assert result.snapshot_at == school.snapshot_at  # Last-Modified
    assert_same(isams_carries(school), result)
    assert fake.api_key not in caplog.text  # httpx's request log is redacted
    assert "apiKey=***" in caplog.text


# ---- HTTP failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "expected"),
    [({"api_key": "right-key"}, "wrong-key-123", r"HTTP 401 InvalidApiKey: the iSAMS Batch API refused"),
     ({"api_key": "wrong-key-123", "forbid_methods": True}, "wrong-key-123",
      r"HTTP 403 MethodsNotAllocatedToKeyException")],
)  # fmt: skip
def test_isams_http_refused_key_is_a_setup_error_without_the_key(
    options: dict[str, object], key: str, expected: str
) -> None:
    with running_fake_isams_batch(document=(ISAMS / "isams-batch.xml").read_bytes(), **options) as fake:
        with pytest.raises(SetupError, match=expected) as info:
            http_extract(fake.base_url, key)
        assert fake.counters["requests"] == 1  # not retried
    assert "wrong-key-123" not in str(info.value) and "right-key" not in str(info.value)


def test_isams_http_outage_after_retries_is_retryable() -> None:
    with running_fake_isams_batch(fault_rate=1.0, seed=5) as fake:
        with pytest.raises(SourceUnavailableError) as info:
            http_extract(fake.base_url, fake.api_key, attempts=3)
        assert fake.counters["requests"] == fake.counters["faults"] == 3
    assert not isinstance(info.value, DataError | SetupError)  # Airflow retries the task
    assert fake.api_key not in str(info.value)


def test_isams_http_needs_a_key() -> None:
    with pytest.raises(SetupError, match="no iSAMS Batch API key"):
        http_extract("http://127.0.0.1:9", "")


@pytest.mark.parametrize("fault", ["truncate_next", "malformed_next"])
def test_isams_http_broken_document_is_an_extract_error(fault: str) -> None:
    document = (ISAMS / "isams-batch.xml").read_bytes()
    with (
        running_fake_isams_batch(document=document, **{fault: 1}) as fake,
        pytest.raises(ExtractError, match=r"xml\.ashx: malformed XML at line \d+") as info,
    ):
        http_extract(fake.base_url, fake.api_key)
    assert fake.api_key not in str(info.value)
    assert_clean(str(info.value))


# ---- broken and hostile files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name"),
    [("sims_commandreporter", SIMS, "Students.xml"), ("isams_batch", ISAMS, "isams-batch.xml")],
)
def test_truncated_file_is_named(tmp_path: Path, mis_type: str, source: Path, file_name: str) -> None:
    folder = copy(source, tmp_path)
    path = folder / file_name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) * 2 // 3])
    with pytest.raises(ExtractError, match=rf"^{file_name}: malformed XML at line \d+, column \d+") as info:
        extract(mis_type, folder)
    assert_clean(str(info.value))


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE SuperStarReport [\n <!ENTITY lol "lol">\n'
    ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n]>\n'
    "<SuperStarReport><Record><Person_ID>&lol3;</Person_ID></Record></SuperStarReport>"
)
XXE = '<?xml version="1.0"?>\n<!DOCTYPE iSAMS [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<iSAMS>&xxe;</iSAMS>'


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name", "text"),
    [
        ("sims_commandreporter", SIMS, "Students.xml", BILLION_LAUGHS),
        ("isams_batch", ISAMS, "isams-batch.xml", XXE),
        (
            "isams_batch",
            ISAMS,
            "isams-batch.xml",
            '<!DOCTYPE iSAMS SYSTEM "http://127.0.0.1:9/x.dtd"><iSAMS/>',
        ),
    ],
)
def test_doctype_and_entities_are_refused(
    tmp_path: Path, mis_type: str, source: Path, file_name: str, text: str
) -> None:
    folder = copy(source, tmp_path)
    (folder / file_name).write_text(text, encoding="utf-8")
    with pytest.raises(
        ExtractError, match=rf"^{file_name}: refused: the document contains a DOCTYPE"
    ) as info:
        extract(mis_type, folder)
    assert "root:" not in str(info.value) and "lol" not in str(info.value)


def test_undeclared_entity_is_malformed(tmp_path: Path) -> None:
    folder = copy(SIMS, tmp_path)
    edit(folder / "Staff.xml", "<Title>Ms</Title>", "<Title>&xxe;</Title>")
    with pytest.raises(
        ExtractError, match=r"^Staff\.xml: malformed XML at line 5, column \d+: undefined entity"
    ):
        extract("sims_commandreporter", folder)


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name", "old", "new", "expected"),
    [
        ("sims_commandreporter", SIMS, "Students.xml", "<Person_ID>1002</Person_ID>", "",
         r"^Students\.xml: Record 2: required field Person_ID is missing or empty$"),
        ("sims_commandreporter", SIMS, "Groups.xml", "<Group_x0020_Type>Class</Group_x0020_Type>", "",
         r"^Groups\.xml: Record 6 \(Base_Group_ID 503\): required field Group Type is missing or empty$"),
        ("isams_batch", ISAMS, "isams-batch.xml", 'StaffMember Id="381"', "StaffMember",
         r"^isams-batch\.xml: iSAMS/HRManager/CurrentStaff/StaffMember\[2\]: required field @Id is missing"),
        ("isams_batch", ISAMS, "isams-batch.xml", "<SchoolId>145629077495</SchoolId>", "",
         r"^isams-batch\.xml: iSAMS/PupilManager/CurrentPupils/Pupil\[1\]: required field SchoolId is miss"),
        ("isams_batch", ISAMS, "isams-batch.xml", 'SetList SetId="7"', "SetList",
         r"^isams-batch\.xml: iSAMS/TeachingManager/SetLists/SetList\[1\]: required field @SetId is missing"),
    ],
)  # fmt: skip
def test_missing_or_unknown_field_names_file_element_and_field(
    tmp_path: Path, mis_type: str, source: Path, file_name: str, old: str, new: str, expected: str
) -> None:
    folder = copy(source, tmp_path)
    edit(folder / file_name, old, new)
    with pytest.raises(ExtractError, match=expected) as info:
        extract(mis_type, folder)
    assert_clean(str(info.value))


def test_isams_missing_section_is_named(tmp_path: Path) -> None:
    folder = copy(ISAMS, tmp_path)
    text = (folder / "isams-batch.xml").read_text(encoding="utf-8")
    start, end = text.index("<TeachingManager>"), text.index("</TeachingManager>") + len("</TeachingManager>")
    (folder / "isams-batch.xml").write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(ExtractError, match=r"required element iSAMS/TeachingManager/Sets is missing"):
        extract("isams_batch", folder)


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name", "old", "new", "entity", "mis_id", "field"),
    [
        ("sims_commandreporter", SIMS, "Students.xml", "11/12/2013", "31/02/2013",
         "pupils", "1002", "date_of_birth"),
        ("sims_commandreporter", SIMS, "Contacts.xml", "<Priority>2</Priority>",
         "<Priority>second</Priority>", "relationships", None, "priority"),
        ("isams_batch", ISAMS, "isams-batch.xml", "<DOB>2013-05-15T00:00:00</DOB>", "<DOB>15th May</DOB>",
         "pupils", "145629077495", "date_of_birth"),
        ("isams_batch", ISAMS, "isams-batch.xml", "<TeachingStaff>0</TeachingStaff>",
         "<TeachingStaff>sometimes</TeachingStaff>", "staff", "381", "is_teaching"),
    ],
)  # fmt: skip
def test_bad_value_marks_its_record_not_the_extract(
    tmp_path: Path,
    mis_type: str,
    source: Path,
    file_name: str,
    old: str,
    new: str,
    entity: str,
    mis_id: str | None,
    field: str,
) -> None:
    """A value that is not of its type is that record's fault (issue 12 item 6): the extract is read,
    the value dropped and its field named in ``unreadable_fields`` for data quality to quarantine."""
    folder = copy(source, tmp_path)
    edit(folder / file_name, old, new)
    table = extract(mis_type, folder).tables[entity]
    marked = table[table["unreadable_fields"].fillna("") != ""]
    assert len(marked) == 1 and marked["unreadable_fields"].iloc[0] == field
    assert pd.isna(marked[field].iloc[0]), "the unreadable value is dropped"
    if mis_id is not None:
        assert marked["mis_id"].iloc[0] == mis_id
    assert re.sub(r"<[^>]+>", "", new) not in marked.to_csv()


@pytest.mark.parametrize(
    ("old", "new", "entity", "column"),
    [
        ("<Group_x0020_Type>Class</Group_x0020_Type>", "<Group_x0020_Type>Club</Group_x0020_Type>",
         "groups", "kind"),
        ("<Member_x0020_Role>Teacher</Member_x0020_Role>", "<Member_x0020_Role>Wizard</Member_x0020_Role>",
         "memberships", "role"),
    ],
)  # fmt: skip
def test_unknown_code_is_kept_for_data_quality_to_quarantine(
    tmp_path: Path, old: str, new: str, entity: str, column: str
) -> None:
    folder = copy(SIMS, tmp_path)
    edit(folder / "Groups.xml", old, new)
    values = extract("sims_commandreporter", folder).tables[entity][column]
    known = {"kind": {"year", "registration", "teaching"}, "role": {"pupil", "teacher"}}[column]
    assert (~values.isin(known)).sum() >= 1, "the unknown code reaches validation (code_unknown)"


def test_wrong_root_element_is_named(tmp_path: Path) -> None:
    folder = copy(SIMS, tmp_path)
    (folder / "Staff.xml").write_text("<NewDataSet><Table/></NewDataSet>", encoding="utf-8")
    with pytest.raises(
        ExtractError, match=r"^Staff\.xml: root element is <NewDataSet>, expected <SuperStarReport>"
    ):
        extract("sims_commandreporter", folder)


@pytest.mark.parametrize(
    ("message", "error"), [("UnhandledException", ExtractError), ("InvalidApiKey", SetupError)]
)
def test_isams_error_document_instead_of_data_is_named(
    tmp_path: Path, message: str, error: type[Exception]
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "isams-batch.xml").write_bytes(message_document(message))
    with pytest.raises(error, match=rf"isams-batch\.xml: iSAMS returned an error document \({message}\)"):
        extract("isams_batch", folder)


def test_isams_http_connection_host_is_the_base_url() -> None:
    connection = ConnectionInfo(conn_id="i", conn_type="http", host="school.isams.cloud", password="k")
    connector = connector_for("isams_batch", connection, {})
    assert connector._base_url() == "https://school.isams.cloud"  # type: ignore[attr-defined]
    local = ConnectionInfo(conn_id="i", conn_type="http", host="http://127.0.0.1", port=8080)
    assert connector_for("isams_batch", local, {})._base_url() == "http://127.0.0.1:8080"  # type: ignore[attr-defined]
    folder = ConnectionInfo(conn_id="i", conn_type="fs", extra={"path": "/data/isams"})
    assert connector_for("isams_batch", folder, {})._base_url() is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mis_type", "source", "file_name", "expected"),
    [
        ("sims_commandreporter", SIMS, "Groups.xml", r"^Groups\.xml: required report file is missing"),
        ("isams_batch", ISAMS, "isams-batch.xml", r"^isams-batch\.xml: the iSAMS Batch XML file is missing"),
    ],
)
def test_missing_file_is_named(
    tmp_path: Path, mis_type: str, source: Path, file_name: str, expected: str
) -> None:
    folder = copy(source, tmp_path)
    (folder / file_name).unlink()
    with pytest.raises(ExtractError, match=expected):
        extract(mis_type, folder)
