"""Idle culling: stop notebook servers nobody has used for a while (off by default,
as in Kubeflow), and keep each notebook's last activity up to date.

Activity is judged from the Jupyter server's own API, as Kubeflow's culler does
(so only JupyterLab servers are culled):
a server with a busy kernel is active; otherwise its last activity is the latest
``last_activity`` the server reports for itself and its kernels. The workspace is
kept; the activity feed says why the server stopped.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from notebooks.choices import ServerType, Status
from notebooks.models import Notebook
from notebooks.spawners import SpawnError, spawner_for

log = logging.getLogger(__name__)


class Unreachable(Exception):
    """The server did not answer its API; nothing is concluded from that."""


def last_activity(notebook: Notebook, timeout: float = 5.0) -> datetime | None:
    """When the server was last used; None while a kernel is busy (in use right now)."""
    if notebook.server_type != ServerType.JUPYTER:
        # VS Code and RStudio have no such API; Kubeflow's culler leaves them alone too.
        raise Unreachable(f"{notebook.get_server_type_display()} servers are not culled")
    endpoint = spawner_for(notebook).endpoint()
    if endpoint is None:
        raise Unreachable("not running")
    base = f"{endpoint.url}{notebook.base_url}api"
    headers = {"Authorization": f"token {endpoint.token}"}
    try:
        status = requests.get(f"{base}/status", headers=headers, timeout=timeout)
        kernels = requests.get(f"{base}/kernels", headers=headers, timeout=timeout)
        status.raise_for_status()
        kernels.raise_for_status()
        kernel_list, server = kernels.json(), status.json()
    except (requests.RequestException, ValueError) as exc:
        raise Unreachable(str(exc)) from exc
    if any(k.get("execution_state") == "busy" for k in kernel_list):
        return None
    moments = [parse_datetime(str(x.get("last_activity") or ""))
               for x in [server, *kernel_list]]
    moments = [m for m in moments if m is not None]
    return max(moments) if moments else None


def check(now: datetime | None = None) -> list[str]:
    """Record every running server's last activity, and stop those idle for longer
    than ``KFDASH_CULL_IDLE_SECONDS`` (when set). Returns the names it stopped."""
    now = now or timezone.now()
    idle_limit = settings.KFDASH_CULL_IDLE_SECONDS
    culled = []
    running = Notebook.objects.select_related("profile", "workspace").filter(
        status=Status.RUNNING, stopped=False)
    for notebook in running:
        try:
            seen = last_activity(notebook)
        except (Unreachable, SpawnError) as exc:
            log.debug("culler: %s not checked: %s", notebook, exc)
            continue
        seen = now if seen is None else seen  # busy: active right now
        if notebook.last_activity is None or seen > notebook.last_activity:
            notebook.last_activity = seen
            Notebook.objects.filter(pk=notebook.pk).update(last_activity=seen)
        if idle_limit and now - notebook.last_activity > timedelta(seconds=idle_limit):
            notebook.cull(now - notebook.last_activity)
            culled.append(f"{notebook.profile.name}/{notebook.name}")
    return culled


class Culler(threading.Thread):
    """Inside the server process: first settles notebooks a previous process left
    half-way, then runs ``check`` every ``KFDASH_CULL_CHECK_SECONDS``."""

    def __init__(self) -> None:
        super().__init__(name="notebook-culler", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        from notebooks.tasks import recover_after_restart

        try:
            close_old_connections()
            recover_after_restart()
        except Exception:
            log.exception("settling notebooks after a restart failed")
        while not self.stopping.wait(settings.KFDASH_CULL_CHECK_SECONDS):
            try:
                close_old_connections()
                check()
            except Exception:
                log.exception("the notebook culler failed; it will try again")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self.stopping.set()
