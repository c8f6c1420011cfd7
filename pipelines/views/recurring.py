"""Recurring runs pages: the list (a namespace's, and the same table in each experiment's
page), a recurring run's details with the runs it started, create / edit / clone (the run
form plus the trigger, ``pipelines.recurring_forms``), enable, disable, delete, and the
trigger preview the form's script asks for while the user types.

The scheduler (``pipelines/scheduler.py``) starts the runs; these pages only change what
the schedule says, through the model's methods.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import F, Window
from django.db.models.fields.json import KT
from django.db.models.functions import RowNumber
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from pipelines.models import Experiment, RecurringRun, Run
from pipelines.recurring_forms import RecurringRunForm, TriggerForm, trigger_preview
from pipelines.specs import PipelineSpec
from pipelines.triggers import PREVIEW
from pipelines.views import next_url, query_uuid
from pipelines.views.listing import SORTS, paginate
from pipelines.views.run_detail import parameter_rows
from pipelines.views.runs import initial_from_query, run_table

TABS = {"all": "All", "enabled": "Enabled", "disabled": "Disabled"}
RECURRING_SORTS = {
    **SORTS,
    # Soonest first; schedules with no next run (disabled, ended) last either way.
    "next": [F("next_slot_at").asc(nulls_last=True), "name", "pk"],
    "-next": [F("next_slot_at").desc(nulls_last=True), "name", "pk"],
}
# What a row shows; the stored package and parameters stay in the database.
ROW_FIELDS = ("id", "profile_id", "name", "latest", "format", "cron", "interval_seconds",
              "start_at", "end_at", "time_zone", "enabled", "disabled_reason", "next_slot_at",
              "last_slot_at", "created_at", "experiment__id", "experiment__name",
              "pipeline__id", "pipeline__name", "pipeline_version__id",
              "pipeline_version__name")
IN_EXPERIMENT = 20  # an experiment's page lists this many; the rest are a link away
NEVER = datetime.max.replace(tzinfo=UTC)


def _schedule(profile, recurring_run_id) -> RecurringRun:
    """A recurring run of this namespace, else 404."""
    return get_object_or_404(
        RecurringRun.objects.select_related("profile", "experiment", "pipeline",
                                            "pipeline_version", "created_by"),
        profile=profile, pk=recurring_run_id)


def schedule_rows(schedules):
    """The list's queryset: a row's fields only, and a stored package's pipeline name."""
    return schedules.select_related("experiment", "pipeline", "pipeline_version").only(
        *ROW_FIELDS).annotate(package_name=KT("graph__name"))


def with_last_runs(rows: list[RecurringRun]) -> list[RecurringRun]:
    """Each row's trigger in words and the last run it started: one query for the whole
    page, numbering each schedule's runs from the latest slot."""
    last = Run.objects.filter(recurring_run__in=rows).annotate(
        rank=Window(RowNumber(), partition_by=F("recurring_run_id"),
                    order_by=[F("scheduled_at").desc(), F("pk").desc()]),
    ).filter(rank=1).only("id", "recurring_run_id", "name", "state", "error", "scheduled_at",
                          "created_at") if rows else []
    by_schedule = {run.recurring_run_id: run for run in last}
    for row in rows:
        row.last_run = by_schedule.get(row.pk)
        row.trigger_text = row.trigger.describe()
    return rows


def experiment_schedules(experiment: Experiment) -> dict[str, Any]:
    """The experiment page's recurring runs (three queries: count, rows, last runs)."""
    schedules = experiment.recurring_runs.all()
    rows = with_last_runs(list(schedule_rows(schedules).order_by("name", "pk")[:IN_EXPERIMENT]))
    count = len(rows) if len(rows) < IN_EXPERIMENT else schedules.count()
    return {"schedules": rows, "schedule_count": count}


@namespace_view()
def recurring_list(request, profile):
    tab = request.GET.get("show", "all")
    if tab not in TABS:
        tab = "all"
    schedules = RecurringRun.objects.filter(profile=profile)
    if tab != "all":
        schedules = schedules.filter(enabled=tab == "enabled")
    experiment = None
    experiment_id = query_uuid(request.GET.get("experiment"))
    if experiment_id:
        experiment = get_object_or_404(Experiment.objects.only("id", "name"),
                                       profile=profile, pk=experiment_id)
        schedules = schedules.filter(experiment=experiment)
    listing = paginate(request, schedule_rows(schedules), RECURRING_SORTS, "-created",
                       {"show": tab, "experiment": str(experiment_id or "")},
                       decorate=with_last_runs)
    return render(request, "pipelines/recurring.html", {
        "profile": profile, "listing": listing, "schedules": listing.page.object_list,
        "tab": tab, "tabs": [(key, label, listing.link(show=key, page=None))
                             for key, label in TABS.items()],
        "in_experiment": experiment, "can_edit": profile.role.allows(Role.EDIT),
        "all_link": listing.link(experiment=None, page=None),
    })


