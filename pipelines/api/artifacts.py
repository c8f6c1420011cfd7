"""Artifacts in the Kubeflow Pipelines API, v2beta1 (KFP's ``ArtifactService``): one artifact
by id (``GET /apis/v2beta1/artifacts/{artifact_id}``) and a namespace's artifacts
(``GET /apis/v2beta1/artifacts``), so that the ids a run's ``task_details`` list resolve.

Artifacts belong to runs and runs to namespaces: both endpoints read with the view role
through the access policy, as the runs API does. An artifact of a namespace the caller may
not view answers the very 404 of an id that never existed. The list pages like every other
list (``listing.Listing``); it also takes the names of KFP's first ``ListArtifactRequest``
(``max_result_size``, ``next_page_token``, ``order_by_field`` + ``order_by``), which its
generated clients send.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from dashboard import access
from dashboard.choices import Role
from pipelines.api import scoping
from pipelines.api import serializers as s
from pipelines.api.artifact_serializers import ArtifactDetailV2Serializer, ArtifactV2Serializer
from pipelines.api.listing import Field, Listing
from pipelines.api.views import (
    NAMESPACE,
    InvalidArgument,
    KfpView,
    answers,
    list_parameters,
    path_id,
    query,
)
from pipelines.models import Artifact
from pipelines.views.run_detail import file_download

ARTIFACTS_V2 = Listing({
    "artifact_id": Field("id", "id"), "name": Field("name"), "artifact_type": Field("type"),
    "uri": Field("uri"), "run_id": Field("run_id", "id"),
    "created_at": Field("created_at", "timestamp"),
    "last_updated_at": Field("created_at", "timestamp"),  # a stored artifact never changes
})
# The row and what it shows of its run and task: never the run's pipeline documents, nor
# (in lists) the metadata.
ROW_FIELDS = ("id", "name", "type", "uri", "path", "size", "created_at", "run", "task",
              "run__id", "run__profile", "run__profile__name", "task__id", "task__node_id")
# GetArtifactRequest.ArtifactView, by name and by number (grpc-gateway takes both): whether
# the answer has download_url.
VIEWS = {"": False, "ARTIFACT_VIEW_UNSPECIFIED": False, "BASIC": False, "DOWNLOAD": True,
         "0": False, "1": False, "2": True}
RENDER = ("RENDER", "3")
# ListArtifactRequest.Field (KFP's first artifact API) → the sort_by field it means.
ORDER_BY_FIELDS = {"CREATE_TIME": "created_at", "LAST_UPDATE_TIME": "last_updated_at",
                   "ID": "artifact_id"}

VIEW = OpenApiParameter(
    "view", str, enum=["ARTIFACT_VIEW_UNSPECIFIED", "BASIC", "DOWNLOAD"],
    description="DOWNLOAD adds download_url; BASIC (the default) leaves it out.")
KFP_LIST_NAMES = [
    OpenApiParameter("max_result_size", int, description="KFP's first name of page_size."),
    OpenApiParameter("next_page_token", str, description="KFP's first name of page_token."),
    OpenApiParameter("order_by_field", str, enum=["FIELD_UNSPECIFIED", *ORDER_BY_FIELDS],
                     description="With order_by (asc | desc): KFP's first form of sort_by."),
    OpenApiParameter("order_by", str, enum=["asc", "desc"]),
]


def artifact_rows(metadata: bool = False):
    fields = (*ROW_FIELDS, "metadata") if metadata else ROW_FIELDS
    return Artifact.objects.select_related("run__profile", "task").only(*fields)


def artifacts_in(profile):
    if profile is None:  # the caller has no namespace: nothing to list
        return Artifact.objects.none()
    return artifact_rows().filter(run__profile=profile)


def get_artifact(user, artifact_id: str) -> Artifact:
    """The artifact, if ``user`` may view its run's namespace. A stranger's 404 says what
    a missing id's says, so that ids do not reveal what exists elsewhere."""
    missing = f"No artifact with id {artifact_id}."
    artifact = artifact_rows(metadata=True).filter(
        pk=scoping.parse_id(artifact_id, "artifact")).first()
    if artifact is None:
        raise Http404(missing)
    try:
        access.get_namespace(user, artifact.run.profile.name, Role.VIEW)
    except Http404:
        raise Http404(missing) from None
    return artifact


def wants_download(request) -> bool:
    view = query(request, "view").upper()
    if view in RENDER:
        raise InvalidArgument("view=RENDER is not served: kfdash never renders what a step "
                              "wrote on its own origin. Ask for DOWNLOAD.")
    if view not in VIEWS:
        raise InvalidArgument(f"view should be BASIC or DOWNLOAD, not {view!r}.")
    return VIEWS[view]


def list_params(request) -> dict[str, str]:
    """The query as ``Listing.page`` reads it, with KFP's first names read as today's
    where today's are not given."""
    params = request.query_params.dict()
    params["page_size"] = params.get("page_size") or params.get("max_result_size", "")
    params["page_token"] = params.get("page_token") or params.get("next_page_token", "")
    field = ORDER_BY_FIELDS.get(params.get("order_by_field", "").upper())
    if field and not params.get("sort_by"):
        params["sort_by"] = f"{field} {params.get('order_by') or 'asc'}"
    return params


class ArtifactsV2(KfpView):
    @extend_schema(
        parameters=[*list_parameters(ARTIFACTS_V2), NAMESPACE, *KFP_LIST_NAMES],
        operation_id="v2beta1_list_artifacts",
        description="The output artifacts of a namespace's runs, without their metadata "
                    "(GET one for it). The fields after last_updated_at are kfdash's own.",
        responses=answers(s.list_of("ListArtifactsV2", "artifacts",
                                    ArtifactV2Serializer)))
    def get(self, request):
        profile = scoping.profile_to_read(request.user, query(request, "namespace"))
        # Not views.listed: the query is read with KFP's first names as well.
        page = ARTIFACTS_V2.page(artifacts_in(profile), list_params(request))
        return Response({
            "artifacts": ArtifactV2Serializer(page.items, many=True).data,
            "total_size": page.total_size, "next_page_token": page.next_page_token})


class ArtifactV2(KfpView):
    @extend_schema(
        parameters=[path_id("artifact_id"), VIEW], operation_id="v2beta1_get_artifact",
        description="One artifact, as run_details' artifact_ids name it. The fields after "
                    "last_updated_at, except download_url, are kfdash's own.",
        responses=answers(ArtifactDetailV2Serializer))
    def get(self, request, artifact_id):
        download = wants_download(request)
        artifact = get_artifact(request.user, artifact_id)
        return Response(ArtifactDetailV2Serializer(
            artifact, context={"request": request, "download": download}).data)


class ArtifactDownloadV2(KfpView):
    """kfdash's own: what ``download_url`` names, for scripts with a bearer token (KFP
    signs a URL of its object store instead)."""

    def perform_content_negotiation(self, request, force=False):
        # The file whatever the client accepts; errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(parameters=[path_id("artifact_id")], operation_id="v2beta1_download_artifact",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              **{code: s.ErrorSerializer for code in (401, 403, 404)}})
    def get(self, request, artifact_id):
        """The artifact's file (a folder as a .tar.gz), streamed."""
        return file_download(get_artifact(request.user, artifact_id))
