"""The Kubeflow Pipelines API's shapes, v2beta1 and v1beta1, by proto field name.

Each resource has one base holding what both versions share; the v2 and v1 classes add
the fields whose names differ (``experiment_id``/``display_name`` vs ``id``/``name``) and
v1's ``resource_references``. Responses and the OpenAPI schema both come from these
classes, so the schema cannot drift from what is sent. Timestamps render as RFC 3339
with ``Z`` (DRF's DateTimeField does that for UTC), never as ``""``.
"""

from __future__ import annotations

import json

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from pipelines.choices import StorageState
from pipelines.models import DESCRIPTION_MAX, NAME_MAX

# What the models accept, said in the schema: no control characters, not only spaces.
NAME_PATTERN = RegexValidator(r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
                              "A name needs a visible character and no control characters.")
HTTP_URL = RegexValidator(r"^https?://[^\s/]+\S*$", "An http:// or https:// URL.")


def name_field(required: bool = True, **kwargs) -> serializers.CharField:
    if required:
        return serializers.CharField(min_length=1, max_length=NAME_MAX,
                                     validators=[NAME_PATTERN], **kwargs)
    return serializers.CharField(required=False, allow_blank=True, max_length=NAME_MAX,
                                 **kwargs)


def description_field() -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                 max_length=DESCRIPTION_MAX)

# --- shared pieces ---------------------------------------------------------------------


class UrlSerializer(serializers.Serializer):
    pipeline_url = serializers.CharField(validators=[HTTP_URL])


class ResourceKeySerializer(serializers.Serializer):
    type = serializers.CharField(help_text="EXPERIMENT, JOB, PIPELINE, PIPELINE_VERSION or "
                                           "NAMESPACE")
    id = serializers.CharField()


class ResourceReferenceSerializer(serializers.Serializer):
    key = ResourceKeySerializer()
    name = serializers.CharField(required=False)
    relationship = serializers.CharField(required=False, help_text="OWNER or CREATOR")


def reference(kind: str, id_, relationship: str = "OWNER") -> dict:
    return {"key": {"type": kind, "id": str(id_)}, "relationship": relationship}


class ParameterV1Serializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(required=False, help_text="The default, as text.")


def parameters_v1(parameters: list[dict] | None) -> list[dict]:
    """The normalized DAG's parameters as v1 ``ApiParameter``s: defaults become text,
    the way Argo passes them (``3`` not ``3.0``; lists and dicts as JSON)."""
    result = []
    for parameter in parameters or []:
        item = {"name": parameter["name"]}
        if parameter.get("has_default"):
            default = parameter.get("default")
            if isinstance(default, float) and default.is_integer() and \
                    parameter.get("type") == "NUMBER_INTEGER":
                default = int(default)
            if isinstance(default, bool | list | dict) or default is None:
                item["value"] = json.dumps(default)
            else:
                item["value"] = str(default)
        result.append(item)
    return result


def graph_parameters(version) -> list[dict] | None:
    """The version's parameters: annotated by the list query (only that slice of the
    graph is loaded, see views), else read from the whole graph."""
    if hasattr(version, "graph_parameters"):
        return version.graph_parameters
    return (version.graph or {}).get("parameters")


@extend_schema_field(ParameterV1Serializer(many=True))
class ParametersV1Field(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, version):
        return parameters_v1(graph_parameters(version))


class StorageStateField(serializers.CharField):
    """AVAILABLE/ARCHIVED as stored (v2); v1 prefixes them with STORAGESTATE_."""

    def __init__(self, prefix: str = "", **kwargs):
        self.prefix = prefix
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return f"{self.prefix}{value}"


class ErrorSerializer(serializers.Serializer):
    """The KFP server's error body (``dashboard/api/errors.py`` renders it)."""

    error = serializers.CharField()
    code = serializers.IntegerField(help_text="The gRPC status code: 3 invalid argument, "
                                              "5 not found, 6 already exists, 7 permission "
                                              "denied, 8 too large, 16 unauthenticated.")
    message = serializers.CharField()
    details = serializers.ListField(child=serializers.DictField())


class EmptySerializer(serializers.Serializer):
    """``{}``: what delete, archive and unarchive answer."""


class HealthzV1Serializer(serializers.Serializer):
    multi_user = serializers.BooleanField()


class HealthzV2Serializer(HealthzV1Serializer):
    pipeline_store = serializers.CharField()


class TemplateSerializer(serializers.Serializer):
    template = serializers.CharField(help_text="The pipeline file (YAML) as uploaded.")


def list_of(name: str, key: str, item) -> serializers.Serializer:
    """The schema of a list response: ``{key: [...], total_size, next_page_token}``."""
    return inline_serializer(name, {
        key: item(many=True),
        "total_size": serializers.IntegerField(),
        "next_page_token": serializers.CharField(
            help_text="Pass as page_token for the next page; empty on the last page."),
    })


# --- experiments ------------------------------------------------------------------------


class _Experiment(serializers.Serializer):
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class ExperimentV2Serializer(_Experiment):
    experiment_id = serializers.UUIDField(source="id")
    display_name = serializers.CharField(source="name")
    namespace = serializers.CharField(source="profile.name")
    storage_state = StorageStateField(help_text=" | ".join(StorageState.values))
    last_run_created_at = serializers.DateTimeField(allow_null=True)


