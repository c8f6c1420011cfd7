"""The run details page: the run's graph coloured by state (kept live by a websocket,
``pipelines.consumers.RunConsumer``), each step's inputs, outputs, artifacts and log, a
timeline, the parameters and the spec; the actions of users with edit rights; and the
downloads of artifacts and logs, through the access policy like everything else.

The page itself only renders what is true when it loads (and a table of the steps for
browsers without JavaScript); ``static/js/run-detail.js`` takes over from the websocket's
snapshot.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from pipelines.choices import RunState, TaskKind, TaskState
from pipelines.engines import EngineError, artifacts, engine_for, remote_artifacts
from pipelines.models import Artifact, Run, RunTask
from pipelines.views import query_uuid
from pipelines.views.graph import graph_data
from pipelines.views.runs import duration_text
from pipelines.visualizations import task_cards

# What the page lists of every task (the heavy JSON columns are read one step at a time).
TASK_LIST_FIELDS = ("id", "run_id", "node_id", "spec_id", "kind", "parent_id", "iteration",
                    "display_name", "state", "error", "attempts", "exit_code", "revision",
                    "created_at", "started_at", "finished_at")
LOG_TAIL_BYTES = 256 * 1024  # what a page shows of a log without JavaScript
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
NODE_PLACEHOLDER = "__node__"


def namespace_run(profile, run_id) -> Run:
    """A run of this namespace, else 404."""
    return get_object_or_404(
        Run.objects.select_related("profile", "experiment", "pipeline", "pipeline_version",
                                   "created_by"), profile=profile, pk=run_id)


def _task(run: Run, **lookup) -> RunTask:
    task = get_object_or_404(RunTask.objects.select_related("cached_from"), run=run, **lookup)
    task.run = run  # with its profile: the engine finds the step's files by namespace
    return task


@namespace_view()
def run_detail(request, profile, run_id):
    run = namespace_run(profile, run_id)
    spec = run.spec
    graph = graph_data(spec)
    tasks = list(run.tasks.only(*TASK_LIST_FIELDS))
    step = None
    chosen = request.GET.get("step")
    if chosen:  # without JavaScript, a step's panel is a link: ?step=<task id>
        step = _step(run, _task(run, pk=query_uuid(chosen)), spec, graph, with_log=True)
    can_edit = profile.role.allows(Role.EDIT)
    return render(request, "pipelines/run_detail.html", {
        "profile": profile, "run": run, "spec": spec, "graph": graph,
        "run_duration": duration_text(run.started_at, run.finished_at, timezone.now()),
        "clone_url": f"{reverse('run-new', args=[profile.name])}?clone={run.pk}",
        "steps": _step_rows(tasks, graph), "step": step, "can_edit": can_edit,
        "state_label": RunState(run.state).label if run.state in RunState.values else run.state,
        "parameters": parameter_rows(run.parameters, spec), "source": _as_yaml(run),
        "page_data": _page_data(profile, run),
        "states": [(state, TaskState(state).label) for state in TaskState.values],
    })


def _page_data(profile, run: Run) -> dict[str, Any]:
    """Where run-detail.js finds the run's websocket, a step's panel and its log (the
    placeholders stand for a task id and a node id)."""
    return {
        "live": f"/ws/ns/{profile.name}/runs/{run.pk}/",
        "step_url": reverse("run-step", args=[profile.name, run.pk, ZERO_UUID]),
        "log_live": f"/ws/ns/{profile.name}/runs/{run.pk}/tasks/{NODE_PLACEHOLDER}/log/",
        "zero_uuid": ZERO_UUID, "node_placeholder": NODE_PLACEHOLDER,
    }


def _step_rows(tasks: list[RunTask], graph: dict) -> list[dict[str, Any]]:
    """The steps table (what a browser without JavaScript gets instead of the graph): tasks
    only, each with where it ran (its group and loop iterations)."""
    by_id = {task.pk: task for task in tasks}
    names = {t["id"]: t["name"] for t in graph["tasks"]}
    rows = []
    for task in tasks:
        if task.kind != TaskKind.TASK:
            continue
        rows.append({"task": task, "name": task.display_name or names.get(task.spec_id, ""),
                     "iterations": _iterations(task, by_id), "duration": _duration(task)})
    return rows


def _iterations(task: RunTask, by_id: dict) -> list[int]:
    """The loop iteration indices of every loop around ``task``, outermost first."""
    indices = []
    parent = by_id.get(task.parent_id)
    while parent is not None:
        if parent.kind == TaskKind.ITERATION and parent.iteration is not None:
            indices.append(parent.iteration)
        parent = by_id.get(parent.parent_id)
    return indices[::-1]


@namespace_view()
def run_step(request, profile, run_id, task_id):
    """One step's panel, as an HTML fragment the page's script puts beside the graph."""
    run = namespace_run(profile, run_id)
    spec = run.spec
    step = _step(run, _task(run, pk=task_id), spec, graph_data(spec), with_log=False)
    return render(request, "pipelines/_run_detail_step.html", {
        "profile": profile, "run": run, "step": step})


def _step(run: Run, task: RunTask, spec, graph: dict, with_log: bool) -> dict[str, Any]:
    """Everything the step panel says about ``task``, in words."""
    spec_task = next((t for t in graph["tasks"] if t["id"] == task.spec_id), None)
    retries = next((t.retries for t in spec.tasks if t.id == task.spec_id), 0)
    groups = {g["id"]: g for g in graph["groups"]}
    artifacts = list(task.artifacts.all())
    run_artifacts = {a.uri: a for a in Artifact.objects.filter(run=run)} if task.inputs.get(
        "artifacts") else {}
    for artifact in (*artifacts, *run_artifacts.values()):
        artifact.run = run  # loaded, with its namespace: whether each is downloadable asks
    for artifact in artifacts:
        artifact.task = task
    step = {
        "task": task, "run": run, "spec": spec_task,
        "state_label": TaskState(task.state).label if task.state in TaskState.values
        else task.state,
        "where": _where(task, groups),
        "duration": _duration(task),
        "inputs": _parameter_values(task.inputs.get("parameters")),
        "outputs": _parameter_values(task.outputs.get("parameters")),
        "input_artifacts": _input_artifacts(task.inputs.get("artifacts"), run_artifacts),
        "output_artifacts": _output_artifacts(artifacts, task.outputs.get("artifacts")),
        "command": [str(word) for word in task.command or []],
        "image": task.image or (spec_task or {}).get("image", ""),
        "max_attempts": retries + 1 if retries else None,
        "local": settings.KFDASH_PLATFORM == "local",
        "memory_limit": (task.runtime or {}).get("memory_limit") or "",
        "log_url": reverse("run-task-log", args=[run.profile.name, run.pk, task.node_id]),
        "log": None, "log_error": "",
        "cards": task_cards(task) if task.kind == TaskKind.TASK else [],
    }
    step["input_count"] = len(step["inputs"]) + len(step["input_artifacts"])
    step["output_count"] = len(step["outputs"]) + len(step["output_artifacts"])
    if with_log and task.kind == TaskKind.TASK:
        try:
            step["log"] = engine_for(run).read_log(task, LOG_TAIL_BYTES)
        except EngineError as exc:
            step["log_error"] = str(exc)
    return step


def _where(task: RunTask, groups: dict) -> list[str]:
    """The groups around a step, outermost first: ["for each in [a, b], iteration 2",
    "if score > 0.8"]."""
    words = []
    parent = task.parent
    while parent is not None:
        group = groups.get(parent.spec_id)
        if parent.kind == TaskKind.ITERATION:
            label = group["label"] if group else parent.display_name
            words.append(f"{label}, iteration {(parent.iteration or 0) + 1}")
        elif parent.kind != TaskKind.LOOP:  # a loop's iteration says it already
            words.append(group["label"] if group else parent.display_name)
        parent = parent.parent
    return words[::-1]


def _duration(task: RunTask) -> str:
    if task.started_at is not None and task.finished_at is None:
        return "running"
    return duration_text(task.started_at, task.finished_at, None)


def _parameter_values(values: Any) -> list[tuple[str, str]]:
    if not isinstance(values, dict):
        return []
    return [(name, _text(value)) for name, value in values.items()]


def _input_artifacts(values: Any, run_artifacts: dict[str, Artifact]) -> list[dict[str, Any]]:
    """Input artifacts as the engine recorded them, each linked to its download when it is
    one of this run's stored artifacts."""
    return [{**entry, "artifact": run_artifacts.get(entry["uri"])}
            for entry in artifact_entries(values)]


