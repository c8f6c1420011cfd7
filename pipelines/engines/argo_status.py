"""What an Argo Workflow's status says about a run, in kfdash's terms: a pure function.

Argo reports one node per thing it ran: the entrypoint's DAG, each DAG task (a ``Pod``,
a ``Retry`` around its attempts, a ``DAG`` for a group, a ``TaskGroup`` around a loop's
iterations, ``Skipped`` when its ``when`` was false), each loop iteration (displayName
``for-loop-2(0:a)``), each step group of a ``steps`` template (``[0]``). Nodes point to
their children. Walking down from the root, each node's displayName is its DAG task's
name (``argo_names.task_names``), which leads back to the spec's task or group; loop
iterations add their index, giving the same node ids as the local engine
(``instances.py``): ``train.1`` for ``train`` in the second iteration of its loop.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.choices import RunState, SpecFormat, TaskKind, TaskState
from pipelines.specs.model import Group, PipelineSpec, Task

from .argo_compile_cache import KEY_TASK, RUN_TASK
from .argo_names import (
    CAPTURE_PREFIX,
    CAPTURED_V1_OUTPUTS,
    EXECUTOR_OUTPUT,
    port_names,
    task_names,
)

ITERATION = re.compile(r"^[^()]*\((\d+):")  # for-loop-2(0:a): iteration 0
GROUP_KINDS = {"condition": TaskKind.CONDITION, "loop": TaskKind.LOOP,
               "exit_handler": TaskKind.EXIT_HANDLER, "dag": TaskKind.DAG}
PHASES = {"Pending": TaskState.PENDING, "Running": TaskState.RUNNING,
          "Succeeded": TaskState.SUCCEEDED, "Skipped": TaskState.SKIPPED,
          "Omitted": TaskState.SKIPPED, "Failed": TaskState.FAILED,
          "Error": TaskState.FAILED}
# How Argo says a node ended because the Workflow was stopped.
STOPPED = re.compile(r"Stopped with strategy|terminated|pod deleted|workflow shutdown",
                     re.IGNORECASE)


@dataclass
class NodeState:
    """One RunTask row as the Workflow's status shows it."""

    node_id: str
    spec_id: str
    kind: str
    parent: str | None  # the node id of the enclosing group instance or iteration
    iteration: int | None
    display_name: str
    state: str
    error: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    exit_code: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)  # output parameters, KFP names
    artifacts: dict[str, str] = field(default_factory=dict)  # output name → uri
    artifact_metadata: dict[str, dict] = field(default_factory=dict)  # output name → metadata
    artifact_contents: dict[str, str] = field(default_factory=dict)  # v1: small files, as text
    argo_node: str = ""  # the Argo node id (of the last attempt's pod, for steps)
    pod: str = ""  # the pod of the last attempt, for logs
    pods: list[str] = field(default_factory=list)  # every attempt's pod, in order
    cache_key: str = ""  # the key Argo memoized the step under (argo_compile_cache.py)


@dataclass
class WorkflowState:
    state: str
    error: str
    nodes: dict[str, NodeState]  # by node id, parents before children


def read_status(spec: PipelineSpec, workflow: dict, *, bucket: str = "") -> WorkflowState:
    """The run's and its tasks' states as ``workflow`` reports them. ``bucket`` is the
    artifact repository's, for artifacts whose location names none."""
    return _Reader(spec, workflow, bucket).read()


def run_state(workflow: dict) -> tuple[str, str]:
    """The run's state and error from the Workflow's phase (``spec.shutdown`` set means a
    terminate was asked for: CANCELING until Argo ends it, then CANCELED)."""
    status = workflow.get("status") or {}
    phase = status.get("phase") or ""
    stopping = bool((workflow.get("spec") or {}).get("shutdown"))
    message = status.get("message") or ""
    if phase == "Succeeded":
        return RunState.SUCCEEDED, ""
    if phase in ("Failed", "Error"):
        return (RunState.CANCELED, "") if stopping else (RunState.FAILED, message)
    if stopping:
        return RunState.CANCELING, ""
    if phase == "Running":
        return RunState.RUNNING, ""
    return RunState.PENDING, ""