class ExperimentV1Serializer(_Experiment):
    id = serializers.UUIDField()
    name = serializers.CharField()
    resource_references = serializers.SerializerMethodField()
    storage_state = StorageStateField(prefix="STORAGESTATE_", help_text=" | ".join(
        f"STORAGESTATE_{v}" for v in StorageState.values))

    @extend_schema_field(ResourceReferenceSerializer(many=True))
    def get_resource_references(self, experiment) -> list[dict]:
        return [{**reference("NAMESPACE", experiment.profile.name), "name":
                 experiment.profile.name}]


class ExperimentV2Request(serializers.Serializer):
    display_name = name_field()
    description = description_field()
    namespace = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                      help_text="Empty: your default namespace.")


class ExperimentV1Request(serializers.Serializer):
    name = name_field()
    description = description_field()
    resource_references = ResourceReferenceSerializer(
        many=True, required=False, help_text="A NAMESPACE OWNER reference; none: your "
                                             "default namespace.")


# --- pipeline versions -------------------------------------------------------------------


class _PipelineVersion(serializers.Serializer):
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    code_source_url = serializers.CharField()
    package_url = serializers.SerializerMethodField()

    @extend_schema_field(UrlSerializer(allow_null=True))
    def get_package_url(self, version) -> dict | None:
        return {"pipeline_url": version.package_url} if version.package_url else None


class PipelineVersionV2Serializer(_PipelineVersion):
    pipeline_id = serializers.UUIDField()
    pipeline_version_id = serializers.UUIDField(source="id")
    display_name = serializers.CharField(source="name")
    name = serializers.CharField()
    pipeline_spec = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object", "additionalProperties": True,
                          "description": "The pipeline: KFP v2 IR, or the Argo Workflow of a "
                                         "v1 package; with a platform spec, both nested as "
                                         "{pipeline_spec, platform_spec}."})
    def get_pipeline_spec(self, version) -> dict:
        return pipeline_document(version)


def pipeline_document(obj) -> dict:
    """A version's (or a run's) pipeline as submitted; with a platform spec both are nested,
    as the v2 SDK sends a multi-document package."""
    if obj.platform_spec:
        return {"pipeline_spec": obj.document, "platform_spec": obj.platform_spec}
    return obj.document


class PipelineVersionV1Serializer(_PipelineVersion):
    id = serializers.UUIDField()
    name = serializers.CharField()
    parameters = ParametersV1Field()
    resource_references = serializers.SerializerMethodField()

    @extend_schema_field(ResourceReferenceSerializer(many=True))
    def get_resource_references(self, version) -> list[dict]:
        return [reference("PIPELINE", version.pipeline_id)]


class PipelineVersionV2Request(serializers.Serializer):
    display_name = name_field(required=False)
    name = name_field(required=False)
    description = description_field()
    package_url = UrlSerializer()
    code_source_url = serializers.URLField(required=False, allow_blank=True, allow_null=True,
                                           max_length=2000)


class PipelineVersionV1Request(serializers.Serializer):
    name = name_field(required=False)
    description = description_field()
    package_url = UrlSerializer()
    code_source_url = serializers.URLField(required=False, allow_blank=True, allow_null=True,
                                           max_length=2000)
    resource_references = ResourceReferenceSerializer(
        many=True, min_length=1, help_text="The pipeline: [{key: {type: PIPELINE, id}, "
                                           "relationship: OWNER}]")


# --- pipelines ---------------------------------------------------------------------------


class _Pipeline(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class PipelineV2Serializer(_Pipeline):
    pipeline_id = serializers.UUIDField(source="id")
    display_name = serializers.CharField(source="name")
    namespace = serializers.CharField(help_text="Empty for a shared pipeline.")


class PipelineV1Serializer(_Pipeline):
    id = serializers.UUIDField()
    parameters = serializers.SerializerMethodField()
    default_version = serializers.SerializerMethodField()
    resource_references = serializers.SerializerMethodField()

    @extend_schema_field(ParameterV1Serializer(many=True))
    def get_parameters(self, pipeline) -> list[dict]:
        version = _default_version(pipeline)
        return parameters_v1(graph_parameters(version)) if version else []

    @extend_schema_field(PipelineVersionV1Serializer(allow_null=True))
    def get_default_version(self, pipeline) -> dict | None:
        version = _default_version(pipeline)
        return PipelineVersionV1Serializer(version).data if version else None

    @extend_schema_field(ResourceReferenceSerializer(many=True))
    def get_resource_references(self, pipeline) -> list[dict]:
        if pipeline.profile_id is None:
            return []
        return [{**reference("NAMESPACE", pipeline.namespace), "name": pipeline.namespace}]


def _default_version(pipeline):
    """The default version, carrying the parameters the list query extracted for it."""
    version = pipeline.default_version
    if version is not None and hasattr(pipeline, "graph_parameters"):
        version.graph_parameters = pipeline.graph_parameters
    return version


class PipelineV2Request(serializers.Serializer):
    display_name = name_field(required=False)
    name = name_field(required=False)
    description = description_field()
    namespace = serializers.CharField(required=False, allow_blank=True, allow_null=True)


class PipelineAndVersionV2Request(serializers.Serializer):
    pipeline = PipelineV2Request()
    pipeline_version = PipelineVersionV2Request()


class PipelineV1Request(serializers.Serializer):
    name = name_field(required=False)
    description = description_field()
    url = UrlSerializer()
    resource_references = ResourceReferenceSerializer(many=True, required=False)
