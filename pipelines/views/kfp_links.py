"""The links the kfp SDK prints, made to work.

``kfp.Client`` prints KFP UI links such as ``<host>/#/runs/details/<id>``. Browsers never
send the part after ``#``, so a script on every page (static/js/kfp-links.js) turns such a
fragment into one of these URLs, which find the object by its id alone, check that the
user may see its namespace (404 otherwise, as for any foreign object) and redirect to its
page under /ns/<namespace>/."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_safe

from dashboard import access
from pipelines.models import Experiment, Pipeline, PipelineVersion, Run


def _namespace_of(user, profile) -> str:
    """The name of ``profile`` if ``user`` may view it; 404 otherwise."""
    if profile is None or not access.can(user, "view", profile):
        raise Http404("No such object.")
    return profile.name


@login_required
@require_safe
def go_run(request, run_id):
    run = get_object_or_404(Run.objects.select_related("profile").only("id", "profile__name"),
                            pk=run_id)
    return redirect("run-detail", _namespace_of(request.user, run.profile), run.pk)


@login_required
@require_safe
def go_experiment(request, experiment_id):
    experiment = get_object_or_404(
        Experiment.objects.select_related("profile").only("id", "profile__name"),
        pk=experiment_id)
    return redirect("experiment-detail", _namespace_of(request.user, experiment.profile),
                    experiment.pk)


@login_required
@require_safe
def go_pipeline(request, pipeline_id, version_id=None):
    """A namespace's pipeline opens in its namespace; a shared one in the user's current
    namespace (every namespace lists the shared pipelines)."""
    pipeline = get_object_or_404(Pipeline.objects.select_related("profile"), pk=pipeline_id)
    if pipeline.is_shared:
        namespace = _namespace_of(request.user, access.default_namespace(request.user))
    else:
        namespace = _namespace_of(request.user, pipeline.profile)
    url = reverse("pipeline-detail", args=[namespace, pipeline.pk])
    if version_id is not None:
        version = get_object_or_404(PipelineVersion.objects.only("id"), pipeline=pipeline,
                                    pk=version_id)
        url = f"{url}?version={version.pk}"
    return redirect(url)
