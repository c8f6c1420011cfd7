"""Experiment pages: the list (active or archived), create, details, archive/unarchive,
and delete after a confirmation page. Runs arrive with the next issue; until then the
pages show no run columns rather than empty ones."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from pipelines.forms import ExperimentForm
from pipelines.models import Experiment
from pipelines.views.listing import SORTS, paginate

TABS = {"active": "Active", "archived": "Archived"}


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
    return render(request, "pipelines/experiments.html", {
        "profile": profile, "listing": listing, "tab": tab,
        "tabs": [(key, label, listing.link(show=key, page=None))
                 for key, label in TABS.items()],
        "can_edit": profile.role.allows(Role.EDIT),
    })


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
    return render(request, "pipelines/experiment_detail.html", {
        "profile": profile, "experiment": _experiment(profile, experiment_id),
        "can_edit": profile.role.allows(Role.EDIT),
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
    if request.method == "POST":
        experiment.remove(request.user)
        messages.success(request, f"The experiment {experiment.name} is deleted.")
        return redirect("experiments", profile.name)
    return render(request, "pipelines/confirm_delete.html", {
        "profile": profile, "experiment": experiment,
    })
