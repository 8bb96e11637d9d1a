"""Data quality: UK school rules as Great Expectations suites, quarantine, circuit breakers, reports.

Public API::

    check_extract(extract, *, country="england", last_counts=None, limits=None, as_of=None)
        -> QualityResult(clean_extract, findings, counts, summary, quarantined)
    check_extracts({slug: extract}, ...) -> {slug: QualityResult | ValidationStop}   # a trust at once
    QualityStop(ValidationStop): the error-rate breaker; ``.findings`` and ``.summary`` for the report
    report.write_report(folder, findings, establishment_id=..., run_id=..., summary=...)
        -> findings.csv + findings.html in the run folder
    history.update_history(engine, establishment_id, run_id, findings, now) -> findings + status

Modules: ``rules`` (derived check columns), ``suites`` (JSON suites in ``include/expectations``),
``runner`` (Great Expectations), ``breakers``, ``quarantine``, ``report``, ``history``, ``schema``
(the ``directory_quality_findings`` table), ``check`` (``check_extract``).

Importing the package is cheap: the names above load on first use (PEP 562), and Great Expectations
only on the first check, so the Alembic environment and DAG files can import ``quality.schema``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mis_sync.lazy import lazy_attributes

# Importing Great Expectations logs ~214 "Skipping registering function …" lines at INFO (its public-API
# docs registry). With Airflow's INFO task logging they flood every validate log, and under the CLI they
# reach stdout and break ``--json``. Set before any module of this package imports GE.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

if TYPE_CHECKING:
    from mis_sync.quality.breakers import QualityStop
    from mis_sync.quality.check import (
        FINDING_COLUMNS,
        QualityResult,
        check_extract,
        check_extracts,
        summarise,
    )
    from mis_sync.quality.quarantine import QUARANTINE_COLUMNS

_LAZY = {
    "FINDING_COLUMNS": "mis_sync.quality.check",
    "QualityResult": "mis_sync.quality.check",
    "check_extract": "mis_sync.quality.check",
    "check_extracts": "mis_sync.quality.check",
    "summarise": "mis_sync.quality.check",
    "QUARANTINE_COLUMNS": "mis_sync.quality.quarantine",
    "QualityStop": "mis_sync.quality.breakers",
}

__all__ = [
    "FINDING_COLUMNS",
    "QUARANTINE_COLUMNS",
    "QualityResult",
    "QualityStop",
    "check_extract",
    "check_extracts",
    "summarise",
]


__getattr__ = lazy_attributes(__name__, _LAZY)
