"""Which MIS each establishment can name, and the routes (connectors) that reach it.

An establishment's ``mis.type`` is either an MIS name (``arbor``, ``sims``, ``integris``…) or a
source format/connector (``file_drop``, ``oneroster_csv``…). For an MIS, ``mis.via`` picks the route:
a direct API where the MIS has one, or an aggregator (Wonde, Groupcall Xporter on Demand). An MIS
without a public third-party API has no default route, so ``mis.via`` is required and validation
names the routes it supports. Facts and confidence: ``mis-sources.md`` §1.1 (aggregator coverage
lists are the aggregators' own claims; confirm with them before committing a school to a route).

Import-light: used by the establishment model at DAG parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

from mis_sync.connectors.catalog import CATALOGUE, SourceEntry

AGGREGATORS = ("wonde", "xporter")


@dataclass(frozen=True)
class MisEntry:
    name: str
    title: str
    routes: tuple[str, ...]
    """Connector types that reach this MIS, direct first."""
    direct: str | None = None
    """The default route when ``mis.via`` is not given; None: the MIS has no public third-party API."""
    note: str = ""
    has_teaching_groups: bool = True
    """False: the MIS itself keeps none, so no route can provide them."""


MIS_CATALOGUE: dict[str, MisEntry] = {
    entry.name: entry
    for entry in (
        MisEntry("arbor", "Arbor", ("arbor", *AGGREGATORS), direct="arbor"),
        MisEntry("bromcom", "Bromcom", ("bromcom", *AGGREGATORS), direct="bromcom"),
        MisEntry(
            "sims",
            "SIMS 7 / SIMS Connected (ESS)",
            ("sims_commandreporter", *AGGREGATORS),
            note="no public cloud API: an aggregator, or CommandReporter XML exports on the school's server",
        ),
        MisEntry("cloud_school", "Cloud School (Advanced)", AGGREGATORS, note="API docs are customer-only"),
        MisEntry("facility_cmis", "Facility CMIS (ESS)", AGGREGATORS, note="ePortal is partner-only"),
        MisEntry("integris", "Integris (RM)", AGGREGATORS, note="Datashare docs are partner-only"),
        MisEntry("isams", "iSAMS", ("isams_rest", "isams_batch", *AGGREGATORS), direct="isams_rest"),
        MisEntry(
            "juniper_horizons", "Juniper Horizons", AGGREGATORS, note="its API is for approved partners only"
        ),
        MisEntry(
            "scholarpack",
            "ScholarPack",
            ("scholarpack", *AGGREGATORS),
            direct="scholarpack",
            note="no teaching groups in the MIS: only year and registration groups are synced",
            has_teaching_groups=False,
        ),
        MisEntry(
            "seemis",
            "SEEMiS Click and Go (Scotland)",
            ("xporter",),
            note="no public third-party API; Groupcall Xporter on Demand",
        ),
        MisEntry("wcbs", "WCBS (PASS, HUBmis)", ("wonde",), note="read-only access through Wonde"),
    )
}


def resolve_route(mis_type: str, via: str | None) -> str:
    """The connector type an establishment's ``mis`` section uses; ``ValueError`` says what to fix."""
    if mis_type in MIS_CATALOGUE:
        entry = MIS_CATALOGUE[mis_type]
        if via is None:
            if entry.direct is None:
                raise ValueError(
                    f"{entry.title} has no public third-party API: set mis.via to one of "
                    f"{', '.join(entry.routes)}"
                )
            return entry.direct
        if via not in entry.routes:
            raise ValueError(
                f"{entry.title} cannot be reached via {via!r}; routes: {', '.join(entry.routes)}"
            )
        return via
    if mis_type in CATALOGUE:
        if via is not None and via != mis_type:
            raise ValueError(f"mis.via is for an MIS name; {mis_type!r} is itself a source format")
        return mis_type
    known = sorted(set(MIS_CATALOGUE) | set(CATALOGUE))
    raise ValueError(f"unknown MIS type {mis_type!r}; supported: {', '.join(known)}")


def _provides(entry: SourceEntry, mis: MisEntry | None = None) -> str:
    has = "teaching" in entry.group_kinds and "groups" in entry.provides
    teaching = "yes" if has and (mis is None or mis.has_teaching_groups) else "no"
    contacts = "yes" if "contacts" in entry.provides else "no"
    return f"teaching groups: {teaching:<3}  contacts: {contacts:<3}  delta: {'yes' if entry.delta else 'no'}"


def render_sources() -> str:
    """The ``misync sources`` table: every MIS, its routes, and what each route provides."""
    lines = ["Supported MIS (mis.type) and routes (mis.via); * = the default route", ""]
    for entry in MIS_CATALOGUE.values():
        lines.append(f"{entry.name:<18}{entry.title}" + (f"  ({entry.note})" if entry.note else ""))
        for route in entry.routes:
            source = CATALOGUE.get(route)
            mark = "*" if route == entry.direct else " "
            detail = _provides(source, entry) if source else "not available in this release"
            lines.append(f"   {mark} via {route:<22}{detail}")
    lines += ["", "Source formats (mis.type, no via)", ""]
    routed = {route for entry in MIS_CATALOGUE.values() for route in entry.routes}
    for source in CATALOGUE.values():
        if source.type not in routed:
            lines.append(f"  {source.type:<24}{_provides(source)}  {source.title}")
    return "\n".join(lines)
