"""Kubernetes mode: watch the cluster's Notebook objects and keep each notebook's
observed status in step, so pages change live when the controller, the scheduler
or a crashing container changes things — nothing polls the cluster per page.

One list, then a watch from its resourceVersion; a watch that falls too far
behind (410 Gone) lists again. Only objects kfdash made are watched.
"""

from __future__ import annotations

from dashboard import kube
from dashboard.kube_watch import ListWatch
from notebooks.choices import Status
from notebooks.models import Notebook
from notebooks.spawners import manifests

SELECTOR = ",".join(f"{k}={v}" for k, v in manifests.MANAGED_BY.items())


def apply_event(event: dict) -> bool:
    """Record what one watch event says about a notebook; True when it changed one."""
    obj = event.get("object") or {}
    metadata = obj.get("metadata") or {}
    notebook = Notebook.objects.select_related("profile").filter(
        profile__name=metadata.get("namespace"), name=metadata.get("name")).first()
    if notebook is None:
        return False
    if event.get("type") == "DELETED":
        if notebook.status == Status.TERMINATING:
            return False  # kfdash is deleting it; the deletion settles the row
        notebook.mark(Status.STOPPED, "The Notebook object was deleted from the cluster.")
        return True
    seen = manifests.status_of(obj, [])
    detail_changed = seen.status in (Status.WAITING, Status.ERROR) and seen.message and (
        seen.message != notebook.status_message)
    if seen.status == notebook.status and not detail_changed:
        return False
    if notebook.status == Status.WAITING and seen.status == Status.STOPPED:
        return False  # a start is under way: the object just hasn't caught up yet
    notebook.mark(seen.status, seen.message)
    return True


class NotebookWatcher(ListWatch):
    what = "notebook"

    def lister(self):
        from kubernetes import client

        api = client.CustomObjectsApi(kube.api_client())
        return (api.list_cluster_custom_object,
                (manifests.GROUP, manifests.VERSION, manifests.PLURAL),
                {"label_selector": SELECTOR})

    def apply(self, event: dict) -> None:
        apply_event(event)
