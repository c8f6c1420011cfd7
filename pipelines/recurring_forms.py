"""Forms of the recurring runs pages: the trigger (periodic or cron, start, end, time zone),
alone for the live preview and inside the recurring run form, which is the run form
(``RunForm``: pipeline, version or file, typed parameters, experiment, caching) plus the
trigger and the schedule's own settings.

Start and end are typed as a wall clock shows them (the browser's ``datetime-local`` input
sends no zone): the chosen time zone says where that clock hangs, as it does for a cron's
hours. ``Trigger`` (pipelines/triggers.py) checks the trigger; its errors, keyed by its
own field names, land next to the inputs that made them.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from pipelines.models import NAME_MAX, Experiment, RecurringRun, validate_display_name
from pipelines.models.recurring import DEFAULT_MAX_CONCURRENCY
from pipelines.run_forms import CLONED, VERSION, RunForm
from pipelines.specs import LoadedPipeline, PipelineSpec
from pipelines.triggers import Trigger

PERIODIC, CRON = "periodic", "cron"
UNITS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
SECONDS = "seconds"  # offered only for a period made elsewhere (the API) that needs it
WALL_CLOCK = "%Y-%m-%dT%H:%M"  # what a datetime-local input shows and sends
COMMON_ZONES = [
    "UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin",
    "Europe/Amsterdam", "Europe/Madrid", "Europe/Rome", "Europe/Zurich", "Europe/Stockholm",
    "Europe/Warsaw", "Europe/Athens", "Europe/Helsinki", "Europe/Istanbul", "Europe/Moscow",
    "Africa/Lagos", "Africa/Cairo", "Africa/Johannesburg", "Asia/Dubai", "Asia/Karachi",
    "Asia/Kolkata", "Asia/Bangkok", "Asia/Singapore", "Asia/Shanghai", "Asia/Hong_Kong",
    "Asia/Seoul", "Asia/Tokyo", "Australia/Perth", "Australia/Sydney", "Pacific/Auckland",
    "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/Halifax",
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
    "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu",
]
# Which input each of Trigger's error keys belongs to.
TRIGGER_ERROR_FIELDS = {"cron": "cron", "interval_seconds": "interval_count",
                        "end_at": "end_at", "time_zone": "time_zone", "trigger": None}


class WallClockField(forms.DateTimeField):
    """A date and time without a zone (the trigger's time zone places it)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                    format=WALL_CLOCK), **kwargs)

    def to_python(self, value) -> datetime | None:
        with timezone.override(UTC):  # no zone's missing hour can refuse it here
            moment = super().to_python(value)
        return moment.replace(tzinfo=None) if moment else None


class TriggerForm(forms.Form):
    """When a recurring run fires. Valid, it has ``trigger``; ``preview()`` says what the
    form's preview box (and the preview endpoint) shows."""

    trigger_type = forms.ChoiceField(
        label="Trigger", widget=forms.RadioSelect, initial=PERIODIC,
        choices=[(PERIODIC, "Periodic"), (CRON, "Cron")])
    interval_count = forms.IntegerField(
        label="Every", required=False, initial=1,
        widget=forms.NumberInput(attrs={"min": 1, "class": "recurring-count"}))
    interval_unit = forms.ChoiceField(label="Unit", initial="days",
                                      choices=[(unit, unit) for unit in UNITS])
    cron = forms.CharField(
        label="Cron expression", required=False, max_length=200,
        help_text="Five fields (minute hour day-of-month month day-of-week), or six with "
                  "seconds first as KFP takes them: 0 0 9 * * 1-5 is 09:00 on weekdays.",
        widget=forms.TextInput(attrs={"class": "mono", "spellcheck": "false",
                                      "autocomplete": "off", "placeholder": "0 9 * * 1-5"}))
    start_at = WallClockField(label="Start", required=False,
                              help_text="Empty: from now. A period counts from the start, or from "
                                        "now if that is later.")
    end_at = WallClockField(label="End", required=False,
                            help_text="Empty: it never ends.")
    time_zone = forms.ChoiceField(
        label="Time zone", initial="UTC", choices=[(zone, zone) for zone in COMMON_ZONES],
        help_text="Where the cron's hours, the start and the end are read.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.trigger: Trigger | None = None
        # A zone set elsewhere (the API) is offered too, so editing keeps it.
        zone = str(self["time_zone"].value() or "")
        if zone and zone not in COMMON_ZONES and _is_zone(zone):
            self.fields["time_zone"].choices = [*self.fields["time_zone"].choices,
                                                (zone, zone)]
        if self["interval_unit"].value() == SECONDS:
            self.fields["interval_unit"].choices = [(SECONDS, SECONDS),
                                                    *self.fields["interval_unit"].choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.trigger = self._trigger(data)
        return data

    def _trigger(self, data: dict[str, Any]) -> Trigger | None:
        kind = data.get("trigger_type")
        used = ["cron"] if kind == CRON else ["interval_count", "interval_unit"]
        unused = ["interval_count", "interval_unit"] if kind == CRON else ["cron"]
        for name in unused:  # the hidden inputs of the other kind of trigger
            self._errors.pop(name, None)
        if kind is None or any(name in self.errors
                               for name in [*used, "start_at", "end_at", "time_zone"]):
            return None
        if kind == CRON and not data["cron"].strip():
            self.add_error("cron", "Write a cron expression, e.g. 0 9 * * 1-5.")
            return None
        if kind == PERIODIC and data["interval_count"] is None:
            self.add_error("interval_count", "Say how many minutes, hours, days or weeks.")
            return None
        zone = zoneinfo.ZoneInfo(data["time_zone"])
        try:
            return Trigger(
                cron=" ".join(data["cron"].split()) if kind == CRON else "",
                interval_seconds=data["interval_count"] * _unit_seconds(data["interval_unit"])
                if kind == PERIODIC else None,
                start_at=_placed(data["start_at"], zone), end_at=_placed(data["end_at"], zone),
                time_zone=data["time_zone"])
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                self.add_error(TRIGGER_ERROR_FIELDS.get(key), messages)
            return None

    def preview(self, now: datetime | None = None) -> dict[str, Any]:
        """The trigger in words and its next times, or why there is none (messages)."""
        if not self.is_valid() or self.trigger is None:
            return {"errors": [message for messages in self.errors.values()
                               for message in messages]}
        return trigger_preview(self.trigger, now or timezone.now())


def trigger_preview(trigger: Trigger, now: datetime,
                    times: list[datetime] | None = None) -> dict[str, Any]:
    """A trigger in words and its next times (``times``, else from ``now``), each in its
    time zone: what the form, the preview endpoint and the details page show."""
    times = trigger.preview(now) if times is None else times
    return {"description": trigger.describe(), "time_zone": trigger.time_zone,
            "times": [{"iso": moment.isoformat(), "text": slot_text(moment, trigger.zone)}
                      for moment in times]}


def slot_text(moment: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """'Mon 2025-03-03 09:00:00 CET': a slot as the schedule's own clock shows it."""
    local = moment.astimezone(zone)
    return f"{local:%a %Y-%m-%d %H:%M:%S} {local.tzname()}"


class RecurringRunForm(TriggerForm, RunForm):
    """The run form plus the trigger: creates a recurring run, edits one (``editing``) or
    starts as a copy of one (``schedule`` without ``editing``)."""

    latest = forms.BooleanField(
        label="Always the latest version", required=False,
        help_text="Each run takes the pipeline's newest version when it starts.")
    max_concurrency = forms.IntegerField(
        label="Max concurrent runs", initial=DEFAULT_MAX_CONCURRENCY, min_value=1,
        error_messages={"min_value": "At least 1 run at a time."},
        widget=forms.NumberInput(attrs={"min": 1}),
        help_text="A slot that comes due while this many of its runs are still going "
                  "waits for one to finish.")
    catchup = forms.BooleanField(
        label="Catch up", required=False, initial=True,
        help_text="After a time the scheduler was not running: on, every missed slot gets "
                  "its run; off, only the latest one.")
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True,
                                 help_text="Off: it keeps its settings and starts no runs.")

    def __init__(self, data=None, files=None, *, profile, user,
                 schedule: RecurringRun | None = None, editing: bool = False,
                 initial: dict[str, Any] | None = None, refresh: bool = False) -> None:
        self.schedule, self.editing = schedule, editing
        self.schedule_fingerprint = _fingerprint(schedule) if schedule else ""
        if schedule is not None:
            initial = {**schedule_initial(schedule, editing), **(initial or {})}
        super().__init__(data, files, profile=profile, user=user, initial=initial,
                         refresh=refresh)
        if schedule is not None and schedule.document is not None:
            self.fields["source"].choices = [
                (CLONED, f"The pipeline stored with {schedule.name}"),
                *self.fields["source"].choices]
        name = self.fields["name"]
        name.label = "Name"
        name.help_text = ("Empty: the pipeline's name. Each run it starts is called so, "
                          "followed by the time of its slot.")

    # --- the pipeline: RunForm's, plus "always the latest version" and a stored package --

    def _read_source(self) -> str:
        schedule = self.schedule
        if self._value("source") == CLONED and schedule is not None \
                and schedule.document is not None:
            self.loaded = LoadedPipeline(
                format=schedule.format, document=schedule.document,
                platform_spec=schedule.platform_spec, source="", filename="",
                spec=PipelineSpec.from_dict(schedule.graph))
            self.spec = self.loaded.spec
            return f"recurring:{schedule.pk}"
        return super()._read_source()

    def _read_version(self) -> str:
        """With "always the latest version", the version shown (and whose parameters the
        inputs are) is the newest one."""
        found = super()._read_version()
        if self.chosen_version is None or not self["latest"].value():
            return found
        latest = self.chosen_version.pipeline.latest_version()
        if latest.pk != self.chosen_version.pk:
            latest.pipeline = self.chosen_version.pipeline
            self.chosen_version, self.spec = latest, latest.spec
            (self.data if self.is_bound else self.initial)["version"] = str(latest.pk)
        return f"version:{latest.pk}"

    def _cloned_values(self) -> dict[str, Any]:
        """The schedule's parameter values, while the form shows the pipeline it runs."""
        if self.schedule is not None and self.fingerprint == self.schedule_fingerprint:
            return self.schedule.parameters
        return {}

    def default_name(self) -> str:
        return self.source_name

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        return validate_display_name(name, "recurring run") if name.strip() else ""

    def add_start_errors(self, error: ValidationError) -> None:
        """The model's errors keyed by a field of this form go next to it; the rest as
        the run form places them."""
        if hasattr(error, "error_dict"):
            for key in [k for k in error.error_dict if k in self.fields]:
                self.add_error(key, error.error_dict.pop(key))
            if not error.error_dict:
                return
        super().add_start_errors(error)

    @property
    def preview_box(self) -> dict[str, Any]:
        """The preview box as the page loads: from what the inputs hold."""
        return TriggerForm({name: self[name].value() for name in TriggerForm.base_fields}
                           ).preview()

    # --- saving --------------------------------------------------------------------------

    def schedule_fields(self) -> dict[str, Any]:
        """What ``RecurringRun.create`` and ``change`` take, from the valid form."""
        data = self.cleaned_data
        fields: dict[str, Any] = {
            "name": data["name"], "trigger": self.trigger, "description": data["description"],
            "experiment": data["experiment"], "parameters": self.parameter_values(),
            "parameters_from_text": True, "caching": None if data["caching"] else False,
            "max_concurrency": data["max_concurrency"], "catchup": data["catchup"]}
        if data["source"] != VERSION:
            fields["loaded"] = self.loaded
        elif data["latest"]:
            fields["pipeline"] = self.chosen_version.pipeline
        else:
            fields["version"] = self.chosen_version
        if self.schedule is not None:  # what the form does not show stays as it was
            fields.update(pipeline_root=self.schedule.pipeline_root,
                          service_account=self.schedule.service_account)
        return fields

    def save(self) -> RecurringRun:
        """Create the recurring run, or change the one edited. Raises the model's
        ValidationError (``add_start_errors`` places it)."""
        enabled = self.cleaned_data["enabled"]
        if not self.editing:
            return RecurringRun.create(self.profile, self.user, enabled=enabled,
                                       **self.schedule_fields())
        schedule = self.schedule
        schedule.change(self.user, **self.schedule_fields())
        if schedule.enabled != enabled:
            schedule.set_enabled(enabled, self.user)
        return schedule


def schedule_initial(schedule: RecurringRun, editing: bool) -> dict[str, Any]:
    """The form as ``schedule`` is: its pipeline, settings and trigger (a copy is named
    "Clone of …" and starts enabled)."""
    initial: dict[str, Any] = {
        "name": schedule.name if editing else f"Clone of {schedule.name}"[:NAME_MAX],
        "description": schedule.description,
        # The experiment select's empty choice is Default (RunForm's experiment choices).
        "experiment": "" if schedule.experiment.name == Experiment.DEFAULT_NAME
        else str(schedule.experiment_id),
        "caching": schedule.caching is not False, "max_concurrency": schedule.max_concurrency,
        "catchup": schedule.catchup, "enabled": schedule.enabled if editing else True,
        **trigger_initial(schedule.trigger)}
    if schedule.document is not None:
        initial["source"] = CLONED
    elif schedule.pipeline_id is not None and (schedule.latest or schedule.pipeline_version_id):
        initial.update(source=VERSION, pipeline=str(schedule.pipeline_id),
                       latest=schedule.latest)
        if schedule.pipeline_version_id:
            initial["version"] = str(schedule.pipeline_version_id)
    return initial


def trigger_initial(trigger: Trigger) -> dict[str, Any]:
    zone = trigger.zone
    initial: dict[str, Any] = {
        "trigger_type": CRON if trigger.cron else PERIODIC, "cron": trigger.cron,
        "time_zone": trigger.time_zone,
        "start_at": trigger.start_at.astimezone(zone).strftime(WALL_CLOCK)
        if trigger.start_at else "",
        "end_at": trigger.end_at.astimezone(zone).strftime(WALL_CLOCK) if trigger.end_at else ""}
    if trigger.interval_seconds:
        unit = next((u for u, size in reversed(UNITS.items())
                     if trigger.interval_seconds % size == 0), SECONDS)
        initial.update(interval_count=trigger.interval_seconds // _unit_seconds(unit),
                       interval_unit=unit)
    return initial


def _fingerprint(schedule: RecurringRun) -> str:
    """What ``RunForm.fingerprint`` is while the form shows the pipeline ``schedule``
    runs: then the inputs hold its parameter values."""
    if schedule.document is not None:
        return f"recurring:{schedule.pk}"
    if schedule.latest and schedule.pipeline is not None:
        latest = schedule.pipeline.latest_version()
        return f"version:{latest.pk}" if latest else ""
    return f"version:{schedule.pipeline_version_id}" if schedule.pipeline_version_id else ""


def _unit_seconds(unit: str) -> int:
    return 1 if unit == SECONDS else UNITS[unit]


def _placed(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> datetime | None:
    return moment.replace(tzinfo=zone) if moment else None


def _is_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
