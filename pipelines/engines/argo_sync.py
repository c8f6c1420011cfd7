"""Record what a run's Workflow reports: its tasks' rows, their outputs, artifacts and
metrics, and the run's state, committed through ``Run.commit_changes`` (so pages change
live exactly as they do for the local engine). Only what changed is written.

Tasks without nodes get rows once the Workflow runs (and the group around them does):
importers (SUCCEEDED with their artifact) and tasks served from the cache (CACHED, with
the serving execution's outputs, artifacts and metrics, as the local engine records a
cache hit). A task that succeeds gets the cache key the engine computed at submit, if
its inputs were known then (``argo_cache.py``), or the key Argo memoized it under
(``argo_compile_cache.py``), so that later runs can reuse it; one Argo served from its
memoization cache is CACHED."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from pipelines.choices import FINISHED, RunState, TaskKind, TaskState
from pipelines.models import Artifact, Run, RunMetric, RunTask

from . import artifacts, caching
from .argo_cache import CACHE_KEYS_ANNOTATION, CACHED_ANNOTATION, RAN_ON_THE_CLUSTER
from .argo_status import NodeState, read_status

# RunTask fields a Workflow's status sets.
OBSERVED = ("state", "error", "attempts", "exit_code", "started_at", "finished_at", "outputs",
            "runtime", "cache_key")


@dataclass
class Finished:
    """A step that has just ended: its pods' logs (one per attempt) are to be kept."""

    task: RunTask
    pods: list[str]


def record(run: Run, workflow: dict) -> list[Finished]:
    """Bring ``run`` and its tasks in line with ``workflow``; returns the steps that ended
    with this change (their logs are copied afterwards, outside the transaction)."""
    spec = run.spec  # parsed once: a run's graph may hold hundreds of tasks
    seen = read_status(spec, workflow, bucket=settings.KFDASH_ARTIFACT_S3_BUCKET)
    state, error = seen.state, seen.error
    if run.state == RunState.CANCELING and state in (RunState.RUNNING, RunState.PENDING):
        state = RunState.CANCELING  # asked to stop; Argo has not caught up yet
    ended: list[Finished] = []
    with transaction.atomic():
        rows = {row.node_id: row for row in
                RunTask.objects.select_for_update().filter(run=run)}
        changed: list[RunTask] = []
        tasks = {task.id: task for task in spec.tasks}
        keys = _annotation(workflow, CACHE_KEYS_ANNOTATION)
        for node in [*seen.nodes.values(), *_importers(run, tasks, workflow, seen)]:
            row = rows.get(node.node_id)
            was_finished = row is not None and row.is_finished
            if row is None:
                row = _new_row(run, node, rows, tasks)
                rows[node.node_id] = row
            before = {name: getattr(row, name) for name in OBSERVED}
            _observe(row, node, tasks)
            if row.state == TaskState.SUCCEEDED and node.node_id in keys:
                row.cache_key = str(keys[node.node_id])  # (no loops: node id = spec id)
            elif node.cache_key and row.state in (TaskState.SUCCEEDED, TaskState.CACHED) \
                    and not was_finished:  # once, when the step ends: no lookup per event
                _memoized(run, row, node.cache_key)
            if row._state.adding or before != {name: getattr(row, name) for name in OBSERVED}:
                changed.append(row)
                if row.is_finished and not was_finished and node.pods:
                    ended.append(Finished(row, node.pods))
        for row in _cached(run, workflow, seen, rows, tasks, keys):
            rows[row.node_id] = row
            changed.append(row)
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


def _memoized(run: Run, row: RunTask, key: str) -> None:
    """A step Argo memoized keeps its key (so it serves later runs at submit too); one
    Argo served from its cache names the execution that ran, when kfdash recorded it."""
    row.cache_key = key
    if row.state == TaskState.CACHED and row.cached_from_id is None:
        row.cached_from = caching.find(run.profile_id, key, among=RAN_ON_THE_CLUSTER,
                                       usable=lambda candidate: candidate.run_id != run.pk)


