"""Inspectable in-memory state of the local fake Google Workspace (Classroom + Directory; a test
emulator only). One object is shared by :class:`~mis_sync.fakes.classroom_store.ClassroomStore` and
:class:`~mis_sync.fakes.directory_store.DirectoryStore`, because Classroom rosters refer to Directory
users."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class ClassroomState:
    """Inspectable state shared by the Classroom and Directory halves of the fake (one Workspace tenant).

    ``users`` are Directory user resources by numeric id; rosters are ordered lists of user ids.
    """

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    courses: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    students: dict[str, list[str]] = field(default_factory=dict)
    teachers: dict[str, list[str]] = field(default_factory=dict)
    invitations: dict[str, dict[str, Any]] = field(default_factory=dict)
    org_units: set[str] | None = None  # None: any orgUnitPath is accepted

    @property
    def me(self) -> str | None:
        """Id of the user ``"me"`` stands for: the first seeded administrator."""
        return next((uid for uid, u in self.users.items() if u.get("isAdmin")), None)

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        low = email.lower()
        for user in self.users.values():
            if user["primaryEmail"].lower() == low or low in (a.lower() for a in user.get("aliases", [])):
                return user
        return None

    def course_by_alias(self, alias: str) -> dict[str, Any] | None:
        cid = self.aliases.get(alias)
        return self.courses.get(cid) if cid else None

    def aliases_of(self, course_id: str) -> list[str]:
        return [a for a, cid in self.aliases.items() if cid == course_id]

    def forget_user(self, uid: str) -> None:
        """Drop a deleted user from rosters (not as owner: the course keeps a dangling owner) and invites."""
        for roster in self.students.values():
            if uid in roster:
                roster.remove(uid)
        for cid, roster in self.teachers.items():
            if uid in roster and self.courses[cid]["ownerId"] != uid:
                roster.remove(uid)
        self.invitations = {k: v for k, v in self.invitations.items() if v["userId"] != uid}


def profile(user: dict[str, Any]) -> dict[str, Any]:
    name = user.get("name", {})
    return {
        "id": user["id"],
        "name": {k: name[k] for k in ("givenName", "familyName", "fullName") if k in name},
        "emailAddress": user["primaryEmail"],
    }
