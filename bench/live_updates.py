"""Latency from a committed run change to the websocket message on a run page.

Two set-ups, each measured with 1, 50 and 200 connected pages (the issue's goal: p95 ≤ 100 ms
at 50, ≤ 250 ms at 200):

* ``memory`` (the default install): one kfdash process, in-memory channel layer; the
  changes are committed by a plain background thread of that process, as the local
  engine commits them (it executes runs on threads, pipelines/engines/local.py).
* ``redis``: ``CHANNEL_LAYER_URL`` to a real redis-server; kfdash is uvicorn as
  ``make run`` starts it, and the changes are committed by another process sharing its
  database (an engine in another replica).

A change is one ``Run.commit_changes`` of one task: a run event and a task event to the
run's group. Its time is taken by an ``on_commit`` callback registered before the one that
publishes, so a latency runs from the commit to the moment a client has read the task
event. Every process reads ``time.time()`` of this one host. Changes come every
``--interval`` seconds (latency, not throughput, is measured); a change a client has not
received 5 s after the last commit counts as dropped.

    .venv/bin/python bench/live_updates.py [--changes 200] [--interval 0.05]
        [--clients 1,50,200] [--layers memory,redis] [--own-loop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import describe_machine  # noqa: E402  (bench/machine.py)

NAMESPACE = "bench"
DRAIN_SECONDS = 5.0

SETUP = """
import json
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from dashboard.models import Profile, User
from pipelines.models import Experiment, Run, RunTask
user = User.objects.create_user("bench@example.com", "bench-password-0123456789")
profile = Profile.register("bench", user)
# Finished, so that the local engine's start-up leaves it alone: only the bench commits.
run = Run.objects.create(profile=profile, experiment=Experiment.default_for(profile, user),
                         name="bench", format="kfp-v2", document={},
                         graph={"format": "kfp-v2", "name": "bench"}, state="SUCCEEDED")
RunTask.objects.create(run=run, node_id="step", spec_id="step", display_name="step")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(json.dumps({"run": str(run.pk), "session": session.session_key}))
"""


# --- the committing side (a thread of the server, or a process of its own) ---------------


def commit_changes(run_id: str, changes: int, interval: float, go: Path, out: Path) -> None:
    """Wait for ``go`` to appear, then commit ``changes`` changes of the run's task, noting
    each commit's time by revision; write them to ``out``."""
    from django.db import connection, transaction

    from pipelines.models import Run

    while not go.exists():
        time.sleep(0.005)
    run = Run.objects.select_related("profile").get(pk=run_id)
    task = run.tasks.get()
    committed: dict[int, float] = {}
    for number in range(changes):
        task.attempts = number + 1
        revision = run.revision + 1

        def note(revision=revision) -> None:
            committed[revision] = time.time()

        with transaction.atomic():
            transaction.on_commit(note)  # registered first: runs before the publishing one
            run.commit_changes([task])
        time.sleep(interval)
    connection.close()
    out.write_text(json.dumps(committed))


def serve(args) -> None:
    """kfdash in this process (uvicorn, as `make run`) with a committing thread beside it."""
    import django

    django.setup()
    import uvicorn

    if args.own_loop:  # as before dashboard.live.serve_on: send from the thread's own loop
        from dashboard import live

        live.serve_on = lambda loop: None
    threading.Thread(target=commit_changes, daemon=True, args=(
        args.run, args.changes, args.interval, Path(args.go), Path(args.out))).start()
    uvicorn.run("dashboard.asgi:application", host="127.0.0.1", port=args.port,
                log_level="warning")


def commit_only(args) -> None:
    import django

    django.setup()
    commit_changes(args.run, args.changes, args.interval, Path(args.go), Path(args.out))


# --- the browser side ---------------------------------------------------------------------


async def pages(url: str, session: str, clients: int, changes: int, go: Path) -> list[dict]:
    """Connect ``clients`` run pages, wait for their snapshots, start the changes, and
    return for each page when it read each revision's task event."""
    from websockets.asyncio.client import connect

    origin = url.replace("ws://", "http://").split("/ws/")[0]
    sockets = [await connect(url, origin=origin, additional_headers={
        "Cookie": f"sessionid={session}"}, compression=None, max_size=None)
        for _ in range(clients)]
    for ws in sockets:
        assert json.loads(await ws.recv())["type"] == "snapshot"

    async def read(ws) -> dict:
        seen: dict[int, float] = {}
        try:
            while len(seen) < changes:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=DRAIN_SECONDS))
                if message["type"] == "task":
                    seen[message["revision"]] = time.time()
        except TimeoutError:
            pass
        await ws.close()
        return seen

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    go.touch()
    return await asyncio.gather(*readers)


