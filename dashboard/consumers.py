"""Websocket consumers: they check access, join a group and relay its events."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard import access, live


class LiveRelay:
    """Relays ``live.event`` messages without the database clean-up channels runs before
    every other handler. Since channels 4.2 each message first runs Django's
    ``close_old_connections`` on a worker thread, as a request would; a relayed event never
    touches the database, and that thread hop per message made pages fall so far behind
    under load (a busy server, a runs list getting every run's events) that the channel
    layer dropped events once a page's queue was full."""

    async def dispatch(self, message) -> None:
        if message["type"] == "live.event":
            await self.send_json(message["event"])
        else:
            await super().dispatch(message)


class NamespaceGroupConsumer(LiveRelay, AsyncJsonWebsocketConsumer):
    """Relays one namespace's live events to a browser allowed to view it.

    Subclasses name the group; refused sockets are closed with code 4403, the
    same whether the namespace is missing or foreign, as HTML pages answer 404.
    """

    def group_for(self, namespace: str) -> str:
        raise NotImplementedError

    async def connect(self) -> None:
        namespace = self.scope["url_route"]["kwargs"]["namespace"]
        user = self.scope.get("user")
        if not await database_sync_to_async(access.can)(user, "view", namespace):
            await self.close(code=4403)
            return
        self.group = self.group_for(namespace)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)


class ActivityConsumer(NamespaceGroupConsumer):
    def group_for(self, namespace: str) -> str:
        return live.activity_group(namespace)
