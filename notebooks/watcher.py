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


class StatefulSetWatcher(ListWatch):
    """Without the Notebook CRD a server is a StatefulSet kfdash made (and its pod): each
    change of either is read as a Notebook would show it (``statefulset_view``, as the
    spawner reads it) and applied by the same rules."""

    what = "notebook statefulset"

    def lister(self):
        from kubernetes import client

        apps = client.AppsV1Api(kube.api_client())
        return apps.list_stateful_set_for_all_namespaces, (), {"label_selector": SELECTOR}

    def apply(self, event: dict) -> None:
        if event.get("type") == "DELETED":
            apply_event(event)
            return
        metadata = (event.get("object") or {}).get("metadata") or {}
        apply_view(metadata.get("name"), metadata.get("namespace"), event.get("type"))


class NotebookPodWatcher(ListWatch):
    """The pods of those StatefulSets: a container that cannot start, is pulled or becomes
    ready changes the pod, not the StatefulSet."""

    what = "notebook pod"

    def lister(self):
        from kubernetes import client

        core = client.CoreV1Api(kube.api_client())
        return core.list_pod_for_all_namespaces, (), {"label_selector": "notebook-name"}

    def apply(self, event: dict) -> None:
        metadata = (event.get("object") or {}).get("metadata") or {}
        apply_view((metadata.get("labels") or {}).get("notebook-name"),
                   metadata.get("namespace"), "MODIFIED")


def apply_view(name: str | None, namespace: str | None, kind: str | None) -> None:
    """Apply what a StatefulSet kfdash made, and its pod, say now."""
    from notebooks.spawners.kubernetes import statefulset_view

    view = statefulset_view(name, namespace) if name and namespace else None
    labels = ((view or {}).get("metadata") or {}).get("labels") or {}
    if view is not None and all(labels.get(k) == v for k, v in manifests.MANAGED_BY.items()):
        apply_event({"type": kind, "object": view})
