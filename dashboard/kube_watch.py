"""One way to follow a kind of cluster object: list it, then watch from the list's
resourceVersion, so nothing polls the cluster per page.

A watch call ends after ``watch_seconds`` and is resumed from the last version seen; a
dropped connection is resumed the same way after a short pause; only when the API server
answers 410 Gone (the version is older than what it keeps) is everything listed again, and
``relisted`` hears what exists now, to settle what was missed. The cluster or the database
being away for a while is waited out, never fatal.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from django.db import DatabaseError, close_old_connections, connection

log = logging.getLogger(__name__)

DATABASE_ATTEMPTS = 4


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class ListWatch(threading.Thread):
    """A thread following one kind of object. Subclasses say how to list (``lister``) and
    what to do with each event (``apply``); ``stop`` ends it."""

    watch_seconds = 30  # each watch call ends after this long and is resumed
    retry_seconds = 5.0  # after an error (cluster or database away), try again this soon
    what = "objects"  # for log lines

    def __init__(self) -> None:
        super().__init__(name=f"watch-{self.what}", daemon=True)
        self.stopping = threading.Event()
        self.lists = 0  # how many times everything was listed (tests look)

    # --- what subclasses say -----------------------------------------------------------------

    def lister(self) -> tuple[Callable, tuple, dict]:
        """The list function of the official client with its arguments; watched with the
        same ones."""
        raise NotImplementedError

    def apply(self, event: dict) -> None:
        """One event: {"type": ADDED|MODIFIED|DELETED, "object": the object as a dict}."""
        raise NotImplementedError

    def relisted(self, items: list[dict]) -> None:
        """Everything that exists now (after a start or a 410): by default, each is
        ADDED."""
        for item in items:
            self._apply({"type": "ADDED", "object": item})

    def _apply(self, event: dict) -> None:
        """``apply``, tried again after a moment when the database refuses (a lock, a
        dropped connection); if it keeps refusing, the error ends the watch and everything
        is listed again once the database is back, so no event is lost."""
        for attempt in range(DATABASE_ATTEMPTS):
            close_old_connections()
            try:
                self.apply(event)
                return
            except DatabaseError:
                if attempt == DATABASE_ATTEMPTS - 1:
                    raise
                connection.close()
                self.stopping.wait(0.05 * (attempt + 1))


    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                version = self._list()
                self._watch_from(version)
            except Exception as exc:  # the cluster may be away for a while; keep trying
                log.warning("%s watch interrupted (%s); listing again shortly", self.what, exc)
                self.stopping.wait(self.retry_seconds)
            finally:
                close_old_connections()

    def _list(self) -> str:
        function, args, kwargs = self.lister()
        # As the API sends them: the typed clients' models refuse objects they find
        # incomplete, and a watcher must not stop at one odd object.
        response = function(*args, _preload_content=False, **kwargs)
        listing = json.loads(response.data or b"{}")
        self.lists += 1
        close_old_connections()
        self.relisted(listing.get("items") or [])
        return (listing.get("metadata") or {}).get("resourceVersion") or ""

    def _watch_from(self, version: str) -> None:
        """Watch until stopped or Gone (return: list again)."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        function, args, kwargs = self.lister()
        while not self.stopping.is_set():
            stream = _raw_watch()
            try:
                for event in stream.stream(function, *args, resource_version=version,
                                           timeout_seconds=self.watch_seconds, **kwargs):
                    if self.stopping.is_set():
                        stream.stop()
                        return
                    obj = event.get("raw_object") or event["object"]
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event["type"] == "BOOKMARK":
                        continue
                    self._apply({"type": event["type"], "object": obj})
            except ApiException as exc:
                if exc.status == 410:
                    return
                raise
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                # The connection dropped: resume from the last version seen.
                log.info("%s watch disconnected (%s); resuming from %s", self.what, exc,
                         version)
                self.stopping.wait(min(1.0, self.retry_seconds))

    def stop(self) -> None:
        self.stopping.set()


def _raw_watch():
    """A Watch whose events carry their objects as dicts, as the API sends them (see
    ``ListWatch._list``)."""
    from kubernetes import watch

    class RawWatch(watch.Watch):
        def get_return_type(self, func):
            return None

    return RawWatch()
