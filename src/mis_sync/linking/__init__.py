"""Link mode: match accounts that already exist (AD, Google, Microsoft 365) to MIS people.

Public API::

    read_existing_users(path) -> DataFrame             # validated CSV (existing.py)
    run_matching(existing_users, extract, decisions, thresholds,
                 *, weights=None, auto_link_likely=False, include_parents=None) -> LinkResult
    link_report(result) -> DataFrame; render_link_report(report) -> str   # counts only
    run_summary(result) -> dict; render_run_summary(summary) -> lines      # the run report's Link part
    check_link_to_create(report)                       # raises LinkToCreateRefused
    record_decision(engine, establishment_id, username, decision, mis_id=None, person_kind=None,
                    *, actor, note=None) -> int
    record_decisions(engine, establishment_id, [ {username, decision, mis_id, person_kind}, ...], *, actor)
    confirmations(links) -> list of "link" decisions for every likely match ("confirm all likely")
    load_decisions(engine, establishment_id) -> DataFrame
    save_link_state(engine, establishment_id, links, run_id) / load_link_state(engine, establishment_id)

See ``docs/link-mode.md`` for the CSV format, categories, scoring and decisions.
"""

from __future__ import annotations

from mis_sync.lazy import lazy_attributes

# Loaded on first use (PEP 562): the establishment config imports ``linking.settings`` at DAG parse
# time, and that must not pull in pandas or rapidfuzz.
_LAZY = {
    "DecisionError": "mis_sync.linking.decisions",
    "DecisionState": "mis_sync.linking.decisions",
    "ExistingUsersError": "mis_sync.linking.existing",
    "LABELS": "mis_sync.linking.categories",
    "LinkCategory": "mis_sync.linking.categories",
    "LinkResult": "mis_sync.linking.run",
    "LinkThresholds": "mis_sync.linking.settings",
    "LinkToCreateRefused": "mis_sync.linking.mode_switch",
    "LinkWeights": "mis_sync.linking.settings",
    "check_link_to_create": "mis_sync.linking.mode_switch",
    "confirmations": "mis_sync.linking.decisions",
    "effective": "mis_sync.linking.decisions",
    "existing_users_frame": "mis_sync.linking.existing",
    "link_report": "mis_sync.linking.categories",
    "load_decisions": "mis_sync.linking.decisions",
    "load_link_state": "mis_sync.linking.decisions",
    "parse_existing_users": "mis_sync.linking.existing",
    "read_existing_users": "mis_sync.linking.existing",
    "record_decision": "mis_sync.linking.decisions",
    "record_decisions": "mis_sync.linking.decisions",
    "render_link_report": "mis_sync.linking.categories",
    "render_run_summary": "mis_sync.linking.categories",
    "report_counts": "mis_sync.linking.categories",
    "run_matching": "mis_sync.linking.run",
    "run_summary": "mis_sync.linking.categories",
    "save_link_state": "mis_sync.linking.decisions",
}

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
    "render_run_summary",
    "report_counts",
    "run_matching",
    "run_summary",
    "save_link_state",
]


__getattr__ = lazy_attributes(__name__, _LAZY)
