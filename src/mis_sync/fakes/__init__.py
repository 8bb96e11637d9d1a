"""Local emulators of external services, for tests and ``make demo`` only (never real endpoints)."""

from mis_sync.fakes.graph import FakeGraph, running_fake_graph
from mis_sync.fakes.graph_store import GraphError, GraphState

__all__ = ["FakeGraph", "GraphError", "GraphState", "running_fake_graph"]
