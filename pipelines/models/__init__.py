"""The pipelines app's models: pipelines, versions and experiments; runs and their tasks."""

from pipelines.models.pipelines import (
    DESCRIPTION_MAX,
    NAME_MAX,
    Experiment,
    Pipeline,
    PipelineVersion,
    attach_latest_versions,
    validate_description,
    validate_display_name,
)
from pipelines.models.recurring import RecurringRun
from pipelines.models.runs import Artifact, Run, RunMetric, RunTask, run_group, runs_group

__all__ = ["DESCRIPTION_MAX", "NAME_MAX", "Artifact", "Experiment", "Pipeline",
           "PipelineVersion", "RecurringRun", "Run", "RunMetric", "RunTask",
           "attach_latest_versions", "run_group", "runs_group", "validate_description",
           "validate_display_name"]