@namespace_view()
def recurring_detail(request, profile, recurring_run_id):
    schedule = _schedule(profile, recurring_run_id)
    latest = schedule.pipeline.latest_version() if schedule.latest and schedule.pipeline \
        else None
    return render(request, "pipelines/recurring_detail.html", {
        "profile": profile, "schedule": schedule, "latest_version": latest,
        "upcoming": trigger_preview(schedule.trigger, timezone.now(), _upcoming(schedule)),
        "parameters": parameter_rows(schedule.parameters, _spec(schedule, latest)),
        "has_runs": schedule.runs.exists(),
        **run_table(request, profile, schedule.runs.all(), recurring=schedule),
    })


def _upcoming(schedule: RecurringRun) -> list[datetime] | None:
    """Its next times: from its next slot while enabled (a period counts from its anchor,
    not from now); disabled, None: the times it would have if enabled now."""
    if not schedule.enabled:
        return None
    if schedule.next_slot_at is None:
        return []
    return schedule.trigger.slots(schedule.next_slot_at, NEVER, PREVIEW)


def _spec(schedule: RecurringRun, latest) -> PipelineSpec | None:
    """The pipeline its next run runs (for its parameters' types), if there is one."""
    if schedule.graph is not None:
        return PipelineSpec.from_dict(schedule.graph)
    version = latest if schedule.latest else schedule.pipeline_version
    return version.spec if version is not None else None


# --- create, edit, clone --------------------------------------------------------------------


@namespace_view(Role.EDIT)
def recurring_new(request, profile):
    """Create one: from a pipeline's page (``?pipeline=&version=``), an experiment's
    (``?experiment=``) or as a copy of another (``?clone=``)."""
    clone_id = query_uuid(request.GET.get("clone"))
    clone = _schedule(profile, clone_id) if clone_id else None
    return _form_page(request, profile, clone, editing=False)


@namespace_view(Role.EDIT)
def recurring_edit(request, profile, recurring_run_id):
    return _form_page(request, profile, _schedule(profile, recurring_run_id), editing=True)


def _form_page(request, profile, schedule: RecurringRun | None, *, editing: bool):
    posted = request.method == "POST"
    form = RecurringRunForm(
        request.POST if posted else None, request.FILES if posted else None,
        profile=profile, user=request.user, schedule=schedule, editing=editing,
        initial=initial_from_query(request, profile) if not editing else None,
        refresh="refresh" in request.POST)
    if posted and not form.reviewing and form.is_valid():
        try:
            saved = form.save()
        except ValidationError as exc:
            form.add_start_errors(exc)
        else:
            messages.success(request, f"{'Saved' if editing else 'Created'} the recurring run "
                                      f"{saved.name}.")
            return redirect("recurring-detail", profile.name, saved.pk)
    return render(request, "pipelines/recurring_form.html", {
        "profile": profile, "form": form, "schedule": schedule, "editing": editing,
        "preview": form.preview_box,
        "cancel_url": reverse("recurring-detail", args=[profile.name, schedule.pk])
        if editing else reverse("recurring", args=[profile.name]),
    })


@namespace_view()
@require_GET
def recurring_preview(request, profile):
    """The trigger typed so far in words and its next times, for the form's script; or
    ``errors``, as messages, when it is not a trigger yet. Both are answers (200): a half
    typed cron is not a failed request, and browsers log every 4xx as an error."""
    return JsonResponse(TriggerForm(request.GET).preview())


# --- enable, disable, delete ------------------------------------------------------------------


@namespace_view(Role.EDIT)
@require_POST
def recurring_enable(request, profile, recurring_run_id, enabled: bool):
    """Enable (its next slot counts from now) or disable, then back to where the button
    was."""
    schedule = _schedule(profile, recurring_run_id)
    schedule.set_enabled(enabled, request.user)
    messages.success(request, f"The recurring run {schedule.name} is "
                              f"{'enabled' if enabled else 'disabled'}.")
    return redirect(next_url(request, reverse("recurring-detail",
                                              args=[profile.name, schedule.pk])))


@namespace_view(Role.EDIT)
def recurring_delete(request, profile, recurring_run_id):
    """Delete after a confirmation page; the runs it started stay."""
    schedule = _schedule(profile, recurring_run_id)
    if request.method == "POST":
        schedule.remove(request.user)
        messages.success(request, f"The recurring run {schedule.name} is deleted.")
        return redirect("recurring", profile.name)
    return render(request, "pipelines/recurring_confirm_delete.html", {
        "profile": profile, "schedule": schedule, "run_count": schedule.runs.count()})
