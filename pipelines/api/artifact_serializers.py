"""Artifacts in the Kubeflow Pipelines API: v2beta1 ``Artifact`` (KFP's
``backend/api/v2beta1/artifacts.proto``, the message ``GetArtifact`` and ``ListArtifacts``
answer), by proto field name.

The proto's fields come first. kfdash adds what it knows and the proto has no place for:
the output's ``name``, the producing ``run_id``, ``task_id`` and ``node_id`` (so an id from
``task_details`` leads back to its step and to ``…/nodes/{node_id}/artifacts/{name}:read``)
and, on one artifact's GET only, its ``metadata`` (lists leave it out: an ROC curve's
points can be megabytes). ``artifact_size`` is an int64, so proto3 JSON sends it as text.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# What an artifact in kfdash's own store (under the data dir) names as its provider.
KFDASH_STORE = "kfdash"


def storage_of(artifact) -> tuple[str, str]:
    """``(storage_provider, storage_path)``: kfdash's store and the path in it, else the
    URI's scheme and its path without the bucket (``s3://b/a/c`` → ``s3``, ``a/c``), as
    KFP splits an object store URI."""
    if artifact.path:
        return KFDASH_STORE, artifact.path
    parts = urlsplit(artifact.uri)
    if parts.scheme and parts.netloc:
        return parts.scheme, parts.path.lstrip("/")
    return "", artifact.uri


def download_link(request, artifact) -> str | None:
    """The API's download of the artifact (``…/artifacts/{id}:download``, which takes the
    same bearer token or session as this call), absolute; None when its file is not in
    kfdash's store nor readable from the artifact store (a remote URI, or a file since
    removed)."""
    if not artifact.downloadable:
        return None
    return request.build_absolute_uri(reverse("kfp2-artifact-download", args=[artifact.pk]))


class ArtifactV2Serializer(serializers.Serializer):
    """An artifact as lists show it (without its metadata). Expects the artifact with its
    run's namespace and its task loaded (``artifacts.artifact_rows``)."""

    artifact_id = serializers.UUIDField(source="id")
    storage_provider = serializers.SerializerMethodField()
    storage_path = serializers.SerializerMethodField()
    uri = serializers.CharField()
    namespace = serializers.CharField(source="run.profile.name")
    artifact_type = serializers.CharField(source="type", help_text="The schema title, e.g. "
                                                                   "system.Dataset.")
    artifact_size = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    last_updated_at = serializers.DateTimeField(
        source="created_at", help_text="As created_at: a stored artifact does not change.")
    name = serializers.CharField(help_text="kfdash: the output's name.")
    run_id = serializers.UUIDField(help_text="kfdash: the run that produced it.")
    task_id = serializers.UUIDField(help_text="kfdash: the task that produced it "
                                              "(run_details.task_details[].task_id).")
    node_id = serializers.CharField(
        source="task.node_id", help_text="kfdash: that task's node id (task_details[].pod_name), "
                                         "as …/runs/{run_id}/nodes/{node_id}/artifacts/"
                                         "{name}:read takes it.")

    @extend_schema_field(serializers.CharField(
        help_text=f"'{KFDASH_STORE}' for kfdash's artifact store, else the URI's scheme "
                  f"(s3, gs, minio…); empty for a plain path."))
    def get_storage_provider(self, artifact) -> str:
        return storage_of(artifact)[0]

    @extend_schema_field(serializers.CharField(
        help_text="The path within the provider: in kfdash's store, or the URI's path "
                  "without its bucket."))
    def get_storage_path(self, artifact) -> str:
        return storage_of(artifact)[1]

    @extend_schema_field(serializers.CharField(
        allow_null=True, help_text="Bytes, as text (an int64 in proto3 JSON); null when "
                                   "not known (e.g. not in kfdash's store)."))
    def get_artifact_size(self, artifact) -> str | None:
        return None if artifact.size is None else str(artifact.size)


class ArtifactDetailV2Serializer(ArtifactV2Serializer):
    """One artifact (GET): with its metadata and, for ``view=DOWNLOAD`` only (the context's
    ``download``), ``download_url``."""

    metadata = serializers.DictField(help_text="kfdash: the metadata the step wrote (v2 "
                                               "executor output), e.g. metrics.")
    download_url = serializers.CharField(
        required=False, allow_null=True,
        help_text="Only with view=DOWNLOAD: the file's download (a folder comes as .tar.gz), "
                  "absolute; it takes the same credentials as this call (bearer token or "
                  "session) and does not expire. null when the file is not in kfdash's "
                  "store.")

    def to_representation(self, artifact):
        data = super().to_representation(artifact)  # download_url: None (not an attribute)
        if self.context.get("download"):
            data["download_url"] = download_link(self.context["request"], artifact)
        else:  # BASIC leaves the field out, as the proto says, and never looks at the store
            del data["download_url"]
        return data
