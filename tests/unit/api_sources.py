"""Shared helpers for the direct-MIS API connector tests (Arbor, Bromcom, ScholarPack, iSAMS REST,
OneRoster REST): the connection each fake needs, what each source can carry of a canonical school
(the round trips compare with that), and a failure check that no personal data leaks into messages.

What each source cannot carry is documented in its shape writer (``mis_sync.generator.shapes``) and
connector module; ``*_carries`` below is the same list, as code.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors import connector_for
from mis_sync.connectors.base import Connector
from mis_sync.errors import ExtractError
from mis_sync.fakes.arbor import running_fake_arbor
from mis_sync.fakes.bromcom import running_fake_bromcom
from mis_sync.fakes.isams_rest import running_fake_isams_rest
from mis_sync.fakes.oneroster_rest import running_fake_oneroster
from mis_sync.fakes.scholarpack import running_fake_scholarpack
from mis_sync.generator.shapes.oneroster_rest import contact_roles
from mis_sync.model import ENTITIES, Extract

Tables = dict[str, pd.DataFrame]


def blank(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    return frame.assign(**{c: pd.Series(pd.NA, index=frame.index, dtype=frame[c].dtype) for c in columns})


def prefixed(tables: Tables, prefix: dict[str, str]) -> Tables:
    """Group ids with a per-kind prefix, wherever they appear (groups, memberships, pupils)."""
    groups = tables["groups"]
    kind_of = dict(zip(groups["mis_id"], groups["kind"], strict=True))
    out = dict(tables)
    out["groups"] = groups.assign(mis_id=groups["kind"].map(prefix) + groups["mis_id"])
    members = tables["memberships"]
    out["memberships"] = members.assign(
        group_id=members["group_id"].map(kind_of).map(prefix) + members["group_id"]
    )
    reg = tables["pupils"]["registration_group_id"]
    out["pupils"] = tables["pupils"].assign(registration_group_id=prefix["registration"] + reg)
    return out


def arbor_carries(school: Extract) -> Tables:
    return prefixed(
        dict(school.tables),
        {"year": "academic-levels/", "registration": "registration-forms/", "teaching": "academic-units/"},
    )


def bromcom_carries(school: Extract) -> Tables:
    t = dict(school.tables)
    members, groups = t["memberships"], t["groups"]
    teaching = set(groups.loc[groups["kind"] == "teaching", "mis_id"])
    leads = set(members.loc[(members["role"] == "teacher") & members["group_id"].isin(teaching), "person_id"])
    t["pupils"] = blank(t["pupils"], "former_upn", "scn")
    t["staff"] = blank(t["staff"], "date_of_birth").assign(is_teaching=t["staff"]["mis_id"].isin(leads))
    t["contacts"] = blank(t["contacts"], "staff_mis_id")
    return t


def scholarpack_carries(school: Extract) -> Tables:
    t = dict(school.tables)
    teaching = t["groups"]["kind"] == "teaching"
    t["memberships"] = t["memberships"][
        ~t["memberships"]["group_id"].isin(t["groups"].loc[teaching, "mis_id"])
    ]
    t["groups"] = t["groups"][~teaching]
    t["contacts"] = blank(t["contacts"], "staff_mis_id").assign(
        preferred_first_name=t["contacts"]["legal_first_name"],
        preferred_last_name=t["contacts"]["legal_last_name"],
    )
    return t


def isams_rest_carries(school: Extract) -> Tables:
    t = prefixed(dict(school.tables), {"year": "year:", "registration": "form:", "teaching": "set:"})
    t["pupils"] = blank(t["pupils"], "preferred_last_name", "former_upn", "scn")
    staff = t["staff"][t["staff"]["enrolment_status"] == "on_roll"]
    t["staff"] = blank(staff, "preferred_last_name", "date_of_birth", "start_date", "leaving_date")
    contacts = t["contacts"][t["contacts"]["mis_id"].isin(t["relationships"]["contact_id"])]
    t["contacts"] = blank(contacts, "preferred_first_name", "preferred_last_name", "staff_mis_id")
    groups = t["groups"]
    t["groups"] = groups.assign(code=groups["code"].where(groups["kind"] != "registration", groups["name"]))
    return t


def oneroster_carries(school: Extract) -> Tables:
    t = dict(school.tables)
    pupils = t["pupils"][t["pupils"]["enrolment_status"] != "pre_admission"]
    t["pupils"] = blank(
        pupils,
        "preferred_first_name",
        "preferred_last_name",
        "former_upn",
        "scn",
        "admission_date",
        "leaving_date",
    )
    staff = t["staff"][t["staff"]["enrolment_status"] != "pre_admission"]
    t["staff"] = blank(
        staff, "title", "preferred_first_name", "preferred_last_name", "start_date", "leaving_date"
    )
    t["contacts"] = blank(
        t["contacts"], "title", "preferred_first_name", "preferred_last_name", "staff_mis_id"
    )
    year = t["groups"]["kind"] == "year"
    served = set(t["pupils"]["mis_id"]) | set(t["staff"]["mis_id"])
    members = t["memberships"]
    t["memberships"] = members[
        ~members["group_id"].isin(t["groups"].loc[year, "mis_id"]) & members["person_id"].isin(served)
    ]
    t["groups"] = t["groups"][~year]
    roles = contact_roles(school)
    links = t["relationships"][t["relationships"]["pupil_id"].isin(t["pupils"]["mis_id"])]
    links = links.assign(relationship=links["contact_id"].map(roles).str.capitalize())
    t["relationships"] = blank(links, "parental_responsibility", "priority")
    return t


@dataclass(frozen=True)
class Api:
    type: str
    serve: Callable[..., contextlib.AbstractContextManager[Any]]
    connection: Callable[[Any], ConnectionInfo]
    carries: Callable[[Extract], Tables]
    pupils: str
    """The fault key of the endpoint pupils come from."""
    contacts: str
    small_pages: dict[str, Any] = field(default_factory=lambda: {"page_size": 40})
    """Connector options that make the small school span several pages."""
    fake_pages: dict[str, Any] = field(default_factory=dict)
    """The same for the fake (Bromcom's page size is the server's, not the client's)."""
    key: str = "id"
    """A key every pupil record must carry (the missing-key test drops it)."""
    first: str = ""
    """What the first request of a read is called in messages (a 401 names it)."""


def arbor_connection(fake: Any) -> ConnectionInfo:
    return ConnectionInfo(
        conn_id="mis_arbor",
        login=fake.user,
        password=fake.password,
        extra={"base_url": fake.base_url + "/rest-v2"},
    )


def bromcom_connection(fake: Any) -> ConnectionInfo:
    extra = {"base_url": fake.base_url + "/v2", "school_id": fake.school_id}
    return ConnectionInfo(conn_id="mis_bromcom", login=fake.application_id, password=fake.secret, extra=extra)


def scholarpack_connection(fake: Any) -> ConnectionInfo:
    extra = {
        "base_url": fake.base_url + "/api/v1",
        "token_url": fake.token_url,
        "refresh_token": fake.refresh_token,
    }
    return ConnectionInfo(
        conn_id="mis_scholarpack", login=fake.client_id, password=fake.client_secret, extra=extra
    )


def isams_rest_connection(fake: Any) -> ConnectionInfo:
    return ConnectionInfo(
        conn_id="mis_isams",
        login=fake.client_id,
        password=fake.client_secret,
        extra={"base_url": fake.base_url},
    )


def oneroster_connection(fake: Any) -> ConnectionInfo:
    extra = {"base_url": fake.base_url + "/ims/oneroster/v1p1", "token_url": fake.token_url}
    return ConnectionInfo(
        conn_id="mis_oneroster", login=fake.client_id, password=fake.client_secret, extra=extra
    )


APIS = {
    "arbor": Api(
        "arbor",
        running_fake_arbor,
        arbor_connection,
        arbor_carries,
        "students",
        "guardians",
        key="href",
        first="academic-years",
    ),
    "bromcom": Api(
        "bromcom",
        running_fake_bromcom,
        bromcom_connection,
        bromcom_carries,
        "StudentFlatView",
        "StudentContacts",
        fake_pages={"page_size": 40},
        key="StudentId",
        first="Collections page 1",
    ),
    "scholarpack": Api(
        "scholarpack",
        running_fake_scholarpack,
        scholarpack_connection,
        scholarpack_carries,
        "students",
        "contacts",
        key="student_uuid",
        first="token",
    ),
    "isams_rest": Api(
        "isams_rest",
        running_fake_isams_rest,
        isams_rest_connection,
        isams_rest_carries,
        "students",
        "contacts",
        key="schoolId",
        first="token",
    ),
    "oneroster_rest": Api(
        "oneroster_rest",
        running_fake_oneroster,
        oneroster_connection,
        oneroster_carries,
        "users",
        "demographics",
        key="sourcedId",
        first="token",
    ),
}


@contextlib.contextmanager
def served(
    api: Api, school: Extract, *, pages: bool = False, fake_args: dict[str, Any] | None = None, **options: Any
) -> Iterator[tuple[Any, Connector]]:
    """A fake serving ``school`` and a connector pointed at it (``options``: ``mis.options``);
    ``pages``: small pages on both sides."""
    with api.serve(school, **(api.fake_pages if pages else {}), **(fake_args or {})) as fake:
        connector = connector_for(
            api.type, api.connection(fake), {**(api.small_pages if pages else {}), **options}
        )
        connector.sleep = lambda seconds: None  # type: ignore[attr-defined]
        yield fake, connector


def canonical(tables: Tables) -> Tables:
    out = {}
    for name, entity in ENTITIES.items():
        frame = entity.coerce(tables[name].reset_index(drop=True))
        out[name] = frame.sort_values(list(entity.key), kind="stable", ignore_index=True)
    return out


def assert_carried(got: Extract, want: Tables) -> None:
    a, b = canonical(got.tables), canonical(want)
    for name in ENTITIES:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)


_PERSONAL: dict[int, set[str]] = {}


def personal_values(extract: Extract) -> set[str]:
    """Every personal value of 4+ characters (names, UPNs, dates of birth, emails, phones)."""
    if id(extract) in _PERSONAL:
        return _PERSONAL[id(extract)]
    values: set[str] = set()
    for name, entity in ENTITIES.items():
        for column in entity.personal_columns:
            series = extract.tables[name][column].dropna()
            text = series.dt.strftime("%Y-%m-%d") if series.dtype.kind == "M" else series.astype(str)
            values |= {v for v in text if len(v) >= 4}
    _PERSONAL[id(extract)] = values
    return values


def failure(connector: Connector, school: Extract, error: type[Exception] = ExtractError) -> str:
    """The message of the error ``connector.extract()`` raises; it must hold no personal value."""
    with pytest.raises(error) as info:
        connector.extract()
    message = str(info.value)
    leaked = [  # a value leaks if the message holds it as a whole word ("Read" in "ReadTimeout" does not)
        v
        for v in personal_values(school)
        if v in message and re.search(rf"(?<!\w){re.escape(v)}(?!\w)", message)
    ]
    assert not leaked, f"personal data in the error message: {len(leaked)} value(s)"
    return message
