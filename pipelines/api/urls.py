"""The Kubeflow Pipelines REST API (v2beta1 and v1beta1), under /apis/.

Ids use the ``kfpid`` converter (no ``/`` and no ``:``) so that ``experiments/{id}:archive``
is not swallowed by ``experiments/{id}``; that plays the part of the ``re_path`` the
reference suggests while keeping ``<…>`` routes that the URL tests can fill in.
"""

from django.urls import path, re_path, register_converter

from dashboard.api.views import not_found
from pipelines.api import artifacts, recurring, run_nodes, runs, runs_v1, views


class KfpIdConverter:
    regex = r"[^/:]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(KfpIdConverter, "kfpid")

V2 = "v2beta1/"
V1 = "v1beta1/"

urlpatterns = [
    # v2beta1
    path(V2 + "healthz", views.HealthzV2.as_view(), name="kfp2-healthz"),
    path(V2 + "experiments", views.ExperimentsV2.as_view(), name="kfp2-experiments"),
    path(V2 + "experiments/<kfpid:experiment_id>", views.ExperimentV2.as_view(),
         name="kfp2-experiment"),
    path(V2 + "experiments/<kfpid:experiment_id>:archive",
         views.ExperimentArchive.as_view(verb="archive"), name="kfp2-experiment-archive"),
    path(V2 + "experiments/<kfpid:experiment_id>:unarchive",
         views.ExperimentArchive.as_view(verb="unarchive"), name="kfp2-experiment-unarchive"),
    path(V2 + "pipelines", views.PipelinesV2.as_view(), name="kfp2-pipelines"),
    path(V2 + "pipelines/create", views.PipelineAndVersionV2.as_view(),
         name="kfp2-pipeline-create"),
    path(V2 + "pipelines/upload", views.UploadV2.as_view(), name="kfp2-pipeline-upload"),
    path(V2 + "pipelines/upload_version", views.UploadVersionV2.as_view(),
         name="kfp2-pipeline-upload-version"),
    path(V2 + "pipelines/names/<str:pipeline_name>", views.PipelineByNameV2.as_view(),
         name="kfp2-pipeline-by-name"),
    path(V2 + "pipelines/<kfpid:pipeline_id>", views.PipelineV2.as_view(), name="kfp2-pipeline"),
    path(V2 + "pipelines/<kfpid:pipeline_id>/versions", views.VersionsV2.as_view(),
         name="kfp2-pipeline-versions"),
    path(V2 + "pipelines/<kfpid:pipeline_id>/versions/<kfpid:version_id>",
         views.VersionV2.as_view(), name="kfp2-pipeline-version"),
    path(V2 + "runs", runs.RunsV2.as_view(), name="kfp2-runs"),
    path(V2 + "runs/<kfpid:run_id>", runs.RunV2.as_view(), name="kfp2-run"),
    *(path(V2 + f"runs/<kfpid:run_id>:{verb}", runs.RunAction.as_view(verb=verb),
           name=f"kfp2-run-{verb}") for verb in ("terminate", "retry", "archive", "unarchive")),
    # Node ids of tasks inside loops may hold "/" (sent as %2F): <path:…> takes them whole.
    path(V2 + "runs/<kfpid:run_id>/nodes/<path:node_id>/artifacts/<kfpid:artifact_name>:read",
         run_nodes.ReadArtifact.as_view(), name="kfp2-run-artifact-read"),
    path(V2 + "recurringruns", recurring.RecurringRunsV2.as_view(), name="kfp2-recurringruns"),
    path(V2 + "recurringruns/<kfpid:recurring_run_id>", recurring.RecurringRunV2.as_view(),
         name="kfp2-recurringrun"),
    *(path(V2 + f"recurringruns/<kfpid:recurring_run_id>:{verb}",
           recurring.RecurringRunSwitch.as_view(enabled=verb == "enable"),
           name=f"kfp2-recurringrun-{verb}") for verb in ("enable", "disable")),
    path(V2 + "artifacts", artifacts.ArtifactsV2.as_view(), name="kfp2-artifacts"),
    path(V2 + "artifacts/<kfpid:artifact_id>:download", artifacts.ArtifactDownloadV2.as_view(),
         name="kfp2-artifact-download"),
    path(V2 + "artifacts/<kfpid:artifact_id>", artifacts.ArtifactV2.as_view(),
         name="kfp2-artifact"),
    # v1beta1
    path(V1 + "healthz", views.HealthzV1.as_view(), name="kfp1-healthz"),
    path(V1 + "experiments", views.ExperimentsV1.as_view(), name="kfp1-experiments"),
    path(V1 + "experiments/<kfpid:experiment_id>", views.ExperimentV1.as_view(),
         name="kfp1-experiment"),
    path(V1 + "experiments/<kfpid:experiment_id>:archive",
         views.ExperimentArchive.as_view(verb="archive"), name="kfp1-experiment-archive"),
    path(V1 + "experiments/<kfpid:experiment_id>:unarchive",
         views.ExperimentArchive.as_view(verb="unarchive"), name="kfp1-experiment-unarchive"),
    path(V1 + "pipelines", views.PipelinesV1.as_view(), name="kfp1-pipelines"),
    path(V1 + "pipelines/upload", views.UploadV1.as_view(), name="kfp1-pipeline-upload"),
    path(V1 + "pipelines/upload_version", views.UploadVersionV1.as_view(),
         name="kfp1-pipeline-upload-version"),
    path(V1 + "pipelines/<kfpid:pipeline_id>", views.PipelineV1.as_view(), name="kfp1-pipeline"),
    path(V1 + "pipelines/<kfpid:pipeline_id>/templates", views.PipelineTemplateV1.as_view(),
         name="kfp1-pipeline-template"),
    path(V1 + "pipelines/<kfpid:pipeline_id>/default_version/<kfpid:version_id>",
         views.DefaultVersionV1.as_view(), name="kfp1-pipeline-default-version"),
    path(V1 + "pipeline_versions", views.VersionsV1.as_view(), name="kfp1-pipeline-versions"),
    path(V1 + "pipeline_versions/<kfpid:version_id>", views.VersionV1.as_view(),
         name="kfp1-pipeline-version"),
    path(V1 + "pipeline_versions/<kfpid:version_id>/templates",
         views.VersionTemplateV1.as_view(), name="kfp1-pipeline-version-template"),
    path(V1 + "runs", runs_v1.RunsV1.as_view(), name="kfp1-runs"),
    path(V1 + "runs/<kfpid:run_id>", runs_v1.RunV1.as_view(), name="kfp1-run"),
    *(path(V1 + f"runs/<kfpid:run_id>/{verb}", runs.RunAction.as_view(verb=verb),
           name=f"kfp1-run-{verb}") for verb in ("terminate", "retry")),
    *(path(V1 + f"runs/<kfpid:run_id>:{verb}", runs.RunAction.as_view(verb=verb),
           name=f"kfp1-run-{verb}") for verb in ("archive", "unarchive")),
    path(V1 + "runs/<kfpid:run_id>/nodes/<path:node_id>/artifacts/<kfpid:artifact_name>:read",
         run_nodes.ReadArtifact.as_view(), name="kfp1-run-artifact-read"),
    path(V1 + "jobs", recurring.JobsV1.as_view(), name="kfp1-jobs"),
    path(V1 + "jobs/<kfpid:recurring_run_id>", recurring.JobV1.as_view(), name="kfp1-job"),
    *(path(V1 + f"jobs/<kfpid:recurring_run_id>/{verb}",
           recurring.RecurringRunSwitch.as_view(enabled=verb == "enable"),
           name=f"kfp1-job-{verb}") for verb in ("enable", "disable")),
    # v1alpha1 serves one thing, a step's log (the KFP UI's log pane reads it).
    path("v1alpha1/runs/<kfpid:run_id>/nodes/<path:node_id>/log", run_nodes.NodeLog.as_view(),
         name="kfp-run-node-log"),
    # Anything else under /apis/: a KFP-shaped 404, never an HTML page.
    re_path(r"^[\s\S]*$", not_found, name="kfp-not-found"),  # newlines too
]
