"""In-memory state and Classroom v1 semantics of the local fake Google Classroom (a test emulator only).

Facts modelled (``shared/reference/targets.md`` §3 and the bundled ``classroom.v1`` discovery document):
aliases (``d:``/``p:``) as course ids, ``409 ALREADY_EXISTS`` on a repeated alias, the owner becoming a
teacher, default state ``PROVISIONED``, ``updateMask`` patches, newest-first course lists, ``@Name`` request
errors (``CourseMemberLimitReached``, ``CourseTeacherLimitReached``, ``CannotRemoveCourseOwner``,
``CourseNotModifiable``, ``IneligibleOwner``, ``InactiveCourseOwner``, ``CourseTitleCannotContainUrl``) and
one invitation per user and course. Choices where the documentation is silent:

* A user already in the course in **either** role gets ``409 ALREADY_EXISTS`` from students.create and
  teachers.create (the method docs: "if the user is already a student or teacher in the course").
* The member cap counts students + teachers (1,000); the teacher cap defaults to the stricter 20 of the
  two figures Google's help pages give (20 / 50).
* Only an ``ARCHIVED`` course is "not modifiable" (roster changes and patches other than ``courseState``).
* A suspended user cannot own a course or be added (``FAILED_PRECONDITION`` without a request-error
  name: the docs list "the requested user's account is disabled" apart from the named errors); courses
  may be deleted in any state (the delete method documents no precondition).
* ``userProfiles.get`` answers ``403 PERMISSION_DENIED`` for a user without a profile (documented) and
  for a user of another domain (the admin may not read it; ``foreign_profiles_visible`` turns that off).
* There is no caller identity: ``"me"`` is the first seeded admin (the domain-wide-delegation subject) and
  any caller may accept an invitation.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Callable
from typing import Any

from mis_sync.fakes.classroom_schema import (
    GoogleError,
    Query,
    Response,
    SchemaValidator,
    already_exists,
    discovery,
    invalid,
    not_found,
    page,
    precondition,
    q1,
)
from mis_sync.fakes.classroom_state import ClassroomState, now_rfc3339, profile

MASKABLE = frozenset(
    {
        "courseState", "description", "descriptionHeading", "name", "ownerId", "room", "section", "subject",
        "learningStandardSettings", "levels",
    }
)  # fmt: skip
UPDATABLE = ("name", "section", "descriptionHeading", "description", "room", "subject")
MAX_LEN = {"name": 750, "section": 2800, "descriptionHeading": 3600, "description": 30000, "room": 650,
           "levels": 999}  # fmt: skip
CREATE_STATES = frozenset({"ACTIVE", "PROVISIONED"})
PATCH_STATES = frozenset({"ACTIVE", "ARCHIVED", "PROVISIONED", "DECLINED"})
_ALIAS = re.compile(r"^[dp]:.+$", re.S)
_CAMEL = re.compile(r"_([a-z])")


def _no_profile() -> GoogleError:
    return GoogleError(403, "PERMISSION_DENIED", "The caller does not have permission")


def _not_modifiable() -> GoogleError:
    return precondition("CourseNotModifiable", "The course is not in a modifiable state.")


class ClassroomStore:
    """Classroom v1 resources on top of :class:`ClassroomState` (paths relative to ``/v1/``)."""

    def __init__(
        self, state: ClassroomState, *, seed: int = 0, page_size: int = 100, member_limit: int = 1000,
        teacher_limit: int = 20,
    ) -> None:  # fmt: skip
        self.state = state
        self.page_size, self.member_limit, self.teacher_limit = page_size, member_limit, teacher_limit
        self.schema = SchemaValidator(discovery("classroom", "v1"))
        self._rng = random.Random(seed * 7919 + 23)
        self.foreign_profiles_visible = False
        self.missing_user: Callable[[str], dict[str, Any] | None] = lambda _key: None
        """Last resort of :meth:`user` (the emulator's auto-created users); ``None``: 404."""

    # ---- lookups ----------------------------------------------------------------------------------------
    def user(self, key: str) -> dict[str, Any]:
        """A user by numeric id, email or ``"me"``; ``404 NOT_FOUND`` otherwise."""
        if key == "me":
            key = self.state.me or ""
        found = self.state.users.get(key) or (self.state.user_by_email(key) if "@" in key else None)
        found = found or self.missing_user(key)
        if found is None:
            raise not_found()
        return found

    def _profile_user(self, key: str) -> dict[str, Any]:
        """userProfiles.get answers ``403 PERMISSION_DENIED`` "if no profile exists with the requested ID"
        (its reference page), not 404; a profile in another domain is not the admin's to read either
        (unless ``foreign_profiles_visible``)."""
        try:
            user = self.user(key)
        except GoogleError:
            raise _no_profile() from None
        me = self.state.users.get(self.state.me or "")
        foreign = me is not None and _domain(user) != _domain(me)
        if foreign and not self.foreign_profiles_visible:
            raise _no_profile()
        return user

    def course(self, key: str) -> dict[str, Any]:
        found = self.state.courses.get(key) or self.state.course_by_alias(key)
        if found is None:
            raise not_found()
        return found

    def _size(self, query: Query, default: int) -> int:
        try:
            size = int(q1(query, "pageSize", "0") or 0)
        except ValueError:
            raise invalid("Invalid value for pageSize.") from None
        if size < 0:
            raise invalid("pageSize must not be negative.")
        return min(size or default, self.page_size)

    def _text(self, course: dict[str, Any]) -> None:
        name = course.get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid("name: must be between 1 and 750 characters.")
        for key, limit in MAX_LEN.items():
            if len(course.get(key) or "") > limit:
                raise invalid(f"{key}: must be at most {limit} characters.")
        if re.search(r"https?://", name, re.I):
            raise precondition("CourseTitleCannotContainUrl", "The course title cannot contain a URL.")

    # ---- routing ----------------------------------------------------------------------------------------
    def handle(self, method: str, parts: list[str], query: Query, body: Any) -> Response:
        """Dispatch one request; ``parts`` are the unquoted path segments after ``v1``."""
        head, rest = (parts[0], parts[1:]) if parts else ("", [])
        if head == "courses":
            return self._courses(method, rest, query, body)
        if head == "invitations":
            return self._invitations(method, rest, query, body)
        if head == "userProfiles" and len(rest) == 1 and method == "GET":
            return 200, {}, profile(self._profile_user(rest[0]))
        raise not_found("Method not found.")

    def _courses(self, method: str, rest: list[str], query: Query, body: Any) -> Response:
        if not rest:
            if method == "GET":
                return 200, {}, self._list_courses(query)
            if method == "POST":
                return 200, {}, self.create_course(body)
            raise not_found("Method not found.")
        course = self.course(rest[0])
        cid = course["id"]
        if len(rest) == 1:
            if method == "GET":
                return 200, {}, course
            if method in ("PATCH", "PUT"):
                fields = self.schema.clean(body, "Course", "course")
                if method == "PATCH":
                    mask = [_CAMEL.sub(lambda m: m[1].upper(), x) for x in q1(query, "updateMask").split(",")]
                else:  # update: all updatable fields; `levels` only when given; ownerId is read-only here
                    mask = [*UPDATABLE, *(k for k in ("courseState", "levels") if k in fields)]
                return 200, {}, self._patch(course, [m for m in mask if m], fields)
            if method == "DELETE":
                for alias in self.state.aliases_of(cid):
                    del self.state.aliases[alias]
                for store in (self.state.courses, self.state.students, self.state.teachers):
                    store.pop(cid, None)
                for iid in [k for k, v in self.state.invitations.items() if v["courseId"] == cid]:
                    del self.state.invitations[iid]
                return 200, {}, {}
        elif rest[1] == "aliases":
            return self._aliases(method, cid, rest[2:], query, body)
        elif rest[1] in ("students", "teachers"):
            return self._roster(method, course, rest[1], rest[2:], query, body)
        raise not_found("Method not found.")

    # ---- courses ----------------------------------------------------------------------------------------
    def create_course(self, body: Any) -> dict[str, Any]:
        fields = self.schema.clean(body, "Course", "course")
        alias = fields.pop("id", None)
        if alias is not None:
            self._check_alias(alias)
        owner_key = fields.pop("ownerId", None)
        if not owner_key:
            raise invalid("ownerId: must be specified.")
        self._text(fields)
        state = fields.get("courseState") or "COURSE_STATE_UNSPECIFIED"
        state = "PROVISIONED" if state == "COURSE_STATE_UNSPECIFIED" else state
        if state not in CREATE_STATES:
            raise invalid("courseState: a new course can only be ACTIVE or PROVISIONED.")
        owner = self.user(owner_key)
        if owner.get("suspended"):
            raise precondition("InactiveCourseOwner", "The course owner's account is disabled.")
        if alias is not None and alias in self.state.aliases:
            raise already_exists()
        cid = str(self._rng.randrange(10**11, 10**12))
        while cid in self.state.courses:
            cid = str(self._rng.randrange(10**11, 10**12))
        domain = owner["primaryEmail"].rsplit("@", 1)[-1]
        stamp = now_rfc3339()
        course = {
            "id": cid, **fields, "ownerId": owner["id"], "creationTime": stamp, "updateTime": stamp,
            "enrollmentCode": "".join(self._rng.choices("abcdefghjkmnpqrstuvwxyz23456789", k=7)),
            "courseState": state,
            "alternateLink": "https://classroom.google.com/c/" + base64.b64encode(cid.encode()).decode(),
            "teacherGroupEmail": f"classroom-{cid}-teachers@{domain}",
            "courseGroupEmail": f"classroom-{cid}@{domain}", "guardiansEnabled": False,
            "calendarId": f"classroom{cid}@group.calendar.google.com",
        }  # fmt: skip
        self.state.courses[cid] = course
        self.state.teachers[cid] = [owner["id"]]
        self.state.students[cid] = []
        if alias is not None:
            self.state.aliases[alias] = cid
        return course

    def _patch(self, course: dict[str, Any], mask: list[str], fields: dict[str, Any]) -> dict[str, Any]:
        if not mask:
            raise invalid("updateMask: an update mask is required.")
        for name in mask:
            if name not in MASKABLE:
                raise invalid(f"updateMask: invalid field '{name}'." if name.isidentifier() else "Bad mask.")
        new_state = fields.get("courseState") if "courseState" in mask else None
        archived = course["courseState"] == "ARCHIVED" and new_state in (None, "ARCHIVED")
        if archived and any(m != "courseState" for m in mask):
            raise _not_modifiable()
        if new_state is not None and new_state not in PATCH_STATES:
            raise invalid("courseState: invalid state transition.")
        updated = dict(course)
        for name in mask:
            if name == "ownerId":
                updated["ownerId"] = self._new_owner(course, fields.get("ownerId"))
            elif fields.get(name) in (None, ""):
                if name == "courseState":
                    raise invalid("courseState: must be specified.")
                updated.pop(name, None)
            else:
                updated[name] = fields[name]
        self._text(updated)
        updated["updateTime"] = now_rfc3339()
        course.clear()
        course.update(updated)
        return course

    def _new_owner(self, course: dict[str, Any], key: Any) -> str:
        if not key:
            raise invalid("ownerId: must be specified.")
        owner = self.user(key)
        if owner["id"] not in self.state.teachers[course["id"]]:
            raise precondition("IneligibleOwner", "The new owner must be a teacher of the course.")
        if owner.get("suspended"):
            raise precondition("InactiveCourseOwner", "The new owner's account is disabled.")
        return str(owner["id"])

    def _list_courses(self, query: Query) -> dict[str, Any]:
        states = set(query.get("courseStates", []))
        if states - PATCH_STATES - {"COURSE_STATE_UNSPECIFIED", "SUSPENDED"}:
            raise invalid("Invalid value for courseStates.")
        student = self.user(q1(query, "studentId"))["id"] if q1(query, "studentId") else None
        teacher = self.user(q1(query, "teacherId"))["id"] if q1(query, "teacherId") else None
        items = [
            c for c in reversed(self.state.courses.values())  # newest first, as documented
            if (not states or c["courseState"] in states)
            and (student is None or student in self.state.students[c["id"]])
            and (teacher is None or teacher in self.state.teachers[c["id"]])
        ]  # fmt: skip
        return page(items, query, "courses", size=self._size(query, self.page_size))

    # ---- aliases ----------------------------------------------------------------------------------------
    def _check_alias(self, alias: Any) -> None:
        if not isinstance(alias, str) or not _ALIAS.match(alias) or len(alias) > 256:
            raise invalid("Invalid alias: it must start with 'd:' or 'p:' and be at most 256 characters.")

    def _aliases(self, method: str, cid: str, rest: list[str], query: Query, body: Any) -> Response:
        if not rest and method == "POST":
            alias = self.schema.clean(body, "CourseAlias", "course_alias").get("alias")
            self._check_alias(alias)
            if alias in self.state.aliases:
                raise already_exists()
            self.state.aliases[str(alias)] = cid
            return 200, {}, {"alias": alias}
        if not rest and method == "GET":
            items = [{"alias": a} for a in self.state.aliases_of(cid)]
            return 200, {}, page(items, query, "aliases", size=self._size(query, self.page_size))
        if len(rest) == 1 and method == "DELETE":
            if self.state.aliases.get(rest[0]) != cid:
                raise not_found()
            del self.state.aliases[rest[0]]
            return 200, {}, {}
        raise not_found("Method not found.")

    # ---- rosters ----------------------------------------------------------------------------------------
    def add_member(
        self, course: dict[str, Any], role: str, key: Any, *, invited: bool = False
    ) -> dict[str, Any]:
        """Add ``key`` as ``"students"`` or ``"teachers"`` with the real API's checks, in the real order
        (``invited``: the user accepted an invitation, which is how users of another domain join)."""
        if not key:
            raise invalid("userId: must be specified.")
        if course["courseState"] == "ARCHIVED":
            raise _not_modifiable()
        user = self.user(str(key))
        uid, cid = user["id"], course["id"]
        if user.get("suspended"):
            raise precondition(None, "The requested user's account is disabled.")
        if not invited and _domain(user) != _domain(self.state.users.get(course["ownerId"], user)):
            # admins add users of their own domain directly; anyone else must be invited [V: the
            # students.create / teachers.create docs]; the error's exact wording is a guess [U]
            raise GoogleError(403, "PERMISSION_DENIED", "@CannotDirectlyAddUser The user must be invited.")
        students, teachers = self.state.students[cid], self.state.teachers[cid]
        if uid in students or uid in teachers:
            raise already_exists()
        if len(students) + len(teachers) >= self.member_limit:
            raise precondition("CourseMemberLimitReached", "The course member limit has been reached.")
        if role == "teachers" and len(teachers) >= self.teacher_limit:
            raise precondition("CourseTeacherLimitReached", "The course teacher limit has been reached.")
        (teachers if role == "teachers" else students).append(uid)
        return {"courseId": cid, "userId": uid, "profile": profile(user)}

    def _roster(
        self, method: str, course: dict[str, Any], role: str, rest: list[str], query: Query, body: Any
    ) -> Response:
        cid = course["id"]
        roster = self.state.students[cid] if role == "students" else self.state.teachers[cid]
        if not rest and method == "POST":
            fields = self.schema.clean(body, "Student" if role == "students" else "Teacher", role[:-1])
            return 200, {}, self.add_member(course, role, fields.get("userId"))
        if not rest and method == "GET":
            users = [self.state.users[u] for u in roster if u in self.state.users]
            items = [{"courseId": cid, "userId": u["id"], "profile": profile(u)} for u in users]
            return 200, {}, page(items, query, role, size=self._size(query, 30))
        if len(rest) == 1 and method in ("GET", "DELETE"):
            uid = self.user(rest[0])["id"]
            if uid not in roster:
                raise not_found()
            if method == "GET":
                return 200, {}, {"courseId": cid, "userId": uid, "profile": profile(self.state.users[uid])}
            if role == "teachers" and uid == course["ownerId"]:
                raise precondition("CannotRemoveCourseOwner", "The course owner cannot be removed.")
            roster.remove(uid)
            return 200, {}, {}
        raise not_found("Method not found.")

    # ---- invitations ------------------------------------------------------------------------------------
    def _invitations(self, method: str, rest: list[str], query: Query, body: Any) -> Response:
        if not rest and method == "POST":
            return 200, {}, self._invite(self.schema.clean(body, "Invitation", "invitation"))
        if not rest and method == "GET":
            if not (q1(query, "courseId") or q1(query, "userId")):
                raise invalid("At least one of course_id or user_id must be specified.")
            cid = self.course(q1(query, "courseId"))["id"] if q1(query, "courseId") else None
            uid = self.user(q1(query, "userId"))["id"] if q1(query, "userId") else None
            items = [
                i for i in self.state.invitations.values()
                if (cid is None or i["courseId"] == cid) and (uid is None or i["userId"] == uid)
            ]  # fmt: skip
            return 200, {}, page(items, query, "invitations", size=self._size(query, 500))
        if len(rest) == 1 and method == "POST" and rest[0].endswith(":accept"):
            inv = self.state.invitations.get(rest[0][: -len(":accept")])
            if inv is None:
                raise not_found()
            course = self.course(inv["courseId"])
            uid = inv["userId"]
            if inv["role"] != "OWNER" or uid not in self.state.teachers[course["id"]]:
                role = "students" if inv["role"] == "STUDENT" else "teachers"
                self.add_member(course, role, uid, invited=True)
            if inv["role"] == "OWNER":
                course["ownerId"] = uid
            del self.state.invitations[inv["id"]]
            return 200, {}, {}
        if len(rest) == 1 and method in ("GET", "DELETE"):
            inv = self.state.invitations.get(rest[0])
            if inv is None:
                raise not_found()
            if method == "DELETE":
                del self.state.invitations[rest[0]]
                return 200, {}, {}
            return 200, {}, inv
        raise not_found("Method not found.")

    def _invite(self, fields: dict[str, Any]) -> dict[str, Any]:
        role = fields.get("role")
        if not (fields.get("courseId") and fields.get("userId")) or role in (None, "COURSE_ROLE_UNSPECIFIED"):
            raise invalid("courseId, userId and role must be specified.")
        course = self.course(fields["courseId"])
        user = self.user(fields["userId"])
        cid, uid = course["id"], user["id"]
        if user.get("suspended"):
            raise precondition(None, "The requested user's account is disabled.")
        is_teacher, is_student = uid in self.state.teachers[cid], uid in self.state.students[cid]
        if (
            (role == "STUDENT" and (is_student or is_teacher))
            or (role == "TEACHER" and is_teacher)
            or (role == "OWNER" and course["ownerId"] == uid)
        ):
            raise precondition(None, "The user already has this role or a role with greater permissions.")
        if any(i["courseId"] == cid and i["userId"] == uid for i in self.state.invitations.values()):
            raise already_exists()
        iid = base64.urlsafe_b64encode(self._rng.randbytes(9)).decode()
        inv = {"id": iid, "userId": uid, "courseId": cid, "role": role}
        self.state.invitations[iid] = inv
        return inv


def _domain(user: dict[str, Any]) -> str:
    return str(user.get("primaryEmail", "")).rsplit("@", 1)[-1].lower()
