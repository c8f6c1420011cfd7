"""Memory of a kfdash server: resident size idle, while a pipeline of 20 parallel steps
runs, while 50 websocket clients watch that run, and idle again afterwards.

A real server is started as ``make run`` starts it (``tests/servers.py``: uvicorn serving
``dashboard.asgi``, local mode, its own data dir and SQLite file), with
``KFDASH_RUN_PARALLELISM=20`` so that the local engine may run all 20 steps at once (its
default is one per core). A user with a namespace and an API token are made with
``manage.py create_user`` / ``create_token``. Memory is read from ``/proc``: RSS, PSS,
USS (private pages) and anonymous memory (heap and stacks, which other processes mapping
the same libraries do not move, unlike PSS and USS) from ``smaps_rollup``, the peak
``VmHWM`` from ``status``. For the steps PSS is the fair measure: they are forks of the
engine's warm Python and share most of their pages with it and with each other.

Points measured:

* ``idle``: right after the server answered ``/readyz``;
* ``warm``: after every page type, API list and detail and websocket route was loaded
  once (two one-step runs give the run, step, log, output and compare pages something
  to show); what each request added to the anonymous memory is listed too;
* ``20 steps``: a KFP v2 pipeline of 20 independent tasks, each sleeping ``--sleep``
  seconds (compiled here by the kfp SDK, caching off), uploaded and started through the
  v2beta1 API; sampled every second while all 20 run. The server process alone, the step
  processes (every process of a session other than the server's under it: each step is a
  process group and session of its own) and the engine's helpers (the warm Python server,
  in the server's session) on their own;
* ``20 steps + 50 ws``: the same pipeline again, 50 run pages (``websockets``, session
  cookie from the login form) connected to ``ws/ns/<ns>/runs/<id>/`` and reading its
  events meanwhile;
* ``after``: the run finished, the clients gone; and again after the engine's idle step
  workers have left (``WORKER_IDLE_SECONDS`` + 5 s).

``--cycles`` repeats the two runs and the ``after`` points, to tell memory kept for
reuse from memory that grows with every run.

    .venv/bin/python bench/memory.py [--steps 20] [--clients 50] [--sleep 12] [--cycles 2]
        [--server-env NAME=VALUE ...] [--tracemalloc FRAMES]

``--tracemalloc`` starts the server with a ``sitecustomize`` that traces its allocations
and dumps a snapshot (after a full collection) at each point, then prints what grew and
shrank in between, by source line: to tell Python objects kept from memory the allocator
keeps. ``--server-env`` tries allocator settings (``MALLOC_ARENA_MAX``, ``PYTHONMALLOC``).
"""

# No "from __future__ import annotations": kfp reads the component's annotations as types.
import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import describe_machine  # noqa: E402  (bench/machine.py)

from tests.servers import KfdashServer, log_in, start_kfdash  # noqa: E402

NAMESPACE, EMAIL, PASSWORD = "bench", "bench@example.com", "bench-memory-password-0123"
IDLE_WORKERS_GONE = 65.0  # pipelines.engines.processes.WORKER_IDLE_SECONDS (60) + margin


# --- reading /proc --------------------------------------------------------------------------