class _Reader:
    def __init__(self, spec: PipelineSpec, workflow: dict, bucket: str):
        self.spec = spec
        self.workflow = workflow
        self.bucket = bucket
        self.names = task_names(spec)
        self.by_id: dict[str, Task | Group] = {n.id: n for n in [*spec.groups, *spec.tasks]}
        self.by_name: dict[tuple[str | None, str], str] = {
            (node.parent, self.names[node.id]): node.id for node in self.by_id.values()}
        self.children: dict[str | None, list[str]] = {}
        for node in self.by_id.values():
            self.children.setdefault(node.parent, []).append(node.id)
        self.nodes: dict[str, dict] = (workflow.get("status") or {}).get("nodes") or {}
        self.stopping = bool((workflow.get("spec") or {}).get("shutdown"))
        self.out: dict[str, NodeState] = {}

    def read(self) -> WorkflowState:
        state, error = run_state(self.workflow)
        name = (self.workflow.get("metadata") or {}).get("name")
        root = self.nodes.get(name) or next(
            (n for n in self.nodes.values() if n.get("name") == name), None)
        if root is not None:
            for child in self._children_of(root):
                self._visit(child, None, None, ())
        on_exit = (self.workflow.get("spec") or {}).get("onExit")
        handler = next((n for n in self.nodes.values() if n.get("name") == f"{name}.onExit"),
                       None)
        if on_exit and handler is not None:  # a v1 package's exit handler: Argo's onExit
            spec_id = self.by_name.get((None, "onExit")) or self.by_name.get((None, on_exit))
            if spec_id is not None:
                self._row(handler, self.by_id[spec_id], None, ())
        if state == RunState.SUCCEEDED:
            state, error = self._failed_steps(state)
        return WorkflowState(state, error, self.out)

    def _failed_steps(self, state: str) -> tuple[str, str]:
        """A KFP v2 exit handler runs whatever happened (``depends`` on every outcome), so
        Argo calls the Workflow Succeeded when the handler did, even if a step in the
        guarded group failed: KFP calls that run failed, and so does kfdash."""
        for row in self.out.values():
            task = self.by_id.get(row.spec_id)
            if row.state == TaskState.FAILED and isinstance(task, Task) and \
                    not task.continue_on_failure:
                return RunState.FAILED, f"The step {row.display_name} failed: {row.error}" \
                    if row.error else f"The step {row.display_name} failed."
        return state, ""

    def _children_of(self, node: dict) -> list[dict]:
        return [self.nodes[c] for c in node.get("children") or [] if c in self.nodes]

    def _visit(self, node: dict, parent_spec: str | None, parent_row: str | None,
               loops: tuple[tuple[str, int], ...]) -> None:
        if node.get("type") == "StepGroup":
            for child in self._children_of(node):
                self._visit(child, parent_spec, parent_row, loops)
            return
        base = (node.get("displayName") or "").split("(", 1)[0]
        spec_id = self.by_name.get((parent_spec, base))
        if spec_id is None:
            return  # not one of the spec's tasks (an onExit handler written by hand)
        spec_node = self.by_id[spec_id]
        row = self._row(node, spec_node, parent_row, loops)
        if isinstance(spec_node, Task):
            return
        if spec_node.kind != "loop":
            for child in self._children_of(node):
                self._visit(child, spec_id, row.node_id, loops)
            return
        if node.get("type") != "TaskGroup":  # the wrapper that bounds parallelism
            inner = [c for c in self._children_of(node)
                     if c.get("type") == "TaskGroup"
                     and (c.get("displayName") or "").split("(", 1)[0] == base]
            node = inner[0] if inner else node
        for child in self._children_of(node):
            match = ITERATION.match(child.get("displayName") or "")
            if match:
                self._iteration(child, spec_node, row, loops, int(match.group(1)))

    def _iteration(self, node: dict, loop: Group, loop_row: NodeState,
                   loops: tuple[tuple[str, int], ...], index: int) -> None:
        node_id = f"{loop_row.node_id}.{index}"
        row = self._make(node, node_id, loop.id, TaskKind.ITERATION, loop_row.node_id,
                         f"{loop.label} #{index}")
        row.iteration = index
        inner = (*loops, (loop.id, index))
        if node.get("type") in ("DAG", "Steps"):
            for child in self._children_of(node):
                self._visit(child, loop.id, node_id, inner)
            return
        # A loop straight over one step: the iteration's node is that step's.
        steps = self.children.get(loop.id) or []
        if len(steps) == 1 and isinstance(self.by_id[steps[0]], Task):
            self._row(node, self.by_id[steps[0]], node_id, inner)

    def _row(self, node: dict, spec_node: Task | Group, parent_row: str | None,
             loops: tuple[tuple[str, int], ...]) -> NodeState:
        node_id = spec_node.id + "".join(f".{index}" for _, index in loops)
        if isinstance(spec_node, Task):
            row = self._make(node, node_id, spec_node.id, TaskKind.TASK, parent_row,
                             spec_node.name)
            self._step(node, spec_node, row)
        else:
            row = self._make(node, node_id, spec_node.id, GROUP_KINDS[spec_node.kind],
                             parent_row, spec_node.label)
        return row

    def _make(self, node: dict, node_id: str, spec_id: str, kind: str, parent: str | None,
              display_name: str) -> NodeState:
        state = PHASES.get(node.get("phase") or "", TaskState.PENDING)
        message = node.get("message") or ""
        if node.get("type") == "Skipped":
            state = TaskState.SKIPPED
        stopped = state == TaskState.FAILED and STOPPED.search(message)
        left = state in (TaskState.PENDING, TaskState.RUNNING) and _workflow_ended(
            self.workflow)
        if self.stopping and (stopped or left):
            state, message = TaskState.CANCELED, ""
        row = NodeState(node_id=node_id, spec_id=spec_id, kind=kind, parent=parent,
                        iteration=None, display_name=display_name, state=state,
                        error=message if state == TaskState.FAILED else "",
                        started_at=parse_time(node.get("startedAt")),
                        finished_at=parse_time(node.get("finishedAt")),
                        argo_node=node.get("id") or "")
        self.out[node_id] = row
        return row

    def _step(self, node: dict, task: Task, row: NodeState) -> None:
        node = self._memoized(node, row)
        attempts = [node]
        if node.get("type") == "Retry":
            attempts = sorted(self._children_of(node),
                              key=lambda n: (n.get("startedAt") or "", n.get("id") or ""))
        # A memoized step served from Argo's cache has a node but no pod.
        pods = [n for n in attempts if n.get("type") == "Pod"
                and not (n.get("memoizationStatus") or {}).get("hit")]
        row.attempts = len(pods)
        row.pods = [pod_name(self.workflow, pod) for pod in pods]
        last = pods[-1] if pods else None
        if last is not None:
            row.argo_node = last.get("id") or ""
            row.pod = pod_name(self.workflow, last)
        outputs = node.get("outputs") or (last or {}).get("outputs") or {}
        exit_code = outputs.get("exitCode") or ((last or {}).get("outputs") or {}).get(
            "exitCode")
        if exit_code not in (None, ""):
            with contextlib.suppress(ValueError):
                row.exit_code = int(exit_code)
        self._outputs(outputs, task, row)

    def _memoized(self, node: dict, row: NodeState) -> dict:
        """A step Argo memoizes is a DAG of its key step and the step itself
        (``argo_compile_cache.py``): the step's node is read, a cache hit shows CACHED, and
        a key step that failed says so."""
        if node.get("type") != "DAG":
            return node
        children = {child.get("displayName"): child for child in self._children_of(node)}
        run, key = children.get(RUN_TASK), children.get(KEY_TASK)
        if run is None:
            if key is not None and PHASES.get(key.get("phase") or "") == TaskState.FAILED:
                row.error = ("kfdash could not work out the step's cache key: "
                             f"{key.get('message') or 'its key step failed'}")
            return node
        memo = run.get("memoizationStatus") or {}
        row.cache_key = str(memo.get("key") or "")
        if memo.get("hit") and row.state == TaskState.SUCCEEDED:
            row.state = TaskState.CACHED
        if row.state == TaskState.FAILED and run.get("message"):
            row.error = run["message"]
        return run

    def _outputs(self, outputs: dict, task: Task, row: NodeState) -> None:
        parameters = [p.name for p in task.outputs if p.kind == "parameter"]
        artifacts = [p.name for p in task.outputs if p.kind == "artifact"]
        v1 = self.spec.format == SpecFormat.ARGO
        parameter_of = {(n if v1 else argo): n for n, argo in port_names(parameters).items()}
        artifact_of = {(n if v1 else argo): n for n, argo in port_names(artifacts).items()}
        for item in outputs.get("parameters") or []:
            name, value = item.get("name"), item.get("value")
            if name == EXECUTOR_OUTPUT and not v1:
                row.artifact_metadata = _executor_metadata(value)
            elif v1 and name.startswith(CAPTURE_PREFIX) and \
                    name[len(CAPTURE_PREFIX):] in CAPTURED_V1_OUTPUTS and value:
                row.artifact_contents[name[len(CAPTURE_PREFIX):]] = str(value)
            elif name in parameter_of and value is not None:
                row.parameters[parameter_of[name]] = str(value)
        for item in outputs.get("artifacts") or []:
            name = item.get("name")
            uri = artifact_uri(item, self.bucket)
            if name in artifact_of and uri:
                row.artifacts[artifact_of[name]] = uri
        if outputs.get("result") is not None and "outputs.result" in parameters:
            row.parameters["outputs.result"] = outputs["result"]


