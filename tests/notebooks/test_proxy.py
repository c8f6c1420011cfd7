"""The notebook proxy (/notebook/<namespace>/<name>/...), end to end.

Most tests drive a real kfdash server (uvicorn + dashboard.asgi, its own SQLite
database) in front of a real ``jupyter lab`` and of an "echo" upstream of the
tests' own that reports what it was sent. The server's "local" spawner is
``FixedEndpointSpawner`` (tests/notebooks/proxy_settings.py), so the proxy finds
both through ``spawner_for(notebook).endpoint()``. A few tests call the proxy
in-process, where settings and caches are easier to steer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.notebooks.jupyter import JupyterServer, execute_request, run_code, start_jupyter
from tests.servers import KfdashServer, free_port, start_kfdash

NAMESPACE = "team-a"
ECHO_TOKEN = "echo-token-3f9c2a7d5e1b4c8a9d0e6f7a1b2c3d4e"
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
USERS = {
    "owner": "owner@example.com",
    "member": "member@example.com",
    "viewer": "viewer@example.com",
    "stranger": "stranger@example.com",
    "admin": "root@example.com",
}


# --- an upstream that reports what it got ---------------------------------------------------

class EchoUpstream:
    """An aiohttp server (own thread and loop) standing in for a notebook server at
    ``/notebook/team-a/echo/``: it answers with what it received, and misbehaves on
    request (plants kfdash cookies, leaks the token, streams forever)."""

    base = f"/notebook/{NAMESPACE}/echo/"

    def __init__(self) -> None:
        self.port = free_port()
        self.events: dict[str, object] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    @property
    def runtime(self) -> dict:
        return {"port": self.port, "token": ECHO_TOKEN}

    def start(self) -> EchoUpstream:
        self.thread.start()
        assert self.ready.wait(10), "the echo upstream did not start"
        return self

    def stop(self) -> None:
        if self.loop and self.runner:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self) -> None:
        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=1024**3)
        for path, handler in [("headers", self.headers), ("cookies", self.cookies),
                              ("redirect", self.redirect), ("leak", self.leak),
                              ("binary", self.binary), ("endless", self.endless),
                              ("empty", self.empty),
                              ("ws", self.websocket)]:
            app.router.add_route("*", self.base + path, handler)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    async def headers(self, request):
        from aiohttp import web

        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        # The token is reported by whether it was right: the proxy would scrub it.
        return web.json_response({
            "method": request.method, "path": request.raw_path,
            "headers": [[k, _redacted(k, v)] for k, v in request.headers.items()],
            "size": size, "sha256": digest.hexdigest(),
        })

    async def cookies(self, request):
        from aiohttp import web

        response = web.Response(text="cookies set")
        response.headers.add("Set-Cookie", "sessionid=planted-by-notebook; Path=/")
        response.headers.add("Set-Cookie", "csrftoken=planted-by-notebook; Path=/")
        response.headers.add("Set-Cookie", f"notebook-cookie=kept; Path={self.base}")
        return response

    async def redirect(self, request):
        from aiohttp import web

        raise web.HTTPFound(f"http://127.0.0.1:{self.port}{self.base}headers?from=redirect")

    async def leak(self, request):
        """The token in a header and in a streamed HTML body, split across chunks."""
        from aiohttp import web

        response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8",
                                               "X-Server-Token": f"token {ECHO_TOKEN}"})
        await response.prepare(request)
        page = f'<script id="config">{{"token": "{ECHO_TOKEN}", "again": "{ECHO_TOKEN}"}}'
        page += "</script>" + "x" * 100_000 + ECHO_TOKEN
        for cut in range(0, len(page), 7):
            await response.write(page[cut:cut + 7].encode())
            if cut % 700 == 0:
                await asyncio.sleep(0)
        await response.write_eof()
        return response

    async def binary(self, request):
        from aiohttp import web

        size = int(request.query.get("size", "1000"))
        return web.Response(body=_pattern(size), content_type="application/octet-stream")

    async def empty(self, request):
        from aiohttp import web

        return web.Response(status=204)

    async def endless(self, request):
        from aiohttp import web

        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        sent = 0
        try:
            while True:
                await response.write(b"z" * 65536)
                sent += 65536
                self.events["endless_sent"] = sent
                await asyncio.sleep(0.001)
        except (ConnectionError, asyncio.CancelledError):
            self.events["endless_stopped"] = time.monotonic()
            raise

    async def websocket(self, request):
        from aiohttp import WSMsgType, web

        self.events["ws_headers"] = {k: _redacted(k, v) for k, v in request.headers.items()}
        ws = web.WebSocketResponse(protocols=("b.echo",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                if message.data.startswith("close "):
                    await ws.close(code=int(message.data.split()[1]), message=b"asked")
                    break
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        self.events["ws_close_code"] = ws.close_code
        return ws


class RootUpstream:
    """An aiohttp server (own thread and loop) standing in for VS Code and RStudio:
    it serves at "/" (not under a base URL), on a unix socket and on a loopback port
    at once, reports the path and headers it got, and redirects as such servers do."""

    def __init__(self, socket_path: Path) -> None:
        self.socket = str(socket_path)
        self.port = free_port()
        self.events: dict[str, object] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def start(self) -> RootUpstream:
        self.thread.start()
        assert self.ready.wait(10), "the root upstream did not start"
        return self

    def stop(self) -> None:
        if self.loop and self.runner:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self) -> None:
        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/go/{kind}", self.redirect)
        app.router.add_route("*", "/{tail:.*}", self.report)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.loop.run_until_complete(web.UnixSite(self.runner, self.socket).start())
        self.ready.set()
        self.loop.run_forever()

    async def report(self, request):
        from aiohttp import web

        return web.json_response({"path": request.raw_path,
                                  "headers": [[k, v] for k, v in request.headers.items()]})

    async def redirect(self, request):
        from aiohttp import web

        root = request.headers.get("X-RStudio-Root-Path", "/")
        target = {
            "login": "/login?next=%2F",  # an absolute path: the server's own root
            "relative": "./?folder=/home/jovyan",  # code-server's first redirect
            "rooted": f"{root}auth-sign-in",  # RStudio, from its root-path header
            "own-origin": f"http://{request.host}/own",  # from the Host it got
            "browser-origin": f"http://{request.headers.get('X-Forwarded-Host')}/seen",
            "elsewhere": "https://example.org/login",
        }[request.match_info["kind"]]
        return web.Response(status=302, headers={"Location": target})  # as written

    async def websocket(self, request):
        from aiohttp import WSMsgType, web

        self.events["ws_path"] = request.raw_path
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(f"{request.raw_path} {message.data}")
        return ws


def _redacted(name: str, value: str) -> str:
    if name.lower() == "authorization":
        return "<the token>" if value == f"token {ECHO_TOKEN}" else f"<wrong: {value}>"
    return value


def _pattern(size: int) -> bytes:
    block = hashlib.sha256(b"kfdash").digest() * 2048  # 64 KiB of noise
    return (block * (size // len(block) + 1))[:size]


# --- a kfdash server in front of jupyter lab and the echo upstream --------------------------

SETUP = """
import json
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from dashboard.models import Profile, User
from notebooks.models import Notebook

