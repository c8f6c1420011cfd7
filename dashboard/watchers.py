"""The cluster watchers of kubernetes mode, started together: by each server process
(``asgi.lifespan``) or by ``manage.py watch_kubernetes``."""

from __future__ import annotations

import threading

from django.utils.module_loading import import_string

WATCHERS = (
    "pipelines.engines.argo_watch.WorkflowWatcher",
    "dashboard.cluster_events.EventWatcher",
)
# Notebook servers: Kubeflow Notebook objects, or (KFDASH_NOTEBOOK_CRD=0) the StatefulSets
# and pods kfdash makes itself.
NOTEBOOK_WATCHERS = {
    True: ("notebooks.watcher.NotebookWatcher",),
    False: ("notebooks.watcher.StatefulSetWatcher", "notebooks.watcher.NotebookPodWatcher"),
}


class Running:
    """Watchers that run until ``stop``."""

    def __init__(self, workers: list) -> None:
        self.workers = workers
        self.stopped = threading.Event()

    def wait(self) -> None:
        while not self.stopped.wait(3600):
            pass

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.stopped.set()


def factories() -> list:
    from django.conf import settings

    paths = (*NOTEBOOK_WATCHERS[bool(settings.KFDASH_NOTEBOOK_CRD)], *WATCHERS)
    return [import_string(path) for path in paths]


def start() -> Running:
    workers = [factory() for factory in factories()]
    for worker in workers:
        worker.start()
    return Running(workers)
