"""What every pipeline engine does. Engines turn a Run row into running steps (local
processes, or an Argo Workflow) and report what happens back through
``Run.commit_changes``; views and the API only call these methods."""

from __future__ import annotations

from collections.abc import AsyncIterator


class EngineError(Exception):
    """The engine could not do what was asked; the message is for the user."""


class Engine:
    def submit(self, run) -> None:
        """Start executing ``run`` (just committed, PENDING); return without waiting."""
        raise NotImplementedError

    def terminate(self, run) -> None:
        """Stop every running step: CANCELING now, CANCELED once they are gone."""
        raise NotImplementedError

    def retry(self, run) -> None:
        """Run the failed and canceled steps again, keeping the ones that succeeded."""
        raise NotImplementedError

    def forget(self, run) -> None:
        """Delete what the engine keeps for ``run`` outside the database (folders, logs,
        artifacts); called when the run is deleted."""
        raise NotImplementedError

    def resume(self) -> None:
        """At server start: pick up the runs that were going when the server stopped."""
        raise NotImplementedError

    def read_log(self, task, tail_bytes: int | None = None) -> str:
        """A step's log as stored (all of it, or its last ``tail_bytes``)."""
        raise NotImplementedError

    def follow_log(self, task) -> AsyncIterator[str]:
        """A step's log: what is stored, then new output as it is written, until the step
        ends."""
        raise NotImplementedError