def _output_artifacts(artifacts: list[Artifact], recorded: Any) -> list[dict[str, Any]]:
    """The task's stored artifacts, then outputs the engine recorded but did not store
    (a URI outside kfdash, from an importer)."""
    rows = [{"name": a.name, "uri": a.uri, "type": a.type, "artifact": a} for a in artifacts]
    stored = {a.uri for a in artifacts}
    rows += [{**entry, "artifact": None} for entry in artifact_entries(recorded)
             if entry["uri"] not in stored]
    return rows


def artifact_entries(values: Any) -> list[dict[str, str]]:
    """``{name: [{"uri", "type", ...}, ...]}`` (a list for a fan-in), or a single entry or a
    bare URI per name, as name/uri/type rows."""
    if not isinstance(values, dict):
        return []
    rows = []
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                rows.append({"name": name, "uri": str(item.get("uri", "")),
                             "type": str(item.get("type", ""))})
            else:
                rows.append({"name": name, "uri": str(item), "type": ""})
    return rows


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parameter_rows(values: dict[str, Any], spec) -> list[dict[str, str]]:
    """Each parameter value as text, with its declared type (a run's, a recurring run's;
    no types without a ``spec``: a recurring run whose pipeline is gone)."""
    declared = {p.name: p for p in spec.parameters} if spec is not None else {}
    rows = []
    for name, value in values.items():
        parameter = declared.get(name)
        rows.append({"name": name, "value": _text(value),
                     "type": (parameter.declared_type or parameter.type) if parameter else ""})
    return rows


