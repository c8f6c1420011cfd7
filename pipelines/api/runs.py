"""Runs in the Kubeflow Pipelines API, v2beta1 (v1beta1: ``runs_v1.py``; a run's nodes, their
logs and artifacts: ``run_nodes.py``).

A run is created from a pipeline given in the body (``pipeline_spec``: the IR as a JSON
object, as ``kfp.Client.create_run_from_pipeline_*`` send it) or from a stored version
(``pipeline_version_reference``), in an experiment (none: the namespace's "Default").
``Run.start`` checks the parameters, creates the run and hands it to the engine; the
answer is the run as it is then, usually PENDING. Caching is what the pipeline says (the
SDK's ``enable_caching=False`` is already written into the IR it sends).

Lists never load a run's pipeline or tasks; one run's GET has both (``run_details``).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from dashboard.choices import Role
from pipelines.api import run_serializers as rs
from pipelines.api import scoping
from pipelines.api import serializers as s
from pipelines.api.listing import STORAGE_STATE, Field, Listing
from pipelines.api.views import (
    NAMESPACE,
    InvalidArgument,
    KfpView,
    answers,
    body,
    list_parameters,
    listed,
    path_id,
    query,
)
from pipelines.engines import EngineError
from pipelines.models import PipelineVersion, Run
from pipelines.specs import load_document
from pipelines.uploads import max_bytes, too_large

JSON_SLACK = 64 * 1024  # a run body is its pipeline and a little more

RUNS_V2 = Listing({
    "run_id": Field("id", "id"), "display_name": Field("name"),
    "description": Field("description"), "created_at": Field("created_at", "timestamp"),
    "scheduled_at": Field("scheduled_at", "timestamp"),
    "state": Field("state", "enum", str.upper), "storage_state": STORAGE_STATE,
    "experiment_id": Field("experiment_id", "id"),
    "recurring_run_id": Field("recurring_run_id", "id"),  # as KFP: a recurring run's runs
})


class EngineUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "unavailable"


class RunsView(KfpView):
    """Run errors as KFP statuses: bad parameters are 400 with each parameter named (and
    ``details`` keyed by parameter name); an engine that cannot act is 503; a finished run
    that is terminated, a running one that is retried or an archived experiment are 400,
    with the model's message."""

    def handle_exception(self, exc):
        if isinstance(exc, DjangoValidationError) and hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        elif isinstance(exc, EngineError):
            exc = EngineUnavailable(str(exc))
        return super().handle_exception(exc)


def refuse_oversized(request) -> None:
    """A run body carries its whole pipeline: refused before it is parsed when it is over
    the pipeline size limit, as an upload would be."""
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > max_bytes() + JSON_SLACK:
        raise too_large(int(length))


def runs_in(profile):
    if profile is None:  # the caller has no namespace: nothing to list
        return Run.objects.none()
    return Run.objects.filter(profile=profile)


def version_to_run(user, pipeline_id: str, version_id: str) -> PipelineVersion:
    """The named version (of that pipeline, when one is named), else the pipeline's default
    version (its newest when none was chosen)."""
    if version_id:
        return scoping.get_version(user, version_id, pipeline_id=pipeline_id or None)
    pipeline = scoping.get_pipeline(user, pipeline_id)
    version = pipeline.default_version or pipeline.latest_version()
    if version is None:
        raise InvalidArgument(f"The pipeline {pipeline.name} has no version to run.")
    version.pipeline = pipeline  # already loaded, with its namespace
    return version


def start_run_v2(request, data: dict) -> Run:
    user = request.user
    experiment = (scoping.get_experiment(user, data["experiment_id"], Role.EDIT)
                  if data.get("experiment_id") else None)
    version = loaded = None
    if data.get("pipeline_spec"):
        loaded = load_document(data["pipeline_spec"])
    else:
        named = data.get("pipeline_version_reference") or {}
        version = version_to_run(user, named.get("pipeline_id") or "",
                                 named.get("pipeline_version_id")
                                 or data.get("pipeline_version_id") or "")
    profile = scoping.profile_for_run(user, experiment, version)
    config = data.get("runtime_config") or {}
    return Run.start(profile, user, name=data["display_name"], version=version, loaded=loaded,
                     experiment=experiment, parameters=config.get("parameters") or {},
                     description=data.get("description") or "",
                     pipeline_root=config.get("pipeline_root") or "",
                     service_account=data.get("service_account") or "")


class RunsV2(RunsView):
    @extend_schema(
        parameters=[*list_parameters(RUNS_V2), NAMESPACE, OpenApiParameter(
            "experiment_id", str, description="Only this experiment's runs (the namespace "
                                              "is then the experiment's).")],
        operation_id="v2beta1_list_runs",
        description="Runs without their pipeline and tasks (GET one run for those).",
        responses=answers(s.list_of("ListRunsV2", "runs", rs.RunV2Serializer)))
    def get(self, request):
        experiment_id = query(request, "experiment_id")
        if experiment_id:
            runs = scoping.get_experiment(request.user, experiment_id).runs.all()
        else:
            runs = runs_in(scoping.profile_to_read(request.user, query(request, "namespace")))
        return listed(request, RUNS_V2, runs.light(), rs.RunV2Serializer, "runs")

    @extend_schema(request=rs.RunV2Request, responses=answers(rs.RunDetailV2Serializer, 413))
    def post(self, request):
        refuse_oversized(request)
        run = start_run_v2(request, body(request, rs.RunV2Request))
        return Response(rs.RunDetailV2Serializer(run).data)


class RunV2(RunsView):
    @extend_schema(parameters=[path_id("run_id")], responses=answers(rs.RunDetailV2Serializer))
    def get(self, request, run_id):
        return Response(rs.RunDetailV2Serializer(scoping.get_run(request.user, run_id)).data)

    @extend_schema(parameters=[path_id("run_id")], responses=answers(s.EmptySerializer))
    def delete(self, request, run_id):
        """Deletes the run with its logs and artifacts; a run still going is stopped first."""
        scoping.get_run(request.user, run_id, Role.EDIT).remove(request.user)
        return Response({})


class RunAction(RunsView):
    """``:terminate``, ``:retry``, ``:archive``, ``:unarchive`` (v1: ``/terminate``,
    ``/retry``): no body, ``{}`` back. Terminating a finished run or retrying one that did
    not fail is refused (400)."""

    verb = "terminate"

    @extend_schema(request=None, parameters=[path_id("run_id")],
                   responses=answers(s.EmptySerializer, 503))
    def post(self, request, run_id):
        run = scoping.get_run(request.user, run_id, Role.EDIT)
        getattr(run, self.verb)(request.user)
        return Response({})
