"""Kubernetes mode: watch the cluster's Notebook objects and keep each notebook's
observed status in step, so pages change live when the controller, the scheduler
or a crashing container changes things — nothing polls the cluster per page.

One list, then a watch from its resourceVersion; a watch that falls too far
behind (410 Gone) lists again. Only objects kfdash made are watched.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections

from dashboard import kube
from notebooks.choices import Status
from notebooks.models import Notebook
from notebooks.spawners import manifests

log = logging.getLogger(__name__)

SELECTOR = ",".join(f"{k}={v}" for k, v in manifests.MANAGED_BY.items())
WATCH_SECONDS = 30  # each watch call ends after this long and is resumed


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


class NotebookWatcher(threading.Thread):
    retry_seconds = 5.0  # after an error (cluster or database away), list again this soon

    def __init__(self) -> None:
        super().__init__(name="notebook-watcher", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._list_and_watch()
            except Exception as exc:  # the cluster may be away for a while; keep trying
                log.warning("notebook watch interrupted (%s); listing again shortly", exc)
                self.stopping.wait(self.retry_seconds)
            finally:
                close_old_connections()

    def _list_and_watch(self) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        api = client.CustomObjectsApi(kube.api_client())
        args = (manifests.GROUP, manifests.VERSION, manifests.PLURAL)
        listing = api.list_cluster_custom_object(*args, label_selector=SELECTOR)
        close_old_connections()
        for obj in listing.get("items", []):
            apply_event({"type": "ADDED", "object": obj})
        version = listing["metadata"]["resourceVersion"]
        while not self.stopping.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(api.list_cluster_custom_object, *args,
                                           label_selector=SELECTOR, resource_version=version,
                                           timeout_seconds=WATCH_SECONDS):
                    if self.stopping.is_set():
                        stream.stop()
                        return
                    close_old_connections()
                    apply_event(event)
                    version = event["object"]["metadata"]["resourceVersion"]
            except ApiException as exc:
                if exc.status == 410:
                    return  # too far behind: list again
                raise

    def stop(self) -> None:
        self.stopping.set()