def _as_yaml(run: Run) -> str:
    documents = [run.document]
    if run.platform_spec:
        documents.append(run.platform_spec)
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


# --- downloads --------------------------------------------------------------------------


@namespace_view()
def task_log(request, profile, run_id, node_id):
    """A step's whole stored log as a plain-text download."""
    run = namespace_run(profile, run_id)
    task = _task(run, node_id=node_id)
    try:
        text = engine_for(run).read_log(task)
    except EngineError as exc:
        raise Http404(str(exc)) from None
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        True, _filename(f"{run.name}-{node_id}.log"))
    response["X-Content-Type-Options"] = "nosniff"
    return response


@namespace_view()
def artifact_download(request, profile, run_id, artifact_id):
    """An artifact's file (a folder comes as a .tar.gz), always as a download: what a step
    wrote is never rendered by the browser on kfdash's origin."""
    run = namespace_run(profile, run_id)
    return file_download(get_object_or_404(Artifact, run=run, pk=artifact_id))


def file_download(artifact: Artifact):
    """The artifact as an attachment (a folder as a .tar.gz made as it is sent), for the run
    page and the API alike: from kfdash's store, or streamed from the artifact store for a
    run on Argo; 404 when it is in neither."""
    name = _filename(artifact.name)
    path = artifact.stored_file() or remote_artifacts.cached_copy(artifact)
    if path is not None and path.is_dir():
        response = StreamingHttpResponse(artifacts.tar_gz(path),
                                         content_type="application/octet-stream")
        response["Content-Disposition"] = content_disposition_header(True, f"{name}.tar.gz")
    elif path is not None:
        response = FileResponse(path.open("rb"), as_attachment=True, filename=name,
                                content_type="application/octet-stream")
    else:
        try:
            remote = remote_artifacts.download(artifact)
        except remote_artifacts.RemoteArtifactError as exc:
            if exc.status == 404:
                raise Http404(str(exc)) from None
            return HttpResponse(str(exc), status=exc.status,
                                content_type="text/plain; charset=utf-8")
        response = StreamingHttpResponse(remote.chunks, content_type="application/octet-stream")
        response["Content-Disposition"] = content_disposition_header(
            True, f"{name}.tar.gz" if remote.folder else name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


def _filename(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "-", name).strip(".-") or "download"


# --- actions ----------------------------------------------------------------------------


# What each action on the run page says once done ("{name}": the run's name).
ACTIONS = {
    "terminate": "Terminating the run {name}.",
    "retry": "Retrying the failed and canceled steps of {name}; the others keep their results.",
    "archive": "The run {name} is archived.",
    "unarchive": "The run {name} is restored.",
}


@namespace_view(Role.EDIT)
@require_POST
def run_action(request, profile, run_id, action: str):
    """Terminate, retry, archive or restore the run as the user; a refusal (a finished run
    cannot be terminated…) becomes a message on the page rather than an error page."""
    run = namespace_run(profile, run_id)
    try:
        getattr(run, action)(request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except EngineError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, ACTIONS[action].format(name=run.name))
    return redirect("run-detail", profile.name, run.pk)


@namespace_view(Role.EDIT)
@require_POST
def run_delete(request, profile, run_id):
    run = namespace_run(profile, run_id)
    try:
        run.remove(request.user)
    except EngineError as exc:
        messages.error(request, str(exc))
        return redirect("run-detail", profile.name, run.pk)
    messages.success(request, f"The run {run.name} is deleted, with its logs and artifacts.")
    return redirect("runs", profile.name)

