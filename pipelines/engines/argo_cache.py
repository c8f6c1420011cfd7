"""Caching for KFP v2 runs on Argo, decided when the run is submitted.

KFP's driver computes a task's cache key in a pod at run time, just before the task would
run. kfdash has no driver: ``decide`` works out at submit what can be known then, with the
local engine's key (``caching.key``: the component and its executor as the IR writes them,
the input values typed as the local engine types them, input artifacts by fingerprint, a
cached task passing its source's fingerprints on).

Served from the cache: a task with caching on (its own option, and the run's not False) at
the top level or in plain groups (sub-DAGs, exit handlers' guarded groups: never in a loop
or a condition, never an exit handler's task or one with a trigger condition of its own)
whose every input is known at submit: a constant, a pipeline parameter, an importer's
artifact, or an output of a task served from the cache itself (so chains are served, in
dependency order). It is looked up with ``caching.find`` among the executions that ran on
the cluster: rows recorded from a Workflow (``runtime.argo_node``) whose artifacts are in
an object store (``s3://``, ``gs://``, ``minio://``; no ``path`` in kfdash's store). A
local-engine success never serves a cluster run: it ran on kfdash's host rather than in
the image, and its artifacts are files no pod can read. The compiler makes a served task no
DAG task (``argo_compile.py``); ``argo_sync`` adds its CACHED row once the Workflow runs.

Annotations on the Workflow (JSON):
- ``kfdash.io/cached``: {spec id: id of the RunTask serving it};
- ``kfdash.io/cache-keys``: {spec id: cache key} for every task whose inputs are known at
  submit (caching on or off, as the local engine records keys); ``argo_sync`` sets the key on
  the task's row when it succeeds, which makes it a candidate for later runs.

Limits:
- A task reading an output of a task that really runs in the same Workflow, or anything else
  only known at run time (an f-string, a loop item, ``dsl.OneOf``), or inside a loop or a
  condition, gets no key here: with caching on it goes to ``Decision.at_run_time``, and Argo
  memoizes it under the key a step works out in the run (``argo_compile_cache.py``, which
  also says what it cannot memoize). Both keys are ``caching.key``, so either kind of
  success serves the other kind of lookup.
- Argo refuses an empty DAG: when every task of the root or of a group would be served, one
  of them (the last in the spec that no served task reads) runs again instead.
- KFP v1 (Argo format) runs are never cached by kfdash: KFP v1 caching is the KFP cache
  server's job (a webhook on the pods), and a v1 run's Workflow goes as its package wrote it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from pipelines.choices import SpecFormat
from pipelines.specs.model import Group, PipelineSpec, Task

from . import caching
from .argo_compile_ports import imported_artifact
from .executor_protocol import component_parts, optional_inputs
from .inputs import InputError, coerce

if TYPE_CHECKING:
    from pipelines.models import Run, RunTask

CACHED_ANNOTATION = "kfdash.io/cached"
CACHE_KEYS_ANNOTATION = "kfdash.io/cache-keys"
REMOTE_SCHEMES = ("s3://", "gs://", "minio://")
# Groups whose tasks run whenever the group does, once.
PLAIN_GROUPS = ("dag", "exit_handler")
# Rows argo_sync recorded from a Workflow name their Argo node; the local engine's do not.
RAN_ON_THE_CLUSTER = Q(runtime__has_key="argo_node")


@dataclass(frozen=True)
class Hit:
    """An earlier execution that serves a task: its RunTask's id and its outputs."""

    source: str
    outputs: dict


