"""Delta extracts: the last snapshot plus what changed since must equal a full extract.

Sources such as Wonde (``updated_after`` + ``/deletions``) and Groupcall Xporter (``changedRows``
changesets) can send only what changed. A connector turns that into a ``ChangeSet`` of canonical rows;
``apply_changes`` (pure pandas) merges it into the previous snapshot. The result is a complete
``Extract``, so validation, planning and apply never know a delta was used — and the safety brakes
compare complete snapshots, as they must (a delta of ten rows is not "the school shrank by 99 %").

A ``ChangeSet`` says, per canonical entity:

- ``upserts``: rows that are new or changed (complete rows), replacing rows with the same key;
- ``deletes``: keys (a frame of the entity's key columns) the source reported deleted;
- ``scopes``: ``(owner column, owner ids)``: every previous row of these owners is replaced by the
  upserts (a group re-sent with its whole member list; a pupil re-sent with all their contacts);
- ``complete``: entities whose upserts are the whole table (small tables re-read in full each run).

Upserts win over deletes of the same key (a record that moved, e.g. a pupil to the leavers list).
Rows of children whose parent is gone — memberships of a deleted group, pupil or staff member;
relationships of a deleted pupil or contact — go too, as they would from a full extract.

``DeltaConnector`` is the interface the pipeline uses (see its docstring), with ``DeltaState`` (the
previous snapshot and the source's cursor) and ``save_delta_state`` / ``load_delta_state``.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from mis_sync import storage
from mis_sync.connectors.base import Connector, ExtractError
from mis_sync.model import ENTITIES, Entity, Extract, no_source_findings


@dataclass
class ChangeSet:
    snapshot_at: pd.Timestamp
    upserts: dict[str, pd.DataFrame] = field(default_factory=dict)
    deletes: dict[str, pd.DataFrame] = field(default_factory=dict)
    scopes: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    complete: frozenset[str] = frozenset()
    source_findings: pd.DataFrame = field(default_factory=no_source_findings)
    """What the connector noticed in this read (``Extract.source_findings``): the merged extract's."""

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows upserted and keys deleted per entity: ids and counts only, safe for logs and XCom."""
        out: dict[str, dict[str, int]] = {}
        for name in ENTITIES:
            upserts, deletes = self.upserts.get(name), self.deletes.get(name)
            counts = {
                "upserted": 0 if upserts is None else len(upserts),
                "deleted": 0 if deletes is None else len(deletes),
            }
            if any(counts.values()) or name in self.complete:
                out[name] = counts
        return out


def _keys(frame: pd.DataFrame, entity: Entity) -> pd.Index:
    columns = list(entity.key)
    if len(columns) == 1:
        return pd.Index(frame[columns[0]].astype("string"))
    return pd.MultiIndex.from_frame(frame[columns].astype("string"))


def canonical_order(frame: pd.DataFrame, entity: Entity) -> pd.DataFrame:
    """Rows sorted by the entity's key, so a full and a merged extract are equal row for row."""
    return frame.sort_values(list(entity.key), kind="stable", ignore_index=True)


def _orphans(name: str, frame: pd.DataFrame, gone: dict[str, pd.Index]) -> pd.Series:
    """Rows of a child table whose parent row has gone (deleted, or absent from a complete table)."""
    drop = pd.Series(False, index=frame.index)
    if name == "memberships":
        drop |= frame["group_id"].isin(gone["groups"])
        drop |= (frame["role"] == "pupil") & frame["person_id"].isin(gone["pupils"])
        drop |= (frame["role"] == "teacher") & frame["person_id"].isin(gone["staff"])
    elif name == "relationships":
        drop |= frame["contact_id"].isin(gone["contacts"]) | frame["pupil_id"].isin(gone["pupils"])
    return drop.fillna(False).astype(bool)


