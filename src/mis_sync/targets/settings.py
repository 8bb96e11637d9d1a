"""Per-establishment settings of the fan-out targets (``targets:`` in the establishment YAML).

Import-light (pydantic only): the establishment model imports it at DAG parse time.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

GroupKindName = Literal["year", "registration", "teaching"]
TEMPLATE_FIELDS = frozenset(
    {"name", "code", "subject", "year_group", "academic_year", "kind", "establishment", "mis_id"}
)
"""What a naming template may use: the directory group's fields plus the establishment id."""


def _check_template(value: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc})") from None
    unknown = names - TEMPLATE_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; use any of {sorted(TEMPLATE_FIELDS)}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OwnersPolicy(_Strict):
    """Who owns each class or group: never nobody (a Team needs an owner)."""

    teachers: bool = True
    """Every MIS teacher of the group is an owner (and a member, as Teams needs)."""
    admins: tuple[str, ...] = ()
    """Usernames (or full UPNs) of admin accounts added as owners of every class or group; at least one
    when the target is enabled, so no class is ever ownerless."""


class DriftCheck(_Strict):
    every_days: Annotated[int, Field(ge=1, le=90)] = 7
    """How often live membership is read back and compared with the stored state (default weekly)."""
    policy: Literal["revert", "adopt"] = "revert"
    """revert: manual changes are undone; adopt: manual additions and removals are kept from then on."""


