"""Kubernetes mode: watch the Workflows kfdash made, in every namespace, and record what
they report into their runs (``argo_sync.record``), so run pages change live as Argo
moves; a step that ends has its pod's log kept."""

from __future__ import annotations

import logging
import uuid

from django.db import DatabaseError

from dashboard import kube
from dashboard.kube_watch import ListWatch
from pipelines.choices import RunState
from pipelines.models import Run

from . import argo_sync
from .argo import GROUP, PLURAL, VERSION
from .argo_manifests import MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL

log = logging.getLogger(__name__)

SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
GONE = "The run's Workflow was deleted from the cluster."


def run_of(workflow: dict) -> Run | None:
    metadata = workflow.get("metadata") or {}
    run_id = (metadata.get("labels") or {}).get(RUN_ID_LABEL, "")
    try:
        uuid.UUID(run_id)
    except ValueError:
        return None
    return Run.objects.select_related("profile").filter(
        pk=run_id, profile__name=metadata.get("namespace")).first()


def apply_event(event: dict) -> bool:
    """Record one watch event; True when its run changed."""
    from pipelines.engines import engine

    run = run_of(event.get("object") or {})
    if run is None:
        return False
    if event.get("type") == "DELETED":
        return settle_vanished(run)
    revision = run.revision
    ended = argo_sync.record(run, event["object"])
    keeper = getattr(engine(), "keep_log", None)
    for finished in ended:
        if keeper is not None:
            keeper(run.profile.name, finished.task, finished.pods)
    return run.revision != revision


def settle_vanished(run: Run) -> bool:
    """A run whose Workflow is gone from the cluster before the run ended."""
    if run.is_finished:
        return False
    if run.state == RunState.CANCELING:
        run.commit_changes(state=RunState.CANCELED)
    else:
        run.commit_changes(state=RunState.FAILED, error=GONE)
    return True


class WorkflowWatcher(ListWatch):
    what = "workflow"

    def lister(self):
        from kubernetes import client

        api = client.CustomObjectsApi(kube.api_client())
        return api.list_cluster_custom_object, (GROUP, VERSION, PLURAL), {
            "label_selector": SELECTOR}

    def apply(self, event: dict) -> None:
        try:
            apply_event(event)
        except DatabaseError:
            raise  # the database is away: list again once it is back, losing nothing
        except Exception:  # one bad Workflow must not stop the others' updates
            log.exception("cannot record the Workflow %s",
                          (event.get("object") or {}).get("metadata", {}).get("name"))

    def relisted(self, items: list[dict]) -> None:
        """Everything listed is recorded; a run that was going on the cluster (RUNNING or
        CANCELING: the watcher saw its Workflow) whose Workflow is no longer listed was
        deleted while nobody watched."""
        present = set()
        for item in items:
            run_id = ((item.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL)
            present.add(run_id)
            self._apply({"type": "ADDED", "object": item})
        going = Run.objects.select_related("profile").filter(
            state__in=(RunState.RUNNING, RunState.CANCELING))
        for run in going:
            if str(run.pk) not in present:
                settle_vanished(run)
