"""The Kubeflow Pipelines REST API: healthz, pipelines, versions and experiments, in
v2beta1 and v1beta1 (``/apis/…``), so that ``kfp.Client`` 2.x and 1.8 and ``curl`` work
unchanged (see ``shared/reference/kfp-api.md``).

Views only declare: find the namespace or object through ``scoping`` (the access policy),
call one model method, render with the version's serializer. Lists go through
``listing.Listing``, the one filter/sort/paging implementation. Creates answer 200, as the
KFP server does; deletes and archive/unarchive answer ``{}``.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count
from django.db.models.fields.json import KeyTransform
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.parsers import JSONParser
from dashboard.choices import Role
from pipelines.api import scoping
from pipelines.api import serializers as s
from pipelines.api.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    STORAGE_STATE,
    Field,
    Listing,
)
from pipelines.models import Experiment, Pipeline, PipelineVersion
from pipelines.specs import SpecError
from pipelines.uploads import PackageTooLarge, fetch_package, max_bytes, read_upload, too_large

# --- errors ------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = 409
    default_code = "already_exists"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"


class StoreUnavailable(exceptions.APIException):
    """The artifact store failed to give what kfdash asked it for."""

    status_code = 502
    default_code = "unavailable"


class InvalidArgument(exceptions.APIException):
    status_code = 400
    default_code = "invalid_argument"


class LengthRequired(exceptions.APIException):
    status_code = 411
    default_code = "length_required"


class KfpView(APIView):
    """Turns the domain's errors into the KFP server's statuses: a name already taken is
    409 ALREADY_EXISTS, a package that is not a pipeline 400 with the loader's message,
    a package over the limit 413. The KFP error body comes from the project's handler."""

    parser_classes = [JSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, DjangoValidationError) and getattr(exc, "code", None) == "taken":
            exc = Conflict(" ".join(exc.messages))
        elif isinstance(exc, PackageTooLarge):
            exc = PayloadTooLarge(str(exc))
        elif isinstance(exc, SpecError):
            exc = InvalidArgument(str(exc))
        return super().handle_exception(exc)


def answers(ok, *more: int) -> dict:
    """For the schema: the success shape, and the KFP error body for the failures every
    authenticated endpoint can answer (bad input, no or bad credentials, not allowed, not
    found) and ``more`` (409 name taken, 413 too large)."""
    return {200: ok, **{code: s.ErrorSerializer for code in (400, 401, 403, 404, *more)}}


def body(request, serializer_class) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def listed(request, listing: Listing, queryset, serializer_class, key: str,
           decorate=None) -> Response:
    """One page of a list; ``decorate`` may re-read the page's rows with costlier columns
    (joined or computed only for those rows, not for every row the sort looks at)."""
    page = listing.page(queryset, request.query_params)
    items = decorate(page.items) if decorate else page.items
    return Response({key: serializer_class(items, many=True).data,
                     "total_size": page.total_size, "next_page_token": page.next_page_token})


def query(request, name: str) -> str:
    """A query parameter; empty means not set."""
    return (request.query_params.get(name) or "").strip()


def url_basename(url: str) -> str:
    """A name for a package fetched without one: its file name, as KFP does."""
    return PurePosixPath(urlsplit(url).path).name or url


# --- OpenAPI parameters ----------------------------------------------------------------------

def list_parameters(listing: Listing) -> list[OpenApiParameter]:
    """The paging, sorting and filter parameters of a list, with its sort fields spelled
    out so that the schema says exactly what ``sort_by`` accepts."""
    sorts = [f"{key}{direction}" for key in listing.fields for direction in ("", " asc",
                                                                              " desc")]
    return [
        OpenApiParameter("page_token", str, description="next_page_token of the previous "
                                                        "page (opaque)."),
        OpenApiParameter("page_size", {"type": "integer", "minimum": 0},
                         description=f"Default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}."),
        OpenApiParameter("sort_by", str, enum=["", *sorts],
                         description=f"Default: {listing.default_sort} ascending."),
        OpenApiParameter("filter", str, description=(
            'A JSON Filter: {"predicates": [{"key": K, "operation": OP, "string_value": V}]}; '
            '"op" instead of "operation" on v1; OP an int or a name (EQUALS, NOT_EQUALS, '
            "GREATER_THAN, GREATER_THAN_EQUALS, LESS_THAN, LESS_THAN_EQUALS, IN, "
            "IS_SUBSTRING); values string_value, int_value, long_value, timestamp_value or "
            f"string_values {{values}} (camelCase too); keys: {', '.join(listing.fields)}.")),
    ]


