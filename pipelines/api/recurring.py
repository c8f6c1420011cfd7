"""Recurring runs in the Kubeflow Pipelines API: v2beta1 ``recurringruns`` and v1beta1
``jobs``, so that ``kfp.Client`` 2.x ``*_recurring_run`` and 1.8 ``create_recurring_run``,
``list_recurring_runs``, ``disable_job``, ``delete_job`` work unchanged.

A recurring run names its pipeline, experiment and parameters as a run does (the same
request parsing as ``runs.py``/``runs_v1.py``), plus a trigger. A v2
``pipeline_version_reference`` with only ``pipeline_id`` means "always the pipeline's
latest version"; v1's ``pipeline_id`` alone means its default version, as kfp 1.8 says.
``RecurringRun.create`` checks everything and the scheduler (``pipelines/scheduler.py``)
starts its runs; these views only parse, find and call.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from dashboard.choices import Role
from dashboard.models import Profile
from pipelines.api import recurring_serializers as rr
from pipelines.api import scoping
from pipelines.api import serializers as s
from pipelines.api.listing import Field, Listing
from pipelines.api.runs import RunsView, refuse_oversized
from pipelines.api.runs_v1 import package_v1, parameters_v1, version_named_v1
from pipelines.api.views import (
    HEAVY,
    NAMESPACE,
    InvalidArgument,
    answers,
    body,
    list_parameters,
    listed,
    path_id,
    query,
    v1_reference,
)
from pipelines.models import RecurringRun
from pipelines.models.recurring import DEFAULT_MAX_CONCURRENCY
from pipelines.specs import load_document
from pipelines.triggers import Trigger

_COMMON = {"description": Field("description"), "created_at": Field("created_at", "timestamp"),
           "updated_at": Field("updated_at", "timestamp"),
           "pipeline_id": Field("pipeline_id", "id"),
           "pipeline_version_id": Field("pipeline_version_id", "id")}
# KFP's job filter keys (backend model/job.go), by the names each version uses.
RECURRING_V2 = Listing({"recurring_run_id": Field("id", "id"), "display_name": Field("name"),
                        **_COMMON})
JOBS_V1 = Listing({"id": Field("id", "id"), "name": Field("name"), **_COMMON})
PACKAGE = ("document", "platform_spec", "graph")  # what a list never loads
# Trigger's field names → the request's, so that an error names what the caller sent.
TRIGGER_FIELDS = {"interval_seconds": "interval_second", "start_at": "start_time",
                  "end_at": "end_time"}


class RecurringView(RunsView):
    """Run errors as KFP statuses (``RunsView``), with nested body errors named by their
    path (``trigger.periodic_schedule.interval_second``) so the one-line message says
    which field is wrong."""

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
            exc = exceptions.ValidationError(flattened(exc.detail))
        return super().handle_exception(exc)


def flattened(detail: dict, path: str = "") -> dict[str, list]:
    found: dict[str, list] = {}
    for key, value in detail.items():
        if key == "non_field_errors" and path:
            name = path
        elif isinstance(key, int):  # an item of a list (resource_references)
            name = f"{path}[{key}]"
        else:
            name = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            found.update(flattened(value, name))
        elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                found.update(flattened(item, f"{name}[{index}]"))
        else:
            found.setdefault(name, []).extend(value if isinstance(value, list) else [value])
    return found


# --- reading requests ----------------------------------------------------------------------


def trigger_from(data: dict) -> Trigger:
    """The body's ``trigger`` (the serializer made sure it holds exactly one schedule)."""
    kind = "cron_schedule" if data.get("cron_schedule") else "periodic_schedule"
    given = data[kind]
    try:
        return Trigger(cron=given.get("cron", ""), interval_seconds=given.get("interval_second"),
                       start_at=given.get("start_time"), end_at=given.get("end_time"),
                       time_zone=given.get("time_zone") or "UTC")
    except DjangoValidationError as exc:
        raise DjangoValidationError({
            f"trigger.{kind}.{TRIGGER_FIELDS.get(field, field)}": messages
            for field, messages in exc.message_dict.items()}) from None


def profile_for(user, experiment, stored, namespace: str | None) -> Profile:
    """Where a new recurring run goes (edit role), as for a run. A stored pipeline the
    caller can see but that belongs to another namespace is then refused by the model
    (400) rather than hidden (404, as runs do): it is bad input, not a secret."""
    if experiment is None and not namespace and stored is not None and stored.profile_id:
        namespace = stored.profile.name
    return scoping.profile_for_run(user, experiment, None, namespace)


