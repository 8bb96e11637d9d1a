"""What lets an app crawl a trust's directory quickly: counts and page positions remembered per
directory state.

Why: ``X-Total-Count`` needs a COUNT over the whole filtered collection (0.5 s over a trust's ~460k
enrollments) and ``offset`` makes the database step over every earlier row, so a crawl page by page
costs quadratic time. Both depend only on which rows exist, and rows change only when a sync applies
a change, which bumps the establishment's revision. So counts are kept, and where the previous page
ended (its last row's sort key), per query and per directory state (the establishments' revisions):
the next page of a crawl then starts from that key (a keyset seek) instead of stepping over the
earlier rows. Any apply changes the state and so retires everything remembered before it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import Connection, func, select

from mis_sync.directory.schema import SyncState

MAX_ENTRIES = 4096


def directory_state(connection: Connection) -> tuple[int, int]:
    """Changes whenever any establishment's directory changes (revisions only ever go up)."""
    table = SyncState.__table__
    row = connection.execute(select(func.count(), func.coalesce(func.sum(table.c.revision), 0))).one()
    return int(row[0]), int(row[1])


class PageCache:
    """A bounded LRU map, safe across the server's worker threads."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: Any) -> Any | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
