"""A cap on HTTP request bodies, in front of Django.

Django's ASGI handler spools a whole request body, whatever its size, to a temporary file
before any view can look at it, so a view's own size check comes too late: a 10 GB body
would fill the disk first. ``limit_bodies`` refuses a declared Content-Length over the cap
at once, and a chunked body as soon as it passes it, with a 413 (the KFP error body under
``/api/`` and ``/apis/``). The notebook proxy is routed before it: uploads into a notebook
server are that server's to limit.
"""

from __future__ import annotations

import json

from dashboard.api.errors import error_body

# Room above the largest pipeline package for the multipart framing and other fields.
BODY_SLACK = 1024 * 1024


def limit_bodies(app, limit: int):
    """``app`` behind a cap of ``limit`` bytes on request bodies."""

    async def refuse(scope, send) -> None:
        message = f"The request body is larger than the limit of {limit} bytes."
        if scope["path"].startswith(("/api/", "/apis/")):
            body, kind = json.dumps(error_body(message, 413)).encode(), b"application/json"
        else:
            body, kind = message.encode(), b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", kind), (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await refuse(scope, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                await refuse(scope, send)
                return {"type": "http.disconnect"}  # Django stops reading, answers nothing
            return message

        return await app(scope, counted, send)

    return guarded
