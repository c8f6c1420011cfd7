"""A run's output artifacts as cards the run page, a step's panel and the compare page
render (``templates/pipelines/_visualization.html``): one query for a run's artifacts and
their tasks, then files read from the artifact store within fixed limits.

A bad output is a card with its ``error`` set, never an exception: an unexpected failure
while reading one artifact is logged and becomes such a card too, so one step's odd file
cannot take the page down.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import F

from pipelines.models import Artifact, Run, RunTask

from . import v1, v2
from .base import TITLES, Shown
from .sources import RunFiles

logger = logging.getLogger(__name__)

# What cards need of an artifact and its task (not the tasks' inputs, outputs, commands).
FIELDS = ("id", "run_id", "task_id", "name", "type", "uri", "path", "metadata", "size",
          "created_at", "task__id", "task__run_id", "task__node_id", "task__spec_id",
          "task__display_name", "task__created_at", "task__started_at")


@dataclass
class Card:
    key: str  # unique and stable within the run: "<artifact id>:<index>"
    kind: str  # roc confusion_matrix table markdown html metrics dataset model tensorboard error
    title: str
    step: str  # the task's display name
    task_id: uuid.UUID | None
    artifact_id: uuid.UUID | None
    artifact_name: str
    data: dict[str, Any]  # kind-specific, JSON-serializable
    error: str = ""  # when set, the card shows only this message

    @property
    def matrix_rows(self) -> list[dict[str, Any]]:
        """A confusion matrix's rows with their true label, for the template's table."""
        if self.kind != "confusion_matrix" or self.error:
            return []
        return [{"label": label, "counts": counts}
                for label, counts in zip(self.data["labels"], self.data["matrix"], strict=False)]


def run_cards(run: Run) -> list[Card]:
    """Every card of the run, by step start, then artifact name, then place in the artifact."""
    return cards_by_run([run])[run.pk]


def cards_by_run(runs: list[Run]) -> dict[uuid.UUID, list[Card]]:
    """``run_cards`` of several runs (the compare page's), with one query for all their
    artifacts."""
    found: dict[uuid.UUID, list[Artifact]] = {run.pk: [] for run in runs}
    for artifact in _artifacts().filter(run__in=[run.pk for run in runs]):
        found[artifact.run_id].append(artifact)
    return {run.pk: _cards_of(run, found[run.pk]) for run in runs}


def _cards_of(run: Run, artifacts: list[Artifact]) -> list[Card]:
    files = RunFiles(run.pk, _namespace(artifacts), lambda: artifacts, lambda: run.graph)
    artifacts.sort(key=_order)
    return [card for artifact in artifacts for card in artifact_cards(artifact, files)]


def task_cards(task: RunTask) -> list[Card]:
    """The cards of one step's artifacts."""
    artifacts = sorted(_artifacts().filter(task=task), key=lambda a: (a.name, str(a.pk)))
    files = RunFiles(task.run_id, _namespace(artifacts),
                     lambda: _artifacts().filter(run_id=task.run_id),
                     lambda: task.run.graph)
    return [card for artifact in artifacts for card in artifact_cards(artifact, files)]


def files_of_run(run: Run) -> RunFiles:
    """What the HTML endpoint reads with: the same files the cards read."""
    return RunFiles(run.pk, run.profile.name, lambda: _artifacts().filter(run=run),
                    lambda: run.graph)


def artifact_cards(artifact: Artifact, files: RunFiles) -> list[Card]:
    try:
        shown = _shown(artifact, files)
    except Exception:  # a bug here must not cost the page: say it on the card, log it
        logger.exception("reading the visualizations of artifact %s", artifact.pk)
        shown = [Shown(0, "error", error="kfdash could not read this output (its log says "
                                         "why).")]
    task = artifact.task
    return [Card(key=f"{artifact.pk}:{item.index}", kind=item.kind,
                 title=item.title or TITLES[item.kind], step=task.display_name or task.node_id,
                 task_id=task.pk, artifact_id=artifact.pk, artifact_name=artifact.name,
                 data={} if item.error else item.data, error=item.error)
            for item in shown]


def _shown(artifact: Artifact, files: RunFiles) -> list[Shown]:
    """The visualizations of one artifact: v2 by schema title, v1 by the output names KFP
    gives its two files; any other artifact has none."""
    build = v2.BY_TYPE.get(artifact.type)
    if build is not None:
        return build(artifact, files)
    if artifact.name == v1.UI_METADATA:
        return v1.ui_metadata(artifact, files)
    if artifact.name == v1.METRICS:
        return v1.metrics_file(artifact)
    return []


def _artifacts():
    return Artifact.objects.select_related("task").only(*FIELDS).annotate(
        namespace=F("run__profile__name"))


def _namespace(artifacts: list[Artifact]) -> str:
    return artifacts[0].namespace if artifacts else ""


def _order(artifact: Artifact) -> tuple:
    task = artifact.task
    return (task.started_at is None, task.started_at or task.created_at, task.node_id,
            artifact.name, str(artifact.pk))
