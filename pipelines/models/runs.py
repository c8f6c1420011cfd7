"""Runs: one execution of a pipeline, its tasks, their artifacts and metrics.

The database holds what the user asked for (the spec, the parameters) and the last
state an engine reported. Engines (``pipelines/engines/``) change state only through
``Run.commit_changes``, which saves the run and its tasks in one transaction under a new
``revision`` and publishes them once committed. Pages subscribe first, then load a
snapshot with its revision, and apply only events with a higher one: nothing is missed
and nothing is applied twice.

A run keeps its own copy of the pipeline (``format``, ``document``, ``graph``), as the KFP
server does: deleting the version later loses nothing about the run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from dashboard import live
from dashboard.models import Profile
from pipelines import parameters as run_parameters
from pipelines.choices import FINISHED, RunState, SpecFormat, StorageState, TaskKind, TaskState
from pipelines.models.pipelines import (
    NAME_MAX,
    Experiment,
    Pipeline,
    PipelineVersion,
    validate_description,
    validate_display_name,
)
from pipelines.specs import LoadedPipeline, PipelineSpec

# Runs can be many (10,000 in a namespace): lists never load these.
HEAVY_FIELDS = ("document", "platform_spec", "graph")


def run_group(run_id) -> str:
    """The channel-layer group of one run's page: run and task changes."""
    return f"run.{run_id}"


def runs_group(namespace: str) -> str:
    """The group of a namespace's run lists: run changes only."""
    return f"ns.{namespace}.runs"


