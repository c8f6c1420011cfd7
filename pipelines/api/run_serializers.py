"""Runs in the Kubeflow Pipelines API: v2beta1 ``Run`` and v1beta1 ``ApiRun``/``ApiRunDetail``,
by proto field name, and the bodies that create them.

Lists render the light serializers (``RunV2Serializer``, ``RunV1Serializer``): a run's
pipeline document and its tasks are never loaded for a list. One run's GET renders the
detail serializers, which add the pipeline and the tasks (v2 ``run_details``, v1
``pipeline_runtime.workflow_manifest``). Timestamps are RFC 3339 with ``Z`` or null, never
``""``; enums are the strings the SDKs compare against (``state``: the v2 names, v1
``status``: ``pipelines.choices.V1_STATUS``).
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pipelines.api.run_workflow import rfc3339, text_value, workflow_manifest
from pipelines.api.serializers import (
    ResourceReferenceSerializer,
    StorageStateField,
    description_field,
    name_field,
    pipeline_document,
    reference,
)
from pipelines.choices import V1_STATUS, RunState, SpecFormat, StorageState, TaskState

# Task states as v2beta1's RuntimeState names them: it has no CACHED, and a cached task
# did succeed (its outputs are there).
V2_TASK_STATE = {TaskState.CACHED: RunState.SUCCEEDED}
GRPC_CANCELLED, GRPC_UNKNOWN = 1, 2


def status(message: str, state: str = "") -> dict[str, Any] | None:
    """A ``google.rpc.Status`` for an error text (None without one)."""
    if not message:
        return None
    code = GRPC_CANCELLED if state == RunState.CANCELED else GRPC_UNKNOWN
    return {"code": code, "message": message, "details": []}


# --- shared shapes ------------------------------------------------------------------------


class StatusSerializer(serializers.Serializer):
    """``google.rpc.Status``."""

    code = serializers.IntegerField(help_text="1 cancelled, 2 unknown (the step's error).")
    message = serializers.CharField()
    details = serializers.ListField(child=serializers.DictField())


class RuntimeStatusSerializer(serializers.Serializer):
    update_time = serializers.DateTimeField()
    state = serializers.CharField()
    error = StatusSerializer(required=False)


class RuntimeConfigSerializer(serializers.Serializer):
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True), required=False, allow_null=True,
        help_text="Native JSON values by parameter name: {\"a\": 3, \"l\": [1, 2]}.")
    pipeline_root = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                          max_length=2000)


class PipelineVersionReferenceSerializer(serializers.Serializer):
    pipeline_id = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    pipeline_version_id = serializers.CharField(
        required=False, allow_blank=True, allow_null=True,
        help_text="Without it: the pipeline's newest version.")


def runtime_config(run) -> dict[str, Any]:
    config = {"parameters": run.parameters}
    if run.pipeline_root:
        config["pipeline_root"] = run.pipeline_root
    return config


# --- v2beta1 ---------------------------------------------------------------------------------


class RunV2Request(serializers.Serializer):
    display_name = name_field()
    description = description_field()
    experiment_id = serializers.CharField(
        required=False, allow_blank=True, allow_null=True,
        help_text="Empty: the Default experiment of your default namespace.")
    pipeline_spec = serializers.DictField(
        required=False, allow_null=True,
        help_text="The pipeline (KFP v2 IR, or an Argo Workflow) as a JSON object; with a "
                  "platform spec, {pipeline_spec, platform_spec}.")
    pipeline_version_reference = PipelineVersionReferenceSerializer(required=False,
                                                                    allow_null=True)
    pipeline_version_id = serializers.CharField(required=False, allow_blank=True,
                                                allow_null=True, help_text="Deprecated: use "
                                                "pipeline_version_reference.")
    runtime_config = RuntimeConfigSerializer(required=False, allow_null=True)
    service_account = serializers.CharField(required=False, allow_blank=True,
                                            allow_null=True, max_length=253)

    def validate(self, data):
        named = data.get("pipeline_version_reference") or {}
        by_version = bool(named.get("pipeline_id") or named.get("pipeline_version_id")
                          or data.get("pipeline_version_id"))
        if bool(data.get("pipeline_spec")) == by_version:
            raise serializers.ValidationError(
                "Give the pipeline as either pipeline_spec or pipeline_version_reference "
                "{pipeline_id, pipeline_version_id}.")
        return data


class ArtifactListSerializer(serializers.Serializer):
    artifact_ids = serializers.ListField(child=serializers.UUIDField())


class ChildTaskSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    pod_name = serializers.CharField(help_text="The child's node id.")


class TaskDetailV2Serializer(serializers.Serializer):
    """For the schema: what ``task_details`` holds (built by ``task_details``)."""

    run_id = serializers.UUIDField()
    task_id = serializers.UUIDField()
    display_name = serializers.CharField()
    create_time = serializers.DateTimeField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=RunState.values)
    error = StatusSerializer(allow_null=True)
    inputs = serializers.DictField(child=ArtifactListSerializer(),
                                   help_text="Input artifacts by input name.")
    outputs = serializers.DictField(child=ArtifactListSerializer(),
                                    help_text="Output artifacts by output name.")
    parent_task_id = serializers.UUIDField(allow_null=True)
    pod_name = serializers.CharField(
        help_text="The task's node id: what /apis/v1alpha1/runs/{run_id}/nodes/{node_id}/log "
                  "and …/artifacts/{name}:read take.")
    child_tasks = ChildTaskSerializer(many=True)


class RunDetailsV2Serializer(serializers.Serializer):
    task_details = TaskDetailV2Serializer(many=True)


def task_details(run) -> list[dict[str, Any]]:
    """``run_details.task_details``: every task and group instance of the run, with the ids
    of the artifacts it read and wrote (its parameters are in the run page and v1's
    workflow status)."""
    tasks = list(run.tasks.all())
    artifacts = list(run.artifacts.only("id", "task_id", "name", "uri"))
    by_uri = {artifact.uri: artifact.pk for artifact in artifacts}
    outputs: dict[Any, dict[str, list]] = {}
    for artifact in artifacts:
        outputs.setdefault(artifact.task_id, {}).setdefault(artifact.name, []).append(
            str(artifact.pk))
    children: dict[Any, list] = {}
    for task in tasks:
        children.setdefault(task.parent_id, []).append(
            {"task_id": str(task.pk), "pod_name": task.node_id})
    return [{
        "run_id": str(run.pk), "task_id": str(task.pk), "display_name": task.display_name,
        "create_time": rfc3339(task.created_at), "start_time": rfc3339(task.started_at),
        "end_time": rfc3339(task.finished_at),
        "state": V2_TASK_STATE.get(task.state, task.state),
        "error": status(task.error, task.state),
        "inputs": {name: {"artifact_ids": ids}
                   for name, ids in _input_artifact_ids(task, by_uri).items()},
        "outputs": {name: {"artifact_ids": ids}
                    for name, ids in outputs.get(task.pk, {}).items()},
        "parent_task_id": str(task.parent_id) if task.parent_id else None,
        "pod_name": task.node_id, "child_tasks": children.get(task.pk, []),
    } for task in tasks]


def _input_artifact_ids(task, by_uri: dict) -> dict[str, list[str]]:
    """An input artifact is recorded as a URI, ``{uri, type}``, or a list of them (fan-in);
    those stored for this run are named by id."""
    found = {}
    for name, value in (task.inputs.get("artifacts") or {}).items():
        items = value if isinstance(value, list) else [value]
        uris = [item.get("uri") if isinstance(item, dict) else item for item in items]
        ids = [str(by_uri[uri]) for uri in uris if uri in by_uri]
        if ids:
            found[name] = ids
    return found


class RunV2Serializer(serializers.Serializer):
    """A run as lists show it: without its pipeline and tasks."""

    experiment_id = serializers.UUIDField()
    run_id = serializers.UUIDField(source="id")
    display_name = serializers.CharField(source="name")
    storage_state = StorageStateField(help_text=" | ".join(StorageState.values))
    description = serializers.CharField()
    pipeline_version_id = serializers.UUIDField(allow_null=True)
    pipeline_version_reference = serializers.SerializerMethodField()
    runtime_config = serializers.SerializerMethodField()
    service_account = serializers.CharField()
    created_at = serializers.DateTimeField()
    scheduled_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=RunState.values)
    error = serializers.SerializerMethodField()
    state_history = serializers.SerializerMethodField()
    recurring_run_id = serializers.UUIDField(allow_null=True,
                                             help_text="The recurring run that started it.")

    @extend_schema_field(PipelineVersionReferenceSerializer(allow_null=True))
    def get_pipeline_version_reference(self, run) -> dict | None:
        if run.pipeline_version_id is None:
            return None
        return {"pipeline_id": str(run.pipeline_id),
                "pipeline_version_id": str(run.pipeline_version_id)}

    @extend_schema_field(RuntimeConfigSerializer)
    def get_runtime_config(self, run) -> dict:
        return runtime_config(run)

    @extend_schema_field(StatusSerializer(allow_null=True))
    def get_error(self, run) -> dict | None:
        return status(run.error, run.state)

    @extend_schema_field(RuntimeStatusSerializer(many=True))
    def get_state_history(self, run) -> list[dict]:
        history = []
        for entry in run.state_history:
            when = parse_datetime(entry["update_time"] or "")
            item = {"update_time": rfc3339(when), "state": entry["state"]}
            if entry.get("error"):
                item["error"] = status(entry["error"], entry["state"])
            history.append(item)
        return history


class RunDetailV2Serializer(RunV2Serializer):
    """One run: with the pipeline it runs (unless it names a stored version) and its tasks."""

    pipeline_spec = serializers.SerializerMethodField()
    run_details = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True,
                          "description": "The pipeline as submitted, when the run does not "
                                         "name a stored pipeline version."})
    def get_pipeline_spec(self, run) -> dict | None:
        return None if run.pipeline_version_id else pipeline_document(run)

    @extend_schema_field(RunDetailsV2Serializer)
    def get_run_details(self, run) -> dict:
        return {"task_details": task_details(run)}


# --- v1beta1 ---------------------------------------------------------------------------------


class ParameterValueV1Serializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.JSONField(required=False, allow_null=True,
                                  help_text="As text (\"3\", \"[1, 2]\"), as kfp 1.8 sends "
                                            "it; a JSON value is taken as is.")


class PipelineSpecV1Request(serializers.Serializer):
    pipeline_id = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                        help_text="Run the pipeline's default version.")
    workflow_manifest = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False,
        help_text="An Argo Workflow from the KFP v1 compiler, as a JSON (or YAML) string.")
    pipeline_manifest = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False,
        help_text="A KFP v2 IR, as a JSON (or YAML) string.")
    parameters = ParameterValueV1Serializer(many=True, required=False)
    runtime_config = RuntimeConfigSerializer(required=False, allow_null=True)


class RunV1Request(serializers.Serializer):
    name = name_field()
    description = description_field()
    pipeline_spec = PipelineSpecV1Request(required=False, allow_null=True)
    resource_references = ResourceReferenceSerializer(
        many=True, required=False,
        help_text="EXPERIMENT (OWNER): where the run goes (none: the Default experiment); "
                  "PIPELINE_VERSION (CREATOR): the version to run; NAMESPACE: the namespace "
                  "of the Default experiment.")
    service_account = serializers.CharField(required=False, allow_blank=True,
                                            allow_null=True, max_length=253)


class PipelineSpecV1Serializer(serializers.Serializer):
    pipeline_id = serializers.UUIDField(required=False)
    pipeline_name = serializers.CharField(required=False)
    workflow_manifest = serializers.CharField(required=False, help_text="Argo runs (one run's "
                                              "GET): the workflow as submitted, JSON.")
    pipeline_manifest = serializers.CharField(required=False, help_text="KFP v2 runs (one "
                                              "run's GET): the IR as submitted, JSON.")
    parameters = ParameterValueV1Serializer(many=True)
    runtime_config = RuntimeConfigSerializer(required=False)


def pipeline_spec_v1(obj, with_manifests: bool) -> dict[str, Any]:
    """A v1 ``ApiPipelineSpec`` of a run or a recurring run (they share the field names):
    parameter values as text, the stored pipeline by id and name, and, for one object's
    GET, the package it carries."""
    spec: dict[str, Any] = {"parameters": [
        {"name": name, "value": text_value(value)} for name, value in obj.parameters.items()]}
    if obj.pipeline_id:
        spec["pipeline_id"] = str(obj.pipeline_id)
        spec["pipeline_name"] = obj.pipeline.name
    if obj.format == SpecFormat.KFP_V2:
        spec["runtime_config"] = runtime_config(obj)
    if with_manifests and obj.document is not None:
        manifest = json.dumps(pipeline_document(obj))
        spec["workflow_manifest" if obj.format == SpecFormat.ARGO
             else "pipeline_manifest"] = manifest
    return spec


class MetricV1Serializer(serializers.Serializer):
    name = serializers.CharField()
    node_id = serializers.CharField()
    number_value = serializers.FloatField()
    format = serializers.ChoiceField(choices=["RAW", "PERCENTAGE"])


class RunV1Serializer(serializers.Serializer):
    """A v1 ``ApiRun`` as lists show it: without the pipeline's manifests. Expects the run
    with its experiment, pipeline version and metrics loaded (see ``runs_v1.v1_runs``)."""

    with_manifests = False

    id = serializers.UUIDField()
    name = serializers.CharField()
    storage_state = StorageStateField(prefix="STORAGESTATE_", help_text=" | ".join(
        f"STORAGESTATE_{v}" for v in StorageState.values))
    description = serializers.CharField()
    pipeline_spec = serializers.SerializerMethodField()
    resource_references = serializers.SerializerMethodField()
    service_account = serializers.CharField()
    created_at = serializers.DateTimeField()
    scheduled_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status = serializers.SerializerMethodField()
    error = serializers.CharField()
    metrics = serializers.SerializerMethodField()

    @extend_schema_field(PipelineSpecV1Serializer)
    def get_pipeline_spec(self, run) -> dict:
        return pipeline_spec_v1(run, self.with_manifests)

    @extend_schema_field(ResourceReferenceSerializer(many=True))
    def get_resource_references(self, run) -> list[dict]:
        references = [
            {**reference("EXPERIMENT", run.experiment_id), "name": run.experiment.name},
            {**reference("NAMESPACE", run.profile.name), "name": run.profile.name}]
        if run.pipeline_version_id:
            references.append({**reference("PIPELINE_VERSION", run.pipeline_version_id,
                                           "CREATOR"), "name": run.pipeline_version.name})
        if run.recurring_run_id:  # started by a recurring run (v1: a job)
            references.append({**reference("JOB", run.recurring_run_id, "CREATOR"),
                               "name": run.recurring_run.name})
        return references

    @extend_schema_field(serializers.CharField(help_text=" | ".join(
        sorted(set(V1_STATUS.values())))))
    def get_status(self, run) -> str:
        return V1_STATUS.get(run.state, "Unknown")

    @extend_schema_field(MetricV1Serializer(many=True))
    def get_metrics(self, run) -> list[dict]:
        return [{"name": metric.name, "node_id": metric.task.node_id if metric.task else "",
                 "number_value": metric.value, "format": metric.format}
                for metric in run.metrics.all()]


class RunWithManifestsV1Serializer(RunV1Serializer):
    with_manifests = True


class PipelineRuntimeV1Serializer(serializers.Serializer):
    workflow_manifest = serializers.CharField(
        help_text="The run as an Argo Workflow (JSON) with status.nodes built from its tasks; "
                  "node ids are what the log and artifact endpoints take.")


class RunDetailV1Serializer(serializers.Serializer):
    """``ApiRunDetail``: what v1 answers to a create and to a GET of one run."""

    run = RunWithManifestsV1Serializer(source="*")
    pipeline_runtime = serializers.SerializerMethodField()

    @extend_schema_field(PipelineRuntimeV1Serializer)
    def get_pipeline_runtime(self, run) -> dict:
        return {"workflow_manifest": json.dumps(workflow_manifest(run, list(run.tasks.all())))}


# --- node endpoints --------------------------------------------------------------------------


class ReadArtifactSerializer(serializers.Serializer):
    data = serializers.CharField(help_text="Base64 of a .tar.gz holding the artifact (a file "
                                           "under its output name, or a folder), as Argo "
                                           "archives artifacts.")
