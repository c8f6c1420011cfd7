"""Runs made directly in the database, for page tests where execution is not the point."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from pipelines.models import Experiment, Run, RunMetric

GRAPH = {"format": "kfp-v2", "name": "made-here"}


def make_run(profile, name: str, *, experiment: Experiment | None = None, state="SUCCEEDED",
             ago: float = 0, took: float | None = None, version=None, parameters=None,
             storage_state="AVAILABLE", metrics: dict[str, float] | None = None,
             by=None) -> Run:
    """A run created ``ago`` seconds ago; one that ``took`` seconds started then and ended
    (or, still RUNNING, is that far in)."""
    created = timezone.now() - timedelta(seconds=ago)
    started = created if took is not None else None
    finished = None
    if took is not None and state not in ("RUNNING", "PENDING", "CANCELING"):
        finished = created + timedelta(seconds=took)
    run = Run.objects.create(
        profile=profile, experiment=experiment or Experiment.default_for(profile, profile.owner),
        name=name, format="kfp-v2", document={}, graph=version.graph if version else GRAPH,
        pipeline=version.pipeline if version else None, pipeline_version=version,
        parameters=parameters or {}, state=state, storage_state=storage_state,
        created_at=created, scheduled_at=created, started_at=started, finished_at=finished,
        created_by=by)
    RunMetric.objects.bulk_create(RunMetric(run=run, name=metric, value=value)
                                  for metric, value in (metrics or {}).items())
    return run
