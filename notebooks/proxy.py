"""The notebook proxy: ``/notebook/<namespace>/<name>/...`` reaches that notebook's server.

An ASGI app (dashboard/asgi.py routes every ``/notebook/`` path here, HTTP and
websocket) that lets through only people who may ``edit`` in the namespace,
identified as the rest of kfdash identifies them (the session cookie, or the
trusted header in header mode), and forwards to ``spawner_for(notebook).endpoint()``:

* JupyterLab runs with ``base_url=/notebook/<namespace>/<name>/``, so its paths are
  forwarded unchanged. Servers that serve at "/" (VS Code, RStudio) have their
  endpoint say so: the proxy removes the prefix from request paths, puts it back in
  front of their redirects and sets the headers they need (RStudio's root path), as
  Kubeflow's Istio does from the Notebook's annotations. An endpoint may also be a
  unix socket. The proxy adds ``Authorization: token <endpoint token>``;
  the token never goes to the browser (it is removed from responses, JupyterLab's
  page config included), and kfdash's own cookies and credentials never go to the
  server (the notebook is somebody's code; it must not see the session cookie).
* Jupyter skips its XSRF and origin checks for token-authenticated requests, so
  the proxy does them: writes (POST, PUT, PATCH, DELETE) must come from this
  site's own pages, and websockets pass Channels' origin validator (asgi.py).
* Bodies stream both ways with back-pressure (nothing is buffered whole), through
  one connection-pooled aiohttp client per event loop. Websockets are accepted
  only once the server has accepted the upstream handshake (with the subprotocol
  it chose), then frames are pumped both ways and close codes passed on. The
  proxy ACKs upstream websocket frames at once (``_quick_acker``), which removes
  the ~40 ms Nagle stall Jupyter's websockets otherwise add to kernel replies.

Each request still checks access, but what the checks read is cached for
``CACHE_SECONDS`` per process: the session's user (by session key), whether
that user may edit in the namespace (by user and namespace) and a running
notebook's endpoint (by namespace and name). A warm request makes no database
query and no thread hop; a revoked role or a logout takes effect within
those seconds. Missing and stopped notebooks are never cached, so a server is
reachable as soon as it is up. Forbidden and missing answer the same 404, as
kfdash's pages do, so the proxy does not reveal which notebooks exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from html import escape
from importlib import import_module
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from channels.db import database_sync_to_async
from django.conf import settings
from yarl import URL

from dashboard import access
from dashboard.choices import Role
from notebooks.spawners import Endpoint, SpawnError, spawner_for

log = logging.getLogger(__name__)

PREFIX = "/notebook/"
CACHE_SECONDS = 2.0
CACHE_MAX_ENTRIES = 10_000

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones this proxy sets itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection",
})
REQUEST_HEADERS_DROPPED = HOP_BY_HOP | {
    b"host",  # the upstream's
    b"authorization",  # the browser's credentials are for kfdash; the proxy sets the server's
    b"cookie",  # filtered: kfdash's own cookies stay here
    b"origin",  # checked here; Jupyter trusts token-authenticated requests anyway
    b"expect",  # the ASGI server has answered 100-continue already
    b"accept-encoding",  # identity from the server, so that responses can be scrubbed
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",  # set below
    b"x-csrftoken",  # kfdash's own CSRF token, if a kfdash page script sends it
}
WEBSOCKET_HEADERS_DROPPED = REQUEST_HEADERS_DROPPED | {
    b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
    b"sec-websocket-protocol", b"sec-websocket-accept",
}
RESPONSE_HEADERS_DROPPED = HOP_BY_HOP | {b"date", b"server"}  # the ASGI server adds its own
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Close codes that may not be sent in a close frame (RFC 6455 7.4.1).
UNSENDABLE_CLOSE_CODES = frozenset({1004, 1005, 1006, 1015})


def kfdash_cookie_names() -> frozenset[str]:
    """Cookies that belong to kfdash: never sent to a notebook, never set by one."""
    return frozenset({
        settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME,
        settings.LANGUAGE_COOKIE_NAME, "messages",
    })


# --- what the proxy decides -----------------------------------------------------------

class Refusal:
    ANONYMOUS = "anonymous"  # HTTP: to the login page
    NOT_FOUND = "not found"  # no notebook, or not allowed to edit there: 404
    NOT_RUNNING = "not running"  # 503 with a link to the notebooks page


_MISSING = object()


class _TTLCache:
    """A dict whose entries expire after ``ttl`` seconds (event-loop thread only)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.entries: dict = {}

    def get(self, key, now: float):
        entry = self.entries.get(key)
        if entry is None or now - entry[0] >= self.ttl:
            return _MISSING
        return entry[1]

    def put(self, key, value, now: float) -> None:
        if len(self.entries) >= CACHE_MAX_ENTRIES:
            self.entries = {k: e for k, e in self.entries.items() if now - e[0] < self.ttl}
            if len(self.entries) >= CACHE_MAX_ENTRIES:
                self.entries.clear()
        self.entries[key] = (now, value)

    def drop(self, key) -> None:
        self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()


