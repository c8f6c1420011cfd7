"""Pipeline pages: the list, upload (a new pipeline or version), details with the graph,
and deleting a pipeline or one version after a confirmation page."""

from __future__ import annotations

import json

import yaml
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from pipelines.forms import VERSION, UploadForm
from pipelines.models import Pipeline, PipelineVersion, Run, attach_latest_versions
from pipelines.views import query_uuid, runs_confirmed
from pipelines.views.graph import graph_data
from pipelines.views.listing import SORTS, paginate

TABS = {"all": "All", "private": "Private", "shared": "Shared"}


def _pipeline(profile, pipeline_id) -> Pipeline:
    """A pipeline of this namespace or a shared one, else 404."""
    return get_object_or_404(
        Pipeline.objects.visible_in(profile).select_related("profile", "created_by"),
        pk=pipeline_id)


def may_change(user, profile, pipeline: Pipeline) -> bool:
    """Editors change their namespace's pipelines; only cluster admins the shared ones."""
    if pipeline.is_shared:
        return user.is_cluster_admin
    return profile.role.allows(Role.EDIT)


def _changeable(request, profile, pipeline_id) -> Pipeline:
    pipeline = _pipeline(profile, pipeline_id)
    if not may_change(request.user, profile, pipeline):
        raise PermissionDenied("Only cluster admins change shared pipelines.")
    return pipeline


@namespace_view()
def pipeline_list(request, profile):
    tab = request.GET.get("show", "all")
    if tab not in TABS:
        tab = "all"
    pipelines = Pipeline.objects.visible_in(profile)
    if tab == "private":
        pipelines = pipelines.filter(profile=profile)
    elif tab == "shared":
        pipelines = pipelines.filter(profile__isnull=True)
    pipelines = pipelines.only("id", "name", "description", "created_at", "profile_id")
    listing = paginate(request, pipelines, SORTS, "-created", {"show": tab},
                       decorate=attach_latest_versions)
    return render(request, "pipelines/list.html", {
        "profile": profile, "listing": listing, "tab": tab,
        "tabs": [(key, label, listing.link(show=key, page=None)) for key, label in TABS.items()],
        "can_edit": profile.role.allows(Role.EDIT),
    })


@namespace_view(Role.EDIT)
def pipeline_upload(request, profile):
    initial = {}
    chosen = request.GET.get("pipeline")
    if chosen:
        initial = {"target": VERSION,
                   "pipeline": _changeable(request, profile, query_uuid(chosen)).pk}
    form = UploadForm(request.POST or None, request.FILES or None, profile=profile,
                      user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            version = form.store(profile)
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            messages.success(request, f"Uploaded {version.pipeline.name}, version {version.name}.")
            return redirect(_detail_url(profile, version))
    return render(request, "pipelines/upload.html", {"profile": profile, "form": form})


def _detail_url(profile, version: PipelineVersion) -> str:
    url = reverse("pipeline-detail", args=[profile.name, version.pipeline_id])
    return f"{url}?version={version.pk}"


@namespace_view()
def pipeline_detail(request, profile, pipeline_id):
    pipeline = _pipeline(profile, pipeline_id)
    # The list of versions leaves out their (possibly large) files and graphs.
    versions = list(pipeline.versions.only("id", "pipeline_id", "name", "description",
                                           "created_at"))
    chosen = query_uuid(request.GET.get("version")) or pipeline.default_version_id
    version = None
    if chosen:
        version = get_object_or_404(PipelineVersion, pipeline=pipeline, pk=chosen)
    elif versions:
        version = pipeline.versions.first()  # newest first, like the list
    context = {"profile": profile, "pipeline": pipeline, "versions": versions,
               "version": version, "can_change": may_change(request.user, profile, pipeline)}
    if version is not None:
        spec = version.spec
        graph = graph_data(spec)
        context.update(spec=spec, graph=graph, source=_as_yaml(version),
                       parameters=[_parameter(p) for p in spec.parameters])
    return render(request, "pipelines/detail.html", context)


def _parameter(parameter) -> dict:
    default = ""
    if parameter.has_default:
        value = parameter.default
        default = value if isinstance(value, str) else json.dumps(value)
    return {"name": parameter.name, "type": parameter.declared_type or parameter.type,
            "default": default, "has_default": parameter.has_default,
            "optional": parameter.optional or parameter.has_default,
            "description": parameter.description}


def _as_yaml(version: PipelineVersion) -> str:
    """The pipeline file as uploaded when it is YAML; a JSON upload shown as YAML, dumped
    once per version and process (a 1 MB pipeline takes most of a second to dump)."""
    source = version.source
    if not source.lstrip().startswith(("{", "[")):
        return source
    key = f"pipeline-version-yaml:{version.pk}"
    text = cache.get(key)
    if text is None:
        documents = [version.document]
        if version.platform_spec:
            documents.append(version.platform_spec)
        text = yaml.dump_all(documents, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                             sort_keys=False, allow_unicode=True)
        cache.set(key, text, timeout=24 * 3600)
    return text


@namespace_view(Role.EDIT)
def pipeline_delete(request, profile, pipeline_id):
    pipeline = _changeable(request, profile, pipeline_id)
    run_count = Run.objects.filter(pipeline=pipeline).count()
    if request.method == "POST" and runs_confirmed(request, run_count):
        pipeline.remove(request.user)
        messages.success(request, f"The pipeline {pipeline.name} is deleted.")
        return redirect("pipelines", profile.name)
    return render(request, "pipelines/confirm_delete.html", {
        "profile": profile, "pipeline": pipeline, "run_count": run_count,
        "version_count": pipeline.versions.count(), "unconfirmed": request.method == "POST",
    })


@namespace_view(Role.EDIT)
def version_delete(request, profile, pipeline_id, version_id):
    pipeline = _changeable(request, profile, pipeline_id)
    version = get_object_or_404(pipeline.versions.only("id", "pipeline_id", "name",
                                                       "created_at"), pk=version_id)
    run_count = version.runs.count()
    if request.method == "POST" and runs_confirmed(request, run_count):
        version.remove(request.user)
        messages.success(request, f"Version {version.name} of {pipeline.name} is deleted.")
        return redirect("pipeline-detail", profile.name, pipeline.pk)
    return render(request, "pipelines/confirm_delete.html", {
        "profile": profile, "pipeline": pipeline, "version": version, "run_count": run_count,
        "unconfirmed": request.method == "POST",
    })
