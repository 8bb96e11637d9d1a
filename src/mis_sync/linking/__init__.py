"""Link mode: match accounts that already exist (AD, Google, Microsoft 365) to MIS people.

Public API::

    read_existing_users(path) -> DataFrame             # validated CSV (existing.py)
    run_matching(existing_users, extract, decisions, thresholds,
                 *, weights=None, auto_link_likely=False, include_parents=None) -> LinkResult
    link_report(result) -> DataFrame; render_link_report(report) -> str   # counts only
    check_link_to_create(report)                       # raises LinkToCreateRefused
    record_decision(engine, establishment_id, username, decision, mis_id=None, person_kind=None,
                    *, actor, note=None) -> int
    record_decisions(engine, establishment_id, [ {username, decision, mis_id, person_kind}, ...], *, actor)
    confirmations(links) -> list of "link" decisions for every likely match ("confirm all likely")
    load_decisions(engine, establishment_id) -> DataFrame
    save_link_state(engine, establishment_id, links, run_id) / load_link_state(engine, establishment_id)

See ``docs/link-mode.md`` for the CSV format, categories, scoring and decisions.
"""

from mis_sync.linking.categories import LABELS, LinkCategory, link_report, render_link_report, report_counts
from mis_sync.linking.decisions import (
    DecisionError,
    DecisionState,
    confirmations,
    effective,
    load_decisions,
    load_link_state,
    record_decision,
    record_decisions,
    save_link_state,
)
from mis_sync.linking.existing import (
    ExistingUsersError,
    existing_users_frame,
    parse_existing_users,
    read_existing_users,
)
from mis_sync.linking.mode_switch import LinkToCreateRefused, check_link_to_create
from mis_sync.linking.run import LinkResult, run_matching
from mis_sync.linking.settings import LinkThresholds, LinkWeights

__all__ = [
    "LABELS",
    "DecisionError",
    "DecisionState",
    "ExistingUsersError",
    "LinkCategory",
    "LinkResult",
    "LinkThresholds",
    "LinkToCreateRefused",
    "LinkWeights",
    "check_link_to_create",
    "confirmations",
    "effective",
    "existing_users_frame",
    "link_report",
    "load_decisions",
    "load_link_state",
    "parse_existing_users",
    "read_existing_users",
    "record_decision",
    "record_decisions",
    "render_link_report",
    "report_counts",
    "run_matching",
    "save_link_state",
]