def create(user, data: dict, *, name: str, source: dict, experiment, namespace: str | None,
           parameters: dict, pipeline_root: str, enabled: bool) -> RecurringRun:
    """What both versions share once they have read their own spelling of the body."""
    trigger = trigger_from(data["trigger"])
    stored = source.get("pipeline") or getattr(source.get("version"), "pipeline", None)
    profile = profile_for(user, experiment, stored, namespace)
    concurrency = data.get("max_concurrency")
    return RecurringRun.create(
        profile, user, name=name, trigger=trigger, experiment=experiment,
        parameters=parameters, description=data.get("description") or "",
        pipeline_root=pipeline_root, service_account=data.get("service_account") or "",
        max_concurrency=DEFAULT_MAX_CONCURRENCY if concurrency is None else concurrency,
        catchup=not data.get("no_catchup"), enabled=enabled, **source)


def create_v2(user, data: dict) -> RecurringRun:
    experiment = (scoping.get_experiment(user, data["experiment_id"], Role.EDIT)
                  if data.get("experiment_id") else None)
    named = data.get("pipeline_version_reference") or {}
    version_id = named.get("pipeline_version_id") or data.get("pipeline_version_id")
    if data.get("pipeline_spec"):
        source = {"loaded": load_document(data["pipeline_spec"])}
    elif version_id:
        source = {"version": scoping.get_version(user, version_id,
                                                 pipeline_id=named.get("pipeline_id") or None)}
    else:
        source = {"pipeline": scoping.get_pipeline(user, named["pipeline_id"])}
    config = data.get("runtime_config") or {}
    return create(user, data, name=data["display_name"], source=source, experiment=experiment,
                  namespace=data.get("namespace"), parameters=config.get("parameters") or {},
                  pipeline_root=config.get("pipeline_root") or "",
                  enabled=data.get("mode") != "DISABLE")


def create_v1(user, data: dict) -> RecurringRun:
    references = data.get("resource_references") or []
    spec = data.get("pipeline_spec") or {}
    experiment_id = v1_reference(references, "EXPERIMENT")
    experiment = (scoping.get_experiment(user, experiment_id, Role.EDIT)
                  if experiment_id else None)
    version = version_named_v1(user, spec, references)
    if version is not None and (spec.get("workflow_manifest") or spec.get("pipeline_manifest")):
        raise InvalidArgument("Give either a manifest or a stored pipeline, not both.")
    source = {"version": version} if version is not None else {"loaded": package_v1(spec)}
    config = spec.get("runtime_config") or {}
    return create(user, data, name=data["name"], source=source, experiment=experiment,
                  namespace=v1_reference(references, "NAMESPACE"),
                  parameters=parameters_v1(spec),
                  pipeline_root=config.get("pipeline_root") or "",
                  enabled=data.get("enabled") is not False)


# --- querysets -------------------------------------------------------------------------------


def v1_jobs(schedules):
    """What an ``ApiJob`` names besides its own columns: namespace, experiment, pipeline and
    version (without the version's documents), in the one query."""
    return schedules.select_related("profile", "experiment", "pipeline",
                                    "pipeline_version").defer(
        *(f"pipeline_version__{name}" for name in HEAVY))


def schedules_in(profile):
    if profile is None:  # the caller has no namespace: nothing to list
        return RecurringRun.objects.none()
    return RecurringRun.objects.filter(profile=profile)


def listed_v1(request):
    """The jobs ``resource_reference_key`` names: an experiment's or a namespace's."""
    kind = query(request, "resource_reference_key.type")
    key = query(request, "resource_reference_key.id")
    if kind == "EXPERIMENT":
        if not key:
            raise InvalidArgument("Name the experiment: resource_reference_key.id=<its id>.")
        return scoping.get_experiment(request.user, key).recurring_runs.all()
    if kind not in ("", "NAMESPACE"):
        raise InvalidArgument(f"Jobs are listed by EXPERIMENT or NAMESPACE, not {kind!r}.")
    return schedules_in(scoping.profile_to_read(request.user, key))


# --- v2beta1 ---------------------------------------------------------------------------------

RECURRING_RUN_ID = path_id("recurring_run_id")


