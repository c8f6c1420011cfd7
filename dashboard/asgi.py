"""ASGI entry point: HTTP through Django, websockets through Channels routing, and
every ``/notebook/`` path (HTTP and websocket) through the notebook proxy."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs settings loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from dashboard.auth.header import TrustedHeaderWebsocketMiddleware  # noqa: E402
from dashboard.body_limit import BODY_SLACK, limit_bodies  # noqa: E402
from dashboard.request_limit import limit_requests  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402
from notebooks.proxy import PREFIX as NOTEBOOK_PREFIX  # noqa: E402
from notebooks.proxy import proxy as notebook_proxy  # noqa: E402


def notebooks_to(proxy, other):
    """Send paths under /notebook/ to the notebook proxy, everything else to ``other``."""

    async def route(scope, receive, send):
        if scope["path"].startswith(NOTEBOOK_PREFIX):
            return await proxy(scope, receive, send)
        return await other(scope, receive, send)

    return route


async def lifespan(scope, receive, send):
    """Start-up and shut-down of the server process: beside it run the notebook culler
    (local mode) or the cluster watchers (kubernetes mode); in local mode the pipeline
    engine picks up the runs a previous process left (in the background) and, at the
    end, stops the steps it runs (they run again at the next start); at the end the
    proxy closes its pooled upstream connections. The scheduler of recurring runs runs
    in every mode (unless KFDASH_SCHEDULER=off)."""
    import asyncio

    from django.conf import settings

    from dashboard import live, watchers
    from notebooks.culling import Culler
    from pipelines.engines import engine as pipeline_engine
    from pipelines.scheduler import Scheduler

    worker = scheduler = None
    local = settings.KFDASH_PLATFORM == "local"
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            live.serve_on(asyncio.get_running_loop())  # threads publish through this loop
            # Local servers are checked by the culler; a cluster is watched.
            if local:
                worker = Culler()
                worker.start()
            else:
                worker = watchers.start()
            if local:
                pipeline_engine().resume()
            if settings.KFDASH_SCHEDULER:
                scheduler = Scheduler()
                scheduler.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if worker:  # (releasing the leader Lease is a request: not on the loop)
                await asyncio.to_thread(worker.stop)
            if scheduler:
                scheduler.stop()
            if local:
                await asyncio.to_thread(pipeline_engine().shutdown)
            await notebook_proxy.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "lifespan": lifespan,
        "http": notebooks_to(notebook_proxy, limit_bodies(
            limit_requests(django_application, settings.KFDASH_REQUEST_CONCURRENCY),
            settings.KFDASH_MAX_PIPELINE_BYTES + BODY_SLACK)),
        "websocket": notebooks_to(
            AllowedHostsOriginValidator(notebook_proxy),
            AllowedHostsOriginValidator(AuthMiddlewareStack(
                TrustedHeaderWebsocketMiddleware(URLRouter(websocket_urlpatterns)))),
        ),
    }
)
