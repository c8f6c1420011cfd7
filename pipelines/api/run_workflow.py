"""The Argo Workflow a v1 client reads as ``pipeline_runtime.workflow_manifest``.

The KFP v1 server answers with the Workflow object Argo ran, status included. kfdash
builds the same shape from what it knows: a KFP v1 run's own workflow (a v2 run gets a
minimal one naming its pipeline), with the run's parameter values as its arguments and a
``status`` whose ``nodes`` are the run's task rows, the way Argo reports them: the workflow's
root DAG node (its id is the workflow's name), a node per task and group instance keyed
by its node id (what the log and artifact endpoints take), ``boundaryID`` its enclosing
group, and ``children`` the instances that follow it in its group, so the graph can be
drawn from the status alone, as the KFP v1 UI draws it.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC
from typing import Any

from pipelines.choices import RunState, SpecFormat, TaskKind, TaskState

# Argo's phases: a workflow is Pending, Running, Succeeded, Failed or Error; a node may also
# be Skipped. A terminated Argo workflow is Failed (KFP v1 shows it so).
WORKFLOW_PHASE = {
    RunState.PENDING: "Pending", RunState.PAUSED: "Pending", RunState.RUNNING: "Running",
    RunState.CANCELING: "Running", RunState.SUCCEEDED: "Succeeded",
    RunState.SKIPPED: "Succeeded", RunState.FAILED: "Failed", RunState.CANCELED: "Failed",
}
NODE_PHASE = {
    TaskState.PENDING: "Pending", TaskState.RUNNING: "Running", TaskState.CANCELING: "Running",
    TaskState.SUCCEEDED: "Succeeded", TaskState.CACHED: "Succeeded",
    TaskState.SKIPPED: "Skipped", TaskState.FAILED: "Failed", TaskState.CANCELED: "Failed",
}
NODE_TYPE = {TaskKind.TASK: "Pod", TaskKind.LOOP: "TaskGroup"}  # other groups are DAGs


def workflow_manifest(run, tasks: list) -> dict[str, Any]:
    """The run as an Argo Workflow with its status (``tasks``: the run's RunTask rows)."""
    workflow = _workflow(run)
    root = workflow["metadata"]["name"]
    workflow["status"] = {
        "phase": WORKFLOW_PHASE.get(run.state, "Pending"),
        "startedAt": rfc3339(run.started_at), "finishedAt": rfc3339(run.finished_at),
        "message": run.error, "nodes": _nodes(run, tasks, root),
    }
    return workflow


def _workflow(run) -> dict[str, Any]:
    graph = run.graph or {}
    if run.format == SpecFormat.ARGO:
        workflow = copy.deepcopy(run.document)
    else:
        workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                    "metadata": {}, "spec": {"entrypoint": graph.get("name") or "pipeline"}}
    metadata = workflow.setdefault("metadata", {})
    prefix = metadata.pop("generateName", "") or f"{graph.get('name') or 'run'}-"
    metadata.update({
        "name": f"{prefix}{run.pk.hex[:5]}", "namespace": run.profile.name, "uid": str(run.pk),
        "creationTimestamp": rfc3339(run.created_at),
        "labels": {**(metadata.get("labels") or {}), "pipeline/runid": str(run.pk)},
    })
    workflow.setdefault("spec", {})["arguments"] = {"parameters": [
        {"name": name, "value": text_value(value)} for name, value in run.parameters.items()]}
    return workflow


def _nodes(run, tasks: list, root: str) -> dict[str, dict[str, Any]]:
    graph = run.graph or {}
    declared = {item["id"]: item for item in [*graph.get("tasks", []),
                                              *graph.get("groups", [])]}
    by_pk = {task.pk: task for task in tasks}
    nodes = {root: {
        "id": root, "name": root, "displayName": root, "type": "DAG",
        "templateName": (run.document or {}).get("spec", {}).get("entrypoint", root)
        if run.format == SpecFormat.ARGO else root,
        "phase": WORKFLOW_PHASE.get(run.state, "Pending"),
        "startedAt": rfc3339(run.started_at), "finishedAt": rfc3339(run.finished_at),
        "children": [],
    }}
    for task in tasks:
        parent = by_pk.get(task.parent_id)
        nodes[task.node_id] = _node(task, declared.get(task.spec_id, {}), root,
                                    parent.node_id if parent else root)
    for scope in _scopes(tasks).values():
        in_scope = {task.spec_id: task for task in scope}
        for task in scope:
            upstream = [in_scope[d] for d in declared.get(task.spec_id, {}).get(
                "dependencies", []) if d in in_scope]
            for before in upstream:
                nodes[before.node_id]["children"].append(task.node_id)
            if not upstream:  # the group starts with it
                nodes[nodes[task.node_id]["boundaryID"]]["children"].append(task.node_id)
    return nodes


def _scopes(tasks: list) -> dict[Any, list]:
    """The run's instances by enclosing group instance: dependencies hold between siblings."""
    scopes: dict[Any, list] = {}
    for task in tasks:
        scopes.setdefault(task.parent_id, []).append(task)
    return scopes


def _node(task, declared: dict, root: str, boundary: str) -> dict[str, Any]:
    node = {
        "id": task.node_id, "name": f"{root}.{task.node_id}",
        "displayName": task.display_name, "type": NODE_TYPE.get(task.kind, "DAG"),
        "templateName": declared.get("component") or task.spec_id,
        "phase": NODE_PHASE.get(task.state, "Pending"), "boundaryID": boundary,
        "startedAt": rfc3339(task.started_at), "finishedAt": rfc3339(task.finished_at),
        "children": [],
    }
    if task.error:
        node["message"] = task.error
    parameters = (task.inputs or {}).get("parameters") or {}
    if parameters:
        node["inputs"] = {"parameters": [{"name": name, "value": text_value(value)}
                                         for name, value in parameters.items()]}
    outputs = _outputs(task)
    if outputs:
        node["outputs"] = outputs
    return node


def _outputs(task) -> dict[str, Any]:
    recorded = task.outputs or {}
    outputs: dict[str, Any] = {}
    parameters = recorded.get("parameters") or {}
    if parameters:
        outputs["parameters"] = [{"name": name, "value": text_value(value)}
                                 for name, value in parameters.items()]
    artifacts = []
    for name, entries in (recorded.get("artifacts") or {}).items():
        for entry in entries if isinstance(entries, list) else [entries]:
            uri = entry.get("uri", "") if isinstance(entry, dict) else str(entry)
            artifacts.append({"name": name, "path": uri})
    if artifacts:
        outputs["artifacts"] = artifacts
    if recorded.get("result") is not None:  # Argo's outputs.result (a step's stdout)
        outputs["result"] = str(recorded["result"])
    if task.exit_code is not None:
        outputs["exitCode"] = str(task.exit_code)
    return outputs


def text_value(value: Any) -> str:
    """A parameter value as Argo and the v1 API pass it: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def rfc3339(when) -> str | None:
    """RFC 3339 in UTC with ``Z`` (the SDKs parse it; never ``""``), or None."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None
