"""The cluster watchers of kubernetes mode, started together by each server process
(``asgi.lifespan``) or by ``manage.py watch_kubernetes``; of several, only the holder of the
leader Lease runs them."""

from __future__ import annotations

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


def factories() -> list:
    from django.conf import settings

    paths = (*NOTEBOOK_WATCHERS[bool(settings.KFDASH_NOTEBOOK_CRD)], *WATCHERS)
    return [import_string(path) for path in paths]


def start():
    """The watchers, running while this process holds the leader Lease (or at once, with
    ``KFDASH_LEADER_ELECTION`` off); ``stop()`` on what is returned ends them (and
    releases the Lease: it blocks for that request)."""
    from dashboard import leader

    return leader.run_while_leading(factories())