NAMESPACE = OpenApiParameter("namespace", str, description="Empty: your default namespace.")
PIPELINE_NAMESPACE = OpenApiParameter(
    "namespace", str, description="Empty: your default namespace (lists add the shared "
                                  "pipelines). 'kubeflow': the shared pipelines (writing them "
                                  "takes a cluster admin).")
V1_NAMESPACE = [
    OpenApiParameter("resource_reference_key.type", str, enum=["NAMESPACE", ""]),
    OpenApiParameter("resource_reference_key.id", str, description="The namespace; empty: "
                                                                   "your default namespace."),
]
UPLOAD_PARAMETERS = [
    OpenApiParameter("name", str, description="Default: the pipeline's own name (v2), else "
                                              "the file name."),
    OpenApiParameter("display_name", str),
    OpenApiParameter("description", str),
]
UPLOAD_BODY = {"multipart/form-data": inline_serializer(
    "PipelineUpload", {"uploadfile": serializers.FileField(
        help_text="KFP v2 IR (YAML/JSON), an Argo Workflow, or a .tar.gz/.tgz/.zip of one.")})}


def path_id(name: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH)


# --- healthz -----------------------------------------------------------------------------------


class HealthzV1(APIView):
    """No authentication: ``kfp.Client()`` calls it first and retries a failure for 25 s.
    ``multi_user`` is true (kfdash has namespaces); the SDKs then read the pod's service
    account namespace if there is one (a notebook pod in kubernetes mode: the user's own),
    and ignore its absence."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    answer = {"multi_user": True}

    @extend_schema(auth=[], responses=s.HealthzV1Serializer)
    def get(self, request):
        return Response(self.answer)


@extend_schema_view(get=extend_schema(auth=[], responses=s.HealthzV2Serializer))
class HealthzV2(HealthzV1):
    answer = {"multi_user": True, "pipeline_store": "database"}


# --- experiments -----------------------------------------------------------------------------

COMMON = {"description": Field("description"), "created_at": Field("created_at", "timestamp")}
EXPERIMENTS_V2 = Listing({"experiment_id": Field("id", "id"), "display_name": Field("name"),
                          "storage_state": STORAGE_STATE, **COMMON})
EXPERIMENTS_V1 = Listing({"id": Field("id", "id"), "name": Field("name"),
                          "storage_state": STORAGE_STATE, **COMMON})


def experiments_in(profile):
    if profile is None:  # the caller has no namespace: nothing to list
        return Experiment.objects.none()
    return Experiment.objects.filter(profile=profile).select_related("profile")


def create_experiment(request, namespace: str | None, name: str, description: str | None):
    profile = scoping.profile_to_write(request.user, namespace)
    return Experiment.create(profile, name, request.user, description or "")


def v1_namespace(request, prefix: str = "resource_reference_key") -> str:
    """The namespace of v1's ``resource_reference_key.type=NAMESPACE&….id=NS``."""
    kind, key = query(request, f"{prefix}.type"), query(request, f"{prefix}.id")
    if kind and kind != "NAMESPACE":
        raise InvalidArgument(f"Only NAMESPACE is supported as {prefix}.type here, not "
                              f"{kind!r}.")
    return key


def v1_reference(references, kind: str) -> str:
    """The id of the first ``resource_references`` entry of ``kind``."""
    for ref in references or []:
        if ref["key"]["type"] == kind:
            return ref["key"]["id"]
    return ""


