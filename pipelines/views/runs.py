"""Runs pages: the runs list (a namespace's, and the same table in each experiment's page),
"Create run" (from a pipeline version, a file, or a clone of a run), and bulk archive,
restore and delete of the runs checked in a list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from pipelines.choices import RunState
from pipelines.engines import EngineError
from pipelines.models import Experiment, Pipeline, Run, RunMetric
from pipelines.models.runs import metric_text
from pipelines.run_forms import (
    BULK_ACTIONS,
    FILE,
    VERSION,
    RunBulkForm,
    RunFilterForm,
    RunForm,
    search_runs,
)
from pipelines.views import next_url, query_uuid
from pipelines.views.listing import Listing, paginate

TABS = {"active": "Active", "archived": "Archived"}
METRIC_COLUMNS = 2  # the most common metric names become columns, as in the KFP UI
RECENT_RUNS = 200  # how many of a list's latest runs choose its metric columns
# The state column sorts in the order the states are declared (pending, running, done...).
STATE_RANK = Case(*(When(state=state, then=Value(rank))
                    for rank, state in enumerate(RunState.values)), default=Value(99))
RUN_SORTS = {
    "-created": ["-created_at", "-pk"], "created": ["created_at", "pk"],
    "name": ["name", "pk"], "-name": ["-name", "-pk"],
    "state": [STATE_RANK.asc(), "-created_at", "-pk"],
    "-state": [STATE_RANK.desc(), "-created_at", "-pk"],
    # Runs not started yet have no duration: last either way.
    "-duration": [F("duration_sort").desc(nulls_last=True), "-pk"],
    "duration": [F("duration_sort").asc(nulls_last=True), "pk"],
}
# What a row shows; the pipeline documents and parameters stay in the database.
ROW_FIELDS = ("id", "profile_id", "name", "state", "error", "storage_state", "revision",
              "created_at", "started_at", "finished_at", "experiment__id", "experiment__name",
              "pipeline__id", "pipeline__name", "pipeline_version__id",
              "pipeline_version__name", "pipeline_version__pipeline_id")


def run_table(request, profile, runs, experiment: Experiment | None = None,
              recurring=None) -> dict[str, Any]:
    """The runs list's context (tabs, filters, sorted page, metric columns) for ``runs``:
    a namespace's, one experiment's or the runs one ``recurring`` run started. A constant
    number of queries whatever the page holds: the count, the page's ids and rows, the
    common metric names, and those metrics' values for the page."""
    rendered_at = timezone.now()  # the live list asks for runs created after this
    tab = request.GET.get("show", "active")
    if tab not in TABS:
        tab = "active"
    scope = runs.archived() if tab == "archived" else runs.available()
    filters = RunFilterForm(request.GET)
    runs = filters.apply(scope).select_related("experiment", "pipeline", "pipeline_version") \
        .only(*ROW_FIELDS).annotate(duration_sort=ExpressionWrapper(
            Coalesce("finished_at", Now()) - F("started_at"), output_field=DurationField()))
    columns = common_metrics(scope)
    listing = paginate(request, runs, {**RUN_SORTS, **metric_sorts(columns)}, "-created",
                       {"show": tab, **filters.params()}, search=search_runs, ids_first=True)
    rows = list(listing.page.object_list)
    for number, column in enumerate(columns):
        column["header"] = listing.headers[f"metric-{number}"]
    _add_cells(rows, columns, rendered_at)
    return {
        "listing": listing, "runs": rows, "tab": tab, "filters": filters,
        "tabs": [(key, label, listing.link(show=key, page=None)) for key, label in TABS.items()],
        "metric_columns": columns if rows else [], "experiment": experiment,
        "recurring": recurring,
        "can_edit": profile.role.allows(Role.EDIT), "rendered_at": rendered_at.isoformat(),
        "state_labels": dict(RunState.choices), "filtered": _filtered(listing, filters),
        "clear_link": listing.link(q=None, state=None, metric=None, page=None),
        "first_page_link": listing.link(page=None),
    }


def _filtered(listing: Listing, filters: RunFilterForm) -> bool:
    return bool(listing.query or filters.data.get("state") or filters.data.get("metric"))


def common_metrics(scope) -> list[dict[str, Any]]:
    """The metric columns: the names most of the ``RECENT_RUNS`` latest runs of ``scope``
    report, most common first (ties by name), in one query.

    ``scope`` is what the list shows before its filters: a namespace's or an experiment's
    active (or archived) runs. Search, filters, sort and page do not change the columns,
    so they stay put while the user narrows the list or pages through it (a run without a
    column's metric shows an empty cell). Only the latest runs count, which keeps the
    query's cost constant however many runs the namespace holds (the subquery walks the
    ``(namespace or experiment, storage_state, created_at)`` index for ``RECENT_RUNS``
    rows; their metrics are read through the ``(run, task, name)`` index) and lets the
    columns follow the metrics a team reports now rather than those of its oldest runs.
    Counting the metrics of every matching run instead cost ~40 ms a page at 10,000 runs
    (bench/RESULTS.md)."""
    recent = scope.order_by("-created_at").values("pk")[:RECENT_RUNS]
    return list(RunMetric.objects.filter(run__in=recent)
                .values("name").annotate(runs=Count("run", distinct=True))
                .order_by("-runs", "name")[:METRIC_COLUMNS])


