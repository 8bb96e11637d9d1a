"""Which sources MIS Sync reads, and what each provides. Import-light: safe at DAG parse time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceEntry:
    type: str
    title: str
    implementation: str
    """``module:Class`` of the connector, imported only when a task runs."""
    provides: frozenset[str]
    delta: bool = False


_ALL = frozenset({"pupils", "staff", "contacts", "groups", "memberships", "relationships"})

CATALOGUE: dict[str, SourceEntry] = {
    entry.type: entry
    for entry in (
        SourceEntry(
            type="file_drop",
            title="MIS Sync file drop (a folder of CSV files; see docs/file-drop-format.md)",
            implementation="mis_sync.connectors.file_drop:FileDropConnector",
            provides=_ALL,
        ),
        SourceEntry(
            type="sds_uk",
            title=(
                "Microsoft School Data Sync, SDS UK CSV "
                "(School/Section/Student/StudentEnrollment/Teacher/TeacherRoster)"
            ),
            implementation="mis_sync.connectors.sds:SdsUkConnector",
            provides=frozenset({"pupils", "staff", "groups", "memberships"}),
        ),
        SourceEntry(
            type="sds_v2_1",
            title="Microsoft School Data Sync v2.1 CSV (orgs, users, roles, classes, enrollments, …)",
            implementation="mis_sync.connectors.sds:SdsV21Connector",
            provides=_ALL,
        ),
        SourceEntry(
            type="oneroster_csv",
            title="OneRoster 1.1 CSV (bulk)",
            implementation="mis_sync.connectors.oneroster_csv:OneRosterCsvConnector",
            provides=_ALL,
        ),
    )
}


def registered_types() -> frozenset[str]:
    return frozenset(CATALOGUE)
