"""Runs built from rows, for the run page's tests: ``hello-pipeline`` with its tasks and group
instances recorded as an engine records them (a loop with one iteration per task state),
artifacts written where the local engine keeps them, and changes committed the way engines
commit them (``Run.commit_changes``). Plain functions: the browser journeys call them in a
server's ``manage.py shell`` too."""

from __future__ import annotations

import asyncio
import functools
import tempfile
from datetime import timedelta
from pathlib import Path

from asgiref.sync import sync_to_async
from django.utils import timezone

from pipelines.choices import TaskState
from pipelines.engines import Engine, layout
from pipelines.models import Artifact, Experiment, Run, RunTask
from pipelines.specs import load

EVERY_STATE = list(TaskState.values)  # PENDING … CANCELED, in the legend's order
LOOP = "for-loop-3"  # hello-pipeline's ParallelFor over ["a", "b"]
CONDITION = "condition-1"  # its dsl.If(score > 0.8, name="good-enough")


@functools.cache
def hello_package() -> bytes:
    """KFP v2 IR of ``hello-pipeline``, compiled once per process by the real compiler."""
    from tests.pipelines.pages.sample_pipelines import compiled

    return compiled("hello_pipeline", Path(tempfile.mkdtemp(prefix="hello-ir-")))


def hello_run(profile, owner, *, name: str = "nightly", state: str = "RUNNING") -> Run:
    loaded = load(hello_package())
    started = timezone.now() - timedelta(minutes=2)
    return Run.objects.create(
        profile=profile, experiment=Experiment.default_for(profile, owner), name=name,
        format=loaded.format, document=loaded.document, graph=loaded.spec.to_dict(),
        parameters={"rows": 100, "lr": 0.1, "target": "prod"}, state=state, created_by=owner,
        created_at=started, scheduled_at=started, started_at=started, state_history=[
            {"update_time": started.isoformat(), "state": "PENDING"},
            {"update_time": started.isoformat(), "state": "RUNNING"}])


def add_task(run: Run, spec_id: str, state: str = "PENDING", *, node_id: str = "",
             kind: str = "task", parent: RunTask | None = None, iteration: int | None = None,
             **fields) -> RunTask:
    now = timezone.now()
    if state not in ("PENDING", "SKIPPED"):
        fields.setdefault("started_at", now - timedelta(seconds=30))
        fields.setdefault("attempts", 1)
    if state in ("SUCCEEDED", "CACHED", "FAILED", "CANCELED"):
        fields.setdefault("finished_at", now - timedelta(seconds=5))
    return RunTask.objects.create(run=run, spec_id=spec_id, node_id=node_id or spec_id,
                                  kind=kind, parent=parent, iteration=iteration, state=state,
                                  display_name=fields.pop("display_name", spec_id), **fields)


def every_state_run(profile, owner, **kwargs) -> Run:
    """A running ``hello-pipeline``: load-data succeeded (with a Dataset), train was cached,
    evaluate runs, the condition was skipped, and the loop has one iteration per task state
    (``notify.<i>`` in state EVERY_STATE[i])."""
    run = hello_run(profile, owner, **kwargs)
    load_data = add_task(
        run, "load-data", "SUCCEEDED", exit_code=0, image="python:3.11",
        command=["python3", "-m", "kfp.dsl.executor_main", "--executor_input", "{...}"],
        inputs={"parameters": {"rows": 100}}, outputs={"parameters": {"Output": 100}})
    write_artifact(run, load_data, "data", b"id,value\n1,2\n", "system.Dataset")
    add_task(run, "train", "CACHED", image="python:3.11",
             inputs={"parameters": {"lr": 0.1}, "artifacts": {
                 "data": [{"uri": artifact_uri(run, load_data, "data"),
                           "type": "system.Dataset"}]}})
    add_task(run, "evaluate", "RUNNING", image="python:3.11")
    add_task(run, CONDITION, "SKIPPED", kind="condition", display_name="good-enough")
    loop = add_task(run, LOOP, "RUNNING", kind="loop")
    for index, state in enumerate(EVERY_STATE):
        iteration = add_task(run, LOOP, state, node_id=f"{LOOP}.{index}", kind="iteration",
                             parent=loop, iteration=index)
        add_task(run, "notify", state, node_id=f"notify.{index}", parent=iteration,
                 iteration=index, image="python:3.11",
                 exit_code=1 if state == "FAILED" else None,
                 error="notify failed: exit code 1" if state == "FAILED" else "",
                 inputs={"parameters": {"msg": f"item {index}"}})
    return run


def artifact_uri(run: Run, task: RunTask, name: str) -> str:
    return str(layout.artifact_path(run.profile.name, run.pk, task.node_id, name))


def write_artifact(run: Run, task: RunTask, name: str, content: bytes | None,
                   type_: str = "system.Artifact") -> Artifact:
    """An artifact row and its file in the store (``artifacts/<ns>/<run>/<task>/<name>``);
    ``content=None`` records one whose file is gone."""
    path = layout.artifact_path(run.profile.name, run.pk, task.node_id, name)
    if content is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    relative = str(path.relative_to(layout.artifacts_root()))
    return Artifact.objects.create(run=run, task=task, name=name, type=type_, path=relative,
                                   uri=artifact_uri(run, task, name),
                                   size=len(content) if content is not None else None)


class NotebookEngine(Engine):
    """An engine that runs nothing and writes down what it is asked (``calls``); its logs
    are texts the test gives (``logs[node_id]``, appended to while a step "runs"). Its
    terminate and retry commit what a real engine commits first."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.logs: dict[str, str] = {}

    def terminate(self, run) -> None:
        self.calls.append(("terminate", run.name))
        run.commit_changes(state="CANCELING")

    def retry(self, run) -> None:
        self.calls.append(("retry", run.name))
        run.commit_changes(state="RUNNING", error="")

    def forget(self, run) -> None:
        self.calls.append(("forget", run.name))

    def read_log(self, task, tail_bytes: int | None = None) -> str:
        text = self.logs.get(task.node_id, "")
        return text[-tail_bytes:] if tail_bytes is not None else text

    async def follow_log(self, task):
        sent = 0
        while True:
            text = self.logs.get(task.node_id, "")
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)
            elif await _finished(task.pk):
                return
            await asyncio.sleep(0.02)


@sync_to_async
def _finished(task_id) -> bool:
    return RunTask.objects.get(pk=task_id).is_finished
