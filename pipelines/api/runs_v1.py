"""Runs in the Kubeflow Pipelines API, v1beta1: what kfp 1.8 and the seed's curl scripts use.

A v1 run names its pipeline by ``pipeline_spec.workflow_manifest`` (an Argo Workflow as a
JSON string), ``pipeline_spec.pipeline_id`` (its default version) or a ``PIPELINE_VERSION``
resource reference, and its experiment by an ``EXPERIMENT`` reference (none: "Default").
Parameters arrive as text (``[{name, value}]``) and are converted to their declared types.
Create and GET answer ``{"run": …, "pipeline_runtime": {"workflow_manifest": …}}``: kfp 1.8
reads ``run.id`` from the first and ``run.status`` (``V1_STATUS``) from the second.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from dashboard.choices import Role
from pipelines.api import run_serializers as rs
from pipelines.api import scoping
from pipelines.api import serializers as s
from pipelines.api.listing import STORAGE_STATE, Field, Listing
from pipelines.api.runs import RunsView, refuse_oversized, runs_in, version_to_run
from pipelines.api.views import (
    HEAVY,
    InvalidArgument,
    answers,
    body,
    list_parameters,
    listed,
    path_id,
    query,
    v1_reference,
)
from pipelines.models import PipelineVersion, Run, RunMetric
from pipelines.specs import LoadedPipeline, load
from pipelines.uploads import max_bytes

RUNS_V1 = Listing({
    "id": Field("id", "id"), "name": Field("name"), "description": Field("description"),
    "created_at": Field("created_at", "timestamp"),
    "scheduled_at": Field("scheduled_at", "timestamp"), "storage_state": STORAGE_STATE,
})
RECURRING_HEAVY = ("document", "platform_spec", "graph", "parameters")  # a run shows its name
RUN_SCOPE = [
    OpenApiParameter("resource_reference_key.type", str,
                     enum=["", "NAMESPACE", "EXPERIMENT", "JOB"]),
    OpenApiParameter("resource_reference_key.id", str, description="The namespace, or the "
                     "experiment's or job's id; empty: your default namespace."),
]


def v1_runs(runs):
    """What an ``ApiRun`` shows besides the run's own columns, in a fixed number of queries:
    its namespace, experiment, pipeline and version (without the version's documents) and
    its metrics with their node ids."""
    metrics = RunMetric.objects.select_related("task").only(
        "run", "task", "name", "value", "format", "task__node_id")
    return runs.select_related("profile", "experiment", "pipeline", "pipeline_version",
                               "recurring_run").defer(
        *(f"pipeline_version__{name}" for name in HEAVY),
        *(f"recurring_run__{name}" for name in RECURRING_HEAVY)).prefetch_related(
        Prefetch("metrics", queryset=metrics))


def listed_runs(request):
    """The runs ``resource_reference_key`` names: an experiment's, a job's (recurring
    run's), or a namespace's."""
    kind = query(request, "resource_reference_key.type")
    key = query(request, "resource_reference_key.id")
    if kind in ("EXPERIMENT", "JOB"):
        if not key:
            raise InvalidArgument(f"Name the {kind.lower()}: resource_reference_key.id=<its id>.")
        get = scoping.get_experiment if kind == "EXPERIMENT" else scoping.get_recurring_run
        return get(request.user, key).runs.all()
    if kind not in ("", "NAMESPACE"):
        raise InvalidArgument(f"Runs are listed by EXPERIMENT, JOB or NAMESPACE, not {kind!r}.")
    return runs_in(scoping.profile_to_read(request.user, key))


def version_named_v1(user, spec: dict, references) -> PipelineVersion | None:
    """A PIPELINE_VERSION reference (of ``pipeline_id``'s pipeline, when both are given), else
    ``pipeline_id``'s default version; None when the run brings its own manifest."""
    version_id = v1_reference(references, "PIPELINE_VERSION")
    pipeline_id = spec.get("pipeline_id") or v1_reference(references, "PIPELINE")
    if not (version_id or pipeline_id):
        return None
    return version_to_run(user, pipeline_id or "", version_id)


def package_v1(spec: dict) -> LoadedPipeline:
    manifests = [text for text in (spec.get("workflow_manifest"),
                                   spec.get("pipeline_manifest")) if text]
    if len(manifests) != 1:
        raise InvalidArgument(
            "Name the pipeline once: pipeline_spec.workflow_manifest (an Argo Workflow as a "
            "JSON string), pipeline_spec.pipeline_id, or a PIPELINE_VERSION resource "
            "reference.")
    return load(manifests[0].encode(), max_bytes=max_bytes())


def parameters_v1(spec: dict) -> dict:
    """``pipeline_spec``'s values: v1 ``parameters`` (text) over ``runtime_config``'s."""
    config = spec.get("runtime_config") or {}
    return {**(config.get("parameters") or {}),
            **{p["name"]: p["value"] for p in spec.get("parameters") or []
               if p.get("value") is not None}}


def start_run_v1(request, data: dict) -> Run:
    user = request.user
    references = data.get("resource_references") or []
    spec = data.get("pipeline_spec") or {}
    experiment_id = v1_reference(references, "EXPERIMENT")
    experiment = (scoping.get_experiment(user, experiment_id, Role.EDIT)
                  if experiment_id else None)
    version = version_named_v1(user, spec, references)
    if version is not None and (spec.get("workflow_manifest") or spec.get("pipeline_manifest")):
        raise InvalidArgument("Give either a manifest or a stored pipeline, not both.")
    loaded = package_v1(spec) if version is None else None
    profile = scoping.profile_for_run(user, experiment, version,
                                      v1_reference(references, "NAMESPACE"))
    config = spec.get("runtime_config") or {}
    return Run.start(profile, user, name=data["name"], version=version, loaded=loaded,
                     experiment=experiment, parameters=parameters_v1(spec),
                     description=data.get("description") or "",
                     pipeline_root=config.get("pipeline_root") or "",
                     service_account=data.get("service_account") or "")


class RunsV1(RunsView):
    @extend_schema(parameters=[*list_parameters(RUNS_V1), *RUN_SCOPE],
                   operation_id="v1beta1_list_runs",
                   description="Runs without their manifests (GET one run for those).",
                   responses=answers(s.list_of("ListRunsV1", "runs", rs.RunV1Serializer)))
    def get(self, request):
        return listed(request, RUNS_V1, v1_runs(listed_runs(request).light()),
                      rs.RunV1Serializer, "runs")

    @extend_schema(request=rs.RunV1Request, responses=answers(rs.RunDetailV1Serializer, 413))
    def post(self, request):
        refuse_oversized(request)
        run = start_run_v1(request, body(request, rs.RunV1Request))
        return Response(rs.RunDetailV1Serializer(run).data)


class RunV1(RunsView):
    @extend_schema(parameters=[path_id("run_id")], responses=answers(rs.RunDetailV1Serializer))
    def get(self, request, run_id):
        run = scoping.get_run(request.user, run_id, queryset=v1_runs(Run.objects.all()))
        return Response(rs.RunDetailV1Serializer(run).data)

    @extend_schema(parameters=[path_id("run_id")], responses=answers(s.EmptySerializer))
    def delete(self, request, run_id):
        """Deletes the run with its logs and artifacts; a run still going is stopped first."""
        scoping.get_run(request.user, run_id, Role.EDIT).remove(request.user)
        return Response({})
