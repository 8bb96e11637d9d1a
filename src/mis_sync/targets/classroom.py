"""The Google Classroom adapter: engine ops as Classroom v1 calls in multipart batches (≤ 50 each).

A thin adapter on the shared engine (``engine``/``sync``): it only turns an ``Op`` into a request and
an answer into an ``Outcome``. Mapping (``targets.md`` §3):

- a class is a course created with ``id = "d:<alias>"`` (:func:`course_alias` of the container key),
  so a rerun can never make a second one. It is created without a look-up first
  (``idempotent_create``): a create answered ``409 ALREADY_EXISTS`` (an earlier attempt that did land)
  is looked up by its alias, and counts as a no-op;
- role ``member`` → students, ``owner`` → teachers. The desired state leaves owners out of the
  students (``owners_are_members=False``): Classroom refuses one user in both roles;
- every course is owned (``ownerId``) by the configured owner account, which is also listed as a
  teacher, so the drift check never takes it for a manual addition; ``courses.create`` already makes
  the owner a teacher, so no ``teachers.create`` is sent for it (``creator_members``);
- users are resolved by primary email with ``userProfiles.get`` (same API, so one batch). It answers
  ``403 PERMISSION_DENIED`` when no profile exists (documented): the user is ``absent`` (unresolved),
  not a failure. Users of another domain are invited by email (``invitations.create``), never looked
  up first (``direct_user_id``): the admin may not be allowed to read their profile;
- ``students.create`` / ``teachers.create`` / ``invitations.create`` answered ``FAILED_PRECONDITION``
  without one of the documented request-error names means the user's account is disabled
  (suspended): ``pending`` until the account is active, not a failure;
- year end: ``courseState=ARCHIVED`` (and the name prefixed if configured), never a delete; an
  archived class that is back in the MIS is made ``ACTIVE`` again by its next update;
- accounts (``provision_accounts``, ``targets.md`` §4), on the Admin SDK Directory in batches of their
  own (a batch targets one API): a provisioning look-up (``resolve`` with role ``account``) is
  ``users.get`` (404 → absent; ``isAdmin`` → ``protected``, never changed), ``create_user`` is
  ``users.insert`` (sent without a look-up first, ``insert_first``: a 409 is looked up and adopted),
  ``update_user`` is ``users.patch`` (names, ``suspended``, ``orgUnitPath``).

Answers: 429 / ``RESOURCE_EXHAUSTED`` / rate-limit 403 and 5xx → retry (the engine backs off and
paces to ``requests_per_minute``; follow-up pages and course checks are paced too);
``ALREADY_EXISTS`` on students/teachers create → done, a no-op; ``NOT_FOUND`` on a roster delete →
done (a no-op), once the course itself is confirmed to exist (else it is ``gone`` and forgotten, so the
next run makes it again). ``fields`` masks keep names and emails out of the answers where the API
allows it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mis_sync.targets.classroom_reads import MAX_BATCH, Cursor, FollowUps
from mis_sync.targets.desired import Naming, principal
from mis_sync.targets.engine import WRITE_ACTIONS, Op, Outcome

if TYPE_CHECKING:
    from mis_sync.targets.settings import GoogleClassroomTarget

__all__ = ["MAX_BATCH", "ClassroomAdapter", "classroom_naming", "course_alias"]
MAX_ALIAS = 256
PAGE_SIZE = 1000
"""Asked for when reading rosters (a course holds at most 1,000 members); the server may send fewer."""
_PART_CLEAN = re.compile(r"[^A-Za-z0-9.-]")
_CHECKED = frozenset({"ALREADY_EXISTS", "NOT_FOUND"})
"""Failures of create / add / remove that need a ``courses.get`` before they mean anything."""
_NAME_MAX = 60
"""Directory ``name.givenName`` / ``name.familyName`` limit."""
REQUEST_ERRORS = frozenset(
    {
        "CourseMemberLimitReached", "CourseNotModifiable", "CourseTeacherLimitReached",
        "UserGroupsMembershipLimitReached", "InactiveCourseOwner", "CourseTitleCannotContainUrl",
    }
)  # fmt: skip
"""The named FAILED_PRECONDITION request errors of roster and invitation calls; without one of these
the answer means "the requested user's account is disabled" (the methods' reference pages)."""


def _is_directory(op: Op) -> bool:
    return op.action in ("create_user", "update_user") or (op.action == "resolve" and op.role == "account")


def course_alias(key: str) -> str:
    """``d:`` + the container key with ``:`` as ``_`` and ``/`` as ``-`` (``2025/26`` → ``2025-26``).

    Anything else outside ``[A-Za-z0-9.-]`` (or an over-long key) is replaced too, and then a hash
    of the whole key is appended, so two keys never share an alias.
    """
    parts = key.split(":")
    unusual = any(_PART_CLEAN.search(part.replace("/", "-")) for part in parts)
    alias = "_".join(_PART_CLEAN.sub("-", part.replace("/", "-")) for part in parts)
    if unusual or len(alias) + 2 > MAX_ALIAS:
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        alias = f"{alias[: MAX_ALIAS - 2 - 13]}_{digest}"
    return "d:" + alias


def classroom_naming(establishment: str, cfg: GoogleClassroomTarget) -> Naming:
    """What the desired state looks like for Classroom: the owner teaches every course, teachers are
    teachers (owners) only, and section and room templates are rendered too."""
    return Naming(
        establishment=establishment,
        group_kinds=tuple(cfg.group_kinds),
        naming=cfg.naming,
        description=cfg.description,
        mail_nickname="",
        domain=cfg.domain,
        admins=(cfg.owner,),
        teachers_own=True,
        section=cfg.section,
        room=cfg.room,
        owners_are_members=False,
    )


def _code(exc: Any) -> str:
    from mis_sync.targets.classroom_transport import error_facts

    status, google, _reason, name = error_facts(exc)
    code = google or str(status)
    return f"{code}:{name}" if name else code


class ClassroomAdapter(FollowUps):
    target = "google_classroom"
    max_batch = MAX_BATCH
    idempotent_create = True
    """A create carries its alias: repeating it is answered ALREADY_EXISTS, so no look-up first."""
    insert_first = True
    """Directory users.insert answers 409 for an existing account: insert first, look up on 409."""
    waits_for_users = True
    """Unresolved and suspended users wait (``targets.waiting``) instead of failing every night."""

    def __init__(
        self,
        transport: Any,
        *,
        owner: str,
        course_state: str = "ACTIVE",
        manage_section: bool = True,
        manage_room: bool = False,
        rename_on_archive: bool = False,
        requests_per_minute: float | None = None,
        domain: str = "",
    ) -> None:
        self.transport, self.owner, self.course_state = transport, owner, course_state
        self.domain = domain.lower()
        self.manage_section, self.manage_room = manage_section, manage_room
        self.rename_on_archive = rename_on_archive
        self.requests_per_minute = requests_per_minute
        self.counters = {"requests": 0, "write_requests": 0, "inner_requests": 0}
        self._cursors: dict[Op, Cursor] = {}
        self._courses = transport.service.courses()
        directory = getattr(transport, "directory", None)
        self._users = directory.users() if directory is not None else None

    @classmethod
    def from_settings(cls, transport: Any, cfg: GoogleClassroomTarget) -> ClassroomAdapter:
        return cls(
            transport,
            owner=principal(cfg.owner, cfg.domain),
            course_state=cfg.course_state,
            manage_section=bool(cfg.section),
            manage_room=bool(cfg.room),
            rename_on_archive=bool(cfg.archive_prefix),
            requests_per_minute=cfg.requests_per_minute,
            domain=cfg.domain,
        )

    # ---- accounts --------------------------------------------------------------------------------------
    @staticmethod
    def account_body(row: dict[str, Any], password: str | None) -> dict[str, Any]:
        """A Directory user body from a wanted account row: ``users.insert`` with the initial password,
        ``users.patch`` (names, suspended, org unit) without. Names fall back to the username, as the
        Directory refuses an empty given or family name."""
        fallback = str(row["mail_nickname"])
        body: dict[str, Any] = {
            "name": {
                "givenName": (str(row["given_name"]) or fallback)[:_NAME_MAX],
                "familyName": (str(row["surname"]) or fallback)[:_NAME_MAX],
            },
            "suspended": not bool(row["enabled"]),
        }
        if row.get("org_unit"):
            body["orgUnitPath"] = row["org_unit"]
        if password is None:
            return body
        body.update(primaryEmail=row["user_key"], password=password, changePasswordAtNextLogin=True)
        if row.get("mis_id"):
            body["externalIds"] = [{"type": "organization", "value": str(row["mis_id"])}]
        return body

    def _directory_request(self, op: Op) -> Any:
        if self._users is None:
            raise ValueError("account provisioning needs the Directory service (provision_accounts)")
        if op.action == "resolve":
            return self._users.get(userKey=op.user_key, fields="id,isAdmin")
        if op.action == "create_user":
            return self._users.insert(body=op.body, fields="id")
        return self._users.patch(userKey=op.user_id, body=op.body, fields="id")

    @property
    def creator_members(self) -> tuple[tuple[str, str], ...]:
        """(user_key, role) every course this adapter creates already has: ``courses.create`` makes
        the owner a teacher, so a ``teachers.create`` for it would only be refused ALREADY_EXISTS."""
        return ((self.owner, "owner"),)

    def direct_user_id(self, user_key: str) -> str | None:
        """An id usable without a look-up: invitations take the email, so a user of another domain is
        never looked up (the admin may not be allowed to read the profile)."""
        return user_key if self.invited_not_listed(user_key) else None

    def needs_invitation(self, op: Op) -> bool:
        return self.invited_not_listed(op.user_key or "")

    def invited_not_listed(self, user_key: str) -> bool:
        """A user outside the Workspace domain cannot be added directly, only invited; they join the
        roster when they accept, so until then the drift check must not count them as removed by hand
        (``sync.drift_check`` asks this). A repeat invitation is answered ALREADY_EXISTS: done."""
        user_domain = user_key.rsplit("@", 1)[-1].lower()
        return bool(self.domain) and "@" in user_key and user_domain != self.domain

    # ---- requests ------------------------------------------------------------------------------------
    def _roster(self, role: str | None) -> Any:
        return self._courses.teachers() if role == "owner" else self._courses.students()

    def read_request(self, op: Op, page_token: str | None = None) -> Any:
        return self._roster(op.role).list(
            courseId=op.container_id,
            pageSize=PAGE_SIZE,
            pageToken=page_token,
            fields=f"{self.roster_field(op)}/userId,nextPageToken",
        )

    def course_request(self, op: Op) -> Any:
        """The ``courses.get`` behind an ambiguous answer: by alias for a create, else by id."""
        key = course_alias(op.container_key or "") if op.action == "create" else op.container_id
        return self._courses.get(id=key, fields="id")

    def request(self, op: Op) -> Any:
        """The HttpRequest for one op (not sent: the batch sends it)."""
        courses, cid = self._courses, op.container_id
        if _is_directory(op):
            return self._directory_request(op)
        if op.action == "read":
            return self.read_request(op, self.page_token(op))
        if op.action == "resolve":
            return self.transport.service.userProfiles().get(userId=op.user_key, fields="id")
        if op.action == "find":
            return courses.get(id=course_alias(op.container_key or ""), fields="id")
        if op.action == "create":
            return courses.create(body=self._create_body(op), fields="id")
        if op.action == "update":
            mask, body = self._update_fields(op)
            return courses.patch(id=cid, updateMask=",".join(mask), body=body, fields="id")
        if op.action == "archive":
            body = {"courseState": "ARCHIVED"}
            if self.rename_on_archive and op.display_name:
                body["name"] = op.display_name
            return courses.patch(id=cid, updateMask=",".join(body), body=body, fields="id")
        if op.action == "add" and self.needs_invitation(op):
            role = "TEACHER" if op.role == "owner" else "STUDENT"
            body = {"courseId": cid, "userId": op.user_id, "role": role}
            return self.transport.service.invitations().create(body=body, fields="id,userId")
        if op.action == "add":
            return self._roster(op.role).create(courseId=cid, body={"userId": op.user_id}, fields="userId")
        if op.action == "remove":
            return self._roster(op.role).delete(courseId=cid, userId=op.user_id)
        raise ValueError(f"unknown op action {op.action!r}")

    def _create_body(self, op: Op) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": course_alias(op.container_key or ""),
            "name": op.display_name,
            "description": op.description,
            "ownerId": self.owner,
            "courseState": self.course_state,
        }
        if self.manage_section and op.section:
            body["section"] = op.section
        if self.manage_room and op.room:
            body["room"] = op.room
        return {k: v for k, v in body.items() if v not in (None, "")}

    def _update_fields(self, op: Op) -> tuple[list[str], dict[str, Any]]:
        """A field in the mask but not in the body is cleared, as an emptied template asks."""
        fields: dict[str, Any] = {"name": op.display_name, "description": op.description}
        if self.manage_section:
            fields["section"] = op.section
        if self.manage_room:
            fields["room"] = op.room
        if op.restore:  # archived by MIS Sync, back in the MIS: an archived course cannot be edited
            fields["courseState"] = "ACTIVE"
        return list(fields), {k: v for k, v in fields.items() if v not in (None, "")}

    # ---- sending --------------------------------------------------------------------------------------
    def _execute(
        self, calls: list[tuple[str, Any]], *, writes: bool, directory: bool = False
    ) -> dict[str, Any]:
        self.counters["requests"] += 1
        self.counters["inner_requests"] += len(calls)
        self.counters["write_requests"] += int(writes)
        if directory:
            return self.transport.execute(calls, api="directory")
        return self.transport.execute(calls)

    def send(self, ops: Sequence[Op]) -> dict[str, Outcome]:
        apis = {_is_directory(op) for op in ops}
        if len(apis) > 1:
            raise ValueError("a batch targets one API: Directory and Classroom ops cannot share one")
        calls = [(str(i), self.request(op)) for i, op in enumerate(ops)]
        answers = self._execute(
            calls, writes=any(op.action in WRITE_ACTIONS for op in ops), directory=apis == {True}
        )
        outcomes: dict[str, Outcome] = {}
        pages: dict[Op, Cursor] = {}
        checks: list[Op] = []
        for index, op in enumerate(ops):
            response, error = answers.get(str(index), (None, None))
            if str(index) not in answers:
                outcomes[op.id] = Outcome("retry")
            elif error is not None:
                outcomes[op.id] = self.failure(op, error)
                failed = outcomes[op.id].status == "failed" and outcomes[op.id].error in _CHECKED
                if failed and not _is_directory(op):
                    checks.append(op)  # a create that landed before, or a roster change on a lost course
            elif op.action == "read":
                done = self.read_answer(op, response, pages)
                if done is not None:
                    outcomes[op.id] = done
            else:
                outcomes[op.id] = self.success(op, response)
        if checks:
            outcomes.update(self.check_courses(checks, outcomes))
        if pages:
            outcomes.update(self.more_pages(pages))
        return outcomes

    def success(self, op: Op, response: Any) -> Outcome:
        if op.action == "resolve" and op.role == "account":
            remote = (response or {}).get("id")
            protected = bool((response or {}).get("isAdmin"))
            return Outcome("ok", remote_id=str(remote), protected=protected) if remote else Outcome("retry")
        if op.action in ("find", "create", "resolve", "create_user"):
            remote = (response or {}).get("id")
            return Outcome("ok", remote_id=str(remote)) if remote else Outcome("retry")
        if op.action == "add" and self.needs_invitation(op):  # the invitation names the user's id
            remote = (response or {}).get("userId")
            return Outcome("ok", remote_id=str(remote) if remote else None)
        return Outcome("ok")

    def failure(self, op: Op, error: Any) -> Outcome:
        from mis_sync.targets.classroom_transport import error_facts, is_throttle, retry_after

        status, google, _reason, name = error_facts(error)
        if is_throttle(error):
            return Outcome("retry", retry_after=retry_after(error), throttled=True)
        if status >= 500 or status == 408:
            return Outcome("retry")
        if status == 409 or google == "ALREADY_EXISTS":
            if op.action in ("add", "create_user"):  # an account that exists is looked up, adopted
                return Outcome("ok", noop=True)
            return Outcome("failed", error="ALREADY_EXISTS")
        if status == 404:
            if op.action in ("find", "resolve"):
                return Outcome("absent")
            if op.action in ("update", "archive", "read"):
                return Outcome("gone", error="NOT_FOUND")
            return Outcome("failed", error="NOT_FOUND")
        if op.action == "resolve" and op.role != "account" and google == "PERMISSION_DENIED":
            return Outcome("absent")  # userProfiles.get: "no profile exists with the requested ID"
        if op.action == "add" and google == "FAILED_PRECONDITION" and name not in REQUEST_ERRORS:
            return Outcome("pending", error="FAILED_PRECONDITION")  # the user's account is disabled
        if op.action == "archive" and name == "CourseNotModifiable":
            return Outcome("ok", noop=True)  # already archived (an earlier attempt landed)
        return Outcome("failed", error=_code(error))