@dataclass
class Decision:
    keys: dict[str, str] = field(default_factory=dict)  # spec id → cache key
    served: dict[str, Hit] = field(default_factory=dict)  # spec id → what serves it
    # Tasks with caching on whose key is only known while the run runs: Argo memoizes them
    # (argo_compile_cache.py) under the key a step works out just before each.
    at_run_time: set[str] = field(default_factory=set)

    @property
    def outputs(self) -> dict[str, dict]:
        """The compiler's ``cached``: spec id → the serving execution's outputs."""
        return {task_id: hit.outputs for task_id, hit in self.served.items()}

    def annotations(self) -> dict[str, str]:
        found = {}
        if self.served:
            found[CACHED_ANNOTATION] = json.dumps(
                {task_id: hit.source for task_id, hit in sorted(self.served.items())})
        if self.keys:
            found[CACHE_KEYS_ANNOTATION] = json.dumps(dict(sorted(self.keys.items())))
        return found


# lookup(cache key, task) → the execution that can serve the task, if any
Lookup = Callable[[str, Task], Hit | None]


def decide(spec: PipelineSpec, document: dict, parameters: dict[str, Any], *,
           caching_on: bool | None, lookup: Lookup) -> Decision:
    """Which tasks of a KFP v2 run are served from the cache, and the keys known at submit
    (see the module docstring). ``parameters``: the run's typed values; ``caching_on``: the
    run's option (None: each task's own)."""
    if spec.format != SpecFormat.KFP_V2:
        return Decision()
    found: dict[str, Hit | None] = {}

    def remembered(key: str, task: Task) -> Hit | None:
        if key not in found:
            found[key] = lookup(key, task)
        return found[key]

    run_again: set[str] = set()
    while True:
        decision = _Deciding(spec, document, parameters, caching_on is not False, remembered,
                             run_again).decide()
        again = _left_empty(spec, decision)
        if again is None:
            decision.at_run_time = {
                task.id for task in spec.tasks
                if task.container is not None and not task.importer and task.caching
                and caching_on is not False and task.id not in decision.keys}
            return decision
        run_again.add(again)


def decide_for(run: Run) -> Decision:
    """``decide`` for ``run``, among the executions of its namespace that ran on the cluster
    (nothing is looked up for a run whose namespace is not in the database: a preview)."""
    if run.format != SpecFormat.KFP_V2:
        return Decision()

    def lookup(key: str, task: Task) -> Hit | None:
        if run.profile_id is None:
            return None
        source = caching.find(run.profile_id, key, among=RAN_ON_THE_CLUSTER,
                              usable=lambda candidate: usable(task, candidate))
        return None if source is None else Hit(str(source.pk), copy.deepcopy(source.outputs))

    return decide(run.spec, run.document, run.parameters, caching_on=run.caching,
                  lookup=lookup)


def usable(task: Task, candidate: RunTask) -> bool:
    """Whether an execution can serve ``task`` in a Workflow: it recorded every output the
    task declares, each artifact once and in an object store."""
    outputs = candidate.outputs or {}
    parameters = outputs.get("parameters") or {}
    artifacts = outputs.get("artifacts") or {}
    for port in task.outputs:
        if port.kind == "artifact":
            if len(artifacts.get(port.name) or []) != 1:
                return False
        elif parameters.get(port.name) is None:
            return False
    return all(str(entry.get("uri") or "").startswith(REMOTE_SCHEMES) and not entry.get("path")
               for listed in artifacts.values() for entry in listed)


