"""What both parsers share: flattening nested DAGs into unique ids, and the checks a DAG
must pass whatever format it came in (no cycles, no name used twice)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipelines.specs.errors import SpecError
from pipelines.specs.model import PipelineSpec

# Nested DAGs are expanded once per use, so a few small templates that use each other
# ten times over could describe billions of tasks; no real pipeline comes close to this.
MAX_NODES = 10_000
MAX_NESTING = 50  # groups inside groups; kfp pipelines rarely go past five


@dataclass(eq=False)
class Node:
    """A task of some DAG, before it becomes a model Task or Group."""

    key: str  # its name in its DAG
    parent: Node | None
    data: Any  # what the parser needs to build it
    children: dict[str, Node] = field(default_factory=dict)  # its own DAG's tasks, by key
    id: str = ""


class Tree:
    """The DAGs of a pipeline, expanded: nodes in pre-order (parents before children)."""

    def __init__(self) -> None:
        self.top: dict[str, Node] = {}
        self.nodes: list[Node] = []

    def add(self, key: str, parent: Node | None, data: Any) -> Node:
        siblings = self.top if parent is None else parent.children
        if key in siblings:
            where = f"the DAG of '{parent.key}'" if parent else "the pipeline's DAG"
            raise SpecError(f"Task name '{key}' is used twice in {where}")
        if len(self.nodes) >= MAX_NODES:
            raise SpecError(f"The pipeline expands to more than {MAX_NODES} tasks")
        node = Node(key, parent, data)
        siblings[key] = node
        self.nodes.append(node)
        return node

    def assign_ids(self) -> None:
        """A node keeps its key when no other node anywhere has it, else it gets its group's
        id as a prefix (``for-loop-2/train``): the same sub-pipeline used twice, or a task
        name reused inside a pipeline used as a component."""
        counts = Counter(node.key for node in self.nodes)
        for node in self.nodes:
            if counts[node.key] == 1 or node.parent is None:
                node.id = node.key
            else:
                node.id = f"{node.parent.id}/{node.key}"


def check(spec: PipelineSpec) -> None:
    """Refuse ids used twice and dependency cycles; name the tasks involved."""
    depends: dict[str, list[str]] = {}
    for node in [*spec.groups, *spec.tasks]:
        if node.id in depends:
            raise SpecError(f"Two tasks have the id '{node.id}'")
        depends[node.id] = node.dependencies
    for node_id, dependencies in depends.items():
        for dependency in dependencies:
            if dependency not in depends:
                raise SpecError(f"Task '{node_id}' depends on '{dependency}', which does not exist")
    _refuse_cycles(depends)


def _refuse_cycles(depends: dict[str, list[str]]) -> None:
    """Kahn's algorithm; whatever it cannot order sits on or behind a cycle."""
    waiting = {node_id: len(set(deps)) for node_id, deps in depends.items()}
    dependents: dict[str, list[str]] = {node_id: [] for node_id in depends}
    for node_id, deps in depends.items():
        for dependency in set(deps):
            dependents[dependency].append(node_id)
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    while ready:
        for dependent in dependents[ready.pop()]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    stuck = {node_id for node_id, count in waiting.items() if count}
    if stuck:
        cycle = _one_cycle(stuck, depends)
        raise SpecError("The dependencies form a cycle: " + " → ".join([*cycle, cycle[0]]))


def _one_cycle(stuck: set[str], depends: dict[str, list[str]]) -> list[str]:
    """Every stuck node waits on another stuck node, so walking those edges must loop."""
    path: list[str] = []
    position: dict[str, int] = {}
    node_id = min(stuck)
    while node_id not in position:
        position[node_id] = len(path)
        path.append(node_id)
        node_id = next(dep for dep in depends[node_id] if dep in stuck)
    cycle = path[position[node_id]:]
    return cycle[::-1]  # read in the direction things run: a → b means b waits on a
