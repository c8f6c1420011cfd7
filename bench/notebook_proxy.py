"""How much the notebook proxy costs: direct to JupyterLab vs through kfdash.

Starts a real ``jupyter lab`` and a real kfdash server (uvicorn + dashboard.asgi,
as ``make run`` does) whose proxy reaches that JupyterLab, then measures, direct
and proxied, interleaved so that drift hits both alike:

* a 10 MB download (``/files/``), p50 of 20 (after warm-up);
* a kernel round trip over the kernel websocket, execute_request to
  execute_reply, p50 of 200 (and kernel_info_request to its reply);
* a small API request (``/api/status``), p50 of 200, for the per-request cost.

    .venv/bin/python bench/notebook_proxy.py [--downloads 20] [--round-trips 200] [--nginx]

With ``--nginx`` (and an ``nginx`` binary installed; kfdash does not need one), the
download and ``/api/status`` are also measured through nginx as a reverse proxy to the
same JupyterLab (a minimal configuration generated in the temporary directory: one
process, a keepalive upstream, the token set as the Authorization header), once with
nginx's default ``proxy_buffering on`` and once with ``off``: a native, copying proxy
for comparison. For each download the CPU time the proxy process (kfdash's uvicorn,
nginx) and JupyterLab consumed is read from ``/proc/<pid>/stat`` (utime + stime),
and the client's own from ``time.process_time``: the cost of each route, which the
scheduling of four processes on a few shared cores does not blur as it blurs the
wall-clock times. The routes take turns in a rotating order.

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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import requests  # noqa: E402
import websockets.sync.client as ws_client  # noqa: E402
from machine import describe_machine  # noqa: E402  (bench/machine.py)

from tests.notebooks.jupyter import start_jupyter  # noqa: E402
from tests.servers import free_port, start_kfdash, stop_process, wait_until_answering  # noqa: E402

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


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # from field 3 (state) on; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Route:
    """One way to the JupyterLab: direct, through kfdash, through nginx."""
    label: str
    session: requests.Session
    url: str  # ".../notebook/<ns>/<name>/"
    pid: int | None = None  # the proxy's process
    proxy_cpu: float = 0.0  # seconds over the measured downloads
    jupyter_cpu: float = 0.0
    client_cpu: float = 0.0  # this process's
    samples: list[float] = field(default_factory=list)


def turns(routes: list[Route], i: int) -> list[Route]:
    """The routes in a rotating order, so that none always goes first."""
    k = i % len(routes)
    return routes[k:] + routes[:k]


NGINX_CONF = """
worker_processes 1;
error_log {work}/error.log notice;
pid {work}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy_temp;
    fastcgi_temp_path {work}/fastcgi_temp;
    uwsgi_temp_path {work}/uwsgi_temp;
    scgi_temp_path {work}/scgi_temp;
    upstream jupyter {{
        server 127.0.0.1:{upstream};
        keepalive 16;
    }}
{servers}
}}
"""
NGINX_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://jupyter;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:{upstream};
            proxy_set_header Authorization "token {token}";
            proxy_buffering {buffering};
        }}
    }}
"""


@dataclass
class Nginx:
    process: subprocess.Popen
    work: Path
    ports: dict[str, int]  # proxy_buffering value -> port

    def log(self) -> str:
        path = self.work / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
         if os.access(path, os.X_OK)), None)


def nginx_version(binary: str) -> str:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    return out.strip().rsplit("/", 1)[-1]


