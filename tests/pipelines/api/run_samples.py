"""Runs of ``add-pipeline`` made as rows, for the runs API tests where execution is not the
point: a run in any state, with tasks, artifacts and metrics recorded as an engine records
them (``tests/pipelines/run_rows.py`` has the task and artifact helpers)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from pipelines.models import Experiment, Run, RunMetric
from pipelines.specs import load
from tests.pipelines.run_rows import NotebookEngine, add_task, write_artifact


def install_engine(monkeypatch, settings) -> NotebookEngine:
    """Make the engine the models reach through ``engine_for`` a double that notes its
    calls and runs nothing."""
    from pipelines import engines

    double = NotebookEngine()
    monkeypatch.setitem(engines._engines, settings.KFDASH_PLATFORM, double)
    return double


def make_run(profile, owner, ir_package: bytes, *, name: str = "nightly",
             state: str = "SUCCEEDED", experiment: Experiment | None = None, **fields) -> Run:
    loaded = load(ir_package)
    started = timezone.now() - timedelta(minutes=2)
    fields.setdefault("started_at", None if state == "PENDING" else started)
    fields.setdefault("finished_at", started + timedelta(minutes=1) if state in (
        "SUCCEEDED", "FAILED", "CANCELED") else None)
    history = [{"update_time": started.isoformat(), "state": "PENDING"},
               {"update_time": started.isoformat(), "state": "RUNNING"}]
    if state not in ("PENDING", "RUNNING"):
        history.append({"update_time": started.isoformat(), "state": state,
                        **({"error": fields["error"]} if fields.get("error") else {})})
    fields.setdefault("parameters", {"a": 3, "msg": "hi", "ratio": 0.5})
    return Run.objects.create(
        profile=profile, experiment=experiment or Experiment.default_for(profile, owner),
        name=name, format=loaded.format, document=loaded.document,
        graph=loaded.spec.to_dict(), state=state, created_by=owner, state_history=history,
        **fields)


def finished_run(profile, owner, ir_package: bytes, **fields) -> Run:
    """A succeeded run: ``add`` wrote a Dataset and a metric, ``say`` read the Dataset, and
    both sit in a loop iteration (as if the pipeline looped): the shapes of every table."""
    run = make_run(profile, owner, ir_package, **fields)
    loop = add_task(run, "for-loop-1", "SUCCEEDED", kind="loop", display_name="for-loop-1")
    iteration = add_task(run, "for-loop-1", "SUCCEEDED", node_id="for-loop-1.0",
                         kind="iteration", parent=loop, iteration=0)
    add = add_task(run, "add", "SUCCEEDED", node_id="for-loop-1/add.0", parent=iteration,
                   exit_code=0, inputs={"parameters": {"a": 3, "b": 2}},
                   outputs={"parameters": {"Output": 5}})
    dataset = write_artifact(run, add, "sums", b"5\n", "system.Dataset")
    add.outputs = {**add.outputs, "artifacts": {"sums": [{"name": "sums", "uri": dataset.uri,
                                                          "type": "system.Dataset"}]}}
    add.save(update_fields=["outputs"])
    add_task(run, "say", "CACHED", node_id="for-loop-1/say.0", parent=iteration,
             inputs={"parameters": {"msg": "hi"},
                     "artifacts": {"sums": {"uri": dataset.uri, "type": "system.Dataset"}}})
    RunMetric.objects.create(run=run, task=add, name="accuracy-score", value=0.9,
                             format="PERCENTAGE")
    return run
