"""Local emulators of external services, for tests and ``make demo`` only (never real endpoints)."""

from mis_sync.fakes.classroom import FakeClassroom, running_fake_classroom
from mis_sync.fakes.classroom_schema import GoogleError
from mis_sync.fakes.classroom_state import ClassroomState
from mis_sync.fakes.graph import FakeGraph, running_fake_graph
from mis_sync.fakes.graph_store import GraphError, GraphState

__all__ = [
    "ClassroomState",
    "FakeClassroom",
    "FakeGraph",
    "GoogleError",
    "GraphError",
    "GraphState",
    "running_fake_classroom",
    "running_fake_graph",
]
