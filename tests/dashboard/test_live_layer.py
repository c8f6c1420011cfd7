"""The channel layer's queues, as the settings make them."""

from __future__ import annotations

import asyncio


def test_a_page_may_fall_a_thousand_events_behind_before_any_is_dropped(settings):
    """The channel layer drops what comes past a page's queue without telling anyone, so
    the queue is deep (channels' default, 100, was reached under load)."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {
        **settings.CHANNEL_LAYERS["default"], "BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()

    async def scenario():
        layer = channel_layers["default"]
        page = await layer.new_channel()
        await layer.group_add("run", page)
        for revision in range(1001):
            await layer.group_send("run", {"type": "live.event", "revision": revision})
        received = [(await layer.receive(page))["revision"] for _ in range(1000)]
        return received, layer

    try:
        received, layer = asyncio.run(scenario())
        assert received == list(range(1000))  # the 1001st was the first one dropped
        assert layer.capacity == 1000
    finally:
        channel_layers.backends.clear()
