"""The names a run's tasks, groups and ports have in its Argo Workflow.

The compiler (``argo_compile.py``) writes them and the watcher (``argo_status.py``) reads
them back: an Argo node's ``displayName`` is its DAG task's name, its outputs carry the
port names. Both call these functions on the run's stored spec, so they always agree.

A KFP v1 package is an Argo Workflow already: its names are used as they are. A KFP v2
IR's task keys and port names are made valid for Argo here, deterministically.
"""

from __future__ import annotations

import re

from pipelines.choices import SpecFormat
from pipelines.specs.model import PipelineSpec, Port

# Task and template names: Argo wants letters, digits and '-', starting with one of the
# first two; pod names are built from template names, so keep them short.
NOT_TASK_NAME = re.compile(r"[^a-z0-9-]+")
TASK_NAME_LIMIT = 40
# Parameter and artifact names: letters, digits, '_' and '-'.
NOT_PORT_NAME = re.compile(r"[^A-Za-z0-9_-]+")
PORT_NAME_LIMIT = 63

# An output parameter of every task the launcher runs: the executor output's artifact
# metadata (JSON), so that metrics reach the dashboard without reading the artifact store.
EXECUTOR_OUTPUT = "kfdash-executor-output"
# The container that runs a step in an Argo pod; its log is the step's log.
MAIN_CONTAINER = "main"
# KFP v1 output artifacts small enough to come back through Argo as output parameters
# too (so that their numbers reach the dashboard without reading the artifact store).
CAPTURED_V1_OUTPUTS = ("mlpipeline-metrics",)
CAPTURE_PREFIX = "kfdash-"


def key_of(node_id: str) -> str:
    """A task's or group's name in its own DAG (ids of nested tasks carry their group's id
    as a prefix only when the key alone is ambiguous: ``for-loop-2/train``)."""
    return node_id.rsplit("/", 1)[-1]


def task_names(spec: PipelineSpec) -> dict[str, str]:
    """Every task's and group's id → its DAG task name, unique among its siblings."""
    names: dict[str, str] = {}
    taken: dict[str | None, set[str]] = {}
    for node in [*spec.groups, *spec.tasks]:
        key = key_of(node.id)
        if spec.format == SpecFormat.ARGO:
            names[node.id] = key
            continue
        siblings = taken.setdefault(node.parent, set())
        names[node.id] = unique_name(_task_name(key), siblings, TASK_NAME_LIMIT)
    return names


def port_names(ports: list[Port] | list[str]) -> dict[str, str]:
    """A template's parameter or artifact names → their Argo names, unique in the list."""
    names: dict[str, str] = {}
    taken: set[str] = {EXECUTOR_OUTPUT}
    for port in ports:
        name = port if isinstance(port, str) else port.name
        if name in names:
            continue
        cleaned = NOT_PORT_NAME.sub("_", name).strip("_") or "port"
        names[name] = unique_name(cleaned, taken, PORT_NAME_LIMIT)
    return names


def _task_name(key: str) -> str:
    name = NOT_TASK_NAME.sub("-", key.lower()).strip("-")
    if not name or not name[0].isalnum():
        name = f"t-{name}".rstrip("-")
    return name


def unique_name(name: str, taken: set[str], limit: int) -> str:
    """``name`` (cut to ``limit``), or ``name-2``, ``name-3``... when taken; recorded in
    ``taken``."""
    name = name[:limit].rstrip("-_") or "x"
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        tail = f"-{number}"
        candidate = name[:limit - len(tail)].rstrip("-_") + tail
    taken.add(candidate)
    return candidate
