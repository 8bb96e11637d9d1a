"""Run the expectation suites with Great Expectations 1.x and turn failures into findings.

How: one ephemeral GE context per process (built on first use, then reused), one pandas data source,
one dataframe asset + whole-dataframe batch definition + validation definition per entity. Each run
validates the six frames from ``rules.derive_checks``: one batch per entity, every expectation of the
entity's suite in one ``ValidationDefinition.run`` (GE computes the suite's metrics together).
``run_many`` validates several extracts (a trust) in one batch per entity.

What GE sees and returns: the derived frames carry row numbers, MIS ids, flags and reason codes, no
personal column. The result format asks for ``unexpected_index_list`` keyed on the row number
(``_row``, rather than the MIS id, which may be missing or duplicated) with
``exclude_unexpected_values`` and no partial list; findings are built ONLY from those row numbers
(``check`` looks the record keys up in the extract), never from GE's sample or unexpected values.
GE's result objects are never logged, returned or kept by this module (each run's stored copy is
dropped from the in-memory results store), and GE's progress bars and INFO logging are switched off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from mis_sync.quality.rules import ROW
from mis_sync.quality.suites import build_suite, expectations_dir, load_specs

RESULT_COLUMNS: Final = ["entity", "field", "rule", "severity", "hint", "row"]
"""What the runner returns per failing row; ``row`` is the position in the extract's table (0-based).
``check.check_extract`` adds the record key (``mis_id``) from the extract."""

RESULT_FORMAT: Final[dict[str, Any]] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW],
    "exclude_unexpected_values": True,
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}

log = logging.getLogger(__name__)


class RuleError(RuntimeError):
    """An expectation could not be evaluated (a bug or a suite naming a column that does not exist)."""


def empty_results() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype="string") for c in RESULT_COLUMNS[:-1]})
    frame["row"] = pd.Series([], dtype="int64")
    return frame


@contextmanager
def _quiet_ge() -> Iterator[None]:
    """GE logs at INFO/WARNING about its own machinery; keep the task log to our own counts."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _index_rows(index_list: Any) -> np.ndarray:
    """Row numbers from GE's ``unexpected_index_list``: ``[{"_row": [..]}]`` when unexpected values are
    excluded, ``[{"_row": n, <column>: value}, ...]`` otherwise (only ``_row`` is read either way)."""
    rows: list[int] = []
    for item in index_list or ():
        value = item[ROW]
        if isinstance(value, list | tuple | np.ndarray):
            rows.extend(int(v) for v in value)
        else:
            rows.append(int(value))
    return np.asarray(rows, dtype=np.int64)


class SuiteRunner:
    """A reusable GE context with the six validation definitions (build once per process)."""

    def __init__(self, directory: Path | None = None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        started = time.perf_counter()
        with _quiet_ge():
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            source = context.data_sources.add_pandas("mis_sync")
            self.definitions: dict[str, Any] = {}
            for entity, spec in load_specs(directory).items():
                batch = source.add_dataframe_asset(entity).add_batch_definition_whole_dataframe(entity)
                suite = context.suites.add(build_suite(spec))
                self.definitions[entity] = context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"mis_sync_{entity}", data=batch, suite=suite)
                )
        self.context = context
        self.setup_seconds = time.perf_counter() - started
        self._lock = threading.Lock()

    def _run_entity(self, entity: str, frame: pd.DataFrame) -> list[pd.DataFrame]:
        definition = self.definitions[entity]
        with _quiet_ge():
            outcome = definition.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
        self._forget(definition)
        parts = []
        for result in outcome.results:
            meta = result.expectation_config.meta
            if (result.exception_info or {}).get("raised_exception"):
                raise RuleError(f"{entity}: rule {meta.get('rule')} could not be evaluated")
            if result.success:
                continue
            rows = _index_rows(result.result.get("unexpected_index_list"))
            if len(rows) != int(result.result.get("unexpected_count") or 0):
                raise RuleError(f"{entity}: rule {meta['rule']}: GE returned an incomplete index list")
            parts.append(
                pd.DataFrame(
                    {
                        "entity": entity,
                        "field": meta["field"],
                        "rule": meta["rule"],
                        "severity": meta["severity"],
                        "hint": meta["hint"],
                        "row": rows,
                    }
                )
            )
        return parts

    def _forget(self, definition: Any) -> None:
        """Drop the stored result from the in-memory results store (it grows with every run)."""
        store = getattr(definition, "_validation_results_store", None)
        backend = getattr(store, "_store_backend", None)
        data = getattr(backend, "_store", None)
        if isinstance(data, dict):
            data.clear()

    def run(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Failing rows for one extract's derived frames (``RESULT_COLUMNS``)."""
        return self.run_many([frames])[0]

    def run_many(self, batches: Sequence[dict[str, pd.DataFrame]]) -> list[pd.DataFrame]:
        """Findings for several extracts' derived frames, validated together: one GE batch per entity
        holding every extract's rows (row numbers made global, then mapped back). GE's fixed cost per
        expectation is paid once instead of once per school, which is what makes a 90-school trust
        fast. Rules must therefore be row-local: cross-row checks (duplicates, references) are
        computed per extract in ``rules`` and reach GE as flags."""
        parts: list[list[pd.DataFrame]] = [[] for _ in batches]
        with self._lock:
            for entity in self.definitions:
                frames = [batch[entity] for batch in batches if entity in batch]
                if len(frames) != len(batches):
                    raise ValueError(f"every batch needs a {entity} frame")
                offsets = np.cumsum([0, *(len(f) for f in frames)])
                if offsets[-1] == 0:
                    continue
                combined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
                if len(frames) > 1:
                    combined[ROW] = np.arange(offsets[-1], dtype=np.int64)
                for found in self._run_entity(entity, combined):
                    owner = np.searchsorted(offsets, found["row"].to_numpy(), side="right") - 1
                    found["row"] = found["row"].to_numpy() - offsets[owner]
                    for index in np.unique(owner):
                        parts[index].append(found[owner == index])
        return [_tidy(found) for found in parts]


def _tidy(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return empty_results()
    found = pd.concat(parts, ignore_index=True)
    out = found[RESULT_COLUMNS[:-1]].astype("string")
    out["row"] = found["row"].astype("int64")
    return out


_RUNNERS: dict[str, SuiteRunner] = {}
_RUNNERS_LOCK = threading.Lock()


def get_runner(directory: Path | None = None) -> SuiteRunner:
    """The process's runner for ``directory`` (default ``suites.expectations_dir()``), built once."""
    key = str(directory or expectations_dir())
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
        if runner is None:
            runner = _RUNNERS[key] = SuiteRunner(Path(key))
            log.debug("expectation suites ready in %.2f s", runner.setup_seconds)
    return runner


def run_suites(frames: dict[str, pd.DataFrame], directory: Path | None = None) -> pd.DataFrame:
    """Validate one extract's derived frames with the GE suites; return the failing rows."""
    return get_runner(directory).run(frames)


def run_suites_many(
    batches: Sequence[dict[str, pd.DataFrame]], directory: Path | None = None
) -> list[pd.DataFrame]:
    """Validate several extracts' derived frames in one GE batch per entity; failing rows per extract."""
    return get_runner(directory).run_many(batches)