class ExperimentsV2(KfpView):
    @extend_schema(parameters=[*list_parameters(EXPERIMENTS_V2), NAMESPACE],
                   operation_id="v2beta1_list_experiments",
                   responses=answers(s.list_of("ListExperimentsV2", "experiments",
                                       s.ExperimentV2Serializer)))
    def get(self, request):
        profile = scoping.profile_to_read(request.user, query(request, "namespace"))
        return listed(request, EXPERIMENTS_V2, experiments_in(profile),
                      s.ExperimentV2Serializer, "experiments")

    @extend_schema(request=s.ExperimentV2Request, responses=answers(s.ExperimentV2Serializer, 409))
    def post(self, request):
        data = body(request, s.ExperimentV2Request)
        experiment = create_experiment(request, data.get("namespace"), data["display_name"],
                                       data.get("description"))
        return Response(s.ExperimentV2Serializer(experiment).data)


class ExperimentsV1(KfpView):
    @extend_schema(parameters=[*list_parameters(EXPERIMENTS_V1), *V1_NAMESPACE],
                   operation_id="v1beta1_list_experiments",
                   responses=answers(s.list_of("ListExperimentsV1", "experiments",
                                       s.ExperimentV1Serializer)))
    def get(self, request):
        profile = scoping.profile_to_read(request.user, v1_namespace(request))
        return listed(request, EXPERIMENTS_V1, experiments_in(profile),
                      s.ExperimentV1Serializer, "experiments")

    @extend_schema(request=s.ExperimentV1Request, responses=answers(s.ExperimentV1Serializer, 409))
    def post(self, request):
        data = body(request, s.ExperimentV1Request)
        namespace = v1_reference(data.get("resource_references"), "NAMESPACE")
        experiment = create_experiment(request, namespace, data["name"],
                                       data.get("description"))
        return Response(s.ExperimentV1Serializer(experiment).data)


class ExperimentV2(KfpView):
    serializer_class = s.ExperimentV2Serializer

    @extend_schema(parameters=[path_id("experiment_id")],
                   responses=answers(s.ExperimentV2Serializer))
    def get(self, request, experiment_id):
        experiment = scoping.get_experiment(request.user, experiment_id)
        return Response(self.serializer_class(experiment).data)

    @extend_schema(parameters=[path_id("experiment_id")], responses=answers(s.EmptySerializer))
    def delete(self, request, experiment_id):
        scoping.get_experiment(request.user, experiment_id, Role.EDIT).remove(request.user)
        return Response({})


@extend_schema_view(get=extend_schema(parameters=[path_id("experiment_id")],
                                      responses=answers(s.ExperimentV1Serializer)))
class ExperimentV1(ExperimentV2):
    serializer_class = s.ExperimentV1Serializer


class ExperimentArchive(KfpView):
    """``:archive`` and ``:unarchive``, on both versions (no body, ``{}`` back)."""

    verb = "archive"

    @extend_schema(request=None, parameters=[path_id("experiment_id")],
                   responses=answers(s.EmptySerializer))
    def post(self, request, experiment_id):
        experiment = scoping.get_experiment(request.user, experiment_id, Role.EDIT)
        getattr(experiment, self.verb)(request.user)
        return Response({})


# --- pipelines -------------------------------------------------------------------------------

PIPELINES_V2 = Listing({"pipeline_id": Field("id", "id"), "display_name": Field("name"),
                        "name": Field("name"), **COMMON})
PIPELINES_V1 = Listing({"id": Field("id", "id"), "name": Field("name"), **COMMON})
VERSIONS_V2 = Listing({"pipeline_version_id": Field("id", "id"), "display_name": Field("name"),
                       "name": Field("name"), "pipeline_id": Field("pipeline_id", "id"),
                       **COMMON})
VERSIONS_V1 = Listing({"id": Field("id", "id"), "name": Field("name"),
                       "pipeline_id": Field("pipeline_id", "id"), **COMMON})
HEAVY = ("source", "document", "platform_spec", "graph")  # large; lists load what they show


def with_default_version(pipelines):
    """v1 pipelines show their default version and its parameters: join it, and read only
    the parameters out of its graph (the database extracts them), not its documents."""
    return pipelines.select_related("default_version").defer(
        *(f"default_version__{name}" for name in HEAVY)).annotate(
        graph_parameters=KeyTransform("parameters", "default_version__graph"))