def artifact_uri(artifact: dict, bucket: str = "") -> str:
    """The artifact's location as a URI (``s3://bucket/key``), "" when Argo gave none."""
    for scheme, location in (("s3", artifact.get("s3")), ("gs", artifact.get("gcs"))):
        if isinstance(location, dict) and location.get("key"):
            return f"{scheme}://{location.get('bucket') or bucket}/{location['key']}"
    http = artifact.get("http")
    if isinstance(http, dict) and http.get("url"):
        return str(http["url"])
    return ""


def pod_name(workflow: dict, node: dict) -> str:
    """The pod Argo made for ``node``: its id under the v1 pod naming, else (v2, Argo's
    default since 3.4) ``<workflow>-<template>-<fnv32a of the node name>``."""
    metadata = workflow.get("metadata") or {}
    naming = (metadata.get("annotations") or {}).get("workflows.argoproj.io/pod-name-format")
    template = node.get("templateName") or ""
    if naming == "v1" or not template:
        return node.get("id") or ""
    workflow_name = metadata.get("name") or ""
    node_name = node.get("name") or ""
    if node_name == workflow_name:
        return workflow_name
    prefix = workflow_name
    if ".inline" not in node_name:
        prefix = f"{workflow_name}-{template}"
    if len(prefix) > 253 - 11:  # Argo's maxK8sResourceNameLength minus the hash's room
        prefix = prefix[:253 - 11]
    return f"{prefix}-{_fnv32a(node_name)}"


def _fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def parse_time(text: Any) -> datetime | None:
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _workflow_ended(workflow: dict) -> bool:
    return ((workflow.get("status") or {}).get("phase") or "") in (
        "Succeeded", "Failed", "Error")


def _executor_metadata(value: Any) -> dict[str, dict]:
    """The launcher's report: {output: [{"name", "uri", "metadata"}]} → {output: metadata}."""
    try:
        report = json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}
    found = {}
    if isinstance(report, dict):
        for name, entries in report.items():
            if isinstance(entries, list) and entries and isinstance(entries[0], dict):
                metadata = entries[0].get("metadata")
                if isinstance(metadata, dict):
                    found[str(name)] = metadata
    return found
