"""The connector interface and registry shared by every MIS source."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from mis_sync.connections import ConnectionInfo
from mis_sync.errors import ExtractError
from mis_sync.model import Extract

__all__ = ["Connector", "ExtractError"]


class Connector(ABC):
    """Reads one establishment's MIS data into the canonical model."""

    type: ClassVar[str]

    def __init__(self, connection: ConnectionInfo, options: Mapping[str, Any]) -> None:
        self.connection = connection
        self.options = dict(options)

    @abstractmethod
    def extract(self, *, full: bool = True) -> Extract:
        """Read a snapshot. ``full=False`` lets delta-capable sources send only changes."""