def v1_versions(versions):
    return versions.defer(*HEAVY).annotate(graph_parameters=KeyTransform("parameters", "graph"))


def new_pipeline_v1(version: PipelineVersion) -> Response:
    """A v1 pipeline just created, read back as lists read it."""
    pipeline = with_default_version(Pipeline.objects.select_related("profile")).get(
        pk=version.pipeline_id)
    return Response(s.PipelineV1Serializer(pipeline).data)


class PipelinesV2(KfpView):
    @extend_schema(parameters=[*list_parameters(PIPELINES_V2), PIPELINE_NAMESPACE],
                   operation_id="v2beta1_list_pipelines",
                   responses=answers(s.list_of("ListPipelinesV2", "pipelines",
                                               s.PipelineV2Serializer)))
    def get(self, request):
        pipelines = scoping.visible_pipelines(request.user, query(request, "namespace"))
        return listed(request, PIPELINES_V2, pipelines, s.PipelineV2Serializer, "pipelines")

    @extend_schema(request=s.PipelineV2Request, responses=answers(s.PipelineV2Serializer, 409))
    def post(self, request):
        """A pipeline without versions (add them with upload_version or
        POST /pipelines/{id}/versions)."""
        data = body(request, s.PipelineV2Request)
        profile = scoping.pipeline_owner_to_write(request.user, data.get("namespace"))
        pipeline = Pipeline.create(profile, data.get("display_name") or data.get("name", ""),
                                   request.user, data.get("description") or "")
        return Response(s.PipelineV2Serializer(pipeline).data)


class PipelineAndVersionV2(KfpView):
    @extend_schema(request=s.PipelineAndVersionV2Request,
                   responses=answers(s.PipelineV2Serializer, 409, 413))
    def post(self, request):
        data = body(request, s.PipelineAndVersionV2Request)
        meta, version = data["pipeline"], data["pipeline_version"]
        profile = scoping.pipeline_owner_to_write(request.user, meta.get("namespace"))
        url = version["package_url"]["pipeline_url"]
        loaded = fetch_package(url)
        name = meta.get("display_name") or meta.get("name") or loaded.spec.name
        created = Pipeline.upload(
            profile, name, loaded, request.user, meta.get("description") or "",
            version_name=version.get("display_name") or version.get("name") or name,
            version_description=version.get("description") or "",
            code_source_url=version.get("code_source_url") or "", package_url=url)
        return Response(s.PipelineV2Serializer(created.pipeline).data)


class PipelinesV1(KfpView):
    @extend_schema(parameters=[*list_parameters(PIPELINES_V1), *V1_NAMESPACE],
                   operation_id="v1beta1_list_pipelines",
                   responses=answers(s.list_of("ListPipelinesV1", "pipelines",
                                               s.PipelineV1Serializer)))
    def get(self, request):
        pipelines = scoping.visible_pipelines(request.user, v1_namespace(request))

        def with_default_versions(page: list) -> list:
            rows = with_default_version(pipelines).in_bulk([p.pk for p in page])
            return [rows[p.pk] for p in page]

        return listed(request, PIPELINES_V1, pipelines, s.PipelineV1Serializer, "pipelines",
                      decorate=with_default_versions)

    @extend_schema(request=s.PipelineV1Request,
                   responses=answers(s.PipelineV1Serializer, 409, 413))
    def post(self, request):
        """A pipeline and its first version from ``url.pipeline_url``."""
        data = body(request, s.PipelineV1Request)
        namespace = v1_reference(data.get("resource_references"), "NAMESPACE")
        profile = scoping.pipeline_owner_to_write(request.user, namespace)
        url = data["url"]["pipeline_url"]
        loaded = fetch_package(url)
        version = Pipeline.upload(profile, data.get("name") or url_basename(url), loaded,
                                  request.user, data.get("description") or "",
                                  package_url=url)
        return new_pipeline_v1(version)


