"""Live notebook status for a namespace's notebook pages."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard import access
from dashboard.consumers import NamespaceGroupConsumer
from notebooks.models import Notebook, notebook_group
from notebooks.spawners import SpawnError, spawner_for

LOG_LINES = 500


class NotebookConsumer(NamespaceGroupConsumer):
    """Sends every notebook's current state on connect, then each change, so a page
    that connects late misses nothing between its render and the subscription."""

    def group_for(self, namespace: str) -> str:
        return notebook_group(namespace)

    async def connect(self) -> None:
        await super().connect()
        if hasattr(self, "group"):
            namespace = self.scope["url_route"]["kwargs"]["namespace"]
            for event in await database_sync_to_async(self.snapshot)(namespace):
                await self.send_json(event)

    @staticmethod
    def snapshot(namespace: str) -> list[dict]:
        return [n.live_event() for n in Notebook.objects.filter(profile__name=namespace)]


class NotebookLogConsumer(AsyncJsonWebsocketConsumer):
    """Streams one notebook server's log to a page of someone who may view the namespace:
    the recent lines first, then new output as it is written."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        notebook = await database_sync_to_async(self._notebook)(
            self.scope.get("user"), kwargs["namespace"], kwargs["name"])
        if notebook is None:
            await self.close(code=4403)
            return
        try:
            spawner = spawner_for(notebook)
        except SpawnError:
            await self.close(code=4404)
            return
        await self.accept()
        self.follower = asyncio.create_task(self._follow(spawner))

    @staticmethod
    def _notebook(user, namespace: str, name: str):
        if not access.can(user, "view", namespace):
            return None
        return Notebook.objects.select_related("profile", "workspace").filter(
            profile__name=namespace, name=name).first()

    async def _follow(self, spawner) -> None:
        async for text in spawner.follow_logs(LOG_LINES):
            if text:
                await self.send_json({"type": "log", "text": text})

    async def disconnect(self, code) -> None:
        if hasattr(self, "follower"):
            self.follower.cancel()
