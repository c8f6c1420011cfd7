"""Recurring runs in the Kubeflow Pipelines API: v2beta1 ``RecurringRun`` and v1beta1
``ApiJob``, by proto field name, and the bodies that create them.

The request bodies extend the run bodies (a recurring run names its pipeline, experiment
and parameters exactly as a run does) with a ``trigger``, ``max_concurrency``,
``no_catchup`` and ``mode`` (v2) or ``enabled`` (v1). int64 fields (``max_concurrency``,
``interval_second``) arrive as numbers from the SDKs and leave as text, as proto3 JSON
writes them. Lists render without the pipeline a schedule carries; one schedule's GET adds
it. Enum-like outputs are plain strings in the schema: ``mode`` means different words in
v1 and v2, and one enum name cannot hold both.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pipelines.api.run_serializers import (
    PipelineSpecV1Serializer,
    PipelineVersionReferenceSerializer,
    RuntimeConfigSerializer,
    RunV1Request,
    RunV2Request,
    StatusSerializer,
    pipeline_spec_v1,
    runtime_config,
    status,
)
from pipelines.api.run_workflow import rfc3339
from pipelines.api.serializers import ResourceReferenceSerializer, pipeline_document, reference

# --- requests ----------------------------------------------------------------------------


class _Window(serializers.Serializer):
    start_time = serializers.DateTimeField(required=False, allow_null=True,
                                           help_text="RFC 3339; no slot before it.")
    end_time = serializers.DateTimeField(required=False, allow_null=True,
                                         help_text="RFC 3339; no slot after it.")


class CronScheduleRequest(_Window):
    cron = serializers.CharField(
        max_length=200, help_text="Six fields with seconds first, as KFP reads them "
                                  "(\"0 0 9 ? * 2-6\"), or the usual five.")
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                      help_text="kfdash: the IANA zone the cron is read in; "
                                                "default UTC.")


class PeriodicScheduleRequest(_Window):
    interval_second = serializers.IntegerField(help_text="Seconds between runs (at least 1), "
                                                         "as a number or as text.")


class TriggerRequest(serializers.Serializer):
    cron_schedule = CronScheduleRequest(required=False, allow_null=True)
    periodic_schedule = PeriodicScheduleRequest(required=False, allow_null=True)

    def validate(self, data):
        if bool(data.get("cron_schedule")) == bool(data.get("periodic_schedule")):
            raise serializers.ValidationError(
                "Give one of cron_schedule {cron} or periodic_schedule {interval_second}.")
        return data


class _ScheduleRequest(serializers.Serializer):
    """What a recurring run adds to a run's body, in both versions."""

    trigger = TriggerRequest()
    max_concurrency = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="At most this many of its runs at once (at least 1; default 10).")
    no_catchup = serializers.BooleanField(
        required=False, allow_null=True,
        help_text="After a pause, start only the latest missed slot, not every one.")


class RecurringRunV2Request(_ScheduleRequest, RunV2Request):
    """A run's body (its pipeline, experiment, parameters) and when to start it."""

    pipeline_version_reference = PipelineVersionReferenceSerializer(
        required=False, allow_null=True,
        help_text="A stored version; only pipeline_id: always that pipeline's latest version.")
    namespace = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                      help_text="Without experiment_id: where it goes.")
    mode = serializers.ChoiceField(choices=["ENABLE", "DISABLE", "MODE_UNSPECIFIED"],
                                   required=False, allow_null=True,
                                   help_text="Default: ENABLE.")


class RecurringRunV1Request(_ScheduleRequest, RunV1Request):
    """A v1 run's body (its pipeline, references, parameters) and when to start it."""

    enabled = serializers.BooleanField(required=False, allow_null=True,
                                       help_text="Default: true (kfp 1.8 always sends it).")


# --- shared response pieces ------------------------------------------------------------


class CronScheduleSerializer(serializers.Serializer):
    cron = serializers.CharField()
    time_zone = serializers.CharField(help_text="kfdash: the zone the cron is read in.")
    start_time = serializers.DateTimeField(required=False)
    end_time = serializers.DateTimeField(required=False)


class PeriodicScheduleSerializer(serializers.Serializer):
    interval_second = serializers.CharField(help_text="Seconds, as text (int64).")
    start_time = serializers.DateTimeField(required=False)
    end_time = serializers.DateTimeField(required=False)


class TriggerSerializer(serializers.Serializer):
    cron_schedule = CronScheduleSerializer(required=False)
    periodic_schedule = PeriodicScheduleSerializer(required=False)


def trigger(schedule) -> dict[str, Any]:
    """The schedule's trigger as KFP writes it: one of the two, without empty times."""
    if schedule.cron:
        inner: dict[str, Any] = {"cron": schedule.cron, "time_zone": schedule.time_zone}
        kind = "cron_schedule"
    else:
        inner = {"interval_second": str(schedule.interval_seconds)}
        kind = "periodic_schedule"
    for key, when in (("start_time", schedule.start_at), ("end_time", schedule.end_at)):
        if when is not None:
            inner[key] = rfc3339(when)
    return {kind: inner}


