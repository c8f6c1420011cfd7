"""Pipelines, their versions, and experiments.

A pipeline belongs to a namespace, or is *shared* (``profile`` is null: visible to
everyone, uploaded by cluster admins), like KFP's private and shared pipelines.
Each upload is a version holding the package's pipeline file, the parsed document
and its normalized DAG. Experiments group runs; their names are unique per
namespace because ``kfp.Client.create_experiment`` gets-or-creates by name.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from dashboard.models import Profile
from pipelines.choices import SpecFormat, StorageState
from pipelines.specs import LoadedPipeline, PipelineSpec

NAME_MAX = 128
DESCRIPTION_MAX = 2000


def validate_display_name(name: str, what: str) -> str:
    """KFP allows any display name; kfdash only refuses empty, over-long or control characters."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(f"A {what} needs a name.", code="required")
    if len(name) > NAME_MAX:
        raise ValidationError(f"A {what} name has at most {NAME_MAX} characters.",
                              code="too_long")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError(f"A {what} name can't contain control characters.",
                              code="invalid")
    return name


def validate_description(description: str | None) -> str:
    description = description or ""
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError(f"A description has at most {DESCRIPTION_MAX} characters.",
                              code="too_long")
    return description


def create_named(manager, taken: str, name_lookup: dict, **fields):
    """Insert a row whose name must be free. A taken name is a ValidationError, also when
    a concurrent request takes it between the check and the insert (the unique constraint)."""
    try:
        with transaction.atomic():
            if manager.filter(**name_lookup).exists():
                raise ValidationError(taken, code="taken")
            return manager.create(**name_lookup, **fields)
    except IntegrityError as exc:
        raise ValidationError(taken, code="taken") from exc


class PipelineQuerySet(models.QuerySet):
    def visible_in(self, profile: Profile | None) -> PipelineQuerySet:
        """A namespace's own pipelines and the shared ones."""
        if profile is None:
            return self.filter(profile__isnull=True)
        return self.filter(Q(profile=profile) | Q(profile__isnull=True))

    def with_latest_version(self) -> PipelineQuerySet:
        """Annotate the newest version's id and name (one subquery, not one query per row).
        The subqueries run for every row the database looks at: for a page of a long list
        use ``attach_latest_versions`` on the page's rows instead."""
        latest = PipelineVersion.objects.filter(pipeline=OuterRef("pk")).order_by(
            "-created_at", "-pk")
        return self.annotate(
            latest_version_id=Subquery(latest.values("pk")[:1]),
            latest_version_name=Subquery(latest.values("name")[:1]),
        )


def attach_latest_versions(pipelines: list[Pipeline]) -> list[Pipeline]:
    """Set ``latest_version_id`` and ``latest_version_name`` on a page of pipelines with one
    query over just those rows (sorting 10,000 rows with the subqueries costs 25x more)."""
    latest = {row["pk"]: row for row in Pipeline.objects.filter(
        pk__in=[p.pk for p in pipelines]).with_latest_version().values(
        "pk", "latest_version_id", "latest_version_name")}
    for pipeline in pipelines:
        row = latest.get(pipeline.pk, {})
        pipeline.latest_version_id = row.get("latest_version_id")
        pipeline.latest_version_name = row.get("latest_version_name")
    return pipelines


