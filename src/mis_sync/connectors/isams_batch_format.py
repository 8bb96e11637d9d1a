"""The iSAMS Batch API document's shape (``include/mis_schemas/isams_batch.yaml``) and its reshaping.

Why apart from the connector: the synthetic-school writer (``generator/shapes/isams_batch.py``) renders
documents from the same spec, and the connector module stays about transport (file or HTTP). See
``connectors/isams_batch.py`` for what the document carries and the confidence of each part.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import cache

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mis_sync.academic_year import academic_year as academic_year_of_day
from mis_sync.connectors.mapping import SourceMapping, apply_mapping, check_mapping
from mis_sync.connectors.xml_source import check_types, flatten, frame_of, require_values
from mis_sync.errors import ExtractError
from mis_sync.model import Extract
from mis_sync.paths import mis_schemas_dir

SOURCE = "isams_batch"
NO_STAFF = frozenset({"", "0"})
"""A tutor attribute of ``0`` or empty means "no tutor" [U]."""


class ElementSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    required: bool = True
    columns: dict[str, str | list[str]] = {}
    required_columns: list[str] = []


class DocumentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    root: str
    endpoint: str


class BatchFormat(BaseModel):
    model_config = ConfigDict(frozen=True)
    document: DocumentSpec
    group_id_prefix: dict[str, str]
    elements: dict[str, ElementSpec]
    mapping: SourceMapping

    def field(self, key: str, logical: str) -> str:
        value = self.elements[key].columns[logical]
        return value if isinstance(value, str) else value[0]

    def fields(self, key: str, logical: str) -> list[str]:
        value = self.elements[key].columns.get(logical, [])
        return [value] if isinstance(value, str) else list(value)


@cache
def load_batch_format() -> BatchFormat:
    path = mis_schemas_dir() / f"{SOURCE}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = BatchFormat(
            document=DocumentSpec.model_validate(data.pop("document")),
            group_id_prefix=dict(data.pop("group_id_prefix")),
            elements={k: ElementSpec.model_validate(v) for k, v in dict(data.pop("elements")).items()},
            mapping=SourceMapping.model_validate(data),
        )
    except (OSError, yaml.YAMLError, ValidationError, KeyError, AttributeError, TypeError) as exc:
        raise ExtractError(f"{path}: field mapping cannot be loaded ({type(exc).__name__})") from None
    check_mapping(path, spec.mapping)
    return spec


class Reshape:
    """The document's sections → raw tables named by source field, then the YAML mapping."""

    def __init__(
        self,
        spec: BatchFormat,
        root: ET.Element,
        where: str,
        snapshot: pd.Timestamp,
        country: str = "england",
    ) -> None:
        self.country = country
        self.spec, self.root, self.where, self.snapshot = spec, root, where, snapshot
        self.f = spec.field
        self.groups: list[pd.DataFrame] = []
        self.members: list[pd.DataFrame] = []

    def describe(self, key: str, frame: pd.DataFrame, id_field: str) -> Callable[[int], str]:
        """``iSAMS/PupilManager/CurrentPupils/Pupil[5] (SchoolId 1234)``: where, and which MIS id."""
        path = f"{self.root.tag}/{self.spec.elements[key].path}"

        def text(row: int) -> str:
            value = frame[id_field].iloc[row] if id_field in frame.columns else pd.NA
            shown = f" ({id_field.lstrip('@')} {value})" if not pd.isna(value) and str(value).strip() else ""
            return f"{path}[{row + 1}]{shown}"

        return text

    def section(
        self, key: str, entities: tuple[str, ...] = (), parent: ET.Element | None = None
    ) -> tuple[list[ET.Element], pd.DataFrame] | None:
        """The elements at ``elements.<key>.path`` and their flat records (None: optional, absent)."""
        spec = self.spec.elements[key]
        container_path, _, leaf = spec.path.rpartition("/")
        base = self.root if parent is None else parent
        container = base.find(container_path) if container_path else base
        if container is None:
            if spec.required:
                raise ExtractError(
                    f"{self.where}: required element {self.root.tag}/{container_path} is missing "
                    "(is its method allocated to the API key?)"
                )
            return None
        elements = container.findall(leaf)
        wanted = [field for logical in spec.columns for field in self.spec.fields(key, logical)]
        wanted += [field for e in entities for field in self.spec.mapping.entities[e].columns]
        frame = frame_of([flatten(e, attributes=True) for e in elements], wanted)
        if parent is None and spec.required_columns:
            describe = self.describe(key, frame, self.f(key, spec.required_columns[0]))
            for logical in spec.required_columns:
                require_values(frame, self.f(key, logical), self.where, describe)
        return elements, frame

    def required(self, key: str, entities: tuple[str, ...] = ()) -> tuple[list[ET.Element], pd.DataFrame]:
        found = self.section(key, entities)
        assert found is not None  # a required section raises instead of returning None
        return found

    def staff_ids(self, frame: pd.DataFrame, key: str, by_code: dict[str, str]) -> list[list[str]]:
        """Per row: the staff ids in the tutor attributes, plus those found by ``<Tutor>`` user codes."""
        fields = self.spec.fields
        ids = [frame[f].fillna("").str.strip().tolist() for f in fields(key, "tutor_ids")]
        codes = [frame[f].fillna("").str.strip().tolist() for f in fields(key, "tutor_codes")]
        rows = []
        for i in range(len(frame)):
            found = [column[i] for column in ids if column[i] not in NO_STAFF]
            found += [by_code[column[i]] for column in codes if column[i] in by_code]
            rows.append(list(dict.fromkeys(found)))
        return rows

    def add_groups(self, kind: str, ids: pd.Series, **columns: object) -> pd.Series:
        gid = (self.spec.group_id_prefix[kind] + ids.astype("string")).reset_index(drop=True)
        values = {k: v.reset_index(drop=True) if isinstance(v, pd.Series) else v for k, v in columns.items()}
        academic_year = academic_year_of_day(self.snapshot, self.country)
        self.groups.append(
            pd.DataFrame({"mis_id": gid, "kind": kind, **values, "academic_year": academic_year})
        )
        return gid

    def add_members(self, role: str, groups: pd.Series | list[str], people: pd.Series | list[str]) -> None:
        frame = pd.DataFrame({"group_id": list(groups), "person_id": list(people), "role": role})
        self.members.append(frame.dropna())

    def add_teachers(self, gid: pd.Series, people: list[list[str]]) -> None:
        pairs = [(g, p) for g, row in zip(gid, people, strict=True) for p in row]
        self.add_members("teacher", [g for g, _ in pairs], [p for _, p in pairs])

    def extract(self) -> Extract:
        f, m = self.f, self.spec.mapping
        _, pupils = self.required("pupils", ("pupils",))
        _, staff = self.required("staff", ("staff",))
        _, years = self.required("years")
        _, forms = self.required("forms")
        set_elements, sets = self.required("sets")
        _, set_lists = self.required("set_lists")
        subjects = self.section("subjects")
        key, pupil_id = f("pupils", "key"), f("pupils", "id")
        known = pupils[[pupil_id, key]].dropna()
        pupil_ref = dict(zip(known[pupil_id], known[key], strict=True)) | dict(
            zip(pupils[key], pupils[key], strict=True)
        )
        coded = staff[[f("staff", "user_code"), f("staff", "id")]].dropna()
        by_code = dict(zip(coded.iloc[:, 0], coded.iloc[:, 1], strict=True))
        year_nc = dict(zip(years[f("years", "id")], years[f("years", "nc_year")], strict=True))

        # Years: the tutors; pupils by NCYear.
        nc = years[f("years", "nc_year")].str.strip()
        gid = self.add_groups(
            "year", years[f("years", "id")], name=years[f("years", "name")], code=years[f("years", "code")],
            subject=pd.NA, year_group=nc,
        )  # fmt: skip
        self.add_teachers(gid, self.staff_ids(years, "years", by_code))
        by_nc = dict(zip(nc, gid, strict=True))
        self.add_members("pupil", pupils[f("pupils", "year")].str.strip().map(by_nc), pupils[key])

        # Forms: the tutor and assistants; pupils by Form (a form's @Id, else its name).
        form_id = forms[f("forms", "id")]
        form_name = forms[f("forms", "name")].fillna(form_id)
        year_id = forms[f("forms", "year_id")]
        form_year = forms[f("forms", "nc_year")].fillna(year_id.map(year_nc).astype("string")).fillna(year_id)
        gid = self.add_groups(
            "registration", form_id, name=form_name, code=form_name, subject=pd.NA, year_group=form_year
        )
        self.add_teachers(gid, self.staff_ids(forms, "forms", by_code))
        form_ref = dict(zip(form_name, gid, strict=True)) | dict(zip(form_id, gid, strict=True))
        raw_form = pupils[f("pupils", "form")].str.strip()
        pupils["registration_group_id"] = raw_form.map(form_ref).astype("string").fillna(raw_form)
        self.add_members("pupil", raw_form.map(form_ref), pupils[key])

        # Sets: teachers inside each Set; pupils from SetLists.
        subject_name = {}
        if subjects is not None:
            subject_name = dict(
                zip(subjects[1][f("subjects", "id")], subjects[1][f("subjects", "name")], strict=True)
            )
        set_year = sets[f("sets", "year_id")]
        gid = self.add_groups(
            "teaching", sets[f("sets", "id")],
            name=sets[f("sets", "name")].fillna(sets[f("sets", "code")]).fillna(sets[f("sets", "id")]),
            code=sets[f("sets", "code")], subject=sets[f("sets", "subject_id")].map(subject_name),
            year_group=set_year.map(year_nc).astype("string").fillna(set_year),
        )  # fmt: skip
        teachers = []
        for element in set_elements:
            found = self.section("set_teachers", parent=element)
            staff_id = [] if found is None else found[1][f("set_teachers", "staff_id")].dropna().str.strip()
            teachers.append([v for v in staff_id if v not in NO_STAFF])
        self.add_teachers(gid, teachers)
        raw_pupil = set_lists[f("set_lists", "pupil_id")].str.strip()
        set_gid = self.spec.group_id_prefix["teaching"] + set_lists[f("set_lists", "set_id")].str.strip()
        self.add_members("pupil", set_gid, raw_pupil.map(pupil_ref).astype("string").fillna(raw_pupil))

        raw = {
            "pupils": pupils.assign(enrolment_status="on_roll"),
            "staff": staff.assign(enrolment_status="on_roll"),
            "groups": pd.concat(self.groups, ignore_index=True),
            "memberships": pd.concat(self.members, ignore_index=True).drop_duplicates(),
        }
        for entity in ("pupils", "staff"):
            check_types(raw[entity], entity, m.entities[entity].columns)
        paths = {k: f"{self.where} ({self.root.tag}/{e.path})" for k, e in self.spec.elements.items()}
        where = {"pupils": paths["pupils"], "staff": paths["staff"], "groups": self.where}
        where["memberships"] = self.where
        contacts = self.section("contacts", ("contacts", "relationships"))
        if contacts is not None:
            raw["contacts"], raw["relationships"] = self.contacts(contacts[1], pupil_ref)
            where["contacts"] = where["relationships"] = paths["contacts"]
        return Extract(tables=apply_mapping(raw, m, where), snapshot_at=self.snapshot, source=SOURCE)

    def contacts(self, frame: pd.DataFrame, pupil_ref: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One element per (contact, pupil) → contacts (first element per @Id) and relationships.

        ``ParentalResponsibility`` of ``Default`` takes the contact type's value [V]; no contact types
        section, or an unknown type, leaves it unknown.
        """
        f = self.f
        cid, relation, pr = f("contacts", "id"), f("contacts", "relation"), f("contacts", "responsibility")
        types = self.section("contact_types")
        default_pr: dict[str, str] = {}
        if types is not None:
            names = types[1][f("contact_types", "name")].str.strip().str.lower()
            default_pr = dict(zip(names, types[1][f("contact_types", "responsibility")], strict=True))
        is_default = frame[pr].fillna("").str.strip().str.lower() == "default"
        resolved = frame[relation].fillna("").str.strip().str.lower().map(default_pr).astype("string")
        frame[pr] = frame[pr].where(~is_default, resolved)
        for entity in ("contacts", "relationships"):
            check_types(frame, entity, self.spec.mapping.entities[entity].columns)
        raw_pupil = frame[f("contacts", "pupil_id")].fillna("").str.strip()
        resolved_pupil = raw_pupil.map(pupil_ref).astype("string").fillna(raw_pupil)
        links = frame.assign(pupil_id=resolved_pupil)[raw_pupil != ""]
        return frame.drop_duplicates(cid).reset_index(drop=True), links.drop_duplicates([cid, "pupil_id"])