class _Deciding:
    """One pass over the tasks; ``run_again``: tasks that run even on a cache hit."""

    def __init__(self, spec: PipelineSpec, document: dict, parameters: dict[str, Any],
                 caching_on: bool, lookup: Lookup, run_again: set[str]):
        self.spec, self.document, self.parameters = spec, document, parameters
        self.caching_on, self.lookup, self.run_again = caching_on, lookup, run_again
        self.tasks = {task.id: task for task in spec.tasks}
        self.groups = {group.id: group for group in spec.groups}
        self.known: dict[str, dict | None] = {}  # task id → its outputs, if known at submit
        self.decision = Decision()

    def decide(self) -> Decision:
        for task in self.spec.tasks:
            self.outputs_of(task.id)
        return self.decision

    def outputs_of(self, task_id: str) -> dict | None:
        if task_id not in self.known:
            self.known[task_id] = None
            self.known[task_id] = self._outputs(task_id)
        return self.known[task_id]

    def _outputs(self, task_id: str) -> dict | None:
        task = self.tasks.get(task_id)
        if task is None or not self._plain(task):
            return None
        inputs = self._inputs(task)
        if inputs is None:
            return None
        if task.importer:
            try:
                uri, metadata = imported_artifact(task, inputs[0], f"The importer '{task.id}'")
            except ValueError:
                return None
            return {"parameters": {}, "artifacts": {"artifact": [
                {"name": "artifact", "uri": uri, "metadata": metadata, "fingerprint": uri}]}}
        component, executor = component_parts(self.document, task.component)
        key = caching.key({"component": component, "executor": executor}, *inputs)
        self.decision.keys[task.id] = key
        if not (self.caching_on and task.caching) or task.id in self.run_again:
            return None
        hit = self.lookup(key, task)
        if hit is None:
            return None
        self.decision.served[task.id] = hit
        return hit.outputs

    def _plain(self, task: Task) -> bool:
        """Whether the task runs, once, whenever the run does: no condition, no loop."""
        if task.exit_handler or task.condition or task.continue_on_failure or task.depends:
            return False
        if task.container is None and not task.importer:
            return False
        parent = task.parent
        while parent is not None:
            group = self.groups.get(parent)
            if group is None or group.kind not in PLAIN_GROUPS or group.condition:
                return False
            parent = group.parent
        return True

    def _inputs(self, task: Task) -> tuple[dict, dict] | None:
        """The task's parameters and artifacts as the local engine resolves them
        (``Inputs.task_inputs``), or None when one is not known at submit."""
        component, _ = component_parts(self.document, task.component)
        optional = optional_inputs(component)
        parameters: dict[str, Any] = {}
        artifacts: dict[str, list[dict]] = {}
        types: dict[str, str] = {}
        for port in task.inputs:
            types[port.name] = port.type
            source = port.source
            if source is None:
                if port.name in optional:
                    continue
                return None
            if source.selector:
                return None
            if source.kind == "constant" and port.kind != "artifact":
                value = copy.deepcopy(source.value)
            elif source.kind == "pipeline_parameter" and port.kind != "artifact":
                value = copy.deepcopy(self.parameters.get(source.parameter))
            elif source.kind == "task_output":
                produced = self.outputs_of(source.task)
                section = "artifacts" if port.kind == "artifact" else "parameters"
                recorded = (produced or {}).get(section) or {}
                if recorded.get(source.output) is None:
                    return None
                value = copy.deepcopy(recorded[source.output])
            else:
                return None
            if port.kind == "artifact":
                artifacts[port.name] = value if isinstance(value, list) else [value]
            elif value is None and port.name in optional:
                continue
            else:
                parameters[port.name] = value
        try:
            return {name: coerce(value, types.get(name, "STRING"), name)
                    for name, value in parameters.items()}, artifacts
        except InputError:
            return None


def _left_empty(spec: PipelineSpec, decision: Decision) -> str | None:
    """A served task to run after all because serving it would leave its DAG (the root's or
    a group's) with nothing to run: the last one in the spec that no served task reads."""
    if not decision.served:
        return None
    children: dict[str | None, list[Task | Group]] = {}
    for node in [*spec.groups, *spec.tasks]:
        children.setdefault(node.parent, []).append(node)
    read = {port.source.task for task in spec.tasks if task.id in decision.served
            for port in task.inputs
            if port.source is not None and port.source.kind == "task_output"}
    for nodes in children.values():
        served = [node.id for node in nodes if node.id in decision.served]
        if not served or any(isinstance(node, Group) or not (
                node.importer or node.id in decision.served) for node in nodes):
            continue
        unread = [task_id for task_id in served if task_id not in read]
        return (unread or served)[-1]
    return None
