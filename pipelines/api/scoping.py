"""Which namespace a request means, and the objects a caller may reach, via the one access
policy (``dashboard/access.py``).

An empty ``namespace`` means the caller's default namespace (the SDKs send ``namespace=``
when none is configured). Shared pipelines (no namespace) are read by every signed-in
user and written by cluster admins only; through the API they are named by the
namespace ``kubeflow`` — reserved in kfdash (no user namespace can take it) and the
namespace Kubeflow itself runs in. An object in a namespace the caller may not view is
404, as if it did not exist; one they may view but not change is 403.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework.exceptions import ValidationError

from dashboard import access
from dashboard.choices import Role
from dashboard.models import Profile
from pipelines.models import Experiment, Pipeline, PipelineVersion, RecurringRun, Run

SHARED = "kubeflow"


def parse_id(value: str, what: str) -> uuid.UUID:
    """Ids are UUIDs; anything else names nothing (404, not 400, as for a deleted id)."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Http404(f"No {what} with id {value!r}.") from exc


def default_profile(user) -> Profile | None:
    return access.default_namespace(user)


def profile_to_write(user, name: str | None) -> Profile:
    """The namespace to create an experiment in: the named one (edit role), else the
    caller's default."""
    if name:
        return access.get_namespace(user, name, Role.EDIT)
    profile = default_profile(user)
    if profile is None:
        raise ValidationError("You have no namespace yet: register one in kfdash, or ask to "
                              "be added to one, then name it with 'namespace'.")
    return access.get_namespace(user, profile.name, Role.EDIT)


def pipeline_owner_to_write(user, name: str | None) -> Profile | None:
    """Where a new pipeline goes: ``kubeflow`` → shared (cluster admins only), else as
    ``profile_to_write``."""
    if name == SHARED:
        check_shared(user, Role.EDIT)
        return None
    return profile_to_write(user, name)


def profile_to_read(user, name: str | None) -> Profile | None:
    """The namespace a list names (view role), else the caller's default (None: they
    have none)."""
    if name:
        return access.get_namespace(user, name, Role.VIEW)
    return default_profile(user)


def check_shared(user, verb: Role | str) -> None:
    if Role(verb) != Role.VIEW and not user.is_cluster_admin:
        raise PermissionDenied("Only cluster admins may change shared pipelines.")


def check_pipeline(user, pipeline: Pipeline, verb: Role | str) -> None:
    if pipeline.profile_id is None:
        check_shared(user, verb)
    else:
        access.get_namespace(user, pipeline.profile.name, verb)


def visible_pipelines(user, namespace: str | None):
    """What a pipeline list shows: a namespace's and the shared ones (``kubeflow``: only
    the shared ones)."""
    pipelines = Pipeline.objects.select_related("profile")
    if namespace == SHARED:
        return pipelines.visible_in(None)
    return pipelines.visible_in(profile_to_read(user, namespace))


def get_experiment(user, experiment_id: str, verb: Role | str = Role.VIEW) -> Experiment:
    experiment = Experiment.objects.select_related("profile").filter(
        pk=parse_id(experiment_id, "experiment")).first()
    if experiment is None:
        raise Http404(f"No experiment with id {experiment_id}.")
    access.get_namespace(user, experiment.profile.name, verb)
    return experiment


def get_pipeline(user, pipeline_id: str, verb: Role | str = Role.VIEW,
                 queryset=None) -> Pipeline:
    queryset = Pipeline.objects.select_related("profile") if queryset is None else queryset
    pipeline = queryset.filter(pk=parse_id(pipeline_id, "pipeline")).first()
    if pipeline is None:
        raise Http404(f"No pipeline with id {pipeline_id}.")
    check_pipeline(user, pipeline, verb)
    return pipeline


def get_version(user, version_id: str, verb: Role | str = Role.VIEW,
                pipeline_id: str | None = None) -> PipelineVersion:
    """A version by id; with ``pipeline_id`` (v2 paths) it must belong to that pipeline."""
    versions = PipelineVersion.objects.select_related("pipeline__profile")
    if pipeline_id is not None:
        versions = versions.filter(pipeline_id=parse_id(pipeline_id, "pipeline"))
    version = versions.filter(pk=parse_id(version_id, "pipeline version")).first()
    if version is None:
        raise Http404(f"No pipeline version with id {version_id}.")
    check_pipeline(user, version.pipeline, verb)
    return version


def get_run(user, run_id: str, verb: Role | str = Role.VIEW, queryset=None) -> Run:
    """A run by id, with its namespace (``queryset`` picks what else is loaded)."""
    return _in_namespace(user, verb, "run", run_id, Run.objects.select_related("profile")
                         if queryset is None else queryset)


def get_recurring_run(user, recurring_run_id: str, verb: Role | str = Role.VIEW,
                      queryset=None) -> RecurringRun:
    """A recurring run (v1: a job) by id, with its namespace."""
    return _in_namespace(user, verb, "recurring run", recurring_run_id,
                         RecurringRun.objects.select_related("profile")
                         if queryset is None else queryset)


def _in_namespace(user, verb, what: str, object_id: str, queryset):
    """The object of ``queryset`` with that id, if ``user`` may ``verb`` in its namespace."""
    found = queryset.filter(pk=parse_id(object_id, what)).first()
    if found is None:
        raise Http404(f"No {what} with id {object_id}.")
    access.get_namespace(user, found.profile.name, verb)
    return found


def profile_for_run(user, experiment: Experiment | None, version: PipelineVersion | None,
                    namespace: str | None = None) -> Profile:
    """The namespace a new run goes into (edit role): its experiment's, else the one named,
    else its pipeline version's, else the caller's default. A version that belongs to
    another namespace is not found there (404), as the access policy answers for objects
    a caller should not reach."""
    if experiment is not None:
        profile = experiment.profile
    elif namespace:
        profile = access.get_namespace(user, namespace, Role.EDIT)
    elif version is not None and version.pipeline.profile_id is not None:
        profile = access.get_namespace(user, version.pipeline.profile.name, Role.EDIT)
    else:
        profile = profile_to_write(user, None)
    if version is not None and version.pipeline.profile_id not in (None, profile.pk):
        raise Http404(f"No pipeline version with id {version.pk} in the namespace "
                      f"{profile.name}.")
    return profile
