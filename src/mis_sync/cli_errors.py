"""How ``misync`` ends: documented exit codes, and a one-line error with a hint instead of a traceback.

Why: the CLI is run by data managers and IT admins, not developers. A traceback hides the one line that
says what to fix, and can carry values from deep in a library. Every failure prints
``misync: error: <what>`` and ``misync: hint: <what to do>`` on stderr and exits with a code from
``EXIT_CODES``; ``MISYNC_DEBUG=1`` adds the traceback for a bug report.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Final, TextIO

from mis_sync.config import ConfigError
from mis_sync.errors import (
    DataError,
    ExtractError,
    MisSyncError,
    SetupError,
    SourceUnavailableError,
    StalePlanError,
    ValidationStop,
)

OK: Final = 0
FINDINGS: Final = 1
USAGE: Final = 2
SOURCE_UNAVAILABLE: Final = 3
UNEXPECTED: Final = 4
HELD: Final = 5
INTERRUPTED: Final = 130

EXIT_CODES: Final[dict[int, str]] = {
    OK: "success",
    FINDINGS: "the command ran and found something to act on: check-config found a broken file, check-data "
    "found errors or a circuit breaker stopped the data, report / link-report have nothing recorded yet, "
    "passwords: the school issues none",
    USAGE: "the command could not run on its input: a bad argument or establishment file, a missing or "
    "wrong connection or key, an export that cannot be read (check-data's extract errors), a stopped "
    "run (circuit breaker, stale plan)",
    SOURCE_UNAVAILABLE: "the MIS or the directory database did not answer: try again later",
    UNEXPECTED: "an unexpected error (a bug): rerun with MISYNC_DEBUG=1 and report the traceback",
    HELD: "run: the safety brake held destructive changes for approval (the rest was applied); check the "
    "MIS export, then re-run with --approve-suspensions",
    INTERRUPTED: "interrupted (Ctrl-C)",
}
"""Every exit code ``misync`` uses, as the README and ``misync --help`` list them."""


def exit_codes_help() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())


def _database_error() -> tuple[type[BaseException], ...]:
    try:
        from sqlalchemy.exc import OperationalError
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return ()
    return (OperationalError,)


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(exit code, what went wrong, hint) for an exception, without its traceback."""
    name = type(exc).__name__
    message = " ".join(str(exc).split()) or name
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted", "nothing half-applied: apply runs in one transaction; run again"
    if isinstance(exc, ConfigError):
        return USAGE, message, "fix the establishment file; 'misync check-config FILE' checks it"
    if isinstance(exc, SourceUnavailableError):
        return SOURCE_UNAVAILABLE, message, "the source is down or throttling; try again later"
    if isinstance(exc, _database_error()):
        first = message.split(" (Background")[0][:300]
        return (
            SOURCE_UNAVAILABLE,
            f"the directory database could not be reached ({name}): {first}",
            "check the directory connection (or --directory-url) and that the database is running",
        )
    if isinstance(exc, ExtractError):
        return USAGE, message, "check the export or connection named above; 'misync sources' lists formats"
    if isinstance(exc, ValidationStop):
        return USAGE, message, "fix the data in the MIS (see the findings report), then run again"
    if isinstance(exc, DataError):
        return USAGE, message, "fix the data at the source, then run again"
    if isinstance(exc, SetupError):
        return USAGE, message, "fix the connection or setting named above, then run again"
    if isinstance(exc, StalePlanError):
        return USAGE, message, "the directory changed since the plan: run again to plan afresh"
    if isinstance(exc, MisSyncError | ValueError | OSError):
        return USAGE, f"{name}: {message}", "check the arguments and files named above ('misync --help')"
    return UNEXPECTED, f"unexpected {name}", "a bug: rerun with MISYNC_DEBUG=1 and report the traceback"


def run_guarded(command: Callable[[], int], stderr: TextIO | None = None) -> int:
    """Run a command; on any exception print the error and hint lines and return its exit code."""
    err = stderr or sys.stderr
    try:
        return int(command())
    except BrokenPipeError:
        # the reader stopped early (``misync report | head``): it has what it wanted, so no error; the
        # rest of the output goes nowhere, so Python's own flush at exit cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK
    except (Exception, KeyboardInterrupt) as exc:
        code, what, hint = classify(exc)
        print(f"misync: error: {what}", file=err)
        print(f"misync: hint: {hint}", file=err)
        if os.environ.get("MISYNC_DEBUG") == "1":
            traceback.print_exception(exc, file=err)
        return code


__all__ = ["EXIT_CODES", "classify", "exit_codes_help", "run_guarded"]
