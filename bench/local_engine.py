"""The local engine against kfp.local's SubprocessRunner, on the same compiled pipelines of
default ``@dsl.component`` steps, in one process run:

* ``chain10``: ten steps, each adding one to the previous step's output;
* ``fanout20``: twenty independent steps, then a join after all of them that reads the
  first and the last one's outputs.

kfdash: ``Run.start`` (caching off) -> the run FINISHED in the database (polled every
5 ms), through the real engine: SQLite file database in a throwaway data dir, every
transition committed and published (through an event loop serving the channel layer, as
the server does), steps as processes. The first run of each pipeline
in this process is "cold" (the engine starts its warm Python and asks the step
interpreter which packages it has while the first steps wait: what a run right after
``make run`` costs if start-up has not warmed them yet); the "warm" runs follow, then
one with ``KFDASH_STEP_WARM_PYTHON`` off (a fresh ``python -m kfp.dsl.executor_main`` per
step, the pip preamble still skipped).
kfp.local: ``local.init(runner=local.SubprocessRunner(use_venv=False))``, then calling
the pipeline, which runs it step by step as the SDK does.

Also reported, from the engine's own records: the steps' process time (spawn to exit, as
the engine measures it), the engine's overhead per step of the chain ((run duration -
sum of step process times) / steps: commits, scheduling, preparing, starting, collecting),
how busy kfdash kept the cores (CPU seconds of this process, of the steps and of the warm
Python, over wall time x cores) and how many steps ran at once; and, kfdash only, the
same fan-out with steps that compute for 0.2 s each, where the cores should be full.

    .venv/bin/python bench/local_engine.py [-n 3]
"""

# No "from __future__ import annotations": kfp reads the components' annotations as types.
import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.mkdtemp(prefix="kfdash-bench-engine-"))
os.environ["KFDASH_DATA_DIR"] = str(DATA)
os.environ["KFDASH_PLATFORM"] = "local"
os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import kfp  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from kfp import compiler, dsl, local  # noqa: E402

from dashboard import live  # noqa: E402
from dashboard.models import Profile, User  # noqa: E402
from pipelines.engines import engine  # noqa: E402
from pipelines.models import Run  # noqa: E402
from pipelines.specs import load  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the default base image's FutureWarning

    @dsl.component
    def step(x: int) -> int:
        return x + 1

    @dsl.component
    def join(first: int, last: int) -> int:
        return first + last

    @dsl.component
    def work(x: int) -> int:
        """About 0.2 s of CPU."""
        import time

        end = time.process_time() + 0.2
        while time.process_time() < end:
            x = (x * 7 + 1) % 1000003
        return x


@dsl.pipeline(name="chain10")
def chain10(start: int = 0):
    value = step(x=start)
    for _ in range(9):
        value = step(x=value.output)


@dsl.pipeline(name="fanout20")
def fanout20():
    fanned = [step(x=i) for i in range(20)]
    join(first=fanned[0].output, last=fanned[-1].output).after(*fanned)


@dsl.pipeline(name="fanout20-work")
def fanout20_work():
    fanned = [work(x=i) for i in range(20)]
    join(first=fanned[0].output, last=fanned[-1].output).after(*fanned)


PIPELINES = {"chain10": (chain10, 10), "fanout20": (fanout20, 21)}


def kfdash_cpu() -> float:
    """CPU seconds used so far by kfdash: this process (the engine's threads), the steps it
    started and reaped, and the warm Python with the steps it forked and reaped."""
    own = os.times()
    seconds = own.user + own.system + own.children_user + own.children_system
    warm = engine()._warm
    if warm is not None and warm.pid:
        fields = Path(f"/proc/{warm.pid}/stat").read_text().rpartition(")")[2].split()
        seconds += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return seconds


