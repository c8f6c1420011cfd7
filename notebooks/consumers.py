"""Live notebook status for a namespace's notebook pages."""

from __future__ import annotations

from channels.db import database_sync_to_async

from dashboard.consumers import NamespaceGroupConsumer
from notebooks.models import Notebook, notebook_group


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
