"""Live updates: publish saved changes to channel-layer groups that websockets relay.

Changes are published only after their transaction commits, so a browser never
sees a state that was rolled back, and never sees it before a page load would.
"""

from __future__ import annotations

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


def publish(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to every consumer in ``group`` (type ``live.event``)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, {"type": "live.event", "event": event})


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(group, event))
