"""Record what a run's Workflow reports: its tasks' rows, their outputs, artifacts and
metrics, and the run's state, committed through ``Run.commit_changes`` (so pages change
live exactly as they do for the local engine). Only what changed is written."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from pipelines.choices import FINISHED, RunState, TaskKind, TaskState
from pipelines.models import Artifact, Run, RunMetric, RunTask

from . import artifacts
from .argo_status import NodeState, read_status

# RunTask fields a Workflow's status sets.
OBSERVED = ("state", "error", "attempts", "exit_code", "started_at", "finished_at", "outputs",
            "runtime")


@dataclass
class Finished:
    """A step that has just ended: its pod's log is to be kept."""

    task: RunTask
    pod: str


def record(run: Run, workflow: dict) -> list[Finished]:
    """Bring ``run`` and its tasks in line with ``workflow``; returns the steps that ended
    with this change (their logs are copied afterwards, outside the transaction)."""
    seen = read_status(run.spec, workflow, bucket=settings.KFDASH_ARTIFACT_S3_BUCKET)
    state, error = seen.state, seen.error
    if run.state == RunState.CANCELING and state in (RunState.RUNNING, RunState.PENDING):
        state = RunState.CANCELING  # asked to stop; Argo has not caught up yet
    ended: list[Finished] = []
    with transaction.atomic():
        rows = {row.node_id: row for row in
                RunTask.objects.select_for_update().filter(run=run)}
        changed: list[RunTask] = []
        tasks = {task.id: task for task in run.spec.tasks}
        for node in [*seen.nodes.values(), *_importers(run, workflow, seen)]:
            row = rows.get(node.node_id)
            was_finished = row is not None and row.is_finished
            if row is None:
                row = _new_row(run, node, rows, tasks)
                rows[node.node_id] = row
            before = {name: getattr(row, name) for name in OBSERVED}
            _observe(row, node, tasks)
            if row._state.adding or before != {name: getattr(row, name) for name in OBSERVED}:
                changed.append(row)
                if row.is_finished and not was_finished and node.pod:
                    ended.append(Finished(row, node.pod))
        fields = {}
        if state != run.state:
            fields["state"] = state
        if error != run.error and (error or state not in FINISHED):
            fields["error"] = error
        if changed or fields:
            run.commit_changes(changed, **fields)
        _store_outputs(run, [f.task for f in ended] + [
            row for row in changed if row.is_finished and row.outputs.get("artifacts")
            and not any(f.task is row for f in ended)])
    return ended


def _importers(run: Run, workflow: dict, seen) -> list[NodeState]:
    """``dsl.importer`` tasks have no node (the compiler hands their URI straight to the
    consumers, listing them in an annotation): they succeed, with their artifact, once the
    Workflow runs and the group around them does."""
    from .argo_compile import IMPORTERS_ANNOTATION
    from .executor_protocol import ProtocolError, imported_artifact

    listed = ((workflow.get("metadata") or {}).get("annotations") or {}).get(
        IMPORTERS_ANNOTATION)
    if not listed or not (workflow.get("status") or {}).get("phase"):
        return []
    found = []
    for spec_id in json.loads(listed):
        task = next((t for t in run.spec.tasks if t.id == spec_id), None)
        parent = seen.nodes.get(task.parent) if task is not None and task.parent else None
        if task is None or (task.parent and (parent is None or parent.state in (
                TaskState.PENDING, TaskState.SKIPPED))):
            continue
        values = {port.name: (port.source.value if port.source.kind == "constant" else
                              run.parameters.get(port.source.parameter))
                  for port in task.inputs if port.source is not None
                  and port.source.kind in ("constant", "pipeline_parameter")}
        node = NodeState(node_id=spec_id, spec_id=spec_id, kind=TaskKind.TASK,
                         parent=task.parent, iteration=None, display_name=task.name,
                         state=TaskState.SUCCEEDED)
        try:
            entry = imported_artifact(task.importer, values)
        except ProtocolError as exc:
            node.state, node.error = TaskState.FAILED, f"The importer cannot run: {exc}"
        else:
            node.artifacts = {"artifact": entry["uri"]}
            node.artifact_metadata = {"artifact": entry.get("metadata") or {}}
        found.append(node)
    return found


def _new_row(run: Run, node: NodeState, rows: dict, tasks: dict) -> RunTask:
    task = tasks.get(node.spec_id)
    container = task.container if task is not None else None
    parent = rows.get(node.parent) if node.parent else None
    return RunTask(run=run, node_id=node.node_id, spec_id=node.spec_id, kind=node.kind,
                   parent=parent, iteration=node.iteration, display_name=node.display_name,
                   image=container.image if container else "",
                   command=[*container.command, *container.args] if container else [])


def _observe(row: RunTask, node: NodeState, tasks: dict) -> None:
    row.state, row.error = node.state, node.error
    row.attempts = max(row.attempts, node.attempts)
    row.exit_code = node.exit_code
    row.started_at = node.started_at or row.started_at
    row.finished_at = node.finished_at if row.state in FINISHED else None
    if node.parameters or node.artifacts:
        task = tasks.get(node.spec_id)
        types = {p.name: p.type for p in task.outputs} if task is not None else {}
        row.outputs = {
            "parameters": dict(node.parameters),
            "artifacts": {name: [{"name": name, "type": types.get(name, "system.Artifact"),
                                  "uri": uri, "path": "",
                                  "metadata": node.artifact_metadata.get(name, {})}]
                          for name, uri in node.artifacts.items()},
        }
    runtime = {"argo_node": node.argo_node}
    if node.pod:
        runtime["pod"] = node.pod
    row.runtime = {**row.runtime, **runtime}


def _store_outputs(run: Run, rows: list[RunTask]) -> None:
    """Artifact and RunMetric rows for steps that ended with outputs (once per step)."""
    for row in rows:
        entries = row.outputs.get("artifacts") or {}
        if not entries or Artifact.objects.filter(task=row).exists():
            continue
        Artifact.objects.bulk_create(artifacts.rows(run, row, entries))
        RunMetric.objects.bulk_create(artifacts.metrics(run, row, entries),
                                      ignore_conflicts=True)