def start_nginx(binary: str, work: Path, jupyter) -> Nginx:
    """nginx in the foreground, one process (no master), with one server per
    ``proxy_buffering`` setting, all proxying to ``jupyter`` on loopback."""
    work.mkdir(parents=True)
    ports = {buffering: free_port() for buffering in ("on", "off")}
    servers = "".join(NGINX_SERVER.format(port=port, upstream=jupyter.port,
                                          token=jupyter.token, buffering=buffering)
                      for buffering, port in ports.items())
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, upstream=jupyter.port, servers=servers))
    with open(work / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            [binary, "-p", str(work), "-c", str(conf), "-g", "daemon off; master_process off;"],
            stdout=subprocess.DEVNULL, stderr=stderr)
    nginx = Nginx(process, work, ports)
    try:
        for port in ports.values():
            wait_until_answering(
                process, f"http://127.0.0.1:{port}{jupyter.base_url}api/status", "nginx",
                log=lambda: nginx.log() + (work / "stderr.log").read_text())
    except RuntimeError:
        nginx.stop()
        raise
    return nginx


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
    parser.add_argument("--nginx", action="store_true",
                        help="also measure the download and /api/status through nginx")
    args = parser.parse_args()
    measures = {args.only} if args.only else {"status", "download", "kernel"}
    nginx_bin = nginx_binary() if args.nginx else None
    if args.nginx and nginx_bin is None:
        print("--nginx: no nginx binary found (e.g. apt-get install nginx-light); "
              "measuring without it", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="kfdash-bench-proxy-"))
    jupyter = start_jupyter(work / "jupyter", NAMESPACE, NAME)
    server = nginx = None
    nginx_log = ""
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
        routes = [Route("direct", direct, direct_url),
                  Route("kfdash", proxied, proxied_url, server.process.pid)]
        if nginx_bin and measures & {"status", "download"}:
            nginx = start_nginx(nginx_bin, work / "nginx", jupyter)
            for buffering, port in nginx.ports.items():
                routes.append(Route(f"nginx, proxy_buffering {buffering}", requests.Session(),
                                    f"http://127.0.0.1:{port}{base}", nginx.process.pid))

        results: dict[str, tuple[float, float]] = {}

        # Small requests: the per-request cost (access check from cache, pooled upstream).
        for i in range(20 if "status" in measures else 1):
            for route in turns(routes, i):
                small(route.session, route.url + "api/status")
        if "status" in measures:
            samples: dict[str, list[float]] = {route.label: [] for route in routes}
            for i in range(args.round_trips):
                for route in turns(routes, i):
                    samples[route.label].append(small(route.session, route.url + "api/status"))
            d = p50(samples["direct"])
            results["GET /api/status"] = (d, p50(samples["kfdash"]))
            for route in routes[2:]:
                results[f"GET /api/status, {route.label}"] = (d, p50(samples[route.label]))

        if "download" in measures:
            for i in range(3):
                for route in turns(routes, i):
                    download(route.session, route.url + "files/bench.bin")
            jupyter_pid = jupyter.process.pid
            for i in range(args.downloads):
                for route in turns(routes, i):
                    proxy_before = cpu_seconds(route.pid) if route.pid else 0.0
                    jupyter_before = cpu_seconds(jupyter_pid)
                    client_before = time.process_time()
                    route.samples.append(download(route.session, route.url + "files/bench.bin"))
                    route.client_cpu += time.process_time() - client_before
                    route.jupyter_cpu += cpu_seconds(jupyter_pid) - jupyter_before
                    if route.pid:
                        route.proxy_cpu += cpu_seconds(route.pid) - proxy_before
            d = p50(routes[0].samples)
            results["10 MB download"] = (d, p50(routes[1].samples))
            for route in routes[2:]:
                results[f"10 MB download, {route.label}"] = (d, p50(route.samples))

        if "kernel" in measures:
            kernel_round_trips(args, results, direct, direct_url, base, jupyter, server,
                               session_key)
    finally:
        if nginx:
            nginx.stop()
            nginx_log = nginx.log()
        if server:
            server.stop()
        jupyter.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(environment(nginx_bin if nginx else None))
    width = max(36, *(len(label) + 2 for label in results))
    print(f"{'measure (p50)':<{width}}{'direct':>10}{'proxied':>10}{'added':>10}"
          f"{'overhead':>10}")
    for label, (d, p) in results.items():
        print(f"{label:<{width}}{d * 1000:>8.2f}ms{p * 1000:>8.2f}ms{(p - d) * 1000:>8.2f}ms"
              f"{overhead(d, p):>10}")
    if "10 MB download" in results:
        mb = SIZE / 1024 / 1024
        print("download throughput: " + ", ".join(
            f"{route.label} {mb / p50(route.samples):.0f} MiB/s" for route in routes))
        n = len(routes[0].samples)
        print(f"CPU per download (proxy and jupyter: /proc/<pid>/stat utime+stime, in "
              f"{1000 / os.sysconf('SC_CLK_TCK'):g} ms ticks; client: process_time; "
              f"mean of {n}):")
        print(f"{'route':<{width}}{'proxy':>10}{'per MiB':>10}{'jupyter':>10}{'client':>10}")
        for route in routes:
            proxy = f"{route.proxy_cpu / n * 1000:>8.2f}ms" if route.pid else f"{'-':>10}"
            per_mb = f"{route.proxy_cpu / n / mb * 1000:>8.3f}ms" if route.pid else f"{'-':>10}"
            print(f"{route.label:<{width}}{proxy}{per_mb}{route.jupyter_cpu / n * 1000:>8.2f}ms"
                  f"{route.client_cpu / n * 1000:>8.2f}ms")
    spilled = nginx_log.count("buffered to a temporary file")
    if spilled:
        print(f"nginx buffered {spilled} responses to a temporary file (proxy_buffering on)")


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


def environment(nginx: str | None = None) -> str:
    return describe_machine(
        ("uvicorn", "aiohttp", "websockets", "channels", "Django", "jupyter_server",
         "jupyterlab", "ipykernel", "tornado"),
        *([f"nginx {nginx_version(nginx)}"] if nginx else []))


if __name__ == "__main__":
    main()