def most_at_once(spans) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def run_kfdash(profile, user, package: bytes) -> dict:
    loaded = load(package)
    cpu = kfdash_cpu()
    began = time.monotonic()
    run = Run.start(profile, user, name="bench", loaded=loaded, caching=False)
    while True:
        state = Run.objects.filter(pk=run.pk).values_list("state", flat=True).get()
        if state in ("SUCCEEDED", "FAILED", "CANCELED"):
            break
        time.sleep(0.005)
    wall = time.monotonic() - began
    cpu = kfdash_cpu() - cpu
    run.refresh_from_db()
    assert run.state == "SUCCEEDED", run.error
    tasks = list(run.tasks.filter(kind="task"))
    process = [t.runtime["process_seconds"] for t in tasks]
    duration = (run.finished_at - run.started_at).total_seconds()
    spans = [(t.started_at.timestamp(), t.finished_at.timestamp()) for t in tasks]
    return {"wall": wall, "duration": duration, "process": process,
            "overhead": (duration - sum(process)) / len(tasks) if tasks else 0,
            "busy": cpu / (wall * os.cpu_count()), "at_once": most_at_once(spans),
            "modes": sorted({t.runtime.get("mode") for t in tasks})}


def run_kfp_local(pipeline) -> float:
    began = time.monotonic()
    pipeline()
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3, help="warm kfdash runs per pipeline")
    args = parser.parse_args()
    # As in the server (dashboard/asgi.py at start-up): engine threads publish through
    # the event loop that serves the websockets.
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="serving-loop", daemon=True).start()
    live.serve_on(loop)
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench@example.com", "a bench password")
    profile = Profile.register("bench", user)
    packages = {}
    for name, pipeline in {**{k: v[0] for k, v in PIPELINES.items()},
                           "fanout20-work": fanout20_work}.items():
        path = DATA / f"{name}.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        packages[name] = path.read_bytes()
    local_root = DATA / "kfp-local"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(local_root))

    print(f"{time.strftime('%Y-%m-%d')}, Linux {platform.release()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, kfp {kfp.__version__}, "
          f"KFDASH_RUN_PARALLELISM={settings.KFDASH_RUN_PARALLELISM}, load average at start "
          f"{os.getloadavg()[0]:.2f}")
    results = {}
    for name, (pipeline, steps) in PIPELINES.items():
        cold = run_kfdash(profile, user, packages[name])
        warm = [run_kfdash(profile, user, packages[name]) for _ in range(args.n)]
        settings.KFDASH_STEP_WARM_PYTHON = False
        fresh = run_kfdash(profile, user, packages[name])
        settings.KFDASH_STEP_WARM_PYTHON = True
        baseline = run_kfp_local(pipeline)
        results[name] = (steps, cold, warm, baseline, fresh)

    print("\n| pipeline | kfp.local | kfdash cold | kfdash warm (median of "
          f"{args.n}, min-max) | kfdash, fresh interpreters | speed-up cold / warm / fresh |")
    print("|---|---|---|---|---|---|")
    for name, (steps, cold, warm, baseline, fresh) in results.items():
        walls = [w["wall"] for w in warm]
        median = statistics.median(walls)
        print(f"| {name} ({steps} steps) | {baseline:.2f} s | {cold['wall']:.2f} s | "
              f"{median:.2f} s ({min(walls):.2f}-{max(walls):.2f}) | {fresh['wall']:.2f} s | "
              f"{baseline / cold['wall']:.1f}x / {baseline / median:.1f}x / "
              f"{baseline / fresh['wall']:.1f}x |")
    print("\n| warm kfdash runs | step process time, median | engine overhead per step | "
          "kfdash CPU / (wall x cores) | step rows RUNNING at once | how steps ran |")
    print("|---|---|---|---|---|---|")
    for name, (_, _, warm, _, _) in results.items():
        process = statistics.median(p for w in warm for p in w["process"])
        overhead = statistics.median(w["overhead"] for w in warm)
        busy = statistics.median(w["busy"] for w in warm)
        at_once = max(w["at_once"] for w in warm)
        modes = ", ".join(sorted({m for w in warm for m in w["modes"]}))
        # Per step only means something for the chain, where steps do not overlap.
        overhead_text = f"{overhead * 1000:.1f} ms" if name == "chain10" else "n/a"
        print(f"| {name} | {process * 1000:.1f} ms | {overhead_text} | "
              f"{busy * 100:.0f}% | {at_once} | {modes} |")
    worked = run_kfdash(profile, user, packages["fanout20-work"])
    print(f"\nfanout20-work (20 steps of ~0.2 s CPU, then the join; kfdash only): "
          f"{worked['wall']:.2f} s, kfdash CPU / (wall x cores) {worked['busy'] * 100:.0f}%, "
          f"{worked['at_once']} step rows RUNNING at once")
    engine().shutdown()
    shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
