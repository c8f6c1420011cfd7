"""Test spawners: real subclasses of the contract, not mocks (JupyterHub's way)."""

from __future__ import annotations

from notebooks.choices import Status
from notebooks.spawners import Endpoint, Observed, Spawner, SpawnError

calls: list[tuple[str, str]] = []


class InstantSpawner(Spawner):
    """Starts and stops at once, remembering what it was asked."""

    name = "instant"

    def start(self, progress):
        calls.append(("start", self.notebook.name))
        progress("starting server")
        self.notebook.mark(Status.RUNNING, "", port=1, token="t")

    def stop(self, grace=10.0):
        calls.append(("stop", self.notebook.name))

    def delete(self, delete_volumes):
        calls.append(("delete", f"{self.notebook.name} volumes={delete_volumes}"))

    def poll(self):
        return Observed(self.notebook.status)

    def endpoint(self):
        return Endpoint("http://127.0.0.1:1", "t") if self.notebook.status == "running" else None

    def logs(self, tail=1000):
        return "server says hello"

    def events(self):
        return [{"time": "now", "type": "Normal", "reason": "Started", "message": "ok"}]


class FailingSpawner(InstantSpawner):
    name = "failing"

    def start(self, progress):
        progress("starting server")
        raise SpawnError("the server exited at once: no space left")
