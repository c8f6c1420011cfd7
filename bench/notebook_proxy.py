"""How much the notebook proxy costs: direct to JupyterLab vs through kfdash.

Starts a real ``jupyter lab`` and a real kfdash server (uvicorn + dashboard.asgi,
as ``make run`` does) whose proxy reaches that JupyterLab, then measures, direct
and proxied, interleaved so that drift hits both alike:

* a 10 MB download (``/files/``), p50 of 20 (after warm-up);
* a kernel round trip over the kernel websocket, execute_request to
  execute_reply, p50 of 200 (and kernel_info_request to its reply);
* a small API request (``/api/status``), p50 of 200, for the per-request cost.

    .venv/bin/python bench/notebook_proxy.py [--downloads 20] [--round-trips 200]

Direct requests carry the token; proxied ones the kfdash session cookie, as a
browser's would. Websocket clients do not negotiate compression either way.
Jupyter's websockets leave Nagle's algorithm on, so a client that delays its ACKs
(as Linux does) waits ~40 ms for a kernel's second message; the proxy acknowledges
at once, which makes proxied round trips faster than direct ones. The last line
measures with the direct client quick-ACKing too: the proxy's own cost per round trip.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import requests  # noqa: E402
import websockets.sync.client as ws_client  # noqa: E402

from tests.notebooks.jupyter import start_jupyter  # noqa: E402
from tests.servers import start_kfdash  # noqa: E402

NAMESPACE, NAME = "bench", "lab"
SIZE = 10 * 1024 * 1024

SETUP = """
import json
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from dashboard.models import Profile, User
from notebooks.models import Notebook
args = json.loads(ARGS)
user = User.objects.create_user("bench@example.com", "bench-password-0123456789")
profile = Profile.register(args["namespace"], user)
Notebook.objects.create(profile=profile, name=args["name"], image="jupyter",
                        status="running", runtime=args["runtime"])
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print("SESSION=" + session.session_key)
"""


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def overhead(direct: float, proxied: float) -> str:
    return f"{(proxied / direct - 1) * 100:+.1f}%"


def download(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    size = 0
    with session.get(url, stream=True) as response:
        response.raise_for_status()
        for chunk in response.iter_content(256 * 1024):
            size += len(chunk)
    elapsed = time.perf_counter() - start
    assert size == SIZE, size
    return elapsed


def small(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    session.get(url).raise_for_status()
    return time.perf_counter() - start


EXECUTE = {"code": "1", "silent": False, "store_history": False, "user_expressions": {},
           "allow_stdin": False, "stop_on_error": True}


def kernel_message(session_id: str, msg_type: str, content: dict) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    return msg_id, json.dumps({
        "header": {"msg_id": msg_id, "msg_type": msg_type, "username": "bench",
                   "session": session_id, "version": "5.3", "date": "2026-01-01T00:00:00Z"},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": content,
    })


def round_trip(ws, session_id: str, msg_type: str = "execute_request",
               content: dict = EXECUTE, quick_ack: bool = False) -> float:
    """Seconds from sending a shell request to receiving its reply. ``quick_ack``:
    acknowledge each message at once (TCP_QUICKACK), as the proxy does upstream."""
    msg_id, message = kernel_message(session_id, msg_type, content)
    reply_type = msg_type.replace("_request", "_reply")
    start = time.perf_counter()
    ws.send(message)
    while True:
        raw = ws.recv(timeout=30)
        if quick_ack:
            ws.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        reply = json.loads(raw)
        if reply["msg_type"] == reply_type and reply["parent_header"].get("msg_id") == msg_id:
            return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--downloads", type=int, default=20)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--only", choices=["status", "download", "kernel"], default=None,
                        help="measure one thing only (e.g. while tuning)")
    args = parser.parse_args()
    measures = {args.only} if args.only else {"status", "download", "kernel"}

    work = Path(tempfile.mkdtemp(prefix="kfdash-bench-proxy-"))
    jupyter = start_jupyter(work / "jupyter", NAMESPACE, NAME)
    server = None
    try:
        server = start_kfdash(work / "kfdash",
                              DJANGO_SETTINGS_MODULE="tests.notebooks.proxy_settings")
        spec = {"namespace": NAMESPACE, "name": NAME, "runtime": jupyter.runtime}
        code = f"ARGS = {json.dumps(json.dumps(spec))}\n"
        out = server.manage("shell", "-c", code + SETUP).stdout
        session_key = out.split("SESSION=", 1)[1].strip()
        (jupyter.root_dir / "bench.bin").write_bytes(os.urandom(SIZE))

        base = f"/notebook/{NAMESPACE}/{NAME}/"
        direct_url = jupyter.url + base
        proxied_url = server.url + base
        direct = requests.Session()
        direct.headers["Authorization"] = f"token {jupyter.token}"
        proxied = requests.Session()
        proxied.cookies.set("sessionid", session_key)

        results: dict[str, tuple[float, float]] = {}

        # Small requests: the per-request cost (access check from cache, pooled upstream).
        for _ in range(20 if "status" in measures else 1):
            small(direct, direct_url + "api/status")
            small(proxied, proxied_url + "api/status")
        if "status" in measures:
            d, p = [], []
            for _ in range(args.round_trips):
                d.append(small(direct, direct_url + "api/status"))
                p.append(small(proxied, proxied_url + "api/status"))
            results["GET /api/status"] = (p50(d), p50(p))

        if "download" in measures:
            for _ in range(3):
                download(direct, direct_url + "files/bench.bin")
                download(proxied, proxied_url + "files/bench.bin")
            d, p = [], []
            for _ in range(args.downloads):
                d.append(download(direct, direct_url + "files/bench.bin"))
                p.append(download(proxied, proxied_url + "files/bench.bin"))
            results["10 MB download"] = (p50(d), p50(p))

        if "kernel" in measures:
            kernel_round_trips(args, results, direct, direct_url, base, jupyter, server,
                               session_key)
    finally:
        if server:
            server.stop()
        jupyter.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(environment())
    print(f"{'measure (p50)':<36}{'direct':>10}{'proxied':>10}{'added':>10}{'overhead':>10}")
    for label, (d, p) in results.items():
        print(f"{label:<36}{d * 1000:>8.2f}ms{p * 1000:>8.2f}ms{(p - d) * 1000:>8.2f}ms"
              f"{overhead(d, p):>10}")
    if "10 MB download" in results:
        mb = SIZE / 1024 / 1024
        d, p = results["10 MB download"]
        print(f"download throughput: direct {mb / d:.0f} MiB/s, proxied {mb / p:.0f} MiB/s")


def kernel_round_trips(args, results, direct, direct_url, base, jupyter, server,
                       session_key) -> None:
    """Kernel round trips over the kernel websocket, direct and proxied."""
    kernel = direct.post(direct_url + "api/kernels", json={"name": "python3"}).json()["id"]
    channels = f"{base}api/kernels/{kernel}/channels"
    direct_ws = ws_client.connect(
        jupyter.url.replace("http", "ws", 1) + channels + "?session_id=d",
        additional_headers={"Authorization": f"token {jupyter.token}"},
        compression=None, max_size=None)
    proxied_ws = ws_client.connect(
        server.url.replace("http", "ws", 1) + channels + "?session_id=p",
        additional_headers={"Cookie": f"sessionid={session_key}"}, origin=server.url,
        compression=None, max_size=None)
    with direct_ws, proxied_ws:
        for _ in range(20):
            round_trip(direct_ws, "d")
            round_trip(proxied_ws, "p")
        d, p = [], []
        for _ in range(args.round_trips):
            d.append(round_trip(direct_ws, "d"))
            p.append(round_trip(proxied_ws, "p"))
        results["kernel round trip"] = (p50(d), p50(p))
        d, p = [], []
        for _ in range(args.round_trips):
            d.append(round_trip(direct_ws, "d", "kernel_info_request", {}))
            p.append(round_trip(proxied_ws, "p", "kernel_info_request", {}))
        results["kernel_info round trip"] = (p50(d), p50(p))
        # Without Jupyter's Nagle stall (see notebooks/proxy.py, _quick_acker): the
        # direct client acknowledges at once too, which leaves the proxy's own cost.
        d, p = [], []
        for _ in range(args.round_trips):
            d.append(round_trip(direct_ws, "d", quick_ack=True))
            p.append(round_trip(proxied_ws, "p", quick_ack=True))
        results["kernel round trip, both quick-ACK"] = (p50(d), p50(p))
    direct.delete(direct_url + f"api/kernels/{kernel}")


def environment() -> str:
    from importlib.metadata import version

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = ", ".join(f"{name} {version(name)}" for name in (
        "uvicorn", "aiohttp", "websockets", "channels", "Django", "jupyter_server",
        "jupyterlab", "ipykernel", "tornado"))
    return (f"{time.strftime('%Y-%m-%d')}; {cpu} x{os.cpu_count()}; "
            f"Python {platform.python_version()}; {packages}")


if __name__ == "__main__":
    main()
