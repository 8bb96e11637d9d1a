"""Errors that mean "retrying will not help" (the DAG fails these at once) and the one that means
"retry later" (``SourceUnavailableError``, left to the task's retries with backoff).

Import-light (no pandas) so the DAG's retry policy can name them at parse time. Messages name files,
fields, rules, counts and MIS ids — never names, UPNs, dates of birth, emails or passwords.
"""

from __future__ import annotations


class MisSyncError(Exception):
    """Base of every error MIS Sync raises on purpose."""


class DataError(MisSyncError):
    """The MIS data (or its shape) is wrong; someone must fix it at the source."""


class ExtractError(DataError):
    """The source could not be read into a trustworthy extract: the run stops before plan."""


class ValidationStop(DataError):
    """The extract is not safe to plan from (empty, short, duplicated ids, unknown codes)."""


class SetupError(MisSyncError):
    """A Connection or setting is missing or wrong; an admin must fix it before the next run."""


class StalePlanError(MisSyncError):
    """The directory changed after the plan was made: re-run the DAG to plan again."""


class SourceUnavailableError(MisSyncError, ConnectionError):
    """The MIS (or an aggregator) kept answering 429/5xx or timing out after every retry: an outage,
    not bad data. Deliberately not a ``DataError``: the task's own retries, minutes apart, help here.
    The message names the source and endpoint."""