args = json.loads(ARGS)
users = {who: User.objects.create_user(email, "pw-" + who + "-0123456789")
         for who, email in args["users"].items()}
users["admin"].is_superuser = users["admin"].is_staff = True
users["admin"].save()
profile = Profile.register(args["namespace"], users["owner"])
profile.set_contributor(users["member"].email, "edit", users["owner"])
profile.set_contributor(users["viewer"].email, "view", users["owner"])
Profile.register("team-b", users["stranger"])
for name, (status, runtime, *server_type) in args["notebooks"].items():
    Notebook.objects.create(profile=profile, name=name, image="jupyter", status=status,
                            runtime=runtime, server_type=(server_type or ["jupyter"])[0])
sessions = {}
for who, user in users.items():
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    sessions[who] = session.session_key
print("SESSIONS=" + json.dumps(sessions))
"""


def run_shell(server: KfdashServer, code: str, **args) -> str:
    """Run Python in ``manage.py shell`` against the server's database; ``ARGS`` holds
    ``args`` as JSON."""
    result = server.manage("shell", "-c", f"ARGS = {json.dumps(json.dumps(args))}\n{code}")
    return result.stdout


@dataclass
class Stack:
    server: KfdashServer
    jupyter: JupyterServer
    echo: EchoUpstream
    root: RootUpstream
    sessions: dict[str, str]
    responses: list = field(default_factory=list)

    def url(self, notebook: str) -> str:
        return f"{self.server.url}/notebook/{NAMESPACE}/{notebook}/"

    @property
    def lab(self) -> str:
        return f"{self.server.url}/notebook/{NAMESPACE}/lab/"

    @property
    def echo_url(self) -> str:
        return f"{self.server.url}{EchoUpstream.base}"

    def browser(self, who: str | None) -> requests.Session:
        """A client with ``who``'s kfdash cookies (none when None) that checks every
        response it gets for the servers' tokens."""
        session = requests.Session()
        if who:
            session.cookies.set("sessionid", self.sessions[who])
            session.cookies.set("csrftoken", "kfdash-csrf-cookie")
        session.hooks["response"].append(self._no_token)
        return session

    def _no_token(self, response, *args, stream=False, **kwargs):
        for token in (self.jupyter.token, ECHO_TOKEN):
            for name, value in response.headers.items():
                assert token not in value, f"the token leaked in {name}: {response.url}"
            if not stream:  # a streamed body is the test's to read
                assert token.encode() not in response.content, f"the token leaked: {response.url}"

    def websocket(self, path: str, who: str | None = "owner", **options):
        headers = {"Cookie": f"sessionid={self.sessions[who]}; csrftoken=x"} if who else {}
        options.setdefault("origin", self.server.url)
        return ws_client.connect(self.server.url.replace("http", "ws", 1) + path,
                                 additional_headers=headers, open_timeout=10,
                                 compression=None, **options)


