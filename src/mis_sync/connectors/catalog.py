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
    group_kinds: frozenset[str] = frozenset({"year", "registration", "teaching"})
    """The group kinds the source has; a kind left out is never synced from it (not "none today")."""
    notes: str = ""
    """Why the source provides less than the rest (for the task log, reports and docs); no secrets."""

    def missing_group_kinds(self) -> frozenset[str]:
        return frozenset({"year", "registration", "teaching"}) - self.group_kinds


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
        SourceEntry(
            type="sims_commandreporter",
            title="SIMS 7 CommandReporter XML reports (students, staff, contacts, groups)",
            implementation="mis_sync.connectors.sims_commandreporter:SimsCommandReporterConnector",
            provides=_ALL,
        ),
        SourceEntry(
            type="isams_batch",
            title="iSAMS Batch API XML (over HTTP with an API key, or a saved file)",
            implementation="mis_sync.connectors.isams_batch:IsamsBatchConnector",
            provides=_ALL,
        ),
        SourceEntry(
            type="wonde",
            title="Wonde API v1.0 (aggregator; school id + token; updated_after deltas)",
            implementation="mis_sync.connectors.wonde:WondeConnector",
            provides=_ALL,
            delta=True,
        ),
        SourceEntry(
            type="xporter",
            title="Groupcall Xporter on Demand (aggregator; school secret; changedRows deltas)",
            implementation="mis_sync.connectors.xporter:XporterConnector",
            provides=_ALL,
            delta=True,
        ),
        SourceEntry(
            type="arbor",
            title="Arbor REST API rest-v2 (direct; HTTP Basic API user; changelog deltas)",
            implementation="mis_sync.connectors.arbor:ArborConnector",
            provides=_ALL,
            delta=True,
        ),
        SourceEntry(
            type="bromcom",
            title="Bromcom Partner REST API v2 (direct; ApplicationId / ApplicationSecret; full reads)",
            implementation="mis_sync.connectors.bromcom:BromcomConnector",
            provides=_ALL,
        ),
        SourceEntry(
            type="scholarpack",
            title="ScholarPack REST API v1 (direct, primary; OAuth 2 refresh token; full reads)",
            implementation="mis_sync.connectors.scholarpack:ScholarPackConnector",
            provides=_ALL,
            group_kinds=frozenset({"year", "registration"}),
            notes=(
                "ScholarPack has no teaching groups (a primary MIS: each class is its registration "
                "group), so none are synced; classes are synced as registration groups"
            ),
        ),
        SourceEntry(
            type="isams_rest",
            title="iSAMS REST API (direct; OAuth 2 client credentials; full reads)",
            implementation="mis_sync.connectors.isams_rest:IsamsRestConnector",
            provides=_ALL,
        ),
        SourceEntry(
            type="oneroster_rest",
            title="OneRoster 1.1 REST (OAuth 2 client credentials or bearer; dateLastModified deltas)",
            implementation="mis_sync.connectors.oneroster_rest:OneRosterRestConnector",
            provides=_ALL,
            delta=True,
            group_kinds=frozenset({"registration", "teaching"}),
            notes=(
                "OneRoster 1.1 has no year-group object (pupils carry their year in grades), so no "
                "year groups are synced"
            ),
        ),
    )
}


def registered_types() -> frozenset[str]:
    return frozenset(CATALOGUE)