class PipelineV2(KfpView):
    @extend_schema(parameters=[path_id("pipeline_id")], responses=answers(s.PipelineV2Serializer))
    def get(self, request, pipeline_id):
        return Response(s.PipelineV2Serializer(
            scoping.get_pipeline(request.user, pipeline_id)).data)

    @extend_schema(parameters=[path_id("pipeline_id"), OpenApiParameter(
        "cascade", bool, description="Also delete its versions; without it a pipeline that "
                                     "has versions is not deleted.")],
        responses=answers(s.EmptySerializer))
    def delete(self, request, pipeline_id):
        """As KFP v2: refused while the pipeline has versions, unless ``cascade=true``."""
        pipeline = scoping.get_pipeline(
            request.user, pipeline_id, Role.EDIT,
            Pipeline.objects.select_related("profile").annotate(n_versions=Count("versions")))
        if pipeline.n_versions and query(request, "cascade").lower() not in ("true", "1"):
            raise InvalidArgument(
                f"The pipeline {pipeline.name} still has {pipeline.n_versions} version(s): "
                f"delete them first, or delete the pipeline with cascade=true.")
        pipeline.remove(request.user)
        return Response({})


class PipelineByNameV2(KfpView):
    @extend_schema(parameters=[PIPELINE_NAMESPACE], responses=answers(s.PipelineV2Serializer))
    def get(self, request, pipeline_name):
        """In the named namespace; without one, the caller's default namespace first, then
        the shared pipelines."""
        namespace = query(request, "namespace")
        pipelines = scoping.visible_pipelines(request.user, namespace).filter(
            name=pipeline_name)
        if namespace and namespace != scoping.SHARED:
            pipelines = pipelines.exclude(profile=None)
        # A namespace's own pipeline before a shared one of the same name.
        pipeline = min(pipelines[:2], key=lambda p: p.profile_id is None, default=None)
        if pipeline is None:
            raise exceptions.NotFound(f"No pipeline named {pipeline_name!r}.")
        return Response(s.PipelineV2Serializer(pipeline).data)


class PipelineV1(KfpView):
    @extend_schema(parameters=[path_id("pipeline_id")], responses=answers(s.PipelineV1Serializer))
    def get(self, request, pipeline_id):
        pipeline = scoping.get_pipeline(
            request.user, pipeline_id,
            queryset=with_default_version(Pipeline.objects.select_related("profile")))
        return Response(s.PipelineV1Serializer(pipeline).data)

    @extend_schema(parameters=[path_id("pipeline_id")], responses=answers(s.EmptySerializer))
    def delete(self, request, pipeline_id):
        """v1 deletes the pipeline with all its versions, as KFP's v1 API does."""
        scoping.get_pipeline(request.user, pipeline_id, Role.EDIT).remove(request.user)
        return Response({})


class PipelineTemplateV1(KfpView):
    @extend_schema(parameters=[path_id("pipeline_id")], responses=answers(s.TemplateSerializer))
    def get(self, request, pipeline_id):
        """The default version's pipeline file."""
        pipeline = scoping.get_pipeline(request.user, pipeline_id)
        version = pipeline.default_version or pipeline.latest_version()
        if version is None:
            raise exceptions.NotFound(f"The pipeline {pipeline.name} has no version.")
        return Response({"template": version.source})


class DefaultVersionV1(KfpView):
    @extend_schema(request=None, parameters=[path_id("pipeline_id"), path_id("version_id")],
                   responses=answers(s.EmptySerializer))
    def post(self, request, pipeline_id, version_id):
        pipeline = scoping.get_pipeline(request.user, pipeline_id, Role.EDIT)
        version = scoping.get_version(request.user, version_id, pipeline_id=pipeline_id)
        pipeline.set_default_version(version)
        return Response({})


# --- uploads ------------------------------------------------------------------------------

MULTIPART_SLACK = 64 * 1024  # the multipart framing around the file