@pytest.fixture(scope="module")
def echo():
    upstream = EchoUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def root_upstream(tmp_path_factory):
    upstream = RootUpstream(tmp_path_factory.mktemp("root") / "up.sock").start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, echo, root_upstream):
    """One kfdash server and one jupyter lab for the module: each takes seconds to start.
    (``start_kfdash`` is what the ``kfdash_server`` fixture runs, at module scope.)
    "code" (VS Code) reaches the root upstream's socket, "rstudio" its port."""
    base = tmp_path_factory.mktemp("proxy")
    jupyter = start_jupyter(base / "jupyter", NAMESPACE, "lab")
    server = None
    try:
        server = start_kfdash(base / "kfdash",
                              DJANGO_SETTINGS_MODULE="tests.notebooks.proxy_settings")
        out = run_shell(server, SETUP, namespace=NAMESPACE, users=USERS, notebooks={
            "lab": ["running", jupyter.runtime],
            "echo": ["running", echo.runtime],
            "idle": ["stopped", {}],
            "gone": ["running", {"port": free_port(), "token": "nobody-listens"}],
            "code": ["running", {"socket": root_upstream.socket}, "group-one"],
            "rstudio": ["running", {"port": root_upstream.port}, "group-two"],
        })
        sessions = json.loads(out.split("SESSIONS=", 1)[1])
        yield Stack(server, jupyter, echo, root_upstream, sessions)
    finally:
        if server:
            server.stop()
        jupyter.stop()


# --- Jupyter through the proxy ----------------------------------------------------------------

@pytest.mark.parametrize("who", ["owner", "member", "admin"])
def test_editors_reach_the_jupyter_api_and_the_lab_page(stack, who):
    browser = stack.browser(who)
    status = browser.get(stack.lab + "api/status")
    assert status.status_code == 200
    assert "started" in status.json()

    page = browser.get(stack.lab + "lab")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "jupyter-config-data" in page.text
    config = json.loads(page.text.split('id="jupyter-config-data"', 1)[1].split(">", 1)[1]
                        .split("</script>")[0])
    assert config["baseUrl"] == f"/notebook/{NAMESPACE}/lab/"
    assert config["token"] == ""  # JupyterLab puts the server's token here; the proxy removes it
    # Jupyter's own cookies are scoped to the notebook's base URL and pass through.
    assert any(c.name == "_xsrf" and c.path == f"/notebook/{NAMESPACE}/lab/"
               for c in browser.cookies)


def test_a_file_put_through_the_proxy_comes_back(stack):
    """Writes need no _xsrf: the proxy's token authenticates them to Jupyter."""
    browser = stack.browser("member")
    put = browser.put(stack.lab + "api/contents/hello.txt",
                      json={"type": "file", "format": "text", "content": "hello, proxy\n"})
    assert put.status_code == 201, put.text
    got = browser.get(stack.lab + "api/contents/hello.txt", params={"content": "1"})
    assert got.json()["content"] == "hello, proxy\n"
    raw = browser.get(stack.lab + "files/hello.txt")
    assert raw.status_code == 200 and raw.text == "hello, proxy\n"
    assert (stack.jupyter.root_dir / "hello.txt").read_text() == "hello, proxy\n"