class _Schedule(serializers.Serializer):
    """What both versions show, under the same names."""

    description = serializers.CharField()
    service_account = serializers.CharField()
    max_concurrency = serializers.CharField(help_text="int64, as text.")
    trigger = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    no_catchup = serializers.SerializerMethodField()

    @extend_schema_field(TriggerSerializer)
    def get_trigger(self, schedule) -> dict:
        return trigger(schedule)

    def get_no_catchup(self, schedule) -> bool:
        return not schedule.catchup


# --- v2beta1 ---------------------------------------------------------------------------------


class RecurringRunV2Serializer(_Schedule):
    """A recurring run as lists show it: without the pipeline package it may carry."""

    recurring_run_id = serializers.UUIDField(source="id")
    display_name = serializers.CharField(source="name")
    pipeline_version_id = serializers.UUIDField(allow_null=True, help_text="A fixed version.")
    pipeline_version_reference = serializers.SerializerMethodField()
    runtime_config = serializers.SerializerMethodField()
    mode = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    namespace = serializers.CharField(source="profile.name")
    experiment_id = serializers.UUIDField()

    @extend_schema_field(PipelineVersionReferenceSerializer(allow_null=True))
    def get_pipeline_version_reference(self, schedule) -> dict | None:
        """A fixed version names both; "always the latest" only the pipeline; a package
        (or a version since deleted) nothing."""
        if schedule.latest and schedule.pipeline_id:
            return {"pipeline_id": str(schedule.pipeline_id)}
        if schedule.pipeline_version_id:
            return {"pipeline_id": str(schedule.pipeline_id),
                    "pipeline_version_id": str(schedule.pipeline_version_id)}
        return None

    @extend_schema_field(RuntimeConfigSerializer)
    def get_runtime_config(self, schedule) -> dict:
        return runtime_config(schedule)

    @extend_schema_field(serializers.CharField(help_text="ENABLE | DISABLE"))
    def get_mode(self, schedule) -> str:
        return "ENABLE" if schedule.enabled else "DISABLE"

    @extend_schema_field(serializers.CharField(help_text="ENABLED | DISABLED"))
    def get_status(self, schedule) -> str:
        return "ENABLED" if schedule.enabled else "DISABLED"

    @extend_schema_field(StatusSerializer(allow_null=True))
    def get_error(self, schedule) -> dict | None:
        """Why kfdash disabled it (its pipeline was deleted, a run could not start)."""
        return status(schedule.disabled_reason)


class RecurringRunDetailV2Serializer(RecurringRunV2Serializer):
    pipeline_spec = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True,
                          "description": "The pipeline package it runs, when it names no "
                                         "stored pipeline."})
    def get_pipeline_spec(self, schedule) -> dict | None:
        return pipeline_document(schedule) if schedule.document is not None else None


# --- v1beta1 ---------------------------------------------------------------------------------


class JobV1Serializer(_Schedule):
    """A v1 ``ApiJob`` as lists show it: without the manifest it may carry. Expects its
    namespace, experiment, pipeline and version loaded (``recurring.v1_jobs``)."""

    with_manifests = False

    id = serializers.UUIDField()
    name = serializers.CharField()
    pipeline_spec = serializers.SerializerMethodField()
    resource_references = serializers.SerializerMethodField()
    mode = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    error = serializers.CharField(source="disabled_reason")
    enabled = serializers.BooleanField()

    @extend_schema_field(PipelineSpecV1Serializer)
    def get_pipeline_spec(self, schedule) -> dict:
        return pipeline_spec_v1(schedule, self.with_manifests)

    @extend_schema_field(ResourceReferenceSerializer(many=True))
    def get_resource_references(self, schedule) -> list[dict]:
        references = [
            {**reference("EXPERIMENT", schedule.experiment_id), "name": schedule.experiment.name},
            {**reference("NAMESPACE", schedule.profile.name), "name": schedule.profile.name}]
        if schedule.pipeline_version_id:
            references.append({**reference("PIPELINE_VERSION", schedule.pipeline_version_id,
                                           "CREATOR"), "name": schedule.pipeline_version.name})
        elif schedule.latest and schedule.pipeline_id:
            references.append({**reference("PIPELINE", schedule.pipeline_id, "CREATOR"),
                               "name": schedule.pipeline.name})
        return references

    @extend_schema_field(serializers.CharField(help_text="ENABLED | DISABLED"))
    def get_mode(self, schedule) -> str:
        return "ENABLED" if schedule.enabled else "DISABLED"

    @extend_schema_field(serializers.CharField(help_text="Enabled | Disabled"))
    def get_status(self, schedule) -> str:
        return "Enabled" if schedule.enabled else "Disabled"


class JobDetailV1Serializer(JobV1Serializer):
    with_manifests = True
