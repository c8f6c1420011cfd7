"""Recurring runs (KFP's *recurring runs*, v1 *jobs*): a pipeline, its parameters and a
trigger; the scheduler (``pipelines/scheduler.py``) starts a run for each of its slots.

The pipeline is a stored version, "always the latest version" of a pipeline, or a package
kept in the row (``kfp.Client.create_recurring_run(pipeline_package_path=…)``). Each run it
starts records the schedule and its slot (``Run.recurring_run``, ``Run.scheduled_at``); a
unique constraint on the pair is what makes "one run per slot" hold when several server
processes schedule at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import IntegrityError, models, transaction
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone

from dashboard.models import Profile
from pipelines import parameters as run_parameters
from pipelines.choices import SpecFormat
from pipelines.models.pipelines import (
    NAME_MAX,
    Experiment,
    Pipeline,
    PipelineVersion,
    validate_description,
    validate_display_name,
)
from pipelines.specs import LoadedPipeline, PipelineSpec
from pipelines.triggers import Trigger

DEFAULT_MAX_CONCURRENCY = 10  # as KFP's API (the SDK sends 1 unless told)
MAX_SLOTS_PER_TICK = 100  # a schedule far behind catches up over several ticks


class RecurringRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE,
                                related_name="recurring_runs")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE,
                                   related_name="recurring_runs")
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    # The pipeline: a version; the pipeline's latest version (``latest``); or a package.
    pipeline = models.ForeignKey(Pipeline, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="recurring_runs")
    pipeline_version = models.ForeignKey(PipelineVersion, on_delete=models.SET_NULL,
                                         null=True, blank=True, related_name="recurring_runs")
    latest = models.BooleanField(default=False)
    format = models.CharField(max_length=16, choices=SpecFormat.choices, blank=True)
    document = models.JSONField(null=True, blank=True)
    platform_spec = models.JSONField(null=True, blank=True)
    graph = models.JSONField(null=True, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    caching = models.BooleanField(null=True, blank=True)
    pipeline_root = models.CharField(max_length=2000, blank=True)
    service_account = models.CharField(max_length=253, blank=True)
    # The trigger (``pipelines.triggers.Trigger``).
    cron = models.CharField(max_length=200, blank=True)
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    max_concurrency = models.PositiveIntegerField(default=DEFAULT_MAX_CONCURRENCY,
                                                  validators=[MinValueValidator(1)])
    catchup = models.BooleanField(default=True)  # KFP's no_catchup, the other way round
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)  # when kfdash disabled it, why
    next_slot_at = models.DateTimeField(null=True, blank=True)  # None: none left
    last_slot_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["enabled", "next_slot_at"], name="recurring_due"),
                   models.Index(fields=["profile", "created_at", "id"], name="recurring_ns")]

    def __str__(self) -> str:
        return self.name

    @property
    def trigger(self) -> Trigger:
        return Trigger(cron=self.cron, interval_seconds=self.interval_seconds,
                       start_at=self.start_at, end_at=self.end_at, time_zone=self.time_zone)

    # --- creating, changing ----------------------------------------------------------------

    @classmethod
    def create(cls, profile: Profile, by, *, name: str, trigger: Trigger,
               version: PipelineVersion | None = None, pipeline: Pipeline | None = None,
               loaded: LoadedPipeline | None = None, experiment: Experiment | None = None,
               parameters: dict[str, Any] | None = None, parameters_from_text: bool = False,
               description: str = "", caching: bool | None = None, pipeline_root: str = "",
               service_account: str = "", max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
               catchup: bool = True, enabled: bool = True) -> RecurringRun:
        """Check everything (ValidationError keyed by field, parameter errors by parameter
        name), then store it. The pipeline is a ``version``, a ``pipeline`` (always its
        latest version) or a ``loaded`` package."""
        schedule = cls(profile=profile, created_by=by)
        schedule._set(by, name=name, trigger=trigger, version=version, pipeline=pipeline,
                      loaded=loaded, experiment=experiment, parameters=parameters,
                      parameters_from_text=parameters_from_text, description=description,
                      caching=caching, pipeline_root=pipeline_root,
                      service_account=service_account, max_concurrency=max_concurrency,
                      catchup=catchup)
        schedule.enabled = enabled
        schedule.next_slot_at = trigger.first_slot(timezone.now()) if enabled else None
        schedule.save()
        profile.record(by, "recurring-run", f"{by.email} created the recurring run "
                                            f"{schedule.name}", schedule.name)
        return schedule

    def change(self, by, *, trigger: Trigger, **fields) -> None:
        """Edit it (the same arguments as ``create`` but ``enabled``); an enabled schedule's
        next slot counts from now under the new trigger. Runs already started keep what
        they ran."""
        defaults = {"version": None, "pipeline": None, "loaded": None, "experiment": None,
                    "parameters": None, "parameters_from_text": False, "description": "",
                    "caching": None, "pipeline_root": "", "service_account": "",
                    "max_concurrency": DEFAULT_MAX_CONCURRENCY, "catchup": True}
        unknown = set(fields) - set(defaults) - {"name"}
        if unknown:
            raise TypeError(f"unknown fields: {sorted(unknown)}")
        self._set(by, trigger=trigger, **{**defaults, **fields})
        if fields.get("loaded") is None:
            self.format, self.document, self.platform_spec, self.graph = "", None, None, None
        now = timezone.now()
        self.disabled_reason = ""
        self.next_slot_at = trigger.first_slot(now) if self.enabled else None
        self.updated_at = now
        self.save()
        self.profile.record(by, "recurring-run", f"{by.email} changed the recurring run "
                                                 f"{self.name}", self.name)

    def _set(self, by, *, name, trigger, version, pipeline, loaded, experiment, parameters,
             parameters_from_text, description, caching, pipeline_root, service_account,
             max_concurrency, catchup) -> None:
        chosen = [x is not None for x in (version, pipeline, loaded)]
        if sum(chosen) != 1:
            raise ValidationError("A recurring run needs one pipeline version, pipeline (its "
                                  "latest version) or pipeline package.")
        stored = version.pipeline if version is not None else pipeline
        if stored is not None and stored.profile_id not in (None, self.profile.pk):
            raise ValidationError("That pipeline is not in this namespace.")
        if experiment is None:
            experiment = Experiment.default_for(self.profile, by)
        if experiment.profile_id != self.profile.pk:
            raise ValidationError("That experiment is not in this namespace.")
        if experiment.is_archived:
            raise ValidationError(f"The experiment {experiment.name} is archived: restore it "
                                  "before scheduling runs in it.")
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValidationError({"max_concurrency": "At least 1 run at a time."})
        spec = _spec_of(version, pipeline, loaded)
        self.parameters = run_parameters.resolve(spec, parameters, from_text=parameters_from_text)
        self.name = validate_display_name(name, "recurring run")
        self.description = validate_description(description)
        self.experiment = experiment
        self.pipeline, self.pipeline_version, self.latest = stored, version, pipeline is not None
        if loaded is not None:
            self.format, self.document = loaded.format, loaded.document
            self.platform_spec, self.graph = loaded.platform_spec, loaded.spec.to_dict()
        self.cron, self.interval_seconds = trigger.cron, trigger.interval_seconds
        self.start_at, self.end_at, self.time_zone = (trigger.start_at, trigger.end_at,
                                                      trigger.time_zone)
        self.caching, self.pipeline_root = caching, pipeline_root
        self.service_account, self.max_concurrency = service_account, max_concurrency
        self.catchup = catchup

    def set_enabled(self, enabled: bool, by=None) -> None:
        """Enable (its next slot counts from now: a pause is not caught up) or disable."""
        now = timezone.now()
        self.enabled = enabled
        self.disabled_reason = ""
        self.next_slot_at = self.trigger.first_slot(now) if enabled else None
        self.updated_at = now
        self.save(update_fields=["enabled", "disabled_reason", "next_slot_at", "updated_at"])
        if by is not None:
            verb = "enabled" if enabled else "disabled"
            self.profile.record(by, "recurring-run", f"{by.email} {verb} the recurring run "
                                                     f"{self.name}", self.name)

    def remove(self, by) -> None:
        """Delete it; the runs it started stay (their ``recurring_run`` becomes empty)."""
        name = self.name
        self.delete()
        self.profile.record(by, "recurring-run", f"{by.email} deleted the recurring run {name}",
                            name)

    def disable_because(self, reason: str) -> None:
        self.enabled, self.disabled_reason, self.next_slot_at = False, reason, None
        self.updated_at = timezone.now()
        self.save(update_fields=["enabled", "disabled_reason", "next_slot_at", "updated_at"])

    # --- firing ---------------------------------------------------------------------------

    def fire(self, now: datetime) -> int:
        """Start the runs of the slots due by ``now`` (every missed one with catch-up, else
        only the latest), no more than ``max_concurrency`` running at once; a slot left for
        lack of room stays due. Returns how many runs it started. Safe against another
        process firing the same schedule: the row is locked, and a slot's run is unique."""
        from pipelines.models.runs import Run

        started = 0
        with transaction.atomic():
            me = RecurringRun.objects.select_for_update(of=("self",)).select_related(
                "profile", "experiment", "pipeline_version", "created_by").get(pk=self.pk)
            if not me.enabled or me.next_slot_at is None or me.next_slot_at > now:
                return 0
            trigger = me.trigger
            due = trigger.slots(me.next_slot_at, now, MAX_SLOTS_PER_TICK)
            if not me.catchup:
                due = due[-1:]
            room = me.max_concurrency - Run.objects.filter(recurring_run=me).unfinished().count()
            source = me._source()
            if isinstance(source, str):  # the pipeline is gone: nothing can run any more
                me.disable_because(source)
                return 0
            next_slot = me.next_slot_at
            for slot in due:
                if room <= 0:
                    break
                if me._start(Run, slot, source):
                    started += 1
                    room -= 1
                me.last_slot_at = slot
                next_slot = trigger.next_slot(slot)
            me.next_slot_at = next_slot
            me.save(update_fields=["next_slot_at", "last_slot_at"])
        return started

    def _source(self) -> dict[str, Any] | str:
        """What the next run runs (``Run.start``'s ``version`` or ``loaded``), or why nothing
        can run."""
        if self.document is not None:
            return {"loaded": LoadedPipeline(
                format=self.format, document=self.document, platform_spec=self.platform_spec,
                source="", filename="", spec=PipelineSpec.from_dict(self.graph))}
        if self.latest:
            version = self.pipeline.latest_version() if self.pipeline else None
            if version is None:
                return "Its pipeline was deleted."
            return {"version": version}
        if self.pipeline_version is None:
            return "Its pipeline version was deleted."
        return {"version": self.pipeline_version}

    def _start(self, run_model, slot: datetime, source: dict[str, Any]) -> bool:
        """The run of ``slot``; False when another scheduler started it already."""
        name = f"{self.name} {slot.astimezone(self.trigger.zone):%Y-%m-%d %H:%M:%S}"
        try:
            with transaction.atomic():
                run_model.start(
                    self.profile, self.created_by, name=name[:NAME_MAX],
                    experiment=self.experiment, parameters=self.parameters,
                    description=self.description, caching=self.caching,
                    pipeline_root=self.pipeline_root, service_account=self.service_account,
                    recurring_run=self, scheduled_at=slot, **source)
        except IntegrityError:
            return False
        except ValidationError as exc:  # e.g. the latest version takes other parameters
            self.disable_because(f"Its run for {slot:%Y-%m-%d %H:%M:%S} could not start: "
                                 f"{' '.join(exc.messages)}")
            return False
        return True


def _spec_of(version, pipeline, loaded) -> PipelineSpec:
    if version is not None:
        return version.spec
    if loaded is not None:
        return loaded.spec
    latest = pipeline.latest_version()
    if latest is None:
        raise ValidationError("That pipeline has no version to run.")
    return latest.spec


@receiver(pre_delete, sender=PipelineVersion)
def _version_deleted(sender, instance: PipelineVersion, **kwargs) -> None:
    """A schedule of the deleted version stops, saying why (its FK becomes null)."""
    RecurringRun.objects.filter(pipeline_version=instance, latest=False, enabled=True).update(
        enabled=False, next_slot_at=None, updated_at=timezone.now(),
        disabled_reason=f"Its pipeline version {instance.name} was deleted.")


@receiver(pre_delete, sender=Pipeline)
def _pipeline_deleted(sender, instance: Pipeline, **kwargs) -> None:
    RecurringRun.objects.filter(pipeline=instance, enabled=True).update(
        enabled=False, next_slot_at=None, updated_at=timezone.now(),
        disabled_reason=f"Its pipeline {instance.name} was deleted.")
