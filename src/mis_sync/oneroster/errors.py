"""The OneRoster 1.2 error payload (``imsx_StatusInfo``) and the exception that carries it.

Why one exception type: every refusal (bad filter, unknown object, missing scope, rate limit) must
reach the app as the spec's payload with the spec's status code, never as a framework default or a 500.
Descriptions name the parameter or field, never a value from the request (a filter value may be a
child's name).
"""

from __future__ import annotations

from typing import Any


class OneRosterError(Exception):
    """A request the service refuses: HTTP status, the spec's codeMinor value and a description."""

    def __init__(
        self, status: int, code_minor: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code_minor = code_minor
        self.description = description
        self.headers = headers or {}


def status_info(code_minor: str, description: str) -> dict[str, Any]:
    """The ``imsx_StatusInfo`` body of a failed request."""
    return {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": code_minor}
            ]
        },
    }


def bad_request(code_minor: str, description: str) -> OneRosterError:
    return OneRosterError(400, code_minor, description)


def not_found(kind: str) -> OneRosterError:
    return OneRosterError(404, "unknownobject", f"no {kind} with that sourcedId")


def unauthorised(description: str = "a valid bearer token is required") -> OneRosterError:
    return OneRosterError(401, "unauthorisedrequest", description, {"WWW-Authenticate": "Bearer"})


def forbidden(description: str) -> OneRosterError:
    return OneRosterError(403, "forbidden", description)
