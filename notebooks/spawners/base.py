"""The contract every spawner keeps (after JupyterHub's ``Spawner``).

A spawner turns one Notebook into a running server and reports back. It is
constructed per call (``Spawner(notebook)``) and keeps no state of its own in
memory: everything needed to find the server again (pid, port, token, object
names) goes into ``notebook.runtime`` through ``notebook.mark(...)``, so a
restarted dashboard re-adopts servers that are still alive.

Methods are synchronous and may block (the web layer runs them in worker
threads); ``start`` reports progress through a callback the web layer relays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashboard.errors import PlatformError

if TYPE_CHECKING:
    from notebooks.models import Notebook

Progress = Callable[[str], None]


class SpawnError(PlatformError):
    """A server could not be started/stopped; the message is shown to the user."""


@dataclass(frozen=True)
class Endpoint:
    """Where the proxy forwards a notebook's traffic, and what it changes on the way.

    The proxy stays generic: whatever a server type needs (a prefix removed, a header
    set) is said here, made by ``for_notebook`` from the notebook's ``ServerType``.
    """

    url: str  # e.g. "http://127.0.0.1:41234" (no path; the server's base_url is its path)
    token: str = ""  # sent as "Authorization: token <token>"; never reaches the browser
    # A unix socket to connect to instead of the url's host and port (``url`` then
    # only names the Host header).
    socket: str = ""
    # Removed from the front of request paths ("/notebook/<ns>/<name>", Kubeflow's
    # http-rewrite-uri "/"), and put back in front of redirects; "" leaves paths alone.
    strip_prefix: str = ""
    # Set on every request, replacing what the browser sent (http-headers-request-set).
    request_headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_notebook(cls, notebook: Notebook, url: str, token: str = "",
                     socket: str = "") -> Endpoint:
        """The endpoint of ``notebook``'s server at ``url``, with its type's routing."""
        from notebooks.choices import ServerType

        server_type = ServerType(notebook.server_type)
        base_url = notebook.base_url
        strip = base_url.rstrip("/") if server_type.rewrite_uri is not None else ""
        headers = tuple(server_type.request_headers(base_url).items())
        return cls(url=url, token=token, socket=socket, strip_prefix=strip,
                   request_headers=headers)


@dataclass(frozen=True)
class Observed:
    """What ``poll`` saw: a Status value and, for stopped/error, why."""

    status: str
    message: str = ""


class Spawner:
    name = "base"
    # True when a watcher keeps the rows' status current (pages then need not poll).
    watched = False

    def __init__(self, notebook: Notebook) -> None:
        self.notebook = notebook

    @classmethod
    def server_types(cls) -> dict[str, str]:
        """Each ``ServerType`` value: "" when this platform can run servers of that type,
        else why not (the form shows the reason and refuses the type; the admin's
        config has a say too). This default runs JupyterLab only."""
        from notebooks.choices import ServerType

        return {t.value: "" if t == ServerType.JUPYTER else
                f"the {cls.name} spawner does not run {t.label} servers"
                for t in ServerType}

    def start(self, progress: Progress) -> None:
        """Start the server and return once it answers HTTP at its base URL.

        Calls ``progress(message)`` at each step ("creating workspace", "starting
        server", "waiting for server to answer", ...). Records the runtime facts with
        ``notebook.mark(Status.RUNNING, ..., **runtime)``. Starting a running server
        is a no-op. Raises ``SpawnError`` (after cleaning up) when it cannot.
        """
        raise NotImplementedError

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server (politely, then forcefully after ``grace`` seconds).
        The workspace is kept. Stopping a stopped server is a no-op."""
        raise NotImplementedError

    def delete(self, delete_volumes: bool) -> None:
        """Stop the server and remove everything the spawner made for it; its
        volumes' contents too when ``delete_volumes`` (else they are kept)."""
        raise NotImplementedError

    def poll(self) -> Observed:
        """Observe the server now (cheap enough to call on every page load)."""
        raise NotImplementedError

    def endpoint(self) -> Endpoint | None:
        """Where the proxy reaches the running server, or None when not running."""
        raise NotImplementedError

    def logs(self, tail: int = 1000) -> str:
        """The server's last ``tail`` lines of output."""
        raise NotImplementedError

    async def follow_logs(self, tail: int = 1000) -> AsyncIterator[str]:
        """The last ``tail`` lines, then new output as the server writes it, until the
        caller stops iterating. This default yields the tail once and ends."""
        yield self.logs(tail)

    def manifest(self) -> str:
        """The server's live object as YAML where the platform has one ("" otherwise)."""
        return ""

    def events(self) -> list[dict]:
        """Recent events about the server: ``{"time", "type", "reason", "message"}``."""
        return []
