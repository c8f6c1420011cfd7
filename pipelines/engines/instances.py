"""A run's DAG instantiated: each task and group of the spec at each position of the
loops around it is an ``Instance`` with its RunTask row. A node id is the spec id followed
by the index of each enclosing loop iteration (``echo.1.0``); an iteration's is its loop's
node id and its index (``for-loop-2.1``)."""

from __future__ import annotations

from pipelines.choices import FINISHED, TaskState
from pipelines.models import RunTask
from pipelines.specs.model import Group, Task

RAN = (TaskState.SUCCEEDED, TaskState.CACHED)  # finished with outputs


class Instance:
    """A task or group of the spec at one position (loop iterations) of the run."""

    __slots__ = ("children", "dispatched", "kind", "loops", "node_id", "parent", "row", "spec")

    def __init__(self, node_id: str, spec: Task | Group, kind: str, parent: Instance | None,
                 loops: tuple[tuple[str, int], ...], row: RunTask):
        self.node_id, self.spec, self.kind, self.parent = node_id, spec, kind, parent
        self.loops, self.row = loops, row
        self.children: list[Instance] | None = None
        self.dispatched = False

    @property
    def state(self) -> str:
        return self.row.state

    @property
    def finished(self) -> bool:
        return self.row.state in FINISHED

    @property
    def items(self) -> list:
        return self.row.runtime.get("items") or []


def suffix(loops) -> str:
    return "".join(f".{index}" for _, index in loops)
