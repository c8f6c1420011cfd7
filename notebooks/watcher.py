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
    change of either is read as a Notebook would show it (``notebook_view_of_statefulset``)
    and applied by the same rules."""

    what = "notebook statefulset"

    def lister(self):
        from kubernetes import client

        apps = client.AppsV1Api(kube.api_client())
        return apps.list_stateful_set_for_all_namespaces, (), {"label_selector": SELECTOR}

    def apply(self, event: dict) -> None:
        statefulset = event.get("object") or {}
        if event.get("type") == "DELETED":
            apply_event(event)
            return
        metadata = statefulset.get("metadata") or {}
        pod = _read_json("read_namespaced_pod", f"{metadata.get('name')}-0",
                         metadata.get("namespace"))
        apply_event({"type": event.get("type"),
                     "object": manifests.notebook_view_of_statefulset(statefulset, pod)})


class NotebookPodWatcher(ListWatch):
    """The pods of those StatefulSets: a container that cannot start, is pulled or becomes
    ready changes the pod, not the StatefulSet."""

    what = "notebook pod"

    def lister(self):
        from kubernetes import client

        core = client.CoreV1Api(kube.api_client())
        return core.list_pod_for_all_namespaces, (), {"label_selector": "notebook-name"}

    def apply(self, event: dict) -> None:
        pod = event.get("object") or {}
        metadata = pod.get("metadata") or {}
        name = (metadata.get("labels") or {}).get("notebook-name")
        statefulset = _read_json("read_namespaced_stateful_set", name,
                                 metadata.get("namespace"))
        if statefulset is None or not _managed(statefulset):
            return
        apply_event({"type": "MODIFIED", "object": manifests.notebook_view_of_statefulset(
            statefulset, None if event.get("type") == "DELETED" else pod)})


def _managed(obj: dict) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in manifests.MANAGED_BY.items())


def _read_json(method: str, name: str | None, namespace: str | None) -> dict | None:
    """An object read as the API sends it (a dict), None when it is not there."""
    import json

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    if not name or not namespace:
        return None
    api = client.AppsV1Api if "stateful_set" in method else client.CoreV1Api
    try:
        response = getattr(api(kube.api_client()), method)(name, namespace,
                                                           _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return json.loads(response.data or b"{}")
