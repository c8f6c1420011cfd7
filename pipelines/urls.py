"""Pipeline and experiment pages, mounted under /ns/<namespace>/."""

from django.urls import path

from pipelines.views import experiments, pipelines

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
]
