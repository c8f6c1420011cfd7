"""Experiment pages: the list (active or archived, with the states of each one's latest
runs), create, details (with its runs, in the runs list's table), archive/unarchive, and
delete after a confirmation page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from pipelines.forms import ExperimentForm
from pipelines.models import Experiment, Run
from pipelines.views import runs_confirmed
from pipelines.views.listing import SORTS, paginate
from pipelines.views.recurring import experiment_schedules
from pipelines.views.runs import run_table

TABS = {"active": "Active", "archived": "Archived"}
LATEST_RUNS = 5  # how many of each experiment's latest runs show their state in the list


def _experiment(profile, experiment_id) -> Experiment:
    """An experiment of this namespace, else 404."""
    return get_object_or_404(Experiment.objects.select_related("profile", "created_by"),
                             profile=profile, pk=experiment_id)


@namespace_view()
def experiment_list(request, profile):
    tab = request.GET.get("show", "active")
    if tab not in TABS:
        tab = "active"
    experiments = Experiment.objects.filter(profile=profile)
    experiments = experiments.archived() if tab == "archived" else experiments.available()
    experiments = experiments.only("id", "name", "description", "created_at", "storage_state")
    listing = paginate(request, experiments, SORTS, "-created", {"show": tab})
    _add_latest_runs(listing.page.object_list)
    return render(request, "pipelines/experiments.html", {
        "profile": profile, "listing": listing, "tab": tab,
        "tabs": [(key, label, listing.link(show=key, page=None))
                 for key, label in TABS.items()],
        "can_edit": profile.role.allows(Role.EDIT),
    })


def _add_latest_runs(experiments) -> None:
    """Each experiment's latest runs (newest first, archived ones left out), for the list's
    state icons: one query for the whole page, numbering each experiment's runs."""
    experiments = list(experiments)
    latest = Run.objects.filter(experiment__in=experiments).available().annotate(
        rank=Window(RowNumber(), partition_by=F("experiment_id"),
                    order_by=[F("created_at").desc(), F("pk").desc()]),
    ).filter(rank__lte=LATEST_RUNS).order_by("experiment_id", "rank").only(
        "id", "experiment_id", "name", "state") if experiments else []
    by_experiment: dict = {}
    for run in latest:
        by_experiment.setdefault(run.experiment_id, []).append(run)
    for experiment in experiments:
        experiment.latest_runs = by_experiment.get(experiment.pk, [])


@namespace_view(Role.EDIT)
def experiment_new(request, profile):
    form = ExperimentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            experiment = Experiment.create(profile, form.cleaned_data["name"], request.user,
                                           form.cleaned_data["description"])
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            messages.success(request, f"Created the experiment {experiment.name}.")
            return redirect("experiment-detail", profile.name, experiment.pk)
    return render(request, "pipelines/experiment_new.html", {"profile": profile, "form": form})


@namespace_view()
def experiment_detail(request, profile, experiment_id):
    experiment = _experiment(profile, experiment_id)
    return render(request, "pipelines/experiment_detail.html", {
        "profile": profile, **experiment_schedules(experiment),
        **run_table(request, profile, Run.objects.filter(experiment=experiment), experiment),
    })


@namespace_view(Role.EDIT)
@require_POST
def experiment_archive(request, profile, experiment_id):
    experiment = _experiment(profile, experiment_id)
    experiment.archive(request.user)
    messages.success(request, f"The experiment {experiment.name} is archived.")
    return redirect(_back(request, "experiment-detail", profile, experiment))


@namespace_view(Role.EDIT)
@require_POST
def experiment_unarchive(request, profile, experiment_id):
    experiment = _experiment(profile, experiment_id)
    experiment.unarchive(request.user)
    messages.success(request, f"The experiment {experiment.name} is active again.")
    return redirect(_back(request, "experiment-detail", profile, experiment))


def _back(request, default: str, profile, experiment) -> str:
    """Back to the list the button was on, or the experiment's page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse(default, args=[profile.name, experiment.pk])


@namespace_view(Role.EDIT)
def experiment_delete(request, profile, experiment_id):
    experiment = _experiment(profile, experiment_id)
    run_count = experiment.runs.count()
    if request.method == "POST" and runs_confirmed(request, run_count):
        experiment.remove(request.user)
        messages.success(request, f"The experiment {experiment.name} is deleted.")
        return redirect("experiments", profile.name)
    return render(request, "pipelines/confirm_delete.html", {
        "profile": profile, "experiment": experiment, "run_count": run_count,
        "unconfirmed": request.method == "POST",
    })
