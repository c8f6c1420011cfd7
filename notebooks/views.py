"""Notebook pages: list, new-notebook form, details, and start/stop/delete actions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from notebooks.choices import Status
from notebooks.config import spawner_config
from notebooks.forms import NotebookForm
from notebooks.models import Notebook, Volume
from notebooks.spawners import SpawnError, spawner_for

LOG_LINES = 500


def _notebook(profile, name: str) -> Notebook:
    return get_object_or_404(
        Notebook.objects.select_related("profile", "workspace"), profile=profile, name=name)


def reconcile(notebook: Notebook) -> None:
    """Correct a 'running' row whose server died behind the dashboard's back."""
    if notebook.status != Status.RUNNING:
        return
    try:
        spawner = spawner_for(notebook)
        if spawner.watched:
            return
        seen = spawner.poll()
    except SpawnError:
        return
    if seen.status != notebook.status:
        notebook.mark(seen.status, seen.message)


@namespace_view()
def notebook_list(request, profile):
    notebooks = list(profile.notebooks.select_related("workspace", "profile")
                     .prefetch_related("data_mounts__volume"))
    for notebook in notebooks:
        reconcile(notebook)
    return render(request, "notebooks/list.html", {
        "profile": profile, "notebooks": notebooks,
        "can_edit": profile.role.allows(Role.EDIT),
    })


@namespace_view(Role.EDIT)
def notebook_new(request, profile):
    config = spawner_config()
    form = NotebookForm(request.POST or None, profile=profile, config=config)
    if request.method == "POST" and form.is_valid():
        notebook = Notebook.create(profile, request.user, form.cleaned_data, config)
        notebook.request_start(request.user)
        return redirect("notebook-detail", profile.name, notebook.name)
    return render(request, "notebooks/new.html", {
        "profile": profile, "form": form, "config": config,
        "volumes": profile.volumes.all(),
    })


@namespace_view()
def notebook_detail(request, profile, name: str):
    notebook = _notebook(profile, name)
    reconcile(notebook)
    spawner = None
    try:
        spawner = spawner_for(notebook)
    except SpawnError as exc:
        messages.warning(request, str(exc))
    return render(request, "notebooks/detail.html", {
        "profile": profile, "notebook": notebook,
        "can_edit": profile.role.allows(Role.EDIT),
        "mounts": notebook.data_mounts.select_related("volume"),
        "logs": spawner.logs(LOG_LINES) if spawner else "",
        "events": spawner.events() if spawner else [],
        "manifest": spawner.manifest() if spawner else "",
        "limits": notebook.runtime.get("limits", {}),
    })


@namespace_view(Role.EDIT)
@require_POST
def notebook_start(request, profile, name: str):
    notebook = _notebook(profile, name)
    if notebook.status in (Status.RUNNING, Status.WAITING) and not notebook.stopped:
        messages.info(request, f"{notebook.name} is already running.")
    else:
        notebook.request_start(request.user)
    return redirect("notebooks", profile.name)


@namespace_view(Role.EDIT)
@require_POST
def notebook_stop(request, profile, name: str):
    notebook = _notebook(profile, name)
    notebook.request_stop(request.user)
    return redirect("notebooks", profile.name)


@namespace_view(Role.EDIT)
@require_POST
def notebook_delete(request, profile, name: str):
    notebook = _notebook(profile, name)
    notebook.request_delete(request.user, delete_volumes=request.POST.get("delete_volumes") == "1")
    messages.success(request, f"{notebook.name} is being deleted.")
    return redirect("notebooks", profile.name)


@namespace_view()
def volume_list(request, profile):
    volumes = profile.volumes.prefetch_related("workspace_of", "data_mounts__notebook")
    return render(request, "notebooks/volumes.html", {
        "profile": profile, "volumes": volumes, "can_edit": profile.role.allows(Role.EDIT),
    })


@namespace_view(Role.EDIT)
@require_POST
def volume_delete(request, profile, volume: str):
    target = get_object_or_404(Volume, profile=profile, name=volume)
    try:
        target.remove(request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except SpawnError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The volume {volume} is deleted.")
    return redirect("volumes", profile.name)