def _importers(run: Run, tasks: dict, workflow: dict, seen) -> list[NodeState]:
    """``dsl.importer`` tasks have no node (the compiler hands their URI straight to the
    consumers, listing them in an annotation): they succeed, with their artifact, once the
    Workflow runs and the group around them does."""
    from .argo_compile import IMPORTERS_ANNOTATION
    from .executor_protocol import ProtocolError, imported_artifact

    listed = _annotation(workflow, IMPORTERS_ANNOTATION)
    if not listed or not (workflow.get("status") or {}).get("phase"):
        return []
    found = []
    for spec_id in listed:
        task = tasks.get(spec_id)
        if task is None or not _reached(task, seen):
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


def _cached(run: Run, workflow: dict, seen, rows: dict, tasks: dict,
            keys: dict) -> list[RunTask]:
    """New rows for the tasks served from the cache (no nodes: the compiler gave their
    consumers the recorded outputs), once the Workflow runs and the group around them does:
    CACHED, ``cached_from`` the serving execution, its outputs copied."""
    listed = _annotation(workflow, CACHED_ANNOTATION)
    if not listed or not (workflow.get("status") or {}).get("phase"):
        return []
    wanted = {spec_id: str(source) for spec_id, source in listed.items()
              if spec_id not in rows and spec_id in tasks and _reached(tasks[spec_id], seen)}
    if not wanted:
        return []
    ids = [source for source in wanted.values() if _is_uuid(source)]
    sources = {str(task.pk): task for task in RunTask.objects.filter(pk__in=ids)}
    made = []
    for spec_id, source_id in wanted.items():
        task, source = tasks[spec_id], sources.get(source_id)
        row = _new_row(run, NodeState(node_id=spec_id, spec_id=spec_id, kind=TaskKind.TASK,
                                      parent=task.parent, iteration=None,
                                      display_name=task.name, state=TaskState.CACHED),
                       rows, tasks)
        row.state, row.cached_from = TaskState.CACHED, source
        row.cache_key = str(keys.get(spec_id) or "")
        row.outputs = copy.deepcopy(source.outputs or {}) if source is not None else {}
        row.runtime = {"cached_from_run": str(source.run_id)} if source is not None else {
            "cached_from_task": source_id}  # deleted since the run was submitted
        made.append(row)
    return made


def _reached(task, seen) -> bool:
    """Whether the Workflow has reached the place of a task that has no node of its own:
    the top level, or a group that started."""
    if not task.parent:
        return True
    parent = seen.nodes.get(task.parent)
    return parent is not None and parent.state not in (TaskState.PENDING, TaskState.SKIPPED)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _annotation(workflow: dict, name: str):
    """A JSON annotation kfdash wrote on the Workflow (empty when absent or unreadable)."""
    text = ((workflow.get("metadata") or {}).get("annotations") or {}).get(name)
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


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
                                  "metadata": node.artifact_metadata.get(name, {}),
                                  **({"content": node.artifact_contents[name]}
                                     if name in node.artifact_contents else {})}]
                          for name, uri in node.artifacts.items()},
        }
    runtime = {"argo_node": node.argo_node}
    if node.pod:
        runtime["pod"] = node.pod
    row.runtime = {**row.runtime, **runtime}


def _store_outputs(run: Run, rows: list[RunTask]) -> None:
    """Artifact and RunMetric rows for steps that ended with outputs (once per step)."""
    stored = set(Artifact.objects.filter(task__in=[row.pk for row in rows])
                 .values_list("task_id", flat=True)) if rows else set()
    for row in rows:
        entries = row.outputs.get("artifacts") or {}
        if not entries or row.pk in stored:
            continue
        Artifact.objects.bulk_create(artifacts.rows(run, row, entries))
        RunMetric.objects.bulk_create(artifacts.metrics(run, row, entries),
                                      ignore_conflicts=True)