def measure(layer: str, clients: int, args, work: Path) -> dict:
    from tests.pipelines.test_live_redis import redis_server
    from tests.servers import (
        free_port,
        server_env,
        start_kfdash,
        stop_process,
        wait_until_answering,
    )

    folder = work / f"{layer}-{clients}"
    go, out = folder / "go", folder / "committed.json"
    extra = []
    with redis_server(folder / "redis") if layer == "redis" else _nothing() as redis_url:
        env_extra = {"CHANNEL_LAYER_URL": redis_url} if redis_url else {}
        if layer == "redis":
            server = start_kfdash(folder / "kfdash", **env_extra)
            env, url_base = server.env, server.url
            setup = json.loads(server.manage("shell", "-c", SETUP).stdout.strip().splitlines()[-1])
            committer = subprocess.Popen(
                [sys.executable, __file__, "commit", "--run", setup["run"], "--changes",
                 str(args.changes), "--interval", str(args.interval), "--go", str(go),
                 "--out", str(out)], env=env, cwd=ROOT)
            extra = [committer]
            stop = server.stop
        else:
            data = folder / "kfdash"
            data.mkdir(parents=True)
            env = server_env(data)
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=env,
                           cwd=ROOT, check=True, capture_output=True)
            done = subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP], env=env,
                                  cwd=ROOT, check=True, capture_output=True, text=True)
            setup = json.loads(done.stdout.strip().splitlines()[-1])
            port = free_port()
            url_base = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [sys.executable, __file__, "serve", "--port", str(port), "--run", setup["run"],
                 "--changes", str(args.changes), "--interval", str(args.interval),
                 "--go", str(go), "--out", str(out)] + (["--own-loop"] if args.own_loop else []),
                env=env, cwd=ROOT)
            wait_until_answering(process, f"{url_base}/readyz", "the kfdash server")

            def stop():
                stop_process(process)

        try:
            ws_url = f"{url_base.replace('http', 'ws')}/ws/ns/{NAMESPACE}/runs/{setup['run']}/"
            seen = asyncio.run(pages(ws_url, setup["session"], clients, args.changes, go))
            deadline = time.monotonic() + 30
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            committed = {int(k): v for k, v in json.loads(out.read_text()).items()}
        finally:
            for process in extra:
                stop_process(process)
            stop()
    latencies = [(page[revision] - at) * 1000 for page in seen
                 for revision, at in committed.items() if revision in page]
    dropped = sum(1 for page in seen for revision in committed if revision not in page)
    return {"layer": layer, "clients": clients, "messages": len(latencies), "dropped": dropped,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "max": max(latencies) if latencies else float("nan")}


class _nothing:
    def __enter__(self):
        return ""

    def __exit__(self, *exc):
        return False


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", nargs="?", default="bench", choices=["bench", "serve", "commit"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--clients", default="1,50,200")
    parser.add_argument("--layers", default="memory,redis")
    parser.add_argument("--own-loop", action="store_true",
                        help="memory: the committing thread sends from an event loop of its "
                             "own, as before dashboard.live.serve_on (for comparison)")
    for hidden in ("--run", "--go", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "serve":
        return serve(args)
    if args.role == "commit":
        return commit_only(args)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    work = Path(tempfile.mkdtemp(prefix="kfdash-bench-live-"))
    rows = []
    try:
        for layer in args.layers.split(","):
            for clients in (int(c) for c in args.clients.split(",")):
                rows.append(measure(layer, clients, args, work))
                print(f"  {rows[-1]}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True
                           ).stdout.split(" v=")[-1].split()[0] if shutil.which(
                               "redis-server") else "none"
    print(describe_machine(("uvicorn", "websockets", "channels", "channels_redis", "Django"),
                           f"redis-server {redis}"))
    print(f"{args.changes} changes, one every {args.interval * 1000:.0f} ms; latency from "
          "commit to the task event read by each client"
          + ("; memory*: sent from the committing thread's own loop" if args.own_loop else ""))
    print(f"{'layer':<8}{'clients':>8}{'messages':>10}{'p50':>10}{'p95':>10}{'max':>10}"
          f"{'dropped':>9}")
    for row in rows:
        if args.own_loop and row["layer"] == "memory":
            row["layer"] = "memory*"
        print(f"{row['layer']:<8}{row['clients']:>8}{row['messages']:>10}"
              f"{row['p50']:>8.2f}ms{row['p95']:>8.2f}ms{row['max']:>8.2f}ms{row['dropped']:>9}")


if __name__ == "__main__":
    main()
