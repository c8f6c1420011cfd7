"""Live updates: publish saved changes to channel-layer groups that websockets relay.

Changes are published only after their transaction commits, so a browser never
sees a state that was rolled back, and never sees it before a page load would.

Changes are often committed on threads of their own (the local engine's, the culler's).
``async_to_sync`` would then send from a new event loop of that thread: the in-memory
layer's queues are not thread-safe, and the loop serving the websockets is not woken
until something else wakes it (uvicorn ticks every 100 ms). So the process remembers its
serving loop (``serve_on``, at ASGI start-up) and threads hand their sends to it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def activity_group(namespace: str) -> str:
    return f"ns.{namespace}.activity"


def activity_event(activity) -> dict[str, Any]:
    return {
        "type": "activity",
        "id": activity.pk,
        "message": activity.message,
        "verb": activity.verb,
        "actor": activity.actor.email if activity.actor else "",
        "created_at": activity.created_at.isoformat(),
    }


log = logging.getLogger(__name__)
_serving_loop: asyncio.AbstractEventLoop | None = None
SEND_TIMEOUT = 10.0  # seconds a thread waits for the serving loop to take its send


def serve_on(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop`` (the one serving this process's websockets) do every send."""
    global _serving_loop
    _serving_loop = loop


def publish(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to every consumer in ``group`` (type ``live.event``)."""
    publish_all([(group, event)])


def publish_all(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Send each ``(group, event)``, in order, in one hand-off to an event loop: a commit
    of 500 tasks costs one thread switch (or one ``async_to_sync``), not 500."""
    layer = get_channel_layer()
    if layer is None or not sends:
        return

    async def send_all() -> None:
        for group, event in sends:
            await layer.group_send(group, {"type": "live.event", "event": event})

    loop = _serving_loop
    if loop is not None and loop.is_running() and not _in_a_loop():
        sending = asyncio.run_coroutine_threadsafe(send_all(), loop)
        try:
            sending.result(SEND_TIMEOUT)
        except TimeoutError:  # the server is stopping: pages reload what they missed
            sending.cancel()
            log.warning("%d live updates were not sent in %s s", len(sends), SEND_TIMEOUT)
    else:
        async_to_sync(send_all)()


def _in_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(group, event))
