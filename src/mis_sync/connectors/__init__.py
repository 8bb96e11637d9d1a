"""MIS connectors: one interface, a catalogue keyed by ``mis.type``, field mappings as data.

The catalogue names each connector's module and class as strings, so validating a config (at DAG parse
time) never imports pandas or a network client; ``connector_for`` imports the one a task needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from mis_sync.connectors.catalog import CATALOGUE, registered_types
from mis_sync.errors import ExtractError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mis_sync.connections import ConnectionInfo
    from mis_sync.connectors.base import Connector


class UnknownSourceError(ExtractError):
    pass


def connector_for(
    mis_type: str, connection: ConnectionInfo, options: Mapping[str, Any], *, country: str = "england"
) -> Connector:
    try:
        entry = CATALOGUE[mis_type]
    except KeyError:
        raise UnknownSourceError(f"no connector for MIS type {mis_type!r}") from None
    module_name, class_name = entry.implementation.split(":")
    cls = getattr(import_module(module_name), class_name)
    return cls(connection, options, country=country)


__all__ = ["CATALOGUE", "UnknownSourceError", "connector_for", "registered_types"]