def metric_sorts(columns: list[dict[str, Any]]) -> dict[str, list]:
    """A sort per metric column (``metric-0``, highest first on the first click): by the
    value a run's cell shows (the one recorded last); runs without it come last."""
    sorts = {}
    for number, column in enumerate(columns):
        value = Subquery(RunMetric.objects.filter(run=OuterRef("pk"), name=column["name"])
                         .order_by("-pk").values("value")[:1])
        sorts[f"-metric-{number}"] = [value.desc(nulls_last=True), "-created_at", "-pk"]
        sorts[f"metric-{number}"] = [value.asc(nulls_last=True), "-created_at", "-pk"]
    return sorts


def _add_cells(rows: list[Run], columns: list[dict], now) -> None:
    """Per row: its duration in words and its value of each metric column (one query; a
    metric several steps report shows the one recorded last)."""
    cells: dict[tuple, str] = {}
    if columns:
        for run_id, name, value, format in RunMetric.objects.filter(
                run_id__in=[run.pk for run in rows], name__in=[c["name"] for c in columns]
        ).order_by("-pk").values_list("run_id", "name", "value", "format"):
            cells.setdefault((run_id, name), metric_text(value, format))
    for run in rows:
        run.duration_text = duration_text(run.started_at, run.finished_at, now)
        run.metric_cells = [cells.get((run.pk, c["name"]), "") for c in columns]


def duration_text(started, finished, now) -> str:
    """'4.2 s', '3 min 5 s', '2 h 10 min'; empty before the run starts."""
    if started is None:
        return ""
    seconds = max(((finished or now) - started) / timedelta(seconds=1), 0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s"


@namespace_view()
def run_list(request, profile):
    table = run_table(request, profile, Run.objects.filter(profile=profile))
    return render(request, "pipelines/runs.html", {"profile": profile, **table})


# --- create run ---------------------------------------------------------------------------


def initial_from_query(request, profile) -> dict[str, Any]:
    """What the query string chooses: ``?pipeline=&version=`` (from a pipeline's page),
    ``?experiment=`` (from an experiment's page), ``?source=file``. Ids this namespace
    cannot see are 404, as everywhere."""
    initial: dict[str, Any] = {}
    pipeline_id = query_uuid(request.GET.get("pipeline"))
    if pipeline_id:
        pipeline = get_object_or_404(Pipeline.objects.visible_in(profile).only("id"),
                                     pk=pipeline_id)
        initial.update(source=VERSION, pipeline=str(pipeline.pk))
        version_id = query_uuid(request.GET.get("version"))
        if version_id:
            get_object_or_404(pipeline.versions.only("id"), pk=version_id)
            initial["version"] = str(version_id)
    experiment_id = query_uuid(request.GET.get("experiment"))
    if experiment_id:
        get_object_or_404(Experiment.objects.available().only("id"), profile=profile,
                          pk=experiment_id)
        initial["experiment"] = str(experiment_id)
    if request.GET.get("source") == FILE:
        initial["source"] = FILE
    return initial


@namespace_view(Role.EDIT)
def run_new(request, profile):
    clone_id = query_uuid(request.GET.get("clone"))
    clone = get_object_or_404(Run, profile=profile, pk=clone_id) if clone_id else None
    posted = request.method == "POST"
    form = RunForm(request.POST if posted else None, request.FILES if posted else None,
                   profile=profile, user=request.user, clone=clone,
                   initial=initial_from_query(request, profile), refresh="refresh" in request.POST)
    if posted and not form.reviewing and form.is_valid():
        try:
            run = form.start()
        except ValidationError as exc:
            form.add_start_errors(exc)
        else:
            return redirect("run-detail", profile.name, run.pk)
    return render(request, "pipelines/run_new.html", {
        "profile": profile, "form": form, "clone": clone,
        "cancel_url": reverse("runs", args=[profile.name]),
    })


# --- bulk actions -------------------------------------------------------------------------


@namespace_view(Role.EDIT)
@require_POST
def run_bulk(request, profile):
    back = next_url(request, reverse("runs", args=[profile.name]))
    form = RunBulkForm(request.POST, profile=profile)
    if not form.is_valid():
        messages.error(request, " ".join(m for ms in form.errors.values() for m in ms))
        return redirect(back)
    if form.needs_confirmation:
        return render(request, "pipelines/runs_confirm_delete.html", {
            "profile": profile, "runs": form.cleaned_data["runs"], "next": back})
    try:
        done = form.apply(request.user)
    except EngineError as exc:
        messages.error(request, str(exc))
    else:
        count = len(done)
        messages.success(request, f"{count} run{'s' if count != 1 else ''} "
                                  f"{BULK_ACTIONS[form.cleaned_data['action']]}.")
    return redirect(back)
