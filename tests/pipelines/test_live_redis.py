"""Live run pages across processes, through a real Redis (Debian's redis-server, started
here on a free loopback port): a change committed by another process reaches a page
connected to a kfdash server, and an action on one server reaches a page on another
server sharing its database — as when several processes serve behind one address."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.servers import free_port, log_in, stop_process

PASSWORD = "correct horse battery staple"
ANA = "ana@example.com"
NS = "ana-lab"


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A throwaway redis-server on loopback, without persistence; yields its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.fail("redis-server is not installed: `sh .ci/system-deps` installs it")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "redis.log", "w") as log:
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", str(folder)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass  # not listening yet
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (folder / "redis.log").read_text()
                raise RuntimeError(f"redis-server did not start:\n{log_text}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    with redis_server(tmp_path / "redis") as url:
        yield url


# Runs in a server's `manage.py shell`: the rows of a running run, its id printed last.
MAKE_RUN = """
from dashboard.models import Profile, User
from tests.pipelines.run_rows import every_state_run
print(every_state_run(Profile.objects.get(name={ns!r}), User.objects.get(email={email!r})).pk)
"""

# Runs in another process: what an engine commits when a step ends.
FINISH_EVALUATE = """
from pipelines.models import Run
run = Run.objects.get(pk={run_id!r})
task = run.tasks.get(node_id="evaluate")
task.state = "SUCCEEDED"
task.exit_code = 0
run.commit_changes([task])
"""


def make_run(server) -> str:
    return server.manage("shell", "-c", MAKE_RUN.format(ns=NS, email=ANA)).stdout.split()[-1]


def page_socket(server, browser, run_id: str) -> ClientConnection:
    """The websocket the run page opens, with the page's session cookie and origin."""
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    return connect(f"{server.url.replace('http', 'ws')}/ws/ns/{NS}/runs/{run_id}/",
                   origin=server.url, additional_headers={"Cookie": cookie}, open_timeout=10)


def receive(ws: ClientConnection, timeout: float = 10) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def test_a_change_committed_elsewhere_reaches_the_page_through_redis(kfdash_server, redis_url):
    server = kfdash_server(CHANNEL_LAYER_URL=redis_url)
    server.manage("create_user", ANA, "--password", PASSWORD, "--namespace", NS)
    run_id = make_run(server)
    browser = log_in(server, ANA, PASSWORD)
    with page_socket(server, browser, run_id) as ws:
        snapshot = receive(ws)
        assert snapshot["type"] == "snapshot" and snapshot["revision"] == 0
        evaluate = next(t for t in snapshot["tasks"] if t["node_id"] == "evaluate")
        assert evaluate["state"] == "RUNNING"
        server.manage("shell", "-c", FINISH_EVALUATE.format(run_id=run_id))
        run_event, task_event = receive(ws), receive(ws)
        assert (run_event["type"], run_event["revision"]) == ("run", 1)
        assert (task_event["node_id"], task_event["state"], task_event["revision"]) == (
            "evaluate", "SUCCEEDED", 1)


def test_a_page_idle_for_longer_than_a_blocking_pop_keeps_its_socket(kfdash_server,
                                                                       redis_url):
    """channels_redis waits for a page's events in 5 s blocking pops; the Redis client's
    reads must outlast them (redis-py 8's default of 5 s crashed the consumer, closing
    the page's socket every few seconds)."""
    server = kfdash_server(CHANNEL_LAYER_URL=redis_url)
    server.manage("create_user", ANA, "--password", PASSWORD, "--namespace", NS)
    run_id = make_run(server)
    with page_socket(server, log_in(server, ANA, PASSWORD), run_id) as ws:
        assert receive(ws)["type"] == "snapshot"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=12)  # two pops' time with nothing to say: still open
        server.manage("shell", "-c", FINISH_EVALUATE.format(run_id=run_id))
        assert receive(ws)["revision"] == 1
    assert "Traceback" not in server.log()


def test_without_redis_another_process_cannot_reach_the_page(kfdash_server):
    """Why the test above needs Redis: with the in-memory layer only the server's own
    process publishes to its pages."""
    server = kfdash_server()
    server.manage("create_user", ANA, "--password", PASSWORD, "--namespace", NS)
    run_id = make_run(server)
    with page_socket(server, log_in(server, ANA, PASSWORD), run_id) as ws:
        assert receive(ws)["type"] == "snapshot"
        server.manage("shell", "-c", FINISH_EVALUATE.format(run_id=run_id))
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.5)


def test_two_servers_on_one_database_share_live_updates(kfdash_server, redis_url, tmp_path):
    shared = {"CHANNEL_LAYER_URL": redis_url, "SECRET_KEY": "same-on-every-replica-" * 3}
    first = kfdash_server(**shared)
    second = kfdash_server(DATABASE_URL=f"sqlite:///{first.data_dir / 'kfdash.sqlite3'}",
                           **shared)
    first.manage("create_user", ANA, "--password", PASSWORD, "--namespace", NS)
    run_id = make_run(first)
    on_first = log_in(first, ANA, PASSWORD)
    on_second = log_in(second, ANA, PASSWORD)
    with page_socket(second, on_second, run_id) as ws:
        assert receive(ws)["revision"] == 0
        # Archive on the first server: its commit is published there, seen on the second.
        page = on_first.get(f"{first.url}/ns/{NS}/runs/{run_id}/", timeout=10)
        token = page.cookies.get("csrftoken") or on_first.cookies["csrftoken"]
        done = on_first.post(f"{first.url}/ns/{NS}/runs/{run_id}/archive/",
                             data={"csrfmiddlewaretoken": token}, allow_redirects=False,
                             headers={"Referer": page.url}, timeout=10)
        assert done.status_code == 302
        event = receive(ws)
        assert (event["type"], event["storage_state"], event["revision"]) == (
            "run", "ARCHIVED", 1)
