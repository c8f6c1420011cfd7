"""Recording a 500-task run's Workflow status: ``argo_sync.record(run, workflow)``, what the
Workflow watcher calls for every event of a run's Workflow in kubernetes mode.

The run is a KFP v2 pipeline compiled in-process with the installed kfp SDK: a head
container task and 499 container tasks fanning out from it (500 tasks), compiled for Argo
by ``compile_v2_workflow`` as the engine submits it. Its statuses are what Argo reports:
``tests/pipelines/argo_sim.py`` plays the controller to the end (every node, with Argo's
ids and names), and three statuses are cut from that one — every step Pending, half of
them Succeeded (the rest Pending), all Succeeded with the Workflow Succeeded.

Measured for each status, on a new run each time, after the earlier statuses were recorded
(so a call does what the watcher's call does when that status arrives): the time of one
``record()`` (its commit and live publishing included) and its SQL
queries. Also measured: ``record()`` again with the same status (an event that changes
no task: Argo writes the Workflow more often than its nodes change), and the parts
outside the database (``run.spec``, ``read_status``). Each is measured three ways of
sending the live updates (``Publishing``): as a watcher alone (``manage.py
watch_kubernetes``), as a watcher in a server process, and not sent at all.

Everything runs in-process against a throwaway SQLite database in a temporary
``KFDASH_DATA_DIR`` (or the database of ``DATABASE_URL`` if it is set: it must be an
empty database of its own), with the in-memory channel layer, or Redis when
``CHANNEL_LAYER_URL`` is set (as in kubernetes mode). ArgoSim comes from the tests.

    .venv/bin/python bench/argo_record.py [-n 7] [--tasks 500] [--publishing alone,server,off]
"""

# No "from __future__ import annotations": kfp reads the components' annotations as types.
import argparse
import copy
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.mkdtemp(prefix="kfdash-bench-argo-record-"))
os.environ["KFDASH_DATA_DIR"] = str(DATA)
os.environ["KFDASH_PLATFORM"] = "local"  # record() needs no cluster; nothing is submitted
os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import kfp  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from kfp import compiler, dsl  # noqa: E402

from tests.pipelines.argo_sim import ArgoSim  # noqa: E402

IMAGE = "alpine:3.20"


@dsl.container_component
def say(word: str):
    return dsl.ContainerSpec(image=IMAGE, command=["echo"], args=[word])


def fan_out(tasks: int):
    @dsl.pipeline(name=f"fan-out-{tasks}")
    def pipeline(word: str = "hello"):
        head = say(word=word)
        for _ in range(tasks - 1):
            say(word=word).after(head)

    return pipeline


def compiled_workflow(loaded, run_id: str) -> dict:
    from pipelines.engines.argo_compile import S3Repository, compile_v2_workflow

    repository = S3Repository(endpoint="minio-service.kubeflow:9000", bucket="mlpipeline",
                              insecure=True, access_key_secret=("s", "accesskey"),
                              secret_key_secret=("s", "secretkey"))
    return compile_v2_workflow(loaded.spec, loaded.document, run_id=run_id, run_name="bench",
                               namespace="bench", parameters={},
                               service_account="default-editor", repository=repository,
                               launcher_image="kfdash:bench")