def _kib(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Memory:
    """One process's memory in KiB (0 when it is gone)."""

    rss: int = 0
    pss: int = 0
    uss: int = 0
    anon: int = 0  # anonymous pages: heap, stacks; not moved by other processes' sharing
    hwm: int = 0
    threads: int = 0


def memory(pid: int) -> Memory:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return Memory()
    return Memory(rss=_kib(rollup, "Rss"), pss=_kib(rollup, "Pss"),
                  uss=_kib(rollup, "Private_Clean") + _kib(rollup, "Private_Dirty"),
                  anon=_kib(rollup, "Anonymous"), hwm=_kib(status, "VmHWM"),
                  threads=_kib(status, "Threads"))


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def descendants(root: int, table: dict[int, tuple[int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class Sample:
    server: Memory
    steps: int  # step sessions (one per running step)
    step_processes: int
    step_pss: int
    helpers: int
    helper_pss: int
    clients: int = 0
    messages: int = 0


def sample(server_pid: int, clients: int = 0, messages: int = 0) -> Sample:
    """The server, its helpers (same session: the warm Python) and its steps (each in a
    session of its own, with whatever it started)."""
    table = process_table()
    own_session = table[server_pid][1]
    helpers, steps = [], []
    for pid in descendants(server_pid, table):
        (helpers if table[pid][1] == own_session else steps).append(pid)
    step_memory = [memory(pid) for pid in steps]
    return Sample(server=memory(server_pid), steps=len({table[pid][1] for pid in steps}),
                  step_processes=len(steps), step_pss=sum(m.pss for m in step_memory),
                  helpers=len(helpers), helper_pss=sum(memory(pid).pss for pid in helpers),
                  clients=clients, messages=messages)


# --- the pipeline ---------------------------------------------------------------------------


def compile_pipeline(steps: int, folder: Path) -> Path:
    """``steps`` independent tasks sleeping for a pipeline parameter, caching off."""
    from kfp import compiler, dsl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the default base image's FutureWarning

        @dsl.component
        def nap(seconds: float, index: int) -> int:
            import time

            time.sleep(seconds)
            return index

    @dsl.pipeline(name=f"memory-{steps}-parallel")
    def parallel(seconds: float = 10.0):
        for index in range(steps):
            nap(seconds=seconds, index=index).set_caching_options(False)

    path = folder / f"parallel-{steps}.yaml"
    compiler.Compiler().compile(parallel, str(path))
    return path


@dataclass
class Api:
    """The server's API as ``kfp.Client`` would use it, with the owner's token."""

    server: KfdashServer
    session: requests.Session = field(default_factory=requests.Session)

    def get(self, path: str, **params) -> dict:
        answer = self.session.get(self.server.url + path, params=params, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, **kwargs) -> dict:
        answer = self.session.post(self.server.url + path, timeout=60, **kwargs)
        if answer.status_code != 200:
            raise SystemExit(f"POST {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def upload(self, path: Path) -> tuple[str, str]:
        pipeline = self.post("/apis/v2beta1/pipelines/upload",
                             params={"name": path.stem, "namespace": NAMESPACE},
                             files={"uploadfile": (path.name, path.read_bytes())})
        versions = self.get(f"/apis/v2beta1/pipelines/{pipeline['pipeline_id']}/versions")
        return pipeline["pipeline_id"], versions["pipeline_versions"][0]["pipeline_version_id"]

    def start(self, pipeline: tuple[str, str], name: str, seconds: float) -> dict:
        return self.post("/apis/v2beta1/runs", json={
            "display_name": name,
            "pipeline_version_reference": {"pipeline_id": pipeline[0],
                                           "pipeline_version_id": pipeline[1]},
            "runtime_config": {"parameters": {"seconds": seconds}}})

    def wait_finished(self, run_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/apis/v2beta1/runs/{run_id}")
            if run["state"] in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"):
                if run["state"] != "SUCCEEDED":
                    raise SystemExit(f"run {run_id} ended {run['state']}: {run.get('error')}")
                return run
            time.sleep(0.25)
        raise SystemExit(f"run {run_id} did not finish in {timeout} s")


def set_up(server: KfdashServer) -> tuple[Api, requests.Session]:
    """A user owning the namespace: an API session with a token and a browser session."""
    server.manage("create_user", EMAIL, "--namespace", NAMESPACE, "--password", PASSWORD)
    token = server.manage("create_token", EMAIL).stdout.strip().splitlines()[-1]
    api = Api(server)
    api.session.headers["Authorization"] = f"Bearer {token}"
    return api, log_in(server, EMAIL, PASSWORD)


# --- warm-up --------------------------------------------------------------------------------


def warm_up_paths(pipeline: tuple[str, str], runs: list[dict]) -> list[str]:
    """Every page type and the API's lists and details once, for finished one-step runs."""
    ns, (pipeline_id, version_id) = f"/ns/{NAMESPACE}", pipeline
    run_id, experiment_id = runs[0]["run_id"], runs[0]["experiment_id"]
    task = _nap_task(runs[0])
    pages = ["/", "/namespaces/", "/tokens/", f"{ns}/", f"{ns}/contributors/",
             f"{ns}/notebooks/", f"{ns}/notebooks/new/", f"{ns}/volumes/",
             f"{ns}/pipelines/", f"{ns}/pipelines/upload/", f"{ns}/pipelines/{pipeline_id}/",
             f"{ns}/experiments/", f"{ns}/experiments/new/",
             f"{ns}/experiments/{experiment_id}/", f"{ns}/runs/", f"{ns}/runs/new/",
             f"{ns}/runs/compare/?runs={run_id},{runs[1]['run_id']}", f"{ns}/runs/{run_id}/",
             f"{ns}/runs/{run_id}/outputs/", f"{ns}/runs/{run_id}/steps/{task['task_id']}/",
             f"{ns}/runs/{run_id}/tasks/{task['pod_name']}/log/", f"{ns}/recurring/",
             f"{ns}/recurring/new/", f"{ns}/artifacts/"]
    v2, v1 = "/apis/v2beta1", "/apis/v1beta1"
    api = ["/api/v1/whoami", "/api/v1/namespaces", f"/api/v1/namespaces/{NAMESPACE}",
           f"/api/v1/namespaces/{NAMESPACE}/contributors",
           f"/api/v1/namespaces/{NAMESPACE}/activities",
           f"/api/v1/namespaces/{NAMESPACE}/notebooks", "/api/schema", "/api/docs",
           f"{v2}/healthz", f"{v2}/experiments?namespace={NAMESPACE}",
           f"{v2}/experiments/{experiment_id}", f"{v2}/pipelines?namespace={NAMESPACE}",
           f"{v2}/pipelines/{pipeline_id}", f"{v2}/pipelines/{pipeline_id}/versions",
           f"{v2}/pipelines/{pipeline_id}/versions/{version_id}",
           f"{v2}/runs?namespace={NAMESPACE}", f"{v2}/runs/{run_id}",
           f"{v2}/recurringruns?namespace={NAMESPACE}", f"{v2}/artifacts?namespace={NAMESPACE}",
           f"{v1}/healthz", f"{v1}/experiments?resource_reference_key.type=NAMESPACE"
           f"&resource_reference_key.id={NAMESPACE}", f"{v1}/pipelines",
           f"{v1}/pipelines/{pipeline_id}", f"{v1}/runs?resource_reference_key.type=NAMESPACE"
           f"&resource_reference_key.id={NAMESPACE}", f"{v1}/runs/{run_id}",
           f"{v1}/jobs?resource_reference_key.type=NAMESPACE"
           f"&resource_reference_key.id={NAMESPACE}"]
    return pages + api


def warm_up(server: KfdashServer, api: Api, browser: requests.Session, ws: "Watchers"
            ) -> list[tuple[int, str]]:
    """Load everything once: two one-step runs (the engine's code paths, and two runs to
    compare), every page with the browser session, every API path with the token, every
    websocket route once. Returns what each request added to the server's anonymous memory (KiB)."""
    pid = server.process.pid
    with tempfile.TemporaryDirectory() as folder:
        small = api.upload(compile_pipeline(1, Path(folder)))
    before = memory(pid).anon
    started = [api.start(small, f"warm-up {n}", 0.1)["run_id"] for n in (1, 2)]
    runs = [api.wait_finished(run_id) for run_id in started]
    added = [(memory(pid).anon - before, "two one-step runs")]
    failed = []
    for path in warm_up_paths(small, runs):
        session = browser if not path.startswith(("/api", "/apis")) else api.session
        before = memory(pid).anon
        answer = session.get(server.url + path, timeout=60)
        added.append((memory(pid).anon - before, path))
        if answer.status_code != 200:
            failed.append(f"{path} {answer.status_code}")
    if failed:
        print(f"  warm-up: not 200: {', '.join(failed)}", flush=True)
    run_id, node = runs[0]["run_id"], _nap_task(runs[0])["pod_name"]
    before = memory(pid).anon
    asyncio.run(ws.touch(["activity/", "notebooks/", "runs/", f"runs/{run_id}/",
                          f"runs/{run_id}/tasks/{node}/log/"]))
    added.append((memory(pid).anon - before, "the five websocket routes"))
    return added


def _nap_task(run: dict) -> dict:
    return next(t for t in run["run_details"]["task_details"] if t.get("display_name") == "nap")


# --- websocket clients ----------------------------------------------------------------------


class Watchers:
    """Run pages as a browser opens them: the session cookie, the server's origin."""

    def __init__(self, server: KfdashServer, browser: requests.Session):
        self.base = server.url.replace("http://", "ws://") + f"/ws/ns/{NAMESPACE}/"
        self.origin = server.url
        self.cookie = f"sessionid={browser.cookies['sessionid']}"
        self.received = 0

    async def open(self, route: str):
        from websockets.asyncio.client import connect

        return await connect(self.base + route, origin=self.origin, compression=None,
                             max_size=None, additional_headers={"Cookie": self.cookie})

    async def touch(self, routes: list[str]) -> None:
        """Each route once: connect, read its first message (or a second of nothing)."""
        for route in routes:
            socket = await self.open(route)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(socket.recv(), timeout=1)
            await socket.close()

    async def read(self, socket) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in socket:
                json.loads(message)
                self.received += 1
        except ConnectionClosed:
            pass


# --- the measurements -----------------------------------------------------------------------


def wait_steps(server_pid: int, steps: int, timeout: float = 60) -> Sample:
    """Until ``steps`` step sessions run at once (or the most seen when it times out)."""
    deadline, best = time.monotonic() + timeout, sample(server_pid)
    while time.monotonic() < deadline:
        now = sample(server_pid)
        best = now if now.steps >= best.steps else best
        if now.steps >= steps:
            return now
        time.sleep(0.1)
    return best


async def sample_while_running(server_pid: int, steps: int, until: float,
                               watchers: Watchers | None = None, clients: int = 0
                               ) -> list[Sample]:
    """A sample a second while all the steps still run (until ``until``, monotonic; at
    least one)."""
    samples = []
    while not samples or time.monotonic() < until:
        now = sample(server_pid, clients, watchers.received if watchers else 0)
        if now.steps < steps and samples:
            break
        samples.append(now)
        print(f"    {describe(now)}", flush=True)
        await asyncio.sleep(1.0)
    return samples


def describe(s: Sample) -> str:
    return (f"server RSS {s.server.rss / 1024:.1f} PSS {s.server.pss / 1024:.1f} USS "
            f"{s.server.uss / 1024:.1f} anon {s.server.anon / 1024:.1f} MiB, "
            f"{s.server.threads} threads; {s.steps} steps "
            f"({s.step_processes} processes) PSS {s.step_pss / 1024:.1f} MiB; helpers "
            f"{s.helpers} PSS {s.helper_pss / 1024:.1f} MiB; {s.clients} clients, "
            f"{s.messages} messages")


async def run_phase(api: Api, pipeline: tuple[str, str], args, name: str,
                    watchers: Watchers | None) -> tuple[list[Sample], int, int]:
    """Start the pipeline (and connect the clients), sample while every step runs; wait for
    the end and close the clients. Returns the samples, the most steps seen at once and
    how many messages the clients read in all."""
    pid = api.server.process.pid
    began = time.monotonic()
    run = api.start(pipeline, name, args.sleep)
    sockets, readers = [], []
    if watchers:
        watchers.received = 0
        sockets = await asyncio.gather(*(watchers.open(f"runs/{run['run_id']}/")
                                         for _ in range(args.clients)))
        readers = [asyncio.create_task(watchers.read(s)) for s in sockets]
    first = await asyncio.to_thread(wait_steps, pid, args.steps)
    print(f"  {name}: {first.steps} steps at once "
          f"{time.monotonic() - began:.1f} s after the start", flush=True)
    await asyncio.to_thread(args.snapshots.take, pid, name)
    samples = await sample_while_running(pid, args.steps, began + args.sleep - 1, watchers,
                                         len(sockets))
    await asyncio.to_thread(api.wait_finished, run["run_id"])
    await asyncio.sleep(1)  # the last events reach the pages
    for socket in sockets:
        await socket.close()
    await asyncio.gather(*readers)
    most = max([first.steps] + [s.steps for s in samples])
    if watchers:
        print(f"  {name}: the {len(sockets)} clients read {watchers.received} messages in all",
              flush=True)
    return samples, most, watchers.received if watchers else 0


def median_sample(samples: list[Sample]) -> Sample:
    """Each column's median over the samples (the peak's maximum)."""
    def mid(values):
        return int(statistics.median(values))

    server = Memory(*(mid([getattr(s.server, f) for s in samples])
                      for f in ("rss", "pss", "uss", "anon")),
                    hwm=max(s.server.hwm for s in samples),
                    threads=mid([s.server.threads for s in samples]))
    return Sample(server, steps=max(s.steps for s in samples),
                  step_processes=max(s.step_processes for s in samples),
                  step_pss=mid([s.step_pss for s in samples]),
                  helpers=max(s.helpers for s in samples),
                  helper_pss=mid([s.helper_pss for s in samples]),
                  clients=max(s.clients for s in samples),
                  messages=max(s.messages for s in samples))


def settle(pid: int, seconds: float = 2.0) -> Sample:
    time.sleep(seconds)
    return sample(pid)


# --- the report -----------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def table(rows: list[tuple[str, Sample]]) -> str:
    lines = ["| point | server RSS MiB | PSS | USS | anon | peak (VmHWM) | threads | steps at "
             "once (processes) | steps' PSS MiB | warm Python PSS MiB | ws clients (messages) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for point, s in rows:
        lines.append(
            f"| {point} | {mib(s.server.rss)} | {mib(s.server.pss)} | {mib(s.server.uss)} | "
            f"{mib(s.server.anon)} | {mib(s.server.hwm)} | {s.server.threads} | "
            f"{s.steps} ({s.step_processes}) | "
            f"{mib(s.step_pss)} | {mib(s.helper_pss)} ({s.helpers}) | "
            f"{s.clients} ({s.messages}) |")
    return "\n".join(lines)


def costs(rows: dict[str, Sample], steps: int, clients: int) -> list[str]:
    """Per step and per client, from the differences between points, in RSS and anonymous
    memory: the server's PSS and USS also move with how many other processes (other
    Pythons of the machine) map the same library pages."""
    warm, running, watched = rows["warm"], rows["steps"], rows["watched"]

    def each(later: Memory, earlier: Memory, count: int) -> str:
        return (f"{(later.rss - earlier.rss) / count:.0f} KiB RSS, "
                f"{(later.anon - earlier.anon) / count:.0f} KiB anonymous")

    engine = (running.step_pss + running.helper_pss) / max(running.steps, 1)
    return [
        f"per running step, in the server: {each(running.server, warm.server, steps)}",
        f"per running step, its own processes: {running.step_pss / max(running.steps, 1):.0f}"
        f" KiB PSS; with the warm Python's share: {engine:.0f} KiB PSS",
        f"per websocket client, in the server: {each(watched.server, running.server, clients)}",
    ]


def environment() -> str:
    return describe_machine(("Django", "channels", "uvicorn", "websockets", "kfp"))


# --- where the memory goes: tracemalloc in the server (--tracemalloc) -----------------------

# Put on the server's PYTHONPATH as sitecustomize: trace from the start, and on SIGUSR1
# collect garbage and dump a snapshot. Steps do not get it (the engine passes them a
# filtered environment).
HOOK = """
import os
if os.environ.get("KFDASH_BENCH_TRACEMALLOC"):
    import gc, signal, tracemalloc
    tracemalloc.start(int(os.environ["KFDASH_BENCH_TRACEMALLOC"]))

    def _dump(signum, frame):
        gc.collect()
        folder = os.environ["KFDASH_BENCH_SNAPSHOTS"]
        name = os.path.join(folder, f"{len(os.listdir(folder)):02d}")
        tracemalloc.take_snapshot().dump(name + ".part")
        os.rename(name + ".part", name + ".snapshot")

    signal.signal(signal.SIGUSR1, _dump)
"""


class Snapshots:
    """Labelled tracemalloc snapshots of the server, compared in order afterwards."""

    def __init__(self, work: Path, frames: int):
        self.frames, self.folder, self.hook = frames, work / "snapshots", work / "hook"
        self.labels: list[str] = []

    def env(self) -> dict[str, str]:
        if not self.frames:
            return {}
        self.folder.mkdir(parents=True)
        self.hook.mkdir(parents=True)
        (self.hook / "sitecustomize.py").write_text(HOOK)
        return {"PYTHONPATH": str(self.hook), "KFDASH_BENCH_TRACEMALLOC": str(self.frames),
                "KFDASH_BENCH_SNAPSHOTS": str(self.folder)}

    def take(self, pid: int, label: str) -> None:
        if not self.frames:
            return
        os.kill(pid, signal.SIGUSR1)
        path = self.folder / f"{len(self.labels):02d}.snapshot"
        self.labels.append(label)
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    def report(self, top: int = 12) -> None:
        """What grew between consecutive snapshots, by line of the allocation's top frame,
        and what the last one holds more than the first, with tracebacks."""
        import tracemalloc

        if len(self.labels) < 2:
            return
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
                  tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
        loaded = [tracemalloc.Snapshot.load(str(self.folder / f"{n:02d}.snapshot"))
                  .filter_traces(ignore) for n in range(len(self.labels))]
        for n in range(1, len(loaded)):
            self._compare(loaded[n], loaded[n - 1], f"{self.labels[n - 1]} -> "
                          f"{self.labels[n]}", "lineno", top)
        self._compare(loaded[-1], loaded[0], f"{self.labels[0]} -> {self.labels[-1]}",
                      "traceback", 3)

    @staticmethod
    def _compare(later, earlier, title: str, key: str, top: int) -> None:
        diff = later.compare_to(earlier, key)
        total = sum(d.size_diff for d in diff)
        print(f"\ntracemalloc, {title}: {total / 1024:+.0f} KiB traced")
        for stat in diff[:top]:
            if key == "traceback":
                print(f"  {stat.size_diff / 1024:+.0f} KiB, {stat.count_diff:+d} blocks:")
                for line in stat.traceback.format(limit=12):
                    print(f"      {line}")
            else:
                print(f"  {stat.size_diff / 1024:+8.0f} KiB {stat.count_diff:+7d} blocks  "
                      f"{stat.traceback[0]}")


# --- main -----------------------------------------------------------------------------------


async def cycle(api: Api, pipeline: tuple[str, str], watchers: Watchers, args, number: int,
                rows: list[tuple[str, Sample]]) -> dict[str, Sample]:
    """The run without clients, the run watched by the clients, then idle twice."""
    pid = api.server.process.pid
    suffix = f" #{number}" if args.cycles > 1 else ""
    samples, most, _ = await run_phase(api, pipeline, args, f"steps{suffix}", None)
    running = median_sample(samples)
    rows.append((f"{args.steps} steps running{suffix} (median of {len(samples)}, "
                 f"{most} at once)", running))
    samples, most, messages = await run_phase(api, pipeline, args, f"watched{suffix}",
                                              watchers)
    watched = median_sample(samples)
    watched.messages = messages
    rows.append((f"{args.steps} steps + {args.clients} ws{suffix} (median of "
                 f"{len(samples)}, {most} at once)", watched))
    rows.append((f"after, clients gone{suffix}", await asyncio.to_thread(settle, pid)))
    print(f"  waiting {IDLE_WORKERS_GONE:.0f} s for the idle step workers to leave", flush=True)
    await asyncio.sleep(IDLE_WORKERS_GONE)
    rows.append((f"after, {IDLE_WORKERS_GONE:.0f} s later{suffix}", sample(pid)))
    args.snapshots.take(pid, f"idle after cycle {number}")
    return {"steps": running, "watched": watched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sleep", type=float, default=12.0, help="seconds each step sleeps")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="trace the server's allocations (FRAMES deep) and report what "
                             "grew between the points; its memory numbers are then inflated")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="more environment for the server (e.g. MALLOC_ARENA_MAX=2)")
    args = parser.parse_args()
    if args.cycles < 1 or args.steps < 1 or args.clients < 1:
        parser.error("--cycles, --steps and --clients must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="kfdash-bench-memory-"))
    try:
        measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, work: Path) -> None:
    """Start the server, take every point, stop it, then print the report."""
    args.snapshots = Snapshots(work, args.tracemalloc)
    extra = dict(item.split("=", 1) for item in args.server_env)
    server = start_kfdash(work / "kfdash", KFDASH_RUN_PARALLELISM=str(args.steps),
                          **args.snapshots.env(), **extra)
    rows: list[tuple[str, Sample]] = []
    try:
        pid = server.process.pid
        rows.append(("idle, just ready", sample(pid)))
        api, browser = set_up(server)
        watchers = Watchers(server, browser)
        pipeline = api.upload(compile_pipeline(args.steps, work))
        added = warm_up(server, api, browser, watchers)
        found = {"warm": settle(pid)}
        rows.append(("idle after warm-up", found["warm"]))
        args.snapshots.take(pid, "idle after warm-up")
        for number in range(1, args.cycles + 1):
            measured = asyncio.run(cycle(api, pipeline, watchers, args, number, rows))
            found = {**measured, **found}  # the first cycle's costs are the ones reported
    finally:
        server.stop()
    report(args, rows, costs(found, args.steps, args.clients), added)


def report(args, rows: list[tuple[str, Sample]], notes: list[str],
           added: list[tuple[int, str]]) -> None:
    print()
    print(environment())
    print(f"KFDASH_RUN_PARALLELISM={args.steps}, steps sleep {args.sleep:.0f} s, "
          f"{args.clients} clients on the run page"
          + "".join(f", {item}" for item in args.server_env))
    print()
    print(table(rows))
    print()
    for note in notes:
        print(f"* {note}")
    print("\nwarm-up, what added most to the server's anonymous memory (KiB):")
    for kib, what in sorted(added, reverse=True)[:12]:
        print(f"  {kib:>7} {what}")
    args.snapshots.report()


if __name__ == "__main__":
    main()