def apply_changes(previous: Extract, changes: ChangeSet, *, source: str | None = None) -> Extract:
    """The previous snapshot with ``changes`` merged in (see the module docstring for the rules)."""
    tables: dict[str, pd.DataFrame] = {}
    gone: dict[str, pd.Index] = {}
    for name, entity in ENTITIES.items():
        prev = previous.tables[name]
        upserts = changes.upserts.get(name)
        new_rows = entity.empty_frame() if upserts is None else entity.coerce(upserts)
        if name in changes.complete:
            merged = new_rows.drop_duplicates(list(entity.key), keep="last")
        else:
            prev_keys = _keys(prev, entity)
            drop = prev_keys.isin(_keys(new_rows, entity))
            if name in changes.deletes:
                drop |= prev_keys.isin(_keys(changes.deletes[name], entity))
            if name in changes.scopes:
                column, owners = changes.scopes[name]
                drop |= prev[column].isin(owners).fillna(False).to_numpy(dtype=bool)
            parts = [prev[~drop], new_rows]
            merged = pd.concat([p for p in parts if len(p)] or [new_rows], ignore_index=True)
            merged = merged.drop_duplicates(list(entity.key), keep="last")
        merged = merged[~_orphans(name, merged, gone).to_numpy()]
        if len(entity.key) == 1:
            gone[name] = pd.Index(prev[entity.key[0]]).difference(pd.Index(merged[entity.key[0]]))
        tables[name] = canonical_order(entity.coerce(merged), entity)
    return Extract(
        tables=tables,
        snapshot_at=changes.snapshot_at,
        source=source or previous.source,
        source_findings=changes.source_findings,
    )


def changes_between(old: Extract, new: Extract) -> ChangeSet:
    """The row-level ``ChangeSet`` that turns ``old`` into ``new`` (what changed, for reports and tests).

    ``apply_changes(old, changes_between(old, new))`` equals ``new`` in canonical order.
    """
    changes = ChangeSet(snapshot_at=new.snapshot_at)
    for name, entity in ENTITIES.items():
        before, after = entity.coerce(old.tables[name]), entity.coerce(new.tables[name])
        old_hash = pd.Series(
            pd.util.hash_pandas_object(before, index=False).to_numpy(), index=_keys(before, entity)
        )
        new_hash = pd.Series(
            pd.util.hash_pandas_object(after, index=False).to_numpy(), index=_keys(after, entity)
        )
        same = new_hash.index.isin(old_hash.index)
        same[same] = old_hash.reindex(new_hash.index[same]).to_numpy() == new_hash[same].to_numpy()
        if (~same).any():
            changes.upserts[name] = after[~same].reset_index(drop=True)
        removed = ~old_hash.index.isin(new_hash.index)
        if removed.any():
            changes.deletes[name] = before.loc[removed, list(entity.key)].reset_index(drop=True)
    return changes


# --- the interface the pipeline uses ----------------------------------------------------------------


class CursorError(ExtractError):
    """The stored cursor cannot be used (unreadable, or lacks a token): the connector reads in full."""


@dataclass(frozen=True)
class DeltaState:
    """What a delta needs from the previous run: the complete snapshot it produced, and the source's
    cursor (opaque strings: Wonde's ``updated_after`` time, Xporter's ``changedRows`` tokens, plus the
    mapping digest). Store both together or neither (``save_delta_state``)."""

    snapshot: Extract
    cursor: dict[str, str]
    source: str
    deltas_since_full: int = 0


@dataclass(frozen=True)
class DeltaResult:
    extract: Extract
    """Always complete: a full read, or the previous snapshot with the changes merged in."""
    state: DeltaState
    """To store for the next run (after the extract stage; it describes the source, not the directory)."""
    mode: Literal["full", "delta"]
    reason: str
    """Why a full read was made ("" for a delta): no state, requested, mapping changed, chain too long…"""
    changes: dict[str, dict[str, int]]


