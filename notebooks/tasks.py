"""Spawner calls that take seconds run in background threads; their progress and
results reach browsers through ``Notebook.mark`` and the notebooks channel group."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

from notebooks.choices import Status
from notebooks.models import Notebook
from notebooks.spawners import SpawnError, spawner_for

log = logging.getLogger(__name__)


def in_background(work: Callable[..., None], *args) -> None:
    """Run ``work(*args)`` in a daemon thread with its own database connection."""

    def run() -> None:
        close_old_connections()
        try:
            work(*args)
        except Exception:
            log.exception("background notebook task failed: %s%s", work.__name__, args)
        finally:
            close_old_connections()

    threading.Thread(target=run, name=f"notebook-{work.__name__}", daemon=True).start()


def _load(notebook_id: int) -> Notebook | None:
    return (Notebook.objects.select_related("profile", "workspace")
            .filter(pk=notebook_id).first())


def start_notebook(notebook_id: int) -> None:
    notebook = _load(notebook_id)
    if notebook is None or notebook.stopped:
        return

    def progress(message: str) -> None:
        # Kept with the notebook, so a page that subscribes late still shows every step.
        steps = [*notebook.runtime.get("progress", []), message][-20:]
        status = Status.RUNNING if notebook.status == Status.RUNNING else Status.WAITING
        notebook.mark(status, message, progress=steps)

    try:
        spawner_for(notebook).start(progress)
    except SpawnError as exc:
        notebook.refresh_from_db()
        if notebook.status != Status.ERROR:
            notebook.mark(Status.ERROR, str(exc))


def stop_notebook(notebook_id: int, reason: str) -> None:
    notebook = _load(notebook_id)
    if notebook is None:
        return
    try:
        spawner_for(notebook).stop()
    except SpawnError as exc:
        notebook.mark(Status.ERROR, str(exc))
        return
    notebook.refresh_from_db()
    notebook.mark(Status.STOPPED, reason)


def delete_notebook(notebook_id: int, delete_volumes: bool) -> None:
    notebook = _load(notebook_id)
    if notebook is None:
        return
    try:
        spawner_for(notebook).delete(delete_volumes)
    except SpawnError as exc:
        notebook.mark(Status.ERROR, f"Could not delete: {exc}")
        return
    notebook.remove(delete_volumes)


def recover_after_restart() -> list[str]:
    """At start-up: settle notebooks a previous dashboard process left half-way (its
    background threads died with it). Servers that are up are re-adopted as running;
    interrupted starts and stops say so. Returns the names it changed."""
    changed = []
    unsettled = Notebook.objects.select_related("profile", "workspace").filter(
        status__in=[Status.WAITING, Status.TERMINATING])
    for notebook in unsettled:
        try:
            seen = spawner_for(notebook).poll()
        except SpawnError:
            continue
        if seen.status == Status.RUNNING and not notebook.stopped:
            notebook.mark(Status.RUNNING, "")
        elif notebook.status == Status.WAITING and not notebook.stopped:
            notebook.mark(Status.ERROR, "The start was interrupted by a dashboard restart; "
                                        "start it again.")
        else:
            if seen.status == Status.RUNNING:
                spawner_for(notebook).stop()
            notebook.mark(Status.STOPPED, "stopped (finished after a dashboard restart)")
        changed.append(f"{notebook.profile.name}/{notebook.name}")
    return changed
