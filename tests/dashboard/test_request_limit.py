"""The bound on requests computed at once (dashboard/request_limit.py), around a fake ASGI
app: the ones over it wait, and neither a body still arriving nor a response being sent
holds a turn."""

from __future__ import annotations

import asyncio
import contextlib

from dashboard.request_limit import limit_requests

SCOPE = {"type": "http", "path": "/apis/v2beta1/runs"}


class Computing:
    """A Django-like app: reads the whole body, computes (until let go), answers."""

    def __init__(self):
        self.inside = self.most = 0
        self.go = asyncio.Event()

    async def __call__(self, scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        self.inside += 1
        self.most = max(self.most, self.inside)
        await self.go.wait()
        self.inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(*parts: bytes):
    """A receive giving ``parts`` as the body, then waiting (as for a disconnect)."""
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
                for i, part in enumerate(parts or [b""])]

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()

    return receive


async def ignore(message):
    pass


def test_requests_over_the_limit_wait_their_turn():
    async def scenario():
        app = Computing()
        limited = limit_requests(app, 2)
        requests = [asyncio.create_task(limited(SCOPE, request(), ignore)) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert app.inside == 2
        app.go.set()
        await asyncio.wait_for(asyncio.gather(*requests), 5)
        return app.most

    assert asyncio.run(scenario()) == 2


def test_a_body_still_arriving_holds_no_turn():
    async def scenario():
        app = Computing()
        app.go.set()
        limited = limit_requests(app, 1)
        more = asyncio.Event()

        async def slow_upload():
            if not more.is_set():
                more.set()
                return {"type": "http.request", "body": b"part", "more_body": True}
            await asyncio.Event().wait()  # the rest never comes

        uploading = asyncio.create_task(limited(SCOPE, slow_upload, ignore))
        await more.wait()
        await asyncio.wait_for(limited(SCOPE, request(b"small"), ignore), 5)
        uploading.cancel()

    asyncio.run(scenario())


def test_a_response_being_sent_holds_no_turn_and_a_failure_gives_it_back():
    async def app(scope, receive, send):
        await receive()
        if scope["path"] == "/failing":
            raise RuntimeError("the view failed")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/download":
            await asyncio.Event().wait()  # a long download
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario():
        limited = limit_requests(app, 1)
        sent = []

        async def record(message):
            sent.append(message["type"])

        downloading = asyncio.create_task(limited({**SCOPE, "path": "/download"}, request(),
                                                  record))
        while not sent:
            await asyncio.sleep(0.01)
        for _ in range(2):  # the turn of the first failure comes back for the second
            with contextlib.suppress(RuntimeError):
                await asyncio.wait_for(limited({**SCOPE, "path": "/failing"}, request(),
                                               ignore), 5)
        await asyncio.wait_for(limited(SCOPE, request(), record), 5)
        downloading.cancel()
        return sent

    assert asyncio.run(scenario())[-2:] == ["http.response.start", "http.response.body"]


def test_the_probes_never_wait_for_a_turn():
    async def scenario():
        app = Computing()
        limited = limit_requests(app, 1)
        busy = asyncio.create_task(limited(SCOPE, request(), ignore))
        await asyncio.sleep(0.05)
        assert app.inside == 1
        probes = [asyncio.create_task(limited({"type": "http", "path": path}, request(),
                                              ignore)) for path in ("/healthz", "/readyz")]
        await asyncio.sleep(0.05)
        inside = app.inside  # the probes are being computed beside the busy request
        app.go.set()
        await asyncio.wait_for(asyncio.gather(busy, *probes), 5)
        return inside

    assert asyncio.run(scenario()) == 3

