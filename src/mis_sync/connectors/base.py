"""The connector interface and registry shared by every MIS source."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from upath import UPath

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors.csv_reading import ReadLimits
from mis_sync.errors import ExtractError
from mis_sync.model import Extract

__all__ = ["Connector", "ExtractError"]


class Connector(ABC):
    """Reads one establishment's MIS data into the canonical model."""

    type: ClassVar[str]

    def __init__(
        self, connection: ConnectionInfo, options: Mapping[str, Any], *, country: str = "england"
    ) -> None:
        self.connection = connection
        self.options = dict(options)
        self.country = country
        """The establishment's country: the academic year a group gets when the source gives none
        (``mis_sync.academic_year``)."""
        self.read_limits = ReadLimits()
        """Bounds on source files (size, growth, junk rows) and the sizes read; file sources use it."""

    def folder(self) -> UPath:
        """Where a file-based source lands: ``mis.options.path``, the connection's ``extra.path`` or
        host; any fsspec URL (``s3://``…) with ``extra.storage_options`` for its credentials."""
        location = self.options.get("path") or self.connection.extra.get("path") or self.connection.host
        if not location:
            raise ExtractError(
                f"connection {self.connection.conn_id!r}: no folder given "
                "(set extra.path on the connection or mis.options.path)"
            )
        storage_options: dict[str, Any] = dict(self.connection.extra.get("storage_options", {}))
        return UPath(str(location), **storage_options)

    @abstractmethod
    def extract(self, *, full: bool = True) -> Extract:
        """Read a snapshot. ``full=False`` lets delta-capable sources send only changes.

        A delta needs the previous snapshot and the source's cursor, so delta-capable sources subclass
        ``connectors.delta.DeltaConnector`` and read changes through ``extract_delta(state)`` (which
        still returns a complete snapshot); their ``extract`` always reads in full.
        """
