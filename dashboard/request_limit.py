"""A bound on the Django requests being computed at once, in front of Django.

Django's ASGI handler runs each request's middleware and view on a thread of its own, so
fifty requests at once are fifty threads taking turns at the GIL with the one event loop
that reads every request and serves every websocket. Under such load the loop waited so
long for its turns that live events reached pages seconds late, and the channel layer
dropped those of pages whose queue was full (tests/test_load.py; bench/load.py). With
``limit_requests`` at most ``limit`` requests hold a thread; the others wait on the loop.

A request takes its turn once its body has arrived (a slow upload holds none) and gives
it back when its response starts (a long download holds none). The probes never wait:
a queue of ordinary requests is load, not a reason for Kubernetes to restart the server.
"""

from __future__ import annotations

import asyncio

PROBES = ("/healthz", "/readyz")


def limit_requests(app, limit: int):
    """``app`` with at most ``limit`` HTTP requests between body read and response start."""
    turns: asyncio.Semaphore | None = None  # made on the serving loop, at the first request

    async def limited(scope, receive, send):
        nonlocal turns
        if scope["type"] != "http" or scope["path"] in PROBES:
            return await app(scope, receive, send)
        if turns is None:
            turns = asyncio.Semaphore(limit)
        state = "reading"  # then "computing" (holding a turn), then "answering"

        async def body_then_turn():
            nonlocal state
            message = await receive()
            if state == "reading" and message["type"] == "http.request" \
                    and not message.get("more_body"):
                await turns.acquire()
                state = "computing"
            return message

        async def release_on_start(message):
            nonlocal state
            if state == "computing" and message["type"] == "http.response.start":
                state = "answering"
                turns.release()
            await send(message)

        try:
            return await app(scope, body_then_turn, release_on_start)
        finally:
            if state == "computing":
                turns.release()

    return limited