def statuses(workflow: dict) -> dict[str, dict]:
    """Three statuses of ``workflow``, cut from ArgoSim's run of it to the end."""
    done = ArgoSim(workflow).run_all()
    pods = sorted((node for node in done["status"]["nodes"].values()
                   if node["type"] == "Pod"), key=lambda node: node["startedAt"])

    def cut(succeeded: int) -> dict:
        status = copy.deepcopy(done)
        nodes = status["status"]["nodes"]
        for index, pod in enumerate(pods):
            if index >= succeeded:
                node = nodes[pod["id"]]
                node["phase"] = "Pending"
                for key in ("finishedAt", "outputs", "message", "hostNodeName"):
                    node.pop(key, None)
        for node in nodes.values():
            if node["type"] != "Pod" and succeeded < len(pods):
                node["phase"] = "Running"
                node.pop("finishedAt", None)
        if succeeded < len(pods):
            status["status"]["phase"] = "Running"
            status["status"].pop("finishedAt", None)
        return status

    return {"all pending": cut(0), "half succeeded": cut(len(pods) // 2),
            "all succeeded": done}


def new_run(profile, user, experiment, loaded):
    from pipelines.models import Run

    return Run.objects.create(
        id=uuid.uuid4(), profile=profile, experiment=experiment, name="bench",
        format=loaded.format, document=loaded.document, graph=loaded.spec.to_dict(),
        parameters={"word": "hello"}, state="PENDING", created_by=user)


def timed_record(run, workflow: dict) -> tuple[float, int, int]:
    """Seconds, SQL queries and ended steps of one ``record()``."""
    from pipelines.engines import argo_sync

    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        began = time.perf_counter()
        ended = argo_sync.record(run, workflow)
        seconds = time.perf_counter() - began
    return seconds, len(captured.captured_queries), len(ended)


class Publishing:
    """How ``record()``'s live updates are sent (``dashboard/live.py``): ``alone`` as in
    ``manage.py watch_kubernetes`` (no serving loop: ``async_to_sync`` for each send),
    ``server`` as in a server process (its serving loop does each send), ``off`` (not
    sent: the database's part alone)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.loop = self.thread = self.original = None

    def __enter__(self):
        import asyncio
        import threading

        from dashboard import live

        if self.mode == "server":
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.thread.start()
            live.serve_on(self.loop)
        elif self.mode == "off":
            self.original = live.publish
            live.publish = lambda group, event: None
        return self

    def __exit__(self, *exc):
        from dashboard import live

        if self.loop is not None:
            live.serve_on(None)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if self.original is not None:
            live.publish = self.original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs per status (default 7)")
    parser.add_argument("--tasks", type=int, default=500, help="tasks (default 500)")
    parser.add_argument("--publishing", default="alone,server,off",
                        help="how live updates are sent, comma-separated (see Publishing)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    from django.conf import settings

    from dashboard.models import Profile, User
    from pipelines.engines.argo_status import read_status
    from pipelines.models import Experiment, RunTask
    from pipelines.specs import load

    user = User.objects.create_user("bench@example.com", "bench-password-0123456789")
    profile = Profile.register("bench", user)
    experiment = Experiment.default_for(profile, user)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = DATA / "fan-out.yaml"
        compiler.Compiler().compile(fan_out(args.tasks), str(path))
    loaded = load(path.read_bytes())
    probe = new_run(profile, user, experiment, loaded)
    cuts = statuses(compiled_workflow(loaded, str(probe.pk)))
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"{len(loaded.spec.tasks)} tasks; {len(cuts['all succeeded']['status']['nodes'])} "
          f"Argo nodes; Python {platform.python_version()}, Django {django.get_version()}, "
          f"kfp {kfp.__version__}, {connection.vendor}, {layer}, {os.cpu_count()} CPUs")

    order = list(cuts)
    rows: list[tuple[str, list[float], list[int], int]] = []
    for mode in args.publishing.split(","):
        with Publishing(mode):
            for at, name in enumerate(order):
                times, queries, ended = [], [], 0
                again_times, again_queries = [], []
                for _ in range(args.n):
                    run = new_run(profile, user, experiment, loaded)
                    for earlier in order[:at]:  # what the watcher recorded before
                        timed_record(run, cuts[earlier])
                    seconds, count, ended = timed_record(run, cuts[name])
                    times.append(seconds)
                    queries.append(count)
                    seconds, count, _ = timed_record(run, cuts[name])  # the same again
                    again_times.append(seconds)
                    again_queries.append(count)
                rows.append((f"{mode}: {name}", times, queries, ended))
                rows.append((f"{mode}: {name}, again (nothing changed)", again_times,
                             again_queries, 0))
                print(f"  {rows[-2][0]}: p50 {statistics.median(times) * 1000:.1f} ms, "
                      f"{statistics.median(queries)} queries; again "
                      f"{statistics.median(again_times) * 1000:.1f} ms", flush=True)
    run = new_run(profile, user, experiment, loaded)
    spec_times, read_times = [], []
    for _ in range(args.n):
        began = time.perf_counter()
        spec = run.spec  # (a property: the graph is parsed on each use)
        spec_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        read_status(spec, cuts["all succeeded"], bucket="mlpipeline")
        read_times.append(time.perf_counter() - began)
    print(f"task rows written: {RunTask.objects.count()}")

    print("\n| `record()` (publishing: status) | n | p50 ms | min-max ms | SQL queries | "
          "steps ended |")
    print("|---|---|---|---|---|---|")
    for what, times, queries, ended in rows:
        low, high = min(queries), max(queries)
        print(f"| {what} | {len(times)} | {statistics.median(times) * 1000:.1f} | "
              f"{min(times) * 1000:.1f}-{max(times) * 1000:.1f} | "
              f"{low if low == high else f'{low}-{high}'} | {ended} |")
    for what, times in (("in it: `run.spec` (graph parsed)", spec_times),
                        ("in it: `read_status()`, all succeeded", read_times)):
        print(f"| {what} | {len(times)} | {statistics.median(times) * 1000:.1f} | "
              f"{min(times) * 1000:.1f}-{max(times) * 1000:.1f} | 0 | |")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