class UploadView(KfpView):
    """Multipart ``uploadfile``; every other argument is in the query string, as the SDKs
    and ``curl -F`` send them."""

    parser_classes = [MultiPartParser]

    def loaded(self, request):
        length = request.META.get("CONTENT_LENGTH") or ""
        if not length.isdigit():  # a chunked body: Django and DRF read it as empty
            raise LengthRequired("Send the upload with a Content-Length header; kfdash does "
                                 "not read chunked request bodies.")
        if int(length) > max_bytes() + MULTIPART_SLACK:
            raise too_large(int(length))  # refused before the body is parsed
        upload = request.FILES.get("uploadfile")
        if upload is None:
            raise InvalidArgument("Send the pipeline file as the multipart part "
                                  "'uploadfile' (curl -F uploadfile=@pipeline.yaml).")
        return upload, read_upload(upload)

    def upload_pipeline(self, request, default_name) -> PipelineVersion:
        profile = scoping.pipeline_owner_to_write(request.user, query(request, "namespace"))
        upload, loaded = self.loaded(request)
        name = (query(request, "name") or query(request, "display_name")
                or default_name(loaded, upload.name))
        return Pipeline.upload(profile, name, loaded, request.user,
                               query(request, "description"))

    def upload_version(self, request) -> PipelineVersion:
        pipeline_id = query(request, "pipelineid") or query(request, "pipeline_id")
        if not pipeline_id:
            raise InvalidArgument("Name the pipeline to add a version to with ?pipelineid=.")
        pipeline = scoping.get_pipeline(request.user, pipeline_id, Role.EDIT)
        upload, loaded = self.loaded(request)
        name = query(request, "name") or query(request, "display_name") or upload.name
        return pipeline.add_version(loaded, request.user, name, query(request, "description"))


class UploadV2(UploadView):
    @extend_schema(request=UPLOAD_BODY, parameters=[*UPLOAD_PARAMETERS, PIPELINE_NAMESPACE],
                   responses=answers(s.PipelineV2Serializer, 409, 413))
    def post(self, request):
        version = self.upload_pipeline(
            request, lambda loaded, filename: loaded.spec.name or filename)
        return Response(s.PipelineV2Serializer(version.pipeline).data)


class UploadV1(UploadView):
    @extend_schema(request=UPLOAD_BODY, parameters=[*UPLOAD_PARAMETERS, PIPELINE_NAMESPACE],
                   responses=answers(s.PipelineV1Serializer, 409, 413))
    def post(self, request):
        """Without ``name`` the pipeline is named after the file (``demo-0.tar.gz``), as the
        KFP server names it."""
        version = self.upload_pipeline(request, lambda loaded, filename: filename)
        return new_pipeline_v1(version)


VERSION_UPLOAD_PARAMETERS = [*UPLOAD_PARAMETERS, OpenApiParameter(
    "pipelineid", OpenApiTypes.UUID, required=True, description="The pipeline's id.")]


class UploadVersionV2(UploadView):
    @extend_schema(request=UPLOAD_BODY, parameters=VERSION_UPLOAD_PARAMETERS,
                   responses=answers(s.PipelineVersionV2Serializer, 409, 413))
    def post(self, request):
        return Response(s.PipelineVersionV2Serializer(self.upload_version(request)).data)


class UploadVersionV1(UploadView):
    @extend_schema(request=UPLOAD_BODY, parameters=VERSION_UPLOAD_PARAMETERS,
                   responses=answers(s.PipelineVersionV1Serializer, 409, 413))
    def post(self, request):
        return Response(s.PipelineVersionV1Serializer(self.upload_version(request)).data)


# --- versions ----------------------------------------------------------------------------


def add_version_from_url(request, pipeline: Pipeline, data: dict) -> PipelineVersion:
    url = data["package_url"]["pipeline_url"]
    loaded = fetch_package(url)
    name = data.get("display_name") or data.get("name") or url_basename(url)
    return pipeline.add_version(loaded, request.user, name, data.get("description") or "",
                                code_source_url=data.get("code_source_url") or "",
                                package_url=url)