@dataclass(frozen=True)
class _Target:
    namespace: str
    name: str
    slash: bool  # whether the path goes on after the name ("/notebook/ns/name/...")


def parse_target(path: str) -> _Target | None:
    if not path.startswith(PREFIX):
        return None
    namespace, _, rest = path[len(PREFIX):].partition("/")
    name, slash, _ = rest.partition("/")
    if not namespace or not name:
        return None
    return _Target(namespace, name, bool(slash))


# --- the ASGI app ------------------------------------------------------------------------

class NotebookProxy:
    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.users = _TTLCache(cache_seconds)  # identity -> user
        self.editors = _TTLCache(cache_seconds)  # (user pk, namespace) -> may edit
        self.endpoints = _TTLCache(cache_seconds)  # (namespace, name) -> running Endpoint
        # (event loop, unix socket or "") -> pooled client
        self._clients: dict[tuple[asyncio.AbstractEventLoop, str], aiohttp.ClientSession] = {}
        self._closing: set[asyncio.Future] = set()  # (kept until done, as asyncio asks)

    def clear_caches(self) -> None:
        for cache in (self.users, self.editors, self.endpoints):
            cache.clear()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        else:
            raise ValueError(f"The notebook proxy does not speak {scope['type']!r}.")

    # --- who may go where

    async def authorize(self, scope, target: _Target) -> Endpoint | str:
        """The running server's endpoint, or why not (a ``Refusal``)."""
        identity = _identity(scope)
        if identity is None:
            return Refusal.ANONYMOUS
        now = time.monotonic()
        user = self.users.get(identity, now)
        if user is None:
            return Refusal.ANONYMOUS
        editor = _MISSING if user is _MISSING else self.editors.get(
            (user.pk, target.namespace), now)
        if editor is False:
            return Refusal.NOT_FOUND
        endpoint = self.endpoints.get((target.namespace, target.name), now)
        if user is _MISSING or editor is _MISSING or endpoint is _MISSING:
            user, editor, endpoint = await database_sync_to_async(
                _look_up, thread_sensitive=False
            )(identity, user, editor, endpoint, target)
            now = time.monotonic()
            self.users.put(identity, user, now)
            if user is None:
                return Refusal.ANONYMOUS
            self.editors.put((user.pk, target.namespace), editor, now)
            if not editor:
                return Refusal.NOT_FOUND
            if isinstance(endpoint, Endpoint):
                self.endpoints.put((target.namespace, target.name), endpoint, now)
        return endpoint

    def forget_endpoint(self, target: _Target) -> None:
        self.endpoints.drop((target.namespace, target.name))

    def client(self, endpoint: Endpoint | None = None) -> aiohttp.ClientSession:
        """The pooled HTTP client of the running event loop for ``endpoint`` (one per
        loop: an aiohttp session cannot be shared across loops, and tests run several;
        and one per unix socket, since a connector reaches one socket)."""
        loop = asyncio.get_running_loop()
        path = endpoint.socket if endpoint is not None else ""
        session = self._clients.get((loop, path))
        if session is None or session.closed:
            self._forget_clients(loop)
            connector = aiohttp.UnixConnector(path=path, limit=0, keepalive_timeout=60) \
                if path else aiohttp.TCPConnector(limit=0, keepalive_timeout=60,
                                                  ttl_dns_cache=60)
            session = self._clients[(loop, path)] = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry cookies between users
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None, connect=10),
                # (read_bufsize: aiohttp's 64 KiB measured as fast as larger buffers)
            )
        return session

    def _forget_clients(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drop the clients of closed loops, and close those of sockets that are gone
        (their servers stopped)."""
        for key in list(self._clients):
            old_loop, path = key
            if old_loop.is_closed():
                del self._clients[key]
            elif old_loop is loop and path and not os.path.exists(path):
                closing = asyncio.ensure_future(self._clients.pop(key).close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for session in self._clients.values():
            await session.close()
        self._clients.clear()

    # --- HTTP

    async def http(self, scope, receive, send) -> None:
        target = parse_target(scope["path"])
        if target is None:
            await _page(send, 404, "Not found", "There is no notebook server here.")
            return
        decision = await self.authorize(scope, target)
        if decision == Refusal.ANONYMOUS:
            await _redirect(send, _login_url(scope))
            return
        if decision == Refusal.NOT_FOUND:
            await _page(send, 404, "Not found", "There is no notebook server here.")
            return
        if decision == Refusal.NOT_RUNNING:
            back = f"/ns/{quote(target.namespace)}/notebooks/"
            await _page(send, 503, "Notebook server not running",
                        f"This notebook server is not running. Start it from "
                        f'<a href="{escape(back)}">the notebooks of '
                        f"{escape(target.namespace)}</a>.")
            return
        if not target.slash:
            query = scope.get("query_string", b"").decode("latin-1")
            await _redirect(send, quote(scope["path"]) + "/" + (f"?{query}" if query else ""))
            return
        if scope["method"] not in SAFE_METHODS and not _same_origin(scope):
            await _page(send, 403, "Forbidden",
                        "Changes to a notebook server are only accepted from its own pages.")
            return
        await _Exchange(self, decision, target, scope, receive, send).run()

    # --- websockets

    async def websocket(self, scope, receive, send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        target = parse_target(scope["path"])
        decision = await self.authorize(scope, target) if target else Refusal.NOT_FOUND
        if not isinstance(decision, Endpoint):
            # Closing before accepting refuses the handshake (HTTP 403); the codes
            # are for ASGI servers that accept first.
            await send({"type": "websocket.close", "code": 4401
                        if decision == Refusal.ANONYMOUS else 4404})
            return
        try:
            upstream = await self.client(decision).ws_connect(
                _upstream_url(decision, scope, websocket=True),
                protocols=scope.get("subprotocols") or (),
                headers=_upstream_headers(scope, decision, websocket=True),
                autoclose=True, autoping=True, max_msg_size=0, compress=0,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if not isinstance(exc, aiohttp.WSServerHandshakeError):
                self.forget_endpoint(target)
            log.info("notebook websocket %s refused upstream: %s", scope["path"], exc)
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept", "subprotocol": upstream.protocol})
        await _pump(upstream, receive, send)


class _ClientGone(Exception):
    """The browser went away while the request was being forwarded."""


class _Exchange:
    """One HTTP request forwarded and its response streamed back."""

    def __init__(self, proxy: NotebookProxy, endpoint: Endpoint, target: _Target,
                 scope, receive, send) -> None:
        self.proxy, self.endpoint, self.target = proxy, endpoint, target
        self.scope, self.receive, self.send = scope, receive, send
        self.body_read = asyncio.Event()
        self.client_gone = False
        self.finished = False  # the whole response has been handed to the ASGI server

    async def run(self) -> None:
        transfer = asyncio.ensure_future(self.transfer())
        watcher = asyncio.ensure_future(self.watch_disconnect())
        try:
            await asyncio.wait({transfer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not transfer.done() and not self.finished:
                transfer.cancel()  # the browser left: stop reading from the server
            try:
                await transfer
            except asyncio.CancelledError:
                if not self.client_gone:
                    raise
        finally:
            watcher.cancel()
            transfer.cancel()

    async def watch_disconnect(self) -> None:
        await self.body_read.wait()
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                return

    async def request_body(self):
        try:
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    self.client_gone = True
                    raise _ClientGone()
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return
        finally:
            self.body_read.set()

    async def transfer(self) -> None:
        scope = self.scope
        headers = _upstream_headers(scope, self.endpoint)
        length = _header(scope, b"content-length")
        has_body = (length is not None and length.strip() != "0") \
            or _header(scope, b"transfer-encoding") is not None
        if not has_body:
            self.body_read.set()
        try:
            response = await self.proxy.client(self.endpoint).request(
                scope["method"], _upstream_url(self.endpoint, scope), headers=headers,
                data=self.request_body() if has_body else None, allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError, OSError, _ClientGone) as exc:
            if self.client_gone:
                return
            if not isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
                self.proxy.forget_endpoint(self.target)
            log.warning("notebook %s/%s unreachable: %s", self.target.namespace,
                        self.target.name, exc)
            await _page(self.send, 502, "Notebook server unreachable",
                        "The notebook server did not answer. It may be starting or "
                        "stopping; try again in a moment.")
            return
        async with response:
            token = self.endpoint.token.encode() if self.endpoint.token else b""
            headers_out, textual = _response_headers(response.raw_headers, self.endpoint,
                                                      token, _header(scope, b"host"))
            scrubber = _Scrubber(token) if token and textual else None
            await self.send({"type": "http.response.start", "status": response.status,
                             "headers": headers_out})
            if scope["method"] == "HEAD":
                self.finished = True
                await self.send({"type": "http.response.body", "body": b""})
                return
            # Chunk by chunk as aiohttp received them: readchunk hands over each buffered
            # chunk as it is, where readany/iter_any join all buffered chunks into a new
            # bytes first (a copy of most of the body, +15-20 points of overhead on a
            # 10 MB download; bench/RESULTS.md). Not iter_chunks: it never ends on a
            # body-less response (aiohttp 3.14), hence the explicit end check.
            content, send = response.content, self.send
            while True:
                chunk, _ = await content.readchunk()
                if not chunk:
                    if content.at_eof():
                        break
                    continue  # the end of an HTTP chunk; more to come
                if scrubber is not None:
                    chunk = scrubber.feed(chunk)
                    if not chunk:
                        continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            last = scrubber.flush() if scrubber is not None else b""
            self.finished = True
            await self.send({"type": "http.response.body", "body": last, "more_body": False})


# --- websockets --------------------------------------------------------------------------

async def _pump(upstream: aiohttp.ClientWebSocketResponse, receive, send) -> None:
    """Relay frames both ways until either side closes, then close the other."""

    async def from_browser() -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    await upstream.send_str(text)
                else:
                    await upstream.send_bytes(message.get("bytes") or b"")
            elif kind == "websocket.disconnect":
                await upstream.close(code=_sendable(message.get("code", 1000)))
                return

    quick_ack = _quick_acker(upstream)

    async def from_server() -> None:
        async for message in upstream:
            quick_ack()
            if message.type == aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": message.data})
            elif message.type == aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": message.data})
            elif message.type == aiohttp.WSMsgType.ERROR:
                break
        code = upstream.close_code
        await send({"type": "websocket.close",
                    "code": 1011 if code is None or code == 1006 else _sendable(code)})

    tasks = [asyncio.ensure_future(from_browser()), asyncio.ensure_future(from_server())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception) as exc:
                if not isinstance(exc, asyncio.CancelledError | aiohttp.ClientError
                                  | ConnectionError | OSError):
                    log.debug("notebook websocket relay ended: %r", exc)
        if not upstream.closed:
            await upstream.close()


def _quick_acker(upstream: aiohttp.ClientWebSocketResponse):
    """A function that acknowledges what the server sent at once, instead of after
    Linux's delayed-ACK timeout (up to 40 ms). Jupyter's websockets do not set
    TCP_NODELAY, so a kernel's second small message waits for the ACK of its first
    (Nagle's algorithm): without this, every cell execution stalls ~40 ms."""
    sock = upstream.get_extra_info("socket")
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return lambda: None

    def quick_ack() -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)

    return quick_ack


def _sendable(code: int | None) -> int:
    if code is None or code in UNSENDABLE_CLOSE_CODES or not 1000 <= code <= 4999:
        return 1000
    return code


# --- requests and responses ----------------------------------------------------------------

def _header(scope, name: bytes) -> str | None:
    """The first value of a request header (lower-case name), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _cookies(scope) -> list[tuple[str, str]]:
    """The request's cookies as (name, raw value) pairs, in order."""
    pairs = []
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for chunk in value.decode("latin-1").split(";"):
                name, _, raw = chunk.partition("=")
                if name.strip() or raw.strip():
                    pairs.append((name.strip(), raw.strip()))
    return pairs


def _identity(scope) -> tuple[str, str] | None:
    """What identifies the person, before any database lookup: the trusted header's
    email in header mode, else the session key; None means anonymous."""
    if settings.KFDASH_AUTH == "header":
        from dashboard.auth.header import email_from_header

        email = email_from_header(_header(scope, settings.KFDASH_USERID_HEADER.lower().encode()))
        return ("header", email) if email else None
    key = next((value for name, value in _cookies(scope)
                if name == settings.SESSION_COOKIE_NAME), None)
    return ("session", key) if key else None


def _user_for(identity: tuple[str, str]):
    """The active user an identity speaks for, or None (runs in a worker thread)."""
    kind, value = identity
    if kind == "header":
        from dashboard.auth.identity import user_for_identity

        user = user_for_identity(value)
    else:
        from django.contrib import auth
        from django.http import HttpRequest

        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(value)
        user = auth.get_user(request)  # checks the session's age and password hash
    return user if user is not None and user.is_authenticated and user.is_active else None


def _look_up(identity, user, editor, endpoint, target: _Target):
    """Fill in what the caches lacked (runs in a worker thread)."""
    if user is _MISSING:
        user = _user_for(identity)
    if user is None:
        return None, _MISSING, _MISSING
    if editor is _MISSING:
        editor = access.can(user, Role.EDIT, target.namespace)
    if not editor:
        return user, editor, _MISSING
    if endpoint is _MISSING:
        endpoint = _endpoint_of(target)
    return user, editor, endpoint


def _endpoint_of(target: _Target) -> Endpoint | str:
    from notebooks.models import Notebook

    notebook = (Notebook.objects.select_related("profile")
                .filter(profile__name=target.namespace, name=target.name).first())
    if notebook is None:
        return Refusal.NOT_FOUND
    try:
        endpoint = spawner_for(notebook).endpoint()
    except SpawnError as exc:
        log.warning("no endpoint for notebook %s: %s", notebook, exc)
        endpoint = None
    return endpoint or Refusal.NOT_RUNNING


def _same_origin(scope) -> bool:
    """Whether a write comes from this site's own pages (or from no browser at all)."""
    origin = _header(scope, b"origin")
    if origin is None:
        return _header(scope, b"sec-fetch-site") not in ("cross-site", "same-site")
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    host = _header(scope, b"host")
    return bool(host) and origin != "null" and urlsplit(origin).netloc.lower() == host.lower()


def _upstream_url(endpoint: Endpoint, scope, websocket: bool = False) -> URL:
    raw = scope.get("raw_path")
    try:
        path = raw.decode("ascii") if raw else quote(scope["path"])
    except UnicodeDecodeError:
        path = quote(scope["path"])
    prefix = endpoint.strip_prefix
    if prefix:
        if not path.startswith(prefix):  # a prefix written %-encoded
            path = quote(scope["path"])
        path = path[len(prefix):] or "/"
    query = scope.get("query_string", b"").decode("latin-1")
    base = endpoint.url.rstrip("/")
    if websocket:
        base = "ws" + base[4:] if base.startswith("http") else base
    return URL(base + path + (f"?{query}" if query else ""), encoded=True)


def _upstream_headers(scope, endpoint: Endpoint, websocket: bool = False) -> list:
    """The request's headers as the notebook server gets them."""
    dropped = WEBSOCKET_HEADERS_DROPPED if websocket else REQUEST_HEADERS_DROPPED
    if endpoint.request_headers:  # the endpoint's, never the browser's
        dropped = dropped | {name.lower().encode() for name, _ in endpoint.request_headers}
    connection_listed = {token.strip().lower().encode()
                         for token in (_header(scope, b"connection") or "").split(",")}
    headers = []
    for key, value in scope.get("headers", ()):
        if key in dropped or key in connection_listed:
            continue
        headers.append((key.decode("latin-1"), value.decode("latin-1")))
    own = kfdash_cookie_names()
    cookies = [f"{name}={value}" if name else value
               for name, value in _cookies(scope) if name not in own]
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    if endpoint.token:
        headers.append(("Authorization", f"token {endpoint.token}"))
    headers.extend(endpoint.request_headers)
    client = scope.get("client")
    forwarded_for = _header(scope, b"x-forwarded-for")
    if client and not (forwarded_for or "").rstrip().endswith(client[0]):
        # (uvicorn's proxy-headers mode already took the client from this header)
        forwarded_for = f"{forwarded_for}, {client[0]}" if forwarded_for else client[0]
    if forwarded_for:
        headers.append(("X-Forwarded-For", forwarded_for))
    headers.append(("X-Forwarded-Proto", _header(scope, b"x-forwarded-proto")
                    or ("https" if scope.get("scheme") in ("https", "wss") else "http")))
    host = _header(scope, b"host")
    if host:
        headers.append(("X-Forwarded-Host", host))
    if not websocket:
        headers.append(("Accept-Encoding", "identity"))
    return headers


def _response_headers(raw_headers, endpoint: Endpoint, token: bytes, host: str | None = None):
    """The response's headers as the browser gets them, and whether the body is text
    (which is scrubbed of the token, so its length may change). ``host`` is the
    request's Host (what the browser sees)."""
    content_type = next((v for k, v in raw_headers if k.lower() == b"content-type"), b"")
    textual = _is_text(content_type)
    connection_listed = {t.strip().lower() for k, v in raw_headers
                         if k.lower() == b"connection" for t in v.split(b",")}
    own = {name.encode() for name in kfdash_cookie_names()}
    headers = []
    for key, value in raw_headers:
        key = key.lower()
        if key in RESPONSE_HEADERS_DROPPED or key in connection_listed:
            continue
        if key == b"content-length" and textual and token:
            continue
        if key == b"set-cookie" and value.partition(b"=")[0].strip() in own:
            continue
        if key == b"location":
            value = _relocated(value.decode("latin-1"), endpoint, host).encode("latin-1")
        if token and token in value:
            value = value.replace(token, b"")
        headers.append((key, value))
    return headers, textual


def _relocated(location: str, endpoint: Endpoint, host: str | None) -> str:
    """A redirect's target as the browser must follow it: the server's own origin
    made relative, and, for servers that serve at "/", their paths put back under the
    notebook's prefix (a server may also build absolute URLs from the Host the proxy
    forwards as X-Forwarded-Host)."""
    parts = urlsplit(location)
    upstream = urlsplit(endpoint.url)
    if parts.scheme and parts.netloc:
        own = (parts.scheme, parts.netloc.lower()) == (upstream.scheme, upstream.netloc.lower())
        seen_by_browser = endpoint.strip_prefix and host and parts.netloc.lower() == host.lower()
        if not (own or seen_by_browser):
            return location  # elsewhere: left alone
        location = parts._replace(scheme="", netloc="").geturl() or "/"
    prefix = endpoint.strip_prefix
    if prefix and location.startswith("/") and not location.startswith("//") \
            and not (location == prefix or location.startswith((prefix + "/", prefix + "?"))):
        # (A target already under the prefix is the server knowing its root, as
        # RStudio does from X-RStudio-Root-Path.)
        location = prefix + location
    return location


def _is_text(content_type: bytes) -> bool:
    kind = content_type.partition(b";")[0].strip().lower()
    return kind.startswith(b"text/") or kind.endswith((b"json", b"javascript", b"xml"))


class _Scrubber:
    """Removes a secret from a stream of chunks, including across chunk boundaries."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.pending + chunk if self.pending else chunk
        while self.secret in data:
            data = data.replace(self.secret, b"")
        # Hold back the shortest tail that could be the start of the secret.
        start = max(len(data) - len(self.secret) + 1, 0)
        first = self.secret[:1]
        while True:
            at = data.find(first, start)
            if at == -1:
                self.pending = b""
                return data
            if self.secret.startswith(data[at:]):
                self.pending = data[at:]
                return data[:at]
            start = at + 1

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        return rest


# --- the proxy's own answers ---------------------------------------------------------------

def _login_url(scope) -> str:
    from django.shortcuts import resolve_url

    query = scope.get("query_string", b"").decode("latin-1")
    target = scope["path"] + (f"?{query}" if query else "")
    return f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': target})}"


async def _redirect(send, location: str) -> None:
    await send({"type": "http.response.start", "status": 302, "headers": [
        (b"location", location.encode("latin-1")), (b"content-length", b"0"),
        (b"cache-control", b"no-store"),
    ]})
    await send({"type": "http.response.body", "body": b""})


async def _page(send, status: int, title: str, message_html: str) -> None:
    body = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)} · kfdash</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{message_html}</p></body></html>\n"
    ).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]})
    await send({"type": "http.response.body", "body": body})


proxy = NotebookProxy()
