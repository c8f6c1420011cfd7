"""Pipeline and experiment pages, mounted under /ns/<namespace>/."""

from django.urls import path

from pipelines.views import (
    compare,
    experiments,
    outputs,
    pipelines,
    recurring,
    run_detail,
    runs,
)
from pipelines.views.artifacts import artifact_detail, artifact_list

urlpatterns = [
    path("pipelines/", pipelines.pipeline_list, name="pipelines"),
    path("pipelines/upload/", pipelines.pipeline_upload, name="pipeline-upload"),
    path("pipelines/<uuid:pipeline_id>/", pipelines.pipeline_detail, name="pipeline-detail"),
    path("pipelines/<uuid:pipeline_id>/delete/", pipelines.pipeline_delete,
         name="pipeline-delete"),
    path("pipelines/<uuid:pipeline_id>/versions/<uuid:version_id>/delete/",
         pipelines.version_delete, name="pipeline-version-delete"),
    path("experiments/", experiments.experiment_list, name="experiments"),
    path("experiments/new/", experiments.experiment_new, name="experiment-new"),
    path("experiments/<uuid:experiment_id>/", experiments.experiment_detail,
         name="experiment-detail"),
    path("experiments/<uuid:experiment_id>/archive/", experiments.experiment_archive,
         name="experiment-archive"),
    path("experiments/<uuid:experiment_id>/unarchive/", experiments.experiment_unarchive,
         name="experiment-unarchive"),
    path("experiments/<uuid:experiment_id>/delete/", experiments.experiment_delete,
         name="experiment-delete"),
    # The runs list, "Create run" and the list's bulk actions (pipelines/views/runs.py).
    path("runs/", runs.run_list, name="runs"),
    path("runs/new/", runs.run_new, name="run-new"),
    path("runs/bulk/", runs.run_bulk, name="runs-bulk"),
    path("runs/compare/", compare.run_compare, name="runs-compare"),
    # The run details page, its actions and downloads (pipelines/views/run_detail.py).
    path("runs/<uuid:run_id>/", run_detail.run_detail, name="run-detail"),
    *(path(f"runs/<uuid:run_id>/{action}/", run_detail.run_action, {"action": action},
           name=f"run-{action}") for action in run_detail.ACTIONS),
    path("runs/<uuid:run_id>/delete/", run_detail.run_delete, name="run-delete"),
    path("runs/<uuid:run_id>/outputs/", compare.run_outputs, name="run-outputs"),
    # A step's HTML output, sandboxed for its card's iframe (pipelines/views/outputs.py).
    path("runs/<uuid:run_id>/outputs/<uuid:artifact_id>/<int:index>/", outputs.output_html,
         name="run-output-html"),
    path("runs/<uuid:run_id>/steps/<uuid:task_id>/", run_detail.run_step, name="run-step"),
    # A node id names a task inside its groups ("for-loop-2/train.3"): a path.
    path("runs/<uuid:run_id>/tasks/<path:node_id>/log/", run_detail.task_log,
         name="run-task-log"),
    path("runs/<uuid:run_id>/artifacts/<uuid:artifact_id>/", run_detail.artifact_download,
         name="run-artifact"),
    # Recurring runs: list, details, the form (new, edit, clone: ?clone=), its trigger
    # preview, enable/disable and delete (pipelines/views/recurring.py).
    path("recurring/", recurring.recurring_list, name="recurring"),
    path("recurring/new/", recurring.recurring_new, name="recurring-new"),
    path("recurring/preview/", recurring.recurring_preview, name="recurring-preview"),
    path("recurring/<uuid:recurring_run_id>/", recurring.recurring_detail, name="recurring-detail"),
    path("recurring/<uuid:recurring_run_id>/edit/", recurring.recurring_edit,
         name="recurring-edit"),
    path("recurring/<uuid:recurring_run_id>/enable/", recurring.recurring_enable,
         {"enabled": True}, name="recurring-enable"),
    path("recurring/<uuid:recurring_run_id>/disable/", recurring.recurring_enable,
         {"enabled": False}, name="recurring-disable"),
    path("recurring/<uuid:recurring_run_id>/delete/", recurring.recurring_delete,
         name="recurring-delete"),
    # The namespace's artifacts and one artifact's page (pipelines/views/artifacts.py).
    path("artifacts/", artifact_list, name="artifacts"),
    path("artifacts/<uuid:artifact_id>/", artifact_detail, name="artifact-detail"),
]