class Pipeline(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="pipelines")
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    # The version runs use when none is named (KFP v1's default_version): the newest
    # upload, unless someone chose another.
    default_version = models.ForeignKey("PipelineVersion", on_delete=models.SET_NULL,
                                        null=True, blank=True, related_name="+")

    objects = PipelineQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "name"], name="pipeline_name_per_ns"),
            models.UniqueConstraint(fields=["name"], condition=Q(profile__isnull=True),
                                    name="shared_pipeline_name"),
        ]
        indexes = [models.Index(fields=["profile", "-created_at"]),
                   models.Index(fields=["profile", "name"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.profile_id is None

    @property
    def namespace(self) -> str:
        return self.profile.name if self.profile_id else ""

    @classmethod
    def create(cls, profile: Profile | None, name: str, by, description: str = "") -> Pipeline:
        """A pipeline with no version yet (KFP's ``CreatePipeline``); versions come later."""
        pipeline = cls._insert(profile, name, by, description)
        if profile is not None:
            profile.record(by, "pipeline", f"{by.email} created the pipeline {pipeline.name}",
                           pipeline.name)
        return pipeline

    @classmethod
    def upload(cls, profile: Profile | None, name: str, loaded: LoadedPipeline, by,
               description: str = "", version_name: str = "",
               version_description: str = "", code_source_url: str = "",
               package_url: str = "") -> PipelineVersion:
        """Create a pipeline and its first version from a loaded package, all or nothing."""
        with transaction.atomic():
            pipeline = cls._insert(profile, name, by, description)
            version = pipeline.add_version(
                loaded, by, version_name or pipeline.name,
                version_description or pipeline.description,
                code_source_url=code_source_url, package_url=package_url)
        if profile is not None:
            profile.record(by, "pipeline", f"{by.email} uploaded the pipeline {pipeline.name}",
                           pipeline.name)
        return version

    @classmethod
    def _insert(cls, profile: Profile | None, name: str, by, description: str) -> Pipeline:
        name = validate_display_name(name, "pipeline")
        return create_named(cls.objects, _taken(name, profile),
                            {"profile": profile, "name": name},
                            description=validate_description(description), created_by=by)

    def add_version(self, loaded: LoadedPipeline, by, name: str, description: str = "",
                    code_source_url: str = "", package_url: str = "") -> PipelineVersion:
        name = validate_display_name(name, "pipeline version")
        with transaction.atomic():
            version = create_named(
                self.versions, f"The pipeline {self.name} already has a version named '{name}'.",
                {"name": name}, description=validate_description(description), created_by=by,
                format=loaded.format, source=loaded.source, document=loaded.document,
                platform_spec=loaded.platform_spec, graph=loaded.spec.to_dict(),
                code_source_url=code_source_url, package_url=package_url)
            self.default_version = version
            self.save(update_fields=["default_version"])
        return version

    def latest_version(self) -> PipelineVersion | None:
        return self.versions.order_by("-created_at", "-pk").first()

    def set_default_version(self, version: PipelineVersion) -> None:
        if version.pipeline_id != self.pk:
            raise ValidationError(f"{version.name} is not a version of {self.name}.")
        self.default_version = version
        self.save(update_fields=["default_version"])

    def remove(self, by) -> None:
        name, profile = self.name, self.profile
        self.delete()
        if profile is not None:
            profile.record(by, "pipeline", f"{by.email} deleted the pipeline {name}", name)


def _taken(name: str, profile: Profile | None) -> str:
    where = f"the namespace {profile.name}" if profile else "the shared pipelines"
    return f"A pipeline named '{name}' already exists in {where}."


class PipelineVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="versions")
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    format = models.CharField(max_length=16, choices=SpecFormat.choices)
    source = models.TextField(help_text="The pipeline file as uploaded (YAML or JSON).")
    document = models.JSONField(help_text="The parsed pipeline: IR or Argo Workflow.")
    platform_spec = models.JSONField(null=True, blank=True)
    graph = models.JSONField(help_text="The normalized DAG (pipelines.specs.PipelineSpec).")
    code_source_url = models.URLField(max_length=2000, blank=True)
    package_url = models.URLField(max_length=2000, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "name"],
                                               name="version_name_per_pipeline")]
        indexes = [models.Index(fields=["pipeline", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name}"

    @property
    def spec(self) -> PipelineSpec:
        return PipelineSpec.from_dict(self.graph)

    def remove(self, by) -> None:
        pipeline = self.pipeline
        name, pk = self.name, self.pk  # delete() clears self.pk
        with transaction.atomic():
            self.delete()
            if pipeline.default_version_id == pk:  # fall back to the newest left
                pipeline.default_version = pipeline.latest_version()
                pipeline.save(update_fields=["default_version"])
        if pipeline.profile_id is not None:
            pipeline.profile.record(
                by, "pipeline", f"{by.email} deleted version {name} of {pipeline.name}",
                pipeline.name)


class ExperimentQuerySet(models.QuerySet):
    def available(self) -> ExperimentQuerySet:
        return self.filter(storage_state=StorageState.AVAILABLE)

    def archived(self) -> ExperimentQuerySet:
        return self.filter(storage_state=StorageState.ARCHIVED)


class Experiment(models.Model):
    DEFAULT_NAME = "Default"  # where runs without an experiment go, as in KFP

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    storage_state = models.CharField(max_length=16, choices=StorageState.choices,
                                     default=StorageState.AVAILABLE)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    last_run_created_at = models.DateTimeField(null=True, blank=True)

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["profile", "name"],
                                               name="experiment_name_per_ns")]
        indexes = [models.Index(fields=["profile", "storage_state", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def namespace(self) -> str:
        return self.profile.name

    @property
    def is_archived(self) -> bool:
        return self.storage_state == StorageState.ARCHIVED

    @classmethod
    def create(cls, profile: Profile, name: str, by, description: str = "") -> Experiment:
        name = validate_display_name(name, "experiment")
        experiment = create_named(
            cls.objects, f"An experiment named '{name}' already exists in {profile.name}.",
            {"profile": profile, "name": name},
            description=validate_description(description), created_by=by)
        profile.record(by, "experiment", f"{by.email} created the experiment {name}", name)
        return experiment

    @classmethod
    def default_for(cls, profile: Profile, by) -> Experiment:
        """The namespace's "Default" experiment, created on first use (race-safe)."""
        try:
            return cls.objects.get(profile=profile, name=cls.DEFAULT_NAME)
        except cls.DoesNotExist:
            try:
                return cls.create(profile, cls.DEFAULT_NAME, by)
            except ValidationError:
                return cls.objects.get(profile=profile, name=cls.DEFAULT_NAME)

    def archive(self, by) -> None:
        self._set_storage(StorageState.ARCHIVED, by, "archived")

    def unarchive(self, by) -> None:
        self._set_storage(StorageState.AVAILABLE, by, "restored")

    def _set_storage(self, state: str, by, verb: str) -> None:
        if self.storage_state == state:
            return
        self.storage_state = state
        self.save(update_fields=["storage_state"])
        self.profile.record(by, "experiment", f"{by.email} {verb} the experiment {self.name}",
                            self.name)

    def remove(self, by) -> None:
        """Delete the experiment and its runs: each run is removed as a run is (stopped if
        still going, its logs and artifacts deleted), not just its rows."""
        name, profile = self.name, self.profile
        runs = list(self.runs.light())
        for run in runs:
            run.remove(by, record=False)
        self.delete()
        also = f" and its {len(runs)} run{'s' if len(runs) != 1 else ''}" if runs else ""
        profile.record(by, "experiment", f"{by.email} deleted the experiment {name}{also}",
                       name)
