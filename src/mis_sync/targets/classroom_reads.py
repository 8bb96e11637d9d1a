"""The Classroom adapter's follow-up calls: further roster pages and the course checks behind an
ambiguous answer. Split from :mod:`mis_sync.targets.classroom` to keep both short.

Every follow-up batch is paced like the engine's own batches (the engine hands its pacer over with
``attach_pacing``): Google counts each call against the same per-user quota.

A roster read keeps its place: when a later page fails, the read is handed back to the engine as
``retry`` with its cursor (items so far, next page token) kept, so the engine's retry asks for the
failed page again, not page 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mis_sync.targets.engine import Op, Outcome, TransientError

MAX_BATCH = 50
"""Classroom's documented maximum per batch (the library would allow 1,000)."""
Pacer = Callable[[int], None]
Cursor = tuple[list[str], str]
"""A read's items so far and the token of the page to ask for next."""


class FollowUps:
    """Mixin for :class:`~mis_sync.targets.classroom.ClassroomAdapter` (which provides the requests)."""

    _pacer: Pacer | None = None
    _cursors: dict[Op, Cursor]

    def attach_pacing(self, pace: Pacer) -> None:
        self._pacer = pace

    def _paced(self, calls: int) -> None:
        if self._pacer is not None:
            self._pacer(calls)

    # provided by the adapter
    def _execute(self, calls: list[tuple[str, Any]], *, writes: bool, directory: bool = False) -> Any: ...
    def read_request(self, op: Op, page_token: str | None = None) -> Any: ...
    def failure(self, op: Op, error: Any) -> Outcome: ...
    def course_request(self, op: Op) -> Any: ...

    @staticmethod
    def roster_field(op: Op) -> str:
        return "teachers" if op.role == "owner" else "students"

    def page_token(self, op: Op) -> str | None:
        """Where a read resumes: the page that failed last time, or the first."""
        cursor = self._cursors.get(op)
        return cursor[1] if cursor else None

    def read_answer(self, op: Op, response: Any, pages: dict[Op, Cursor]) -> Outcome | None:
        """Fold one page into the read; ``None`` while more pages are due (they go into ``pages``)."""
        items = [*self._cursors.pop(op, ([], ""))[0]]
        items.extend(str(m["userId"]) for m in (response or {}).get(self.roster_field(op), []))
        token = (response or {}).get("nextPageToken")
        if token:
            pages[op] = (items, str(token))
            return None
        return Outcome("ok", items=tuple(items))

    def more_pages(self, pages: dict[Op, Cursor]) -> dict[str, Outcome]:
        """Further roster pages, batched and paced. A page that fails hands the read back to the engine
        (``retry``) with its cursor kept, so the retry resumes from that page."""
        out: dict[str, Outcome] = {}
        while pages:
            ops = list(pages)
            answered: dict[str, Outcome] = {}

            def settle(op: Op, response: Any, error: Any) -> Outcome:
                items, token = pages.pop(op)
                if error is not None:
                    self._cursors[op] = (items, token)
                    return self.failure(op, error)
                self._cursors[op] = (items, token)
                done = self.read_answer(op, response, pages)
                return done if done is not None else Outcome("retry", error="more")

            def build(op: Op) -> Any:
                return self.read_request(op, pages[op][1])

            def lost(op: Op, outcome: Outcome) -> Outcome:
                self._cursors[op] = pages.pop(op)
                return outcome

            self.follow_up(ops, build, settle, answered, unanswered=lost)
            out.update({op_id: o for op_id, o in answered.items() if o.error != "more"})
        return out

    def check_courses(self, ops: list[Op], first: dict[str, Outcome]) -> dict[str, Outcome]:
        """``courses.get`` for creates answered ALREADY_EXISTS (→ its id: made earlier, a no-op now) and
        roster changes answered NOT_FOUND (the course is there → the user was not / is gone: a no-op for
        a removal; it is not → ``gone``)."""
        out: dict[str, Outcome] = {}

        def settle(op: Op, response: Any, error: Any) -> Outcome:
            if error is not None:
                again = self.failure(Op(op.id, "find"), error)
                if again.status == "absent":  # the course is not there
                    return Outcome("retry") if op.action == "create" else Outcome("gone", error="NOT_FOUND")
                return again if again.status == "retry" else first[op.id]
            if op.action == "create":
                return Outcome("ok", remote_id=str((response or {}).get("id")), noop=True)
            return Outcome("ok", noop=True) if op.action == "remove" else first[op.id]

        self.follow_up(ops, self.course_request, settle, out)
        return out

    def follow_up(
        self,
        ops: list[Op],
        build: Callable[[Op], Any],
        settle: Callable[[Op, Any, Any], Outcome],
        out: dict[str, Outcome],
        *,
        unanswered: Callable[[Op, Outcome], Outcome] | None = None,
    ) -> None:
        keep = unanswered or (lambda _op, outcome: outcome)
        for start in range(0, len(ops), MAX_BATCH):
            part = ops[start : start + MAX_BATCH]
            self._paced(len(part))
            try:
                answers = self._execute([(str(i), build(op)) for i, op in enumerate(part)], writes=False)
            except TransientError as exc:
                for op in part:
                    retry = Outcome("retry", retry_after=exc.retry_after, throttled=exc.throttled)
                    out[op.id] = keep(op, retry)
                continue
            for i, op in enumerate(part):
                if str(i) in answers:
                    out[op.id] = settle(op, *answers[str(i)])
                else:
                    out[op.id] = keep(op, Outcome("retry"))
