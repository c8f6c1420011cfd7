"""Fixtures of the visualization tests: the local engine (as the engine tests use it), and
artifacts written into the store the way the engine writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pipelines.engine.conftest import engine  # noqa: F401  (the fixture, shared)


@pytest.fixture
def v1_run(profile, owner):
    """A finished v1 run row whose graph declares the task ``step``'s output artifacts."""
    from pipelines.models import Experiment, Run

    graph = {"format": "argo-workflow", "name": "viz", "tasks": [{
        "id": "step", "name": "step", "outputs": [
            {"name": "mlpipeline-ui-metadata", "kind": "artifact",
             "path": "/tmp/outputs/mlpipeline_ui_metadata/data"},
            {"name": "step-roc_csv", "kind": "artifact", "path": "/tmp/outputs/roc_csv/data"},
            {"name": "step-pages", "kind": "artifact", "path": "/tmp/outputs/pages"}]}]}
    return Run.objects.create(profile=profile, experiment=Experiment.default_for(profile, owner),
                              name="viz", format="argo-workflow", document={}, graph=graph,
                              state="SUCCEEDED", created_by=owner)


@pytest.fixture
def add_task():
    """``add_task(run, node_id, started_at=None)``: a finished step."""
    from django.utils import timezone

    from pipelines.models import RunTask

    def add(run, node_id: str = "step", started_at=None, **fields):
        return RunTask.objects.create(run=run, node_id=node_id, spec_id=node_id,
                                      display_name=fields.pop("display_name", node_id),
                                      state="SUCCEEDED", started_at=started_at or timezone.now(),
                                      **fields)

    return add


@pytest.fixture
def add_artifact():
    """``add_artifact(task, name, content, type=..., metadata=...)``: an artifact stored
    where the local engine stores it. ``content`` is bytes, text, a JSON-able dict/list
    (written as JSON), a {relative path: bytes|text} folder (``folder=True``), or None
    (nothing in the store)."""
    from pipelines.engines import artifacts as store
    from pipelines.engines import layout
    from pipelines.models import Artifact

    def add(task, name: str, content=None, type: str = "system.Artifact", metadata=None,
            folder: bool = False):
        target = layout.artifact_path(task.run.profile.name, task.run_id, task.node_id, name)
        if content is not None:
            _write(target, content, folder)
        return Artifact.objects.create(
            run=task.run, task=task, name=name, type=type, uri=str(target),
            path=store.store_relative(target) if content is not None else "",
            metadata=metadata or {}, size=store.size_of(target) if content is not None else None)

    return add


def _write(target: Path, content, folder: bool) -> None:
    if folder:
        for relative, value in content.items():
            _write(target / relative, value, False)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, dict | list):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode()
    target.write_bytes(content)