class Microsoft365Target(_Strict):
    """Education classes (Teams for Education) or Microsoft 365 groups kept equal to the MIS."""

    enabled: bool = False
    connection_id: str = "msgraph_default"
    """An Airflow Connection of type ``msgraph`` (apache-airflow-providers-microsoft-azure)."""
    tenant_domain: str = ""
    """Users are resolved as ``<username>@<tenant_domain>``."""
    user_attribute: Literal["userPrincipalName", "mail"] = "userPrincipalName"
    kind: Literal["education_class", "group"] = "education_class"
    group_kinds: tuple[GroupKindName, ...] = ("registration", "teaching")
    naming: str = "{name} {academic_year}"
    description: str = "{kind} group {code} ({academic_year}), kept in step with the MIS by MIS Sync"
    mail_nickname: str = "{establishment}-{mis_id}-{academic_year}"
    """Lower-cased and reduced to ``[a-z0-9._-]``, at most 64 characters (Graph's rules)."""
    owners: OwnersPolicy = OwnersPolicy()
    year_end: Literal["rename", "keep"] = "rename"
    """A class gone from the MIS is never deleted: renamed with ``archive_prefix`` (or left as is)."""
    archive_prefix: str = "(Archived) "
    teams: bool = False
    """Also make a Microsoft Teams team from every class, once it has its owners (``POST /teams``,
    Teams for Education's class template for ``education_class``, the standard one for ``group``), so
    classes are in Teams without a teacher making each one. Made once, never deleted; at year end the
    team keeps the class's new name."""
    drift_check: DriftCheck = DriftCheck()
    groups_per_task: Annotated[int, Field(ge=10, le=5000)] = 200
    """Classes per mapped sync task (a school of 500 classes runs as 3 parallel tasks)."""
    pool: str = "misync_graph"
    """Airflow pool capping concurrent Graph work across every establishment's DAG."""
    provision_accounts: bool = False
    """Also create, update and disable the Entra users themselves (else they must already exist).
    New accounts get the user's stored initial password (``passwords.issue_initial``)."""
    provision_roles: tuple[Literal["pupil", "teaching_staff", "non_teaching_staff", "parent"], ...] = (
        "pupil",
        "teaching_staff",
        "non_teaching_staff",
    )
    usage_location: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "GB"
    """Needed before a licence can be assigned (Graph refuses licences without it)."""

    _templates = field_validator("naming", "description", "mail_nickname")(_check_template)

    @field_validator("tenant_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value and ("@" in value or "." not in value or " " in value):
            raise ValueError("a DNS domain such as school.example.org")
        return value.lower()

    @model_validator(mode="after")
    def _complete(self) -> Microsoft365Target:
        if self.enabled and not self.tenant_domain:
            raise ValueError("tenant_domain is required when the target is enabled")
        if self.enabled and not self.group_kinds:
            raise ValueError("group_kinds is empty: name at least one of year, registration, teaching")
        if self.enabled and not self.owners.admins:
            raise ValueError(
                "owners.admins: name at least one admin account; a class with no MIS teacher "
                "(a year group, a cover class) must never be left without an owner"
            )
        return self


def _dns_domain(value: str) -> str:
    if value and ("@" in value or "." not in value or " " in value):
        raise ValueError("a DNS domain such as school.example.org")
    return value.lower()


RoleName = Literal["pupil", "teaching_staff", "non_teaching_staff", "parent"]
_OU_SEGMENT = re.compile(r"^[^/\\]+$")


def _check_org_unit(value: str, *, year_group: bool) -> str:
    """An absolute org unit path; pupils' may hold ``{year_group}``, nothing else may be a field."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"not a valid org unit template ({exc})") from None
    allowed = {"year_group"} if year_group else set()
    if set(names) - allowed:
        hint = "only {year_group} may be used" if year_group else "no {fields} are allowed here"
        raise ValueError(f"unknown field(s) {sorted(set(names) - allowed)} in an org unit path; {hint}")
    if not value.startswith("/"):
        raise ValueError("an org unit path starts with '/' (e.g. /Pupils or / for the top level)")
    if value != "/" and not all(_OU_SEGMENT.match(part.strip()) for part in value[1:].split("/")):
        raise ValueError("an org unit path has no empty segments and no trailing '/' (e.g. /Staff/Teachers)")
    return value


class OrgUnits(_Strict):
    """Where provisioned Google accounts live, per role (``/`` = the top level, the default)."""

    pupil: str = "/"
    """May use ``{year_group}``, e.g. ``/Pupils/Year {year_group}``; a pupil without a year group goes
    to the path above the placeholder's segment (``/Pupils``)."""
    teaching_staff: str = "/"
    non_teaching_staff: str = "/"
    parent: str = "/"

    @field_validator("pupil")
    @classmethod
    def _pupil(cls, value: str) -> str:
        return _check_org_unit(value, year_group=True)

    @field_validator("teaching_staff", "non_teaching_staff", "parent")
    @classmethod
    def _others(cls, value: str) -> str:
        return _check_org_unit(value, year_group=False)

    def path(self, role: str, year_group: str | None) -> str:
        template = getattr(self, role, "/")
        if "{year_group}" not in template:
            return template
        if year_group:
            return template.format(year_group=year_group)
        parent = template.split("{year_group}")[0].rsplit("/", 1)[0]
        return parent or "/"


class GoogleClassroomTarget(_Strict):
    """Google Classroom courses kept equal to the MIS (the second adapter on the shared engine).

    Auth: ``connection_id`` names an Airflow Connection (type ``generic`` or ``google_cloud_platform``)
    holding a service-account key JSON in ``extra.keyfile_dict`` (or the password field, or a file in
    ``extra.key_path``) and ``extra.subject``, the Workspace admin the service account impersonates
    through domain-wide delegation. ``extra.api_endpoint`` points the client at another endpoint (the
    local emulator in tests and the demo) and then NO credentials are sent.
    """

    enabled: bool = False
    connection_id: str = "google_classroom_default"
    domain: str = ""
    """Users are found as ``<username>@<domain>`` (their Workspace primary email)."""
    group_kinds: tuple[GroupKindName, ...] = ("registration", "teaching")
    naming: str = "{name}"
    """The course name (1-750 characters; a URL in it is refused by Classroom)."""
    section: str = "{academic_year}"
    """Shown under the name; empty: MIS Sync leaves the section alone."""
    room: str = ""
    """Empty (default): MIS Sync leaves the room alone, so teachers may set it."""
    description: str = "{kind} group {code} ({academic_year}), kept in step with the MIS by MIS Sync"
    owner: str = ""
    """Username or email of the account that owns every course (its ``ownerId``): an admin or a
    service account user, never a person who may leave. Required when enabled. MIS teachers are
    always course teachers and pupils students (Classroom refuses one user in both roles)."""
    course_state: Literal["ACTIVE", "PROVISIONED"] = "ACTIVE"
    """ACTIVE: pupils see the course at once. PROVISIONED (Classroom's own default) waits for the
    owner to accept it; as the owner is an admin account, an admin must then activate each course."""
    year_end: Literal["archive", "keep"] = "archive"
    """A course gone from the MIS is never deleted: ``archive`` sets courseState ARCHIVED (read-only,
    kept for the record); ``keep`` leaves it as it is."""
    archive_prefix: str = ""
    """Also prefix archived courses' names (e.g. ``"(Archived) "``); empty keeps the name."""
    drift_check: DriftCheck = DriftCheck()
    groups_per_task: Annotated[int, Field(ge=10, le=5000)] = 200
    pool: str = "misync_google"
    """Airflow pool capping concurrent Classroom work; the quota is per impersonated user, so give it
    one slot per ``subject`` (or keep slots x requests_per_minute within 1,200)."""
    requests_per_minute: Annotated[int, Field(ge=10, le=3000)] = 1000
    """Pacing per task: Classroom allows 1,200 calls per minute per user and 3,000 per project (a 60 s
    moving average; the project's share is split between every school syncing with the same service
    account); 1,000 leaves room for the admin's own use. Every call in a batch counts."""
    provision_accounts: bool = False
    """Also create, update and suspend the Workspace users themselves (Admin SDK Directory; else they
    must already exist, e.g. from Google Cloud Directory Sync). New accounts get the user's stored
    initial password (``passwords.issue_initial``); leavers are suspended, never deleted; admins are
    never changed."""
    provision_roles: tuple[RoleName, ...] = ("pupil", "teaching_staff", "non_teaching_staff")
    org_units: OrgUnits = OrgUnits()
    """The org unit each role's accounts are placed in (and moved to)."""

    _templates = field_validator("naming", "section", "room", "description")(_check_template)
    _domain = field_validator("domain")(_dns_domain)

    @model_validator(mode="after")
    def _complete(self) -> GoogleClassroomTarget:
        if not self.enabled:
            return self
        if not self.domain:
            raise ValueError("domain is required when the target is enabled")
        if not self.group_kinds:
            raise ValueError("group_kinds is empty: name at least one of year, registration, teaching")
        if not self.owner:
            raise ValueError(
                "owner: name the admin (or service) account that owns every course; Classroom needs "
                "an active owner and a course must never depend on a teacher who may leave"
            )
        if self.provision_accounts and not self.provision_roles:
            raise ValueError(
                "provision_roles is empty: name at least one of pupil, teaching_staff, "
                "non_teaching_staff, parent (or set provision_accounts: false)"
            )
        return self


class TargetsConfig(_Strict):
    microsoft365: Microsoft365Target = Microsoft365Target()
    google_classroom: GoogleClassroomTarget = GoogleClassroomTarget()