class RecurringRunsV2(RecurringView):
    @extend_schema(
        parameters=[*list_parameters(RECURRING_V2), NAMESPACE, OpenApiParameter(
            "experiment_id", str, description="Only this experiment's recurring runs.")],
        operation_id="v2beta1_list_recurring_runs",
        description="Recurring runs without the pipeline package they may carry (GET one "
                    "for it). The list key is recurringRuns, as KFP spells it.",
        responses=answers(s.list_of("ListRecurringRunsV2", "recurringRuns",
                                    rr.RecurringRunV2Serializer)))
    def get(self, request):
        experiment_id = query(request, "experiment_id")
        if experiment_id:
            schedules = scoping.get_experiment(request.user, experiment_id).recurring_runs.all()
        else:
            schedules = schedules_in(scoping.profile_to_read(request.user,
                                                             query(request, "namespace")))
        return listed(request, RECURRING_V2,
                      schedules.select_related("profile").defer(*PACKAGE),
                      rr.RecurringRunV2Serializer, "recurringRuns")

    @extend_schema(request=rr.RecurringRunV2Request,
                   responses=answers(rr.RecurringRunDetailV2Serializer, 413))
    def post(self, request):
        refuse_oversized(request)
        schedule = create_v2(request.user, body(request, rr.RecurringRunV2Request))
        return Response(rr.RecurringRunDetailV2Serializer(schedule).data)


class RecurringRunV2(RecurringView):
    @extend_schema(parameters=[RECURRING_RUN_ID],
                   responses=answers(rr.RecurringRunDetailV2Serializer))
    def get(self, request, recurring_run_id):
        schedule = scoping.get_recurring_run(request.user, recurring_run_id)
        return Response(rr.RecurringRunDetailV2Serializer(schedule).data)

    @extend_schema(parameters=[RECURRING_RUN_ID], responses=answers(s.EmptySerializer))
    def delete(self, request, recurring_run_id):
        """Stops scheduling; the runs it started stay."""
        scoping.get_recurring_run(request.user, recurring_run_id, Role.EDIT).remove(
            request.user)
        return Response({})


class RecurringRunSwitch(RecurringView):
    """v2 ``:enable``/``:disable``, v1 ``/enable``/``/disable``: no body, ``{}`` back.
    Enabling counts the next slot from now: a pause is not caught up."""

    enabled = True

    @extend_schema(request=None, parameters=[RECURRING_RUN_ID],
                   responses=answers(s.EmptySerializer))
    def post(self, request, recurring_run_id):
        schedule = scoping.get_recurring_run(request.user, recurring_run_id, Role.EDIT)
        schedule.set_enabled(self.enabled, request.user)
        return Response({})


# --- v1beta1 ---------------------------------------------------------------------------------

JOB_SCOPE = [
    OpenApiParameter("resource_reference_key.type", str, enum=["", "NAMESPACE", "EXPERIMENT"]),
    OpenApiParameter("resource_reference_key.id", str, description="The namespace or the "
                     "experiment's id; empty: your default namespace."),
]


class JobsV1(RecurringView):
    @extend_schema(parameters=[*list_parameters(JOBS_V1), *JOB_SCOPE],
                   operation_id="v1beta1_list_jobs",
                   description="Jobs without the manifest they may carry (GET one for it).",
                   responses=answers(s.list_of("ListJobsV1", "jobs", rr.JobV1Serializer)))
    def get(self, request):
        return listed(request, JOBS_V1, v1_jobs(listed_v1(request)).defer(*PACKAGE),
                      rr.JobV1Serializer, "jobs")

    @extend_schema(request=rr.RecurringRunV1Request,
                   responses=answers(rr.JobDetailV1Serializer, 413))
    def post(self, request):
        refuse_oversized(request)
        schedule = create_v1(request.user, body(request, rr.RecurringRunV1Request))
        return Response(rr.JobDetailV1Serializer(schedule).data)


class JobV1(RecurringView):
    @extend_schema(parameters=[RECURRING_RUN_ID], responses=answers(rr.JobDetailV1Serializer))
    def get(self, request, recurring_run_id):
        schedule = scoping.get_recurring_run(request.user, recurring_run_id,
                                             queryset=v1_jobs(RecurringRun.objects.all()))
        return Response(rr.JobDetailV1Serializer(schedule).data)

    @extend_schema(parameters=[RECURRING_RUN_ID], responses=answers(s.EmptySerializer))
    def delete(self, request, recurring_run_id):
        """Stops scheduling; the runs it started stay."""
        scoping.get_recurring_run(request.user, recurring_run_id, Role.EDIT).remove(
            request.user)
        return Response({})