class RunQuerySet(models.QuerySet):
    def available(self) -> RunQuerySet:
        return self.filter(storage_state=StorageState.AVAILABLE)

    def archived(self) -> RunQuerySet:
        return self.filter(storage_state=StorageState.ARCHIVED)

    def light(self) -> RunQuerySet:
        """Without the pipeline documents, for lists."""
        return self.defer(*HEAVY_FIELDS)

    def unfinished(self) -> RunQuerySet:
        return self.exclude(state__in=FINISHED)


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="runs")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    # Where the spec came from, when it came from a stored version (kept if they go).
    pipeline = models.ForeignKey(Pipeline, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="runs")
    pipeline_version = models.ForeignKey(PipelineVersion, on_delete=models.SET_NULL,
                                         null=True, blank=True, related_name="runs")
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    # The pipeline as run: the parsed document (IR or Argo Workflow) and its normalized DAG.
    format = models.CharField(max_length=16, choices=SpecFormat.choices)
    document = models.JSONField()
    platform_spec = models.JSONField(null=True, blank=True)
    graph = models.JSONField()
    parameters = models.JSONField(default=dict, blank=True,
                                  help_text="Every declared parameter's value, typed.")
    pipeline_root = models.CharField(max_length=2000, blank=True)
    # None: as compiled (each task's own caching option); False: caching off for every task.
    caching = models.BooleanField(null=True, blank=True)
    service_account = models.CharField(max_length=253, blank=True)
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.PENDING)
    error = models.TextField(blank=True)
    state_history = models.JSONField(default=list, blank=True)  # [{update_time, state, error}]
    revision = models.PositiveBigIntegerField(default=0)  # bumped by every committed change
    storage_state = models.CharField(max_length=16, choices=StorageState.choices,
                                     default=StorageState.AVAILABLE)
    created_at = models.DateTimeField(default=timezone.now)
    scheduled_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    # The schedule that started it; its slot is ``scheduled_at`` (one run per slot).
    recurring_run = models.ForeignKey("pipelines.RecurringRun", on_delete=models.SET_NULL,
                                      null=True, blank=True, related_name="runs")

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The pages list one tab (active or archived) by (created_at, id): with the id in
            # the index a far page's ids come from the index alone, with no sort.
            models.Index(fields=["profile", "storage_state", "created_at", "id"],
                         name="run_ns_tab_created"),
            models.Index(fields=["experiment", "storage_state", "created_at", "id"],
                         name="run_exp_tab_created"),
            # The KFP API lists pages by (created_at, id) whatever the storage state: these
            # spare the database a sort of every run of the namespace for each page.
            models.Index(fields=["profile", "created_at", "id"], name="run_ns_created"),
            models.Index(fields=["experiment", "created_at", "id"], name="run_exp_created"),
            models.Index(fields=["state"]),
        ]
        constraints = [models.UniqueConstraint(fields=["recurring_run", "scheduled_at"],
                                               name="one_run_per_slot")]

    def __str__(self) -> str:
        return self.name

    @property
    def namespace(self) -> str:
        return self.profile.name

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    @property
    def spec(self) -> PipelineSpec:
        return PipelineSpec.from_dict(self.graph)

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    # --- starting ---------------------------------------------------------------------------

    @classmethod
    def start(cls, profile: Profile, by, *, name: str, version: PipelineVersion | None = None,
              loaded: LoadedPipeline | None = None, experiment: Experiment | None = None,
              parameters: dict[str, Any] | None = None, parameters_from_text: bool = False,
              description: str = "", caching: bool | None = None, pipeline_root: str = "",
              service_account: str = "", recurring_run=None, scheduled_at=None) -> Run:
        """Check everything, create the run, and hand it to the engine once committed.

        The pipeline is a stored ``version`` (of this namespace or shared) or a ``loaded``
        package (a run from a file, as ``kfp.Client.create_run_from_pipeline_package``
        sends). A ``recurring_run`` names the slot it fills (``scheduled_at``): a second run
        of the same slot is an IntegrityError. Raises ValidationError (parameter errors
        keyed by parameter name)."""
        if (version is None) == (loaded is None):
            raise ValidationError("A run needs a pipeline version or a pipeline package.")
        if version is not None and version.pipeline.profile_id not in (None, profile.pk):
            raise ValidationError("That pipeline version is not in this namespace.")
        if experiment is None:
            experiment = Experiment.default_for(profile, by)
        if experiment.profile_id != profile.pk:
            raise ValidationError("That experiment is not in this namespace.")
        if experiment.is_archived:
            raise ValidationError(f"The experiment {experiment.name} is archived: restore it "
                                  "before starting runs in it.")
        name = validate_display_name(name, "run")
        description = validate_description(description)
        if version is not None:
            source = {"format": version.format, "document": version.document,
                      "platform_spec": version.platform_spec, "graph": version.graph}
            spec = version.spec
        else:
            source = {"format": loaded.format, "document": loaded.document,
                      "platform_spec": loaded.platform_spec, "graph": loaded.spec.to_dict()}
            spec = loaded.spec
        values = run_parameters.resolve(spec, parameters, from_text=parameters_from_text)
        now = timezone.now()
        with transaction.atomic():
            run = cls.objects.create(
                profile=profile, experiment=experiment, name=name, description=description,
                pipeline=version.pipeline if version else None, pipeline_version=version,
                parameters=values, caching=caching, pipeline_root=pipeline_root,
                service_account=service_account, created_by=by, created_at=now,
                recurring_run=recurring_run, scheduled_at=scheduled_at or now,
                state_history=[_history(RunState.PENDING, now)], **source)
            Experiment.objects.filter(pk=experiment.pk).update(last_run_created_at=now)
            profile.record(by, "run", f"{by.email} started the run {name}", name)
            run._publish_on_commit([])
            transaction.on_commit(lambda: _submit(run))
        return run

    # --- what engines call ----------------------------------------------------------------------

    def commit_changes(self, tasks: Iterable[RunTask] = (), **run_fields) -> None:
        """Save ``tasks`` and ``run_fields`` (e.g. ``state=…``, ``error=…``) in one transaction
        under a new revision, recording state changes in ``state_history`` and the start and
        finish times; publish them once committed."""
        tasks = list(tasks)
        now = timezone.now()
        with transaction.atomic():
            Run.objects.filter(pk=self.pk).update(revision=F("revision") + 1)
            self.revision = Run.objects.filter(pk=self.pk).values_list(
                "revision", flat=True).get()
            for task in tasks:
                task.revision = self.revision
                if task.state == TaskState.RUNNING and task.started_at is None:
                    task.started_at = now
                if task.state in FINISHED and task.finished_at is None:
                    task.finished_at = now
                task.save()
            # Run lists show only the run's own fields: a commit of tasks alone is news
            # to its run's page, not to them (they would get every task's every change).
            listed = any(getattr(self, name) != value for name, value in run_fields.items())
            update = {"revision": self.revision, **run_fields}
            state = run_fields.get("state")
            if state and state != self.state:
                update["state_history"] = [*self.state_history,
                                           _history(state, now, run_fields.get("error", ""))]
                if state == RunState.RUNNING and self.started_at is None:
                    update["started_at"] = now
                if state in FINISHED:
                    update["finished_at"] = now
                elif self.finished_at is not None:  # retried
                    update["finished_at"] = None
            for field, value in update.items():
                setattr(self, field, value)
            Run.objects.filter(pk=self.pk).update(**update)
            self._publish_on_commit(tasks, to_lists=listed)

    def _publish_on_commit(self, tasks: list[RunTask], to_lists: bool = True) -> None:
        run_event = self.live_event()
        events = [run_event, *(task.live_event() for task in tasks)]
        namespace = self.profile.name

        def send() -> None:
            group = run_group(self.pk)
            live.publish_all([*((group, event) for event in events),
                              *([(runs_group(namespace), run_event)] if to_lists else [])])

        transaction.on_commit(send)

    def live_event(self) -> dict[str, Any]:
        return {
            "type": "run", "run_id": str(self.pk), "revision": self.revision,
            "experiment_id": str(self.experiment_id),
            "recurring_run_id": str(self.recurring_run_id) if self.recurring_run_id else None,
            "name": self.name, "state": self.state,
            "error": self.error,
            "storage_state": self.storage_state,
            "created_at": _iso(self.created_at), "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }

    # --- what users do ----------------------------------------------------------------------

    def terminate(self, by) -> None:
        if self.is_finished or self.state == RunState.CANCELING:
            raise ValidationError(f"The run {self.name} has already ended "
                                  f"({self.get_state_display().lower()}).", code="finished")
        _engine_for(self).terminate(self)
        self.profile.record(by, "run", f"{by.email} terminated the run {self.name}", self.name)

    def retry(self, by) -> None:
        if self.state not in (RunState.FAILED, RunState.CANCELED):
            raise ValidationError(f"Only a failed or canceled run can be retried; {self.name} "
                                  f"is {self.get_state_display().lower()}.", code="not_failed")
        _engine_for(self).retry(self)
        self.profile.record(by, "run", f"{by.email} retried the run {self.name}", self.name)

    def archive(self, by) -> None:
        self._set_storage(StorageState.ARCHIVED, by, "archived")

    def unarchive(self, by) -> None:
        self._set_storage(StorageState.AVAILABLE, by, "restored")

    def _set_storage(self, state: str, by, verb: str) -> None:
        if self.storage_state != state:
            self.commit_changes(storage_state=state)
            self.profile.record(by, "run", f"{by.email} {verb} the run {self.name}", self.name)

    def remove(self, by, record: bool = True) -> None:
        """Delete the run, its tasks, logs and artifacts; a run still going is stopped first.
        ``record=False`` when a bigger deletion (its experiment's) says it once."""
        if not self.is_finished:
            _engine_for(self).terminate(self)
        _engine_for(self).forget(self)
        name, profile = self.name, self.profile
        self.delete()
        if record:
            profile.record(by, "run", f"{by.email} deleted the run {name}", name)


class RunTask(models.Model):
    """One step of a run, or one instance of a group (a condition, a loop, a loop iteration):
    groups have states too, so the graph can colour them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tasks")
    # Unique in the run: the spec's task or group id, with the loop iteration index of
    # each enclosing loop appended (``for-loop-2/train.3``).
    node_id = models.CharField(max_length=512)
    spec_id = models.CharField(max_length=512)  # the task or group id in the run's graph
    kind = models.CharField(max_length=16, choices=TaskKind.choices, default=TaskKind.TASK)
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True,
                               related_name="children")
    iteration = models.IntegerField(null=True, blank=True)  # the index in its loop
    display_name = models.CharField(max_length=512)
    state = models.CharField(max_length=16, choices=TaskState.choices,
                             default=TaskState.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    exit_code = models.IntegerField(null=True, blank=True)
    image = models.CharField(max_length=1000, blank=True)  # what a cluster would have pulled
    command = models.JSONField(default=list, blank=True)  # the resolved command and args
    inputs = models.JSONField(default=dict, blank=True)  # {"parameters": {}, "artifacts": {}}
    outputs = models.JSONField(default=dict, blank=True)  # {"parameters": {}, "artifacts": {}}
    cached_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    cache_key = models.CharField(max_length=64, blank=True, db_index=True)
    runtime = models.JSONField(default=dict, blank=True)  # the engine's own: pid, folder...
    revision = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "node_id"]
        constraints = [models.UniqueConstraint(fields=["run", "node_id"],
                                               name="task_node_per_run")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.node_id}"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    def live_event(self) -> dict[str, Any]:
        return {
            "type": "task", "run_id": str(self.run_id), "revision": self.revision,
            "task_id": str(self.pk), "node_id": self.node_id, "spec_id": self.spec_id,
            "kind": self.kind, "parent": str(self.parent_id) if self.parent_id else None,
            "iteration": self.iteration, "display_name": self.display_name,
            "state": self.state, "error": self.error, "attempts": self.attempts,
            "exit_code": self.exit_code, "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


class Artifact(models.Model):
    """An output artifact of a task, stored under the data dir (local engine) or in the
    cluster's artifact store; downloads go through the access policy."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    task = models.ForeignKey(RunTask, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=255)  # the output's name
    type = models.CharField(max_length=255, default="system.Artifact")  # the schema title
    uri = models.CharField(max_length=2000)
    path = models.CharField(max_length=2000, blank=True)  # relative to the artifact store
    metadata = models.JSONField(default=dict, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "name"]
        indexes = [models.Index(fields=["run", "task", "name"])]

    def __str__(self) -> str:
        return self.uri

    def stored_file(self):
        """The artifact's file or folder in the local store (a ``Path``), or None when it is
        not in the store, no longer there, or its recorded path would lead outside it."""
        from pipelines.engines import layout

        if not self.path:
            return None
        root = layout.artifacts_root().resolve()
        path = (root / self.path).resolve()
        if not path.is_relative_to(root) or path == root or not path.exists():
            return None
        return path

    @property
    def downloadable(self) -> bool:
        """Whether kfdash can hand out the content: from its store, or (a run on Argo) from
        the artifact store, which is not asked here."""
        from pipelines.engines import remote_artifacts

        return self.stored_file() is not None or remote_artifacts.remote_key(self) is not None


class RunMetric(models.Model):
    """A scalar metric of a run (v1 ``mlpipeline-metrics``, v2 ``system.Metrics``): the runs
    list shows the common ones as columns and filters on them."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    task = models.ForeignKey(RunTask, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    name = models.CharField(max_length=255)
    value = models.FloatField()
    format = models.CharField(max_length=16, default="RAW")  # RAW | PERCENTAGE

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["name", "value"])]
        constraints = [models.UniqueConstraint(fields=["run", "task", "name"],
                                               name="metric_per_task")]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"

    @property
    def text(self) -> str:
        return metric_text(self.value, self.format)


def metric_text(value: float, format: str) -> str:
    """"85.000%" for a PERCENTAGE (as the KFP UI shows it); a RAW number short: whole
    numbers without decimals, others to six significant digits."""
    if format == "PERCENTAGE":
        return f"{value * 100:.3f}%"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _history(state: str, when, error: str = "") -> dict[str, Any]:
    entry = {"update_time": _iso(when), "state": state}
    if error:
        entry["error"] = error
    return entry


def _iso(when) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def _submit(run: Run) -> None:
    from pipelines.engines import EngineError

    try:
        _engine_for(run).submit(run)
    except EngineError as exc:
        run.commit_changes(state=RunState.FAILED, error=str(exc))


def _engine_for(run: Run):
    from pipelines.engines import engine_for

    return engine_for(run)