def _peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_uploads_and_downloads_stream_through(stack):
    import base64

    browser = stack.browser("owner")
    data = _pattern(20 * 1024 * 1024)
    body = json.dumps({"type": "file", "format": "base64",
                       "content": base64.b64encode(data).decode()}).encode()
    peak_before = _peak_memory_kib(stack.server.process.pid)
    put = browser.put(stack.lab + "api/contents/big.bin", data=body,
                      headers={"Content-Type": "application/json"})
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(data)

    digest, size = hashlib.sha256(), 0
    with browser.get(stack.lab + "files/big.bin", stream=True) as download:
        assert download.status_code == 200
        assert download.headers["content-length"] == str(len(data))
        for chunk in download.iter_content(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    assert size == len(data) and digest.hexdigest() == hashlib.sha256(data).hexdigest()
    # 27 MB went up and 20 MB came down; kfdash never held more than a sliver of either.
    grown_mib = (_peak_memory_kib(stack.server.process.pid) - peak_before) / 1024
    assert grown_mib < 16, f"kfdash's peak memory grew by {grown_mib:.0f} MiB"


def _start_kernel(stack: Stack, who: str = "owner") -> str:
    kernel = stack.browser(who).post(stack.lab + "api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    return kernel.json()["id"]


def test_a_kernel_runs_code_over_the_proxied_websocket(stack):
    kernel_id = _start_kernel(stack, "member")
    session = uuid.uuid4().hex
    path = f"/notebook/{NAMESPACE}/lab/api/kernels/{kernel_id}/channels?session_id={session}"
    with stack.websocket(path, "member") as ws:
        output, reply = run_code(ws, "print(6*7)", session)
    assert output == "42\n"
    assert reply["status"] == "ok"
    stack.browser("owner").delete(stack.lab + f"api/kernels/{kernel_id}")


def test_the_kernel_subprotocol_and_binary_frames_pass_through(stack):
    """JupyterLab 4 asks for the v1 kernel protocol, whose messages are binary frames."""
    from jupyter_server.services.kernels.connection.base import (
        deserialize_msg_from_ws_v1,
        serialize_msg_to_ws_v1,
    )

    kernel_id = _start_kernel(stack)
    session = uuid.uuid4().hex
    path = f"/notebook/{NAMESPACE}/lab/api/kernels/{kernel_id}/channels?session_id={session}"
    with stack.websocket(path, subprotocols=[V1_PROTOCOL]) as ws:
        assert ws.subprotocol == V1_PROTOCOL
        request = execute_request("print(6*7)", session)
        ws.send(serialize_msg_to_ws_v1(request, "shell", pack=lambda part: json.dumps(
            part).encode()))
        output = None
        while output is None:
            frame = ws.recv(timeout=60)
            assert isinstance(frame, bytes)
            _channel, parts = deserialize_msg_from_ws_v1(frame)
            header, parent = json.loads(parts[0]), json.loads(parts[1])
            if parent.get("msg_id") == request["header"]["msg_id"] \
                    and header["msg_type"] == "stream":
                output = json.loads(parts[3])["text"]
    assert output == "42\n"
    stack.browser("owner").delete(stack.lab + f"api/kernels/{kernel_id}")


# --- who gets through -----------------------------------------------------------------------

@pytest.mark.parametrize("who", ["viewer", "stranger"])
def test_people_who_cannot_edit_get_404(stack, who):
    browser = stack.browser(who)
    for path in ("api/status", "lab", ""):
        response = browser.get(stack.lab + path, allow_redirects=False)
        assert response.status_code == 404
        assert "There is no notebook server here" in response.text
        assert len(response.content) < 1000


def test_a_missing_notebook_is_404_even_for_its_namespace_owner(stack):
    browser = stack.browser("owner")
    assert browser.get(f"{stack.server.url}/notebook/{NAMESPACE}/nope/").status_code == 404
    assert browser.get(f"{stack.server.url}/notebook/no-such-ns/lab/").status_code == 404


def test_anonymous_browsers_are_sent_to_log_in(stack):
    response = stack.browser(None).get(stack.lab + "lab?reset", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == \
        f"/login/?next=%2Fnotebook%2F{NAMESPACE}%2Flab%2Flab%3Freset"
    forged = requests.get(stack.lab + "api/status", cookies={"sessionid": "not-a-session"},
                          allow_redirects=False)
    assert forged.status_code == 302


def test_a_stopped_notebook_answers_503_with_a_way_back(stack):
    response = stack.browser("member").get(f"{stack.server.url}/notebook/{NAMESPACE}/idle/lab")
    assert response.status_code == 503
    assert "This notebook server is not running" in response.text
    assert f'href="/ns/{NAMESPACE}/notebooks/"' in response.text


def test_an_unreachable_server_answers_502(stack):
    response = stack.browser("member").get(
        f"{stack.server.url}/notebook/{NAMESPACE}/gone/api/status")
    assert response.status_code == 502


def test_the_name_alone_redirects_to_the_base_url(stack):
    response = stack.browser("owner").get(f"{stack.server.url}/notebook/{NAMESPACE}/lab",
                                          allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == f"/notebook/{NAMESPACE}/lab/"


@pytest.mark.parametrize(("who", "notebook", "origin"), [
    (None, "lab", None),
    ("viewer", "lab", None),
    ("stranger", "lab", None),
    ("owner", "nope", None),
    ("owner", "idle", None),
    ("owner", "lab", "https://evil.example"),
])
def test_websockets_are_refused_to_the_same_people(stack, who, notebook, origin):
    path = f"/notebook/{NAMESPACE}/{notebook}/api/events/subscribe"
    with pytest.raises(InvalidStatus) as refused:
        stack.websocket(path, who, **({"origin": origin} if origin else {})).close()
    assert refused.value.response.status_code == 403


def test_writes_from_other_sites_are_refused(stack):
    browser = stack.browser("owner")
    body = {"type": "file", "format": "text", "content": "x"}
    evil = browser.put(stack.lab + "api/contents/evil.txt", json=body,
                       headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    sibling = browser.put(stack.lab + "api/contents/evil.txt", json=body,
                          headers={"Sec-Fetch-Site": "same-site"})
    assert sibling.status_code == 403
    assert not (stack.jupyter.root_dir / "evil.txt").exists()
    own = browser.put(stack.lab + "api/contents/own.txt", json=body,
                      headers={"Origin": stack.server.url, "Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 201


# --- what crosses the proxy ------------------------------------------------------------------

def test_kfdash_credentials_stay_here_and_the_server_gets_its_token(stack):
    browser = stack.browser("member")
    browser.cookies.set("notebook-cookie", "for-the-notebook")
    seen = browser.post(stack.echo_url + "headers?a=1&b=%2F", data=b"payload",
                        headers={"Authorization": "Bearer kfdash-api-token",
                                 "Origin": stack.server.url}).json()
    headers = {}
    for name, value in seen["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    assert seen["method"] == "POST" and seen["path"] == f"{EchoUpstream.base}headers?a=1&b=%2F"
    assert seen["size"] == len(b"payload")
    assert headers["authorization"] == ["<the token>"]  # not the browser's
    assert headers["cookie"] == ["notebook-cookie=for-the-notebook"]
    assert headers["host"] == [f"127.0.0.1:{stack.echo.port}"]
    assert headers["x-forwarded-host"] == [stack.server.url.split("//")[1]]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["accept-encoding"] == ["identity"]
    assert "origin" not in headers
    assert stack.sessions["member"] not in json.dumps(seen)


def test_uploads_stream_with_and_without_a_length(stack):
    browser = stack.browser("owner")
    data = _pattern(20 * 1024 * 1024 + 17)
    sized = browser.put(stack.echo_url + "headers", data=data).json()
    assert sized["size"] == len(data)
    assert sized["sha256"] == hashlib.sha256(data).hexdigest()

    def chunks():
        for start in range(0, len(data), 1024 * 1024):
            yield data[start:start + 1024 * 1024]

    chunked = browser.put(stack.echo_url + "headers", data=chunks()).json()
    assert ["Transfer-Encoding", "chunked"] in chunked["headers"]
    assert chunked["size"] == len(data)
    assert chunked["sha256"] == hashlib.sha256(data).hexdigest()


def test_binary_downloads_are_passed_byte_for_byte(stack):
    size = 10 * 1024 * 1024 + 5
    response = stack.browser("owner").get(stack.echo_url + f"binary?size={size}")
    assert response.headers["content-length"] == str(size)
    assert response.content == _pattern(size)


def test_bodiless_responses_end(stack):
    browser = stack.browser("owner")
    for method in ("GET", "DELETE", "HEAD", "DELETE"):
        response = browser.request(method, stack.echo_url + "empty", timeout=10)
        assert response.status_code == 204 and response.content == b""
    head = browser.head(stack.echo_url + "binary?size=1234", timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == "1234"


def test_notebooks_cannot_set_kfdash_cookies(stack):
    browser = stack.browser("owner")
    response = browser.get(stack.echo_url + "cookies")
    assert response.status_code == 200
    assert response.raw.headers.getlist("Set-Cookie") == \
        [f"notebook-cookie=kept; Path={EchoUpstream.base}"]
    assert browser.cookies.get("sessionid") == stack.sessions["owner"]


def test_redirects_to_the_server_itself_are_made_relative(stack):
    response = stack.browser("owner").get(stack.echo_url + "redirect", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == f"{EchoUpstream.base}headers?from=redirect"


def test_the_token_is_removed_from_responses(stack):
    response = stack.browser("owner").get(stack.echo_url + "leak")  # the hook checks it
    assert response.status_code == 200
    assert response.text.startswith('<script id="config">{"token": "", "again": ""}</script>')
    assert response.headers["x-server-token"] == "token "
    assert len(response.text) == len('<script id="config">{"token": "", "again": ""}</script>') \
        + 100_000


def test_a_download_stops_when_the_browser_leaves(stack):
    stack.echo.events.pop("endless_stopped", None)
    with stack.browser("owner").get(stack.echo_url + "endless", stream=True) as response:
        assert response.status_code == 200
        next(response.iter_content(65536))
    deadline = time.monotonic() + 10
    while "endless_stopped" not in stack.echo.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "endless_stopped" in stack.echo.events


def test_websocket_frames_subprotocols_and_close_codes_pass_through(stack):
    path = f"{EchoUpstream.base}ws"
    with stack.websocket(path, subprotocols=["a.echo", "b.echo"]) as ws:
        assert ws.subprotocol == "b.echo"
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01\x02binary")
        assert ws.recv(timeout=5) == b"yranib\x02\x01\x00"
        ws.send("close 4321")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 4321
    seen = {k.lower(): v for k, v in stack.echo.events["ws_headers"].items()}
    assert seen["authorization"] == "<the token>"
    assert "sessionid" not in seen.get("cookie", "")
    assert "origin" not in seen

    stack.echo.events.pop("ws_close_code", None)
    with stack.websocket(path) as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"
        ws.close(code=4000)
    deadline = time.monotonic() + 5
    while "ws_close_code" not in stack.echo.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.echo.events["ws_close_code"] == 4000


def test_a_websocket_the_server_refuses_is_refused(stack):
    with pytest.raises(InvalidStatus):
        stack.websocket(f"{EchoUpstream.base}headers").close()


# --- VS Code and RStudio: servers at "/" ----------------------------------------------------

def _headers(seen: dict) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in seen["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def test_vscode_gets_paths_without_the_prefix_over_its_unix_socket(stack):
    browser = stack.browser("member")
    for path, expected in [("", "/"), ("static/a%20b.js?v=1&x=%2F", "/static/a%20b.js?v=1&x=%2F"),
                           ("notebook/team-a/code/x", "/notebook/team-a/code/x")]:
        seen = browser.get(stack.url("code") + path).json()
        assert seen["path"] == expected, path
    headers = _headers(seen)
    assert headers["host"] == ["localhost"]
    assert "x-rstudio-root-path" not in headers
    assert "authorization" not in headers  # no token: the socket's folder keeps others out
    assert stack.sessions["member"] not in json.dumps(seen)
    # The name alone still goes to the prefix with its slash first.
    bare = browser.get(stack.url("code").rstrip("/"), allow_redirects=False)
    assert bare.headers["location"] == f"/notebook/{NAMESPACE}/code/"


def test_rstudio_gets_its_root_path_header_and_never_the_browsers(stack):
    seen = stack.browser("owner").post(
        stack.url("rstudio") + "rpc/init", data=b"{}",
        headers={"X-RStudio-Root-Path": "/evil/", "Origin": stack.server.url}).json()
    assert seen["path"] == "/rpc/init"
    headers = _headers(seen)
    assert headers["x-rstudio-root-path"] == [f"/notebook/{NAMESPACE}/rstudio/"]
    assert headers["host"] == [f"127.0.0.1:{stack.root.port}"]


@pytest.mark.parametrize(("notebook", "kind", "location"), [
    ("code", "login", "/notebook/team-a/code/login?next=%2F"),
    ("code", "relative", "./?folder=/home/jovyan"),
    ("code", "own-origin", "/notebook/team-a/code/own"),
    ("code", "browser-origin", "/notebook/team-a/code/seen"),
    ("code", "elsewhere", "https://example.org/login"),
    ("rstudio", "rooted", "/notebook/team-a/rstudio/auth-sign-in"),
    ("rstudio", "own-origin", "/notebook/team-a/rstudio/own"),
    ("rstudio", "login", "/notebook/team-a/rstudio/login?next=%2F"),
])
def test_redirects_of_servers_at_root_are_put_back_under_the_prefix(stack, notebook, kind,
                                                                    location):
    response = stack.browser("owner").get(stack.url(notebook) + f"go/{kind}",
                                          allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == location


def test_vscode_websockets_go_through_its_socket_without_the_prefix(stack):
    with stack.websocket(f"/notebook/{NAMESPACE}/code/ws?reconnectionToken=r") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "/ws?reconnectionToken=r hello"
    with pytest.raises(InvalidStatus):
        stack.websocket(f"/notebook/{NAMESPACE}/code/ws", who="viewer").close()


def test_strangers_cannot_reach_vscode_or_rstudio(stack):
    for who in ("viewer", "stranger"):
        for notebook in ("code", "rstudio"):
            response = stack.browser(who).get(stack.url(notebook), allow_redirects=False)
            assert response.status_code == 404, (who, notebook)
    anonymous = stack.browser(None).get(stack.url("code"), allow_redirects=False)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["location"]


# --- header mode, caching (in-process) -------------------------------------------------------

@pytest.fixture
def fixed_spawner(monkeypatch):
    from notebooks import spawners

    monkeypatch.setitem(spawners.SPAWNERS, "local",
                        "tests.notebooks.jupyter.FixedEndpointSpawner")


@pytest.fixture
def echo_notebook(transactional_db, profile, echo, fixed_spawner):
    from notebooks.models import Notebook

    return Notebook.objects.create(profile=profile, name="echo", image="jupyter",
                                   status="running", runtime=echo.runtime)


def _call(app, path: str, headers: list[tuple[bytes, bytes]], proxy=None) -> dict:
    """One GET through ``app`` (``proxy``, or the proxy inside it) on a fresh event loop."""
    from asgiref.sync import async_to_sync
    from channels.testing import HttpCommunicator

    async def call():
        try:
            communicator = HttpCommunicator(app, "GET", path, headers=headers)
            return await communicator.get_response(timeout=10)
        finally:
            await (proxy or app).close()  # its pooled client belongs to this loop

    return async_to_sync(call)()


def _session_cookie(client, user) -> list[tuple[bytes, bytes]]:
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


def test_header_mode_takes_the_identity_from_the_trusted_header(settings, echo_notebook,
                                                                member, viewer):
    from notebooks.proxy import NotebookProxy

    settings.KFDASH_AUTH = "header"
    settings.KFDASH_TRUSTED_PROXY = True
    app = NotebookProxy()
    path = f"{EchoUpstream.base}headers"
    ok = _call(app, path, [(b"kubeflow-userid", b"Member@Example.com")])
    assert ok["status"] == 200
    forwarded = {k.lower(): v for k, v in json.loads(ok["body"])["headers"]}
    assert forwarded["authorization"] == "<the token>"
    assert _call(app, path, [(b"kubeflow-userid", b"viewer@example.com")])["status"] == 404
    assert _call(app, path, [])["status"] == 302


def test_header_mode_websockets(settings, echo_notebook, member, viewer):
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from notebooks.proxy import NotebookProxy

    settings.KFDASH_AUTH = "header"
    settings.KFDASH_TRUSTED_PROXY = True
    app = NotebookProxy()

    async def scenario():
        try:
            member_ws = WebsocketCommunicator(app, f"{EchoUpstream.base}ws", headers=[
                (b"kubeflow-userid", b"member@example.com")], subprotocols=["b.echo"])
            connected, subprotocol = await member_ws.connect(timeout=10)
            assert connected and subprotocol == "b.echo"
            await member_ws.send_to(bytes_data=b"abc")
            assert await member_ws.receive_from(timeout=5) == b"cba"
            await member_ws.disconnect()
            viewer_ws = WebsocketCommunicator(app, f"{EchoUpstream.base}ws", headers=[
                (b"kubeflow-userid", b"viewer@example.com")])
            connected, _ = await viewer_ws.connect(timeout=10)
            assert not connected
        finally:
            await app.close()

    async_to_sync(scenario)()


def test_warm_requests_skip_the_database_but_not_the_access_check(
        client, echo_notebook, member, viewer, monkeypatch):
    from notebooks import proxy as proxy_module

    lookups = []
    real = proxy_module._look_up

    def counting(*args):
        lookups.append(args[0][0])
        return real(*args)

    monkeypatch.setattr(proxy_module, "_look_up", counting)
    app = proxy_module.NotebookProxy(cache_seconds=60)
    path = f"{EchoUpstream.base}headers"
    member_cookie = _session_cookie(client, member)
    assert _call(app, path, member_cookie)["status"] == 200
    assert _call(app, path, member_cookie)["status"] == 200
    assert len(lookups) == 1
    # Another person's request is checked for that person, endpoint cache or not.
    assert _call(app, path, _session_cookie(client, viewer))["status"] == 404
    assert len(lookups) == 2


def test_revoked_access_takes_effect_once_the_cache_expires(client, echo_notebook, member,
                                                            owner, profile):
    from notebooks.proxy import NotebookProxy

    app = NotebookProxy(cache_seconds=0.3)
    path = f"{EchoUpstream.base}headers"
    cookie = _session_cookie(client, member)
    assert _call(app, path, cookie)["status"] == 200
    profile.remove_contributor(member.email, owner)
    time.sleep(0.35)
    assert _call(app, path, cookie)["status"] == 404


def test_the_route_sends_only_notebook_paths_to_the_proxy(client, echo_notebook, member):
    from dashboard.asgi import application
    from notebooks.proxy import proxy

    cookie = _session_cookie(client, member)
    proxied = _call(application, f"{EchoUpstream.base}headers", cookie, proxy)
    proxy.clear_caches()
    assert proxied["status"] == 200 and b"sha256" in proxied["body"]
    django_page = _call(application, "/notebookx/", [*cookie, (b"host", b"localhost")], proxy)
    assert django_page["status"] == 404
    assert b"There is no notebook server" not in django_page["body"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 64, 1000])
def test_the_scrubber_finds_the_secret_across_any_chunking(size):
    from notebooks.proxy import _Scrubber

    secret = b"s3cr3t-t0ken"
    text = b"ss3cr3t-t0ke" + secret + b"-" + secret + secret + b"s3cr3t" + b"tail s3cr3"
    scrubber = _Scrubber(secret)
    out = b"".join(scrubber.feed(text[i:i + size]) for i in range(0, len(text), size))
    out += scrubber.flush()
    assert out == text.replace(secret, b"")


# --- the real local spawner --------------------------------------------------------------------


def test_a_notebook_started_by_the_local_spawner_is_reachable(kfdash_server):
    server = kfdash_server()
    start = """
import json
from dashboard.models import Profile, User
from notebooks.models import Notebook
from notebooks.spawners import spawner_for
owner = User.objects.create_user("owner@example.com", "pw-owner-0123456789")
profile = Profile.register("team-a", owner)
notebook = Notebook.objects.create(profile=profile, name="real", image="jupyter")
spawner_for(notebook).start(print)
notebook.refresh_from_db()
print("STATUS=" + notebook.status)
"""
    out = run_shell(server, start)
    try:
        assert "STATUS=running" in out, out
        session = run_shell(server, SESSION_OF, email="owner@example.com")
        key = session.split("SESSION=", 1)[1].strip()
        browser = requests.Session()
        browser.cookies.set("sessionid", key)
        status = browser.get(f"{server.url}/notebook/team-a/real/api/status")
        assert status.status_code == 200, status.text
        page = browser.get(f"{server.url}/notebook/team-a/real/lab")
        assert page.status_code == 200
        assert '"token": ""' in page.text
    finally:
        run_shell(server, STOP_ALL)


SESSION_OF = """
import json
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from dashboard.models import User
user = User.objects.get(email=json.loads(ARGS)["email"])
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print("SESSION=" + session.session_key)
"""

STOP_ALL = """
from notebooks.models import Notebook
from notebooks.spawners import spawner_for
for notebook in Notebook.objects.all():
    spawner_for(notebook).stop(grace=5)
"""



# --- a real code-server, started by the local spawner ----------------------------------------

def _code_server() -> str | None:
    """code-server from KFDASH_CODE_SERVER or PATH (it is not a kfdash dependency)."""
    import os
    import shutil

    return os.environ.get("KFDASH_CODE_SERVER") or shutil.which("code-server")


START_VSCODE = """
import json
from dashboard.models import Profile, User
from notebooks.models import Notebook, Volume
from notebooks.spawners import spawner_for
owner = User.objects.create_user("owner@example.com", "pw-owner-0123456789")
profile = Profile.register("team-a", owner)
workspace = Volume.objects.create(profile=profile, name="code-workspace", size="1Gi")
notebook = Notebook.objects.create(profile=profile, name="code", image="codeserver",
                                   server_type="group-one", workspace=workspace,
                                   created_by=owner)
spawner_for(notebook).start(print)
notebook.refresh_from_db()
print("STATUS=" + notebook.status)
print("RUNTIME=" + json.dumps(notebook.runtime))
print("WORKSPACE=" + str(workspace.local_path))
"""


@pytest.mark.skipif(_code_server() is None, reason=(
    "no code-server here: set KFDASH_CODE_SERVER to one, or put it on PATH (the npm "
    "package code-server; 4.100.x is the last for Node 20)"))
def test_a_real_vscode_server_started_by_the_local_spawner_is_reachable(kfdash_server):
    import os
    import stat

    code_server = _code_server()
    server = kfdash_server(KFDASH_CODE_SERVER=code_server, PATH=os.pathsep.join(
        [str(Path(code_server).parent), os.environ["PATH"]]))
    out = run_shell(server, START_VSCODE)
    try:
        assert "STATUS=running" in out, out
        runtime = json.loads(out.split("RUNTIME=", 1)[1].splitlines()[0])
        workspace = out.split("WORKSPACE=", 1)[1].splitlines()[0]
        # On a socket in a folder only kfdash's account may enter; no port, no token.
        assert "port" not in runtime and "token" not in runtime
        sock = Path(runtime["socket"])
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
        assert sock.parent == server.data_dir / "run"

        key = run_shell(server, SESSION_OF, email="owner@example.com").split(
            "SESSION=", 1)[1].strip()
        browser = requests.Session()
        browser.cookies.set("sessionid", key)
        base = f"{server.url}/notebook/team-a/code/"
        first = browser.get(base, allow_redirects=False)
        assert first.status_code == 302
        assert first.headers["location"] == f"./?folder={workspace}"
        page = browser.get(base + f"?folder={workspace}")
        assert page.status_code == 200, page.text[:500]
        assert "workbench" in page.text
        assert browser.get(base + "healthz").json()["status"] in ("alive", "expired")
        # The editor's connection: a websocket at code-server's root, through the socket.
        with ws_client.connect(
                server.url.replace("http", "ws", 1) + "/notebook/team-a/code/"
                f"?reconnectionToken={uuid.uuid4()}&reconnection=false&skipWebSocketFrames=false",
                additional_headers={"Cookie": f"sessionid={key}"}, origin=server.url,
                open_timeout=10, compression=None) as ws:
            assert ws.protocol.state.name == "OPEN"
        # Nobody else gets in.
        assert requests.get(base, allow_redirects=False).status_code == 302  # to log in
    finally:
        run_shell(server, STOP_ALL)
    assert not sock.exists()
    # 503 once the proxy's endpoint cache (2 s) has let go of the stopped server.
    deadline = time.monotonic() + 10
    while (stopped := browser.get(base)).status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stopped.status_code == 503
