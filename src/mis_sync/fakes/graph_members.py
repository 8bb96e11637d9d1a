"""``$ref`` removals and user deletion in the local fake Graph (a test emulator only).

Facts modelled:

- removing someone who is not (or no longer) a member or owner: real Graph answers either
  404 ``Request_ResourceNotFound`` "Resource '<id>' does not exist or one of its queried
  reference-property objects are not present." (the usual answer) or 400 ``Request_BadRequest``
  "One or more removed object references do not exist for the following modified properties:
  'members'." (seen right after a removal made elsewhere). Both are public in integration code that
  talks to Graph (e.g. Canvas LMS's Microsoft sync specs); the project's reference also lists that
  text with a 404. The emulator picks one per request with its seeded RNG (``removal_errors``), so the
  client must handle all three;
- a missing class answers the same 404, naming the class id;
- education classes: "teachers must be members of both the teachers and members collections", and
  before removing a member "ensure that the educationUser you are removing is not a teacher"
  (Microsoft Graph docs, educationClass resource and educationclass-delete-members). What the service
  does when a client does not is undocumented, so the emulator varies it (``teacher_removals``):
  ``refuse`` answers 400; ``accept`` removes the member and records the broken state in
  ``state.teachers_removed_from_members``, for tests to assert it never happens;
- a deleted user leaves every group; its object id is never reused (a re-created account has a new id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mis_sync.fakes.graph_store import GraphError, not_found

if TYPE_CHECKING:
    from mis_sync.fakes.graph_store import GraphStore

REMOVAL_ERRORS = ("not_found", "not_there", "not_there_404")
TEACHER_REMOVALS = ("refuse", "accept")


def removal_error(store: GraphStore, rel: str, uid: str) -> GraphError:
    """Graph's answer to removing ``uid`` from ``rel`` where it is not: one of the real variants."""
    variant = store.pick(store.removal_errors)
    if variant in ("not_there", "not_there_404"):
        status, code = (
            (400, "Request_BadRequest") if variant == "not_there" else (404, "Request_ResourceNotFound")
        )
        return GraphError(
            status,
            code,
            f"One or more removed object references do not exist for the following modified properties: "
            f"'{rel}'.",
        )
    return not_found(uid)


def remove_ref(store: GraphStore, gid: str, rel: str, uid: str, *, label: str, education: bool) -> None:
    """``DELETE …/{rel}/{uid}/$ref`` (``rel`` members | owners; ``label`` the name the client used)."""
    bucket = (store.state.members if rel == "members" else store.state.owners).setdefault(gid, [])
    if uid not in bucket:
        raise removal_error(store, label, uid)
    if education and rel == "members" and uid in store.state.owners.get(gid, []):
        if store.pick(store.teacher_removals) == "refuse":
            raise GraphError(
                400,
                "Request_BadRequest",
                "The user is a teacher of this class: remove it from the class teachers before removing "
                "it from the class members (fake Graph: enforces the documented precondition).",
            )
        store.state.teachers_removed_from_members.append((gid, uid))
    bucket.remove(uid)


def delete_user(store: GraphStore, uid: str) -> None:
    """Delete a user: gone from the tenant and from every class and group."""
    store.state.users.pop(uid, None)
    for bucket in [*store.state.members.values(), *store.state.owners.values()]:
        while uid in bucket:
            bucket.remove(uid)