class DeltaConnector(Connector):
    """A connector that can read only what changed since its last extract.

    Pipeline use (the plain ``extract()`` always reads in full)::

        connector = connector_for(mis.type, conn, mis.options)
        if isinstance(connector, DeltaConnector):
            state = None if full_sync else load_delta_state(state_folder)
            result = connector.extract_delta(state, full=full_sync)
            extract = result.extract           # complete, whatever the mode
            save_delta_state(state_folder, result.state)
        else:
            extract = connector.extract(full=full_sync)

    A full read is made instead of a delta when there is no usable state: none stored, from another
    source type, taken under another mapping or request options (``spec_digest``; Xporter would
    report spurious deletes), a cursor ``read_changes`` cannot use (``CursorError``), or after
    ``full_after_deltas`` deltas in a row (option, default 6: a nightly school gets a full read
    weekly, healing anything a delta can miss). ``DeltaResult.reason`` says which.
    """

    @abstractmethod
    def spec_digest(self) -> str:
        """Changes whenever the mapping or request options change (then a cursor is not reused)."""

    @abstractmethod
    def read_full(self) -> tuple[Extract, dict[str, str]]:
        """A complete extract and the cursor to continue from."""

    @abstractmethod
    def read_changes(self, state: DeltaState) -> tuple[ChangeSet, dict[str, str]]:
        """What changed since ``state.cursor``, and the cursor to continue from."""

    def finish(self, extract: Extract) -> Extract:
        """Derive whole-snapshot columns (after a merge too) and put rows in canonical order."""
        tables = {n: canonical_order(t, ENTITIES[n]) for n, t in extract.tables.items()}
        return replace(extract, tables=tables)

    def extract(self, *, full: bool = True) -> Extract:
        return self.extract_delta(None, full=True).extract

    def full_reason(self, state: DeltaState | None) -> str | None:
        if state is None:
            return "no previous delta state"
        if state.source != self.type:
            return f"the previous state is from source {state.source!r}"
        if state.cursor.get("spec") != self.spec_digest():
            return "the field mapping or request options changed since the previous extract"
        limit = int(self.options.get("full_after_deltas", 6))
        if state.deltas_since_full >= limit:
            return f"{state.deltas_since_full} deltas since the last full extract (limit {limit})"
        return None

    def extract_delta(self, state: DeltaState | None, *, full: bool = False) -> DeltaResult:
        reason = "a full extract was requested" if full else self.full_reason(state)
        if reason is None and state is not None:
            try:
                changes, cursor = self.read_changes(state)
            except CursorError as exc:
                reason = str(exc)
            else:
                extract = self.finish(apply_changes(state.snapshot, changes, source=self.type))
                cursor = {**cursor, "spec": self.spec_digest()}
                new_state = DeltaState(extract, cursor, self.type, state.deltas_since_full + 1)
                return DeltaResult(extract, new_state, "delta", "", changes.counts())
        extract, cursor = self.read_full()
        extract = self.finish(extract)
        new_state = DeltaState(extract, {**cursor, "spec": self.spec_digest()}, self.type, 0)
        return DeltaResult(extract, new_state, "full", reason or "", {})


def save_delta_state(folder: storage.StoragePath, state: DeltaState) -> None:
    """Write the snapshot (Parquet) then ``delta.json``; the JSON, written last, marks it complete."""
    storage.write_extract(folder, state.snapshot)
    payload: dict[str, Any] = {
        "source": state.source,
        "cursor": state.cursor,
        "deltas_since_full": state.deltas_since_full,
        "snapshot_at": state.snapshot.snapshot_at.isoformat(),
    }
    storage.write_json(folder, "delta.json", payload)


def load_delta_state(folder: storage.StoragePath) -> DeltaState | None:
    """The stored state, or None when there is none or it is torn (then the run reads in full)."""
    if not (folder / "delta.json").exists():
        return None
    meta = storage.read_json(folder, "delta.json")
    snapshot = storage.read_extract(folder)
    if snapshot.snapshot_at != pd.Timestamp(meta["snapshot_at"]):
        return None
    return DeltaState(
        snapshot=snapshot,
        cursor={str(k): str(v) for k, v in meta["cursor"].items()},
        source=str(meta["source"]),
        deltas_since_full=int(meta.get("deltas_since_full", 0)),
    )