class VersionsV2(KfpView):
    @extend_schema(parameters=[path_id("pipeline_id"), *list_parameters(VERSIONS_V2)],
                   operation_id="v2beta1_list_pipeline_versions",
                   responses=answers(s.list_of("ListPipelineVersionsV2", "pipeline_versions",
                                       s.PipelineVersionV2Serializer)))
    def get(self, request, pipeline_id):
        pipeline = scoping.get_pipeline(request.user, pipeline_id)
        versions = pipeline.versions.defer("source", "graph")
        return listed(request, VERSIONS_V2, versions, s.PipelineVersionV2Serializer,
                      "pipeline_versions")

    @extend_schema(parameters=[path_id("pipeline_id")], request=s.PipelineVersionV2Request,
                   responses=answers(s.PipelineVersionV2Serializer, 409, 413))
    def post(self, request, pipeline_id):
        """A version from ``package_url.pipeline_url``, fetched by the server."""
        pipeline = scoping.get_pipeline(request.user, pipeline_id, Role.EDIT)
        data = body(request, s.PipelineVersionV2Request)
        version = add_version_from_url(request, pipeline, data)
        return Response(s.PipelineVersionV2Serializer(version).data)


class VersionV2(KfpView):
    @extend_schema(parameters=[path_id("pipeline_id"), path_id("version_id")],
                   responses=answers(s.PipelineVersionV2Serializer))
    def get(self, request, pipeline_id, version_id):
        version = scoping.get_version(request.user, version_id, pipeline_id=pipeline_id)
        return Response(s.PipelineVersionV2Serializer(version).data)

    @extend_schema(parameters=[path_id("pipeline_id"), path_id("version_id")],
                   responses=answers(s.EmptySerializer))
    def delete(self, request, pipeline_id, version_id):
        scoping.get_version(request.user, version_id, Role.EDIT,
                            pipeline_id=pipeline_id).remove(request.user)
        return Response({})


class VersionsV1(KfpView):
    @extend_schema(parameters=[
        *list_parameters(VERSIONS_V1),
        OpenApiParameter("resource_key.type", str, enum=["", "PIPELINE"]),
        OpenApiParameter("resource_key.id", OpenApiTypes.UUID, required=True,
                         description="The pipeline's id.")],
        operation_id="v1beta1_list_pipeline_versions",
        responses=answers(s.list_of("ListPipelineVersionsV1", "versions",
                            s.PipelineVersionV1Serializer)))
    def get(self, request):
        kind, key = query(request, "resource_key.type"), query(request, "resource_key.id")
        if kind not in ("", "PIPELINE") or not key:
            raise InvalidArgument("List a pipeline's versions with "
                                  "resource_key.type=PIPELINE&resource_key.id=<pipeline id>.")
        pipeline = scoping.get_pipeline(request.user, key)
        return listed(request, VERSIONS_V1, v1_versions(pipeline.versions.all()),
                      s.PipelineVersionV1Serializer, "versions")

    @extend_schema(request=s.PipelineVersionV1Request,
                   responses=answers(s.PipelineVersionV1Serializer, 409, 413))
    def post(self, request):
        data = body(request, s.PipelineVersionV1Request)
        pipeline_id = v1_reference(data.get("resource_references"), "PIPELINE")
        if not pipeline_id:
            raise InvalidArgument("Name the pipeline in resource_references: "
                                  "[{key: {type: PIPELINE, id: <pipeline id>}, "
                                  "relationship: OWNER}].")
        pipeline = scoping.get_pipeline(request.user, pipeline_id, Role.EDIT)
        version = add_version_from_url(request, pipeline, data)
        return Response(s.PipelineVersionV1Serializer(version).data)


class VersionV1(KfpView):
    @extend_schema(parameters=[path_id("version_id")],
                   responses=answers(s.PipelineVersionV1Serializer))
    def get(self, request, version_id):
        version = scoping.get_version(request.user, version_id)
        return Response(s.PipelineVersionV1Serializer(version).data)

    @extend_schema(parameters=[path_id("version_id")], responses=answers(s.EmptySerializer))
    def delete(self, request, version_id):
        scoping.get_version(request.user, version_id, Role.EDIT).remove(request.user)
        return Response({})


class VersionTemplateV1(KfpView):
    @extend_schema(parameters=[path_id("version_id")], responses=answers(s.TemplateSerializer))
    def get(self, request, version_id):
        return Response({"template": scoping.get_version(request.user, version_id).source})
