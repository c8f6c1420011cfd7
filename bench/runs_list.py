"""Runs at scale: 10,000 runs in one namespace, listed and opened through the KFP API
(v2beta1 and v1beta1) and the HTML pages.

Everything runs in-process against a throwaway SQLite database in a temporary
``KFDASH_DATA_DIR`` (or the database of ``DATABASE_URL`` if it is set: it must be an
empty database of its own), with Django's test client logged in as the namespace's
owner. Server time is the wall time around ``client.get``.

The runs are bulk-created as the engines leave them: each keeps its own copy of a
3-task pipeline compiled in-process with the installed kfp SDK (``document`` ~5 kB of
IR, ``graph`` ~6 kB), three parameters, three tasks, three metrics of its evaluate
step (``accuracy``, ``loss``, ``f1``), a state (mostly succeeded, some failed,
canceled, running, pending) with its history, in one of three experiments; two thirds
were started from a stored pipeline version, a third from an uploaded package; one in
fifty is archived. Created five minutes apart (five weeks of runs).

Measured: the API lists (first page of 100, the page after following
``next_page_token`` five times, ``sort_by=created_at desc``, a filter on state, the v1
list of a namespace), one run from each API version, the HTML runs page (page 1, a far
page, a search, a state filter, a metric condition), an experiment's page (the same runs
table, a third of the runs) and one run's page. Prints p50,
p95 and min-max, the response size and the SQL queries of one request of each kind, and
how many full (generation 2) garbage collections ran during its repeats.

    .venv/bin/python bench/runs_list.py [-n 30]
"""

# No "from __future__ import annotations": kfp reads the components' annotations as types.
import argparse
import gc
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.mkdtemp(prefix="kfdash-bench-runs-"))
os.environ["KFDASH_DATA_DIR"] = str(DATA)
os.environ["KFDASH_PLATFORM"] = "local"
os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import kfp  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from kfp import compiler, dsl  # noqa: E402
from measure import Table, get, measure_get  # noqa: E402  (bench/measure.py)

RUNS = 10_000
PAGE = 100  # the API's page size here (the HTML list shows 20)
HOST = "localhost"
IMAGE = "python:3.11"
# Run states, weighted roughly as a busy namespace has them.
STATES = [("SUCCEEDED", 70), ("FAILED", 12), ("CANCELED", 5), ("RUNNING", 5),
          ("PENDING", 3), ("SKIPPED", 3), ("CANCELING", 1), ("PAUSED", 1)]
FINISHED = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}
STARTED = FINISHED | {"RUNNING", "CANCELING", "PAUSED"}
OPTIMIZERS = ["adam", "sgd", "rmsprop", "adamw"]


# --- the pipeline every run keeps a copy of ------------------------------------------------

@dsl.component(base_image=IMAGE)
def preprocess(rows: int) -> int:
    return rows // 2


@dsl.component(base_image=IMAGE)
def train(rows: int, learning_rate: float, epochs: int, optimizer: str) -> float:
    return learning_rate * epochs * rows


@dsl.component(base_image=IMAGE)
def evaluate(score: float) -> float:
    return score


@dsl.pipeline(name="train-and-evaluate", description="preprocess, train, evaluate")
def train_pipeline(learning_rate: float = 0.01, epochs: int = 10, optimizer: str = "adam"):
    rows = preprocess(rows=1000)
    model = train(rows=rows.output, learning_rate=learning_rate, epochs=epochs,
                  optimizer=optimizer)
    evaluate(score=model.output)


def compiled() -> bytes:
    path = DATA / "train-and-evaluate.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        compiler.Compiler().compile(train_pipeline, str(path))
    return path.read_bytes()


def api_rows(response) -> int:
    return len(response.json().get("runs", []))


def html_rows(response) -> int:
    return response.content.count(b"<tr data-run=")


# --- the data ---------------------------------------------------------------------------

def bulk_runs(profile, user, experiments, versions, loaded) -> None:
    """RUNS runs with three tasks and three metrics each, created five minutes apart, in
    one transaction."""
    from pipelines.models import Run, RunMetric, RunTask

    rng = random.Random(20261130)
    states = [state for state, weight in STATES for _ in range(weight)]
    spec = loaded.spec
    graph = spec.to_dict()
    task_ids = [task.id for task in spec.tasks]  # preprocess, train, evaluate
    sources = [{"format": v.format, "document": v.document, "platform_spec": v.platform_spec,
                "graph": v.graph, "pipeline_id": v.pipeline_id, "pipeline_version_id": v.pk}
               for v in versions]
    sources.append({"format": loaded.format, "document": loaded.document,
                    "platform_spec": loaded.platform_spec, "graph": graph,
                    "pipeline_id": None, "pipeline_version_id": None})
    base = timezone.now() - timedelta(minutes=5 * RUNS)
    runs, tasks, metrics = [], [], []
    for i in range(RUNS):
        created = base + timedelta(minutes=5 * i, seconds=rng.randint(0, 59))
        state = rng.choice(states)
        started = created + timedelta(seconds=rng.uniform(1, 20)) if state in STARTED else None
        finished = (started + timedelta(seconds=rng.uniform(30, 3600))
                    if state in FINISHED else None)
        history = [{"update_time": _iso(created), "state": "PENDING"}]
        if started:
            history.append({"update_time": _iso(started), "state": "RUNNING"})
        error = ""
        if finished:
            if state == "FAILED":
                error = f"The step train failed: exit code {rng.choice([1, 137, 2])}."
            entry = {"update_time": _iso(finished), "state": state}
            if error:
                entry["error"] = error
            history.append(entry)
        elif state not in ("PENDING", "RUNNING"):
            history.append({"update_time": _iso(started), "state": state})
        source = sources[i % len(sources)]
        run = Run(
            id=uuid.uuid4(), profile=profile, experiment=experiments[i % len(experiments)],
            name=f"{rng.choice(['train', 'tune', 'nightly'])}-{i:05d}",
            description=f"bulk run number {i}", **source,
            parameters={"learning_rate": round(rng.uniform(0.0001, 0.1), 5),
                        "epochs": rng.choice([5, 10, 20, 50]),
                        "optimizer": rng.choice(OPTIMIZERS)},
            state=state, error=error, state_history=history, revision=len(history),
            storage_state="ARCHIVED" if i % 50 == 7 else "AVAILABLE",
            created_at=created, scheduled_at=created, started_at=started,
            finished_at=finished, created_by=user)
        runs.append(run)
        evaluate_task = None
        for n, task_id in enumerate(task_ids):
            task_state = (state if state in FINISHED and n == len(task_ids) - 1
                          else "SUCCEEDED" if finished else "RUNNING" if started else "PENDING")
            task = RunTask(
                id=uuid.uuid4(), run=run, node_id=task_id, spec_id=task_id,
                display_name=task_id, state=task_state, attempts=1 if started else 0,
                image=IMAGE, created_at=created, started_at=started, finished_at=finished,
                revision=run.revision)
            tasks.append(task)
            evaluate_task = task
        accuracy = min(0.999, max(0.3, rng.gauss(0.82, 0.07)))
        for name, value in (("accuracy", accuracy),
                            ("loss", max(0.001, (1 - accuracy) * rng.uniform(0.8, 1.6))),
                            ("f1", max(0.0, accuracy - rng.uniform(0.0, 0.08)))):
            metrics.append(RunMetric(run=run, task=evaluate_task, name=name,
                                     value=round(value, 4)))
    with transaction.atomic():
        Run.objects.bulk_create(runs, batch_size=500)
        RunTask.objects.bulk_create(tasks, batch_size=1000)
        RunMetric.objects.bulk_create(metrics, batch_size=1000)


def _iso(when) -> str:
    return when.isoformat().replace("+00:00", "Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="requests per list or page "
                                                         "(default 30)")
    parser.add_argument("--show-queries", action="store_true",
                        help="print the SQL of each measured request")
    args = parser.parse_args()
    show = args.show_queries

    began_all = time.perf_counter()
    call_command("migrate", verbosity=0)
    from dashboard.models import Profile, User
    from pipelines.models import Experiment, Pipeline, Run
    from pipelines.specs import load

    user = User.objects.create_user("bench@example.com", "bench-password-0123456789")
    profile = Profile.register("bench", user)
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    ns = profile.name
    table = Table()

    source = compiled()
    loaded = load(source)
    version = Pipeline.upload(profile, "train-and-evaluate", loaded, user)
    second = version.pipeline.add_version(loaded, user, "v2")
    experiments = [Experiment.default_for(profile, user),
                   Experiment.create(profile, "tuning", user),
                   Experiment.create(profile, "nightly", user)]
    document_size = len(json.dumps(loaded.document))
    graph_size = len(json.dumps(loaded.spec.to_dict()))

    began = time.perf_counter()
    bulk_runs(profile, user, experiments, [version, second], loaded)
    bulk_seconds = time.perf_counter() - began
    gc.collect()  # the seeding's objects are gone: the heap is a server's, not the seeder's
    with connection.cursor() as cursor:  # fresh statistics, as a live database would have
        cursor.execute("ANALYZE")
    available = Run.objects.filter(profile=profile).available().count()
    print(f"bulk-created {RUNS:,} runs ({available:,} not archived), {3 * RUNS:,} tasks and "
          f"{3 * RUNS:,} metrics in {bulk_seconds:.1f} s; each run's document "
          f"{document_size / 1024:.1f} KiB, graph {graph_size / 1024:.1f} KiB")

    # One recent run, started from an uploaded package (so v2 answers with its pipeline_spec).
    run = Run.objects.light().filter(profile=profile, pipeline_version=None,
                                     state="SUCCEEDED").available().first()

    print("1. KFP API")
    v2 = "/apis/v2beta1/runs?" + urlencode({"namespace": ns, "page_size": PAGE})
    measure_get(table, client, f"API v2 runs, page 1 of {PAGE}", v2, args.n, show, api_rows)
    url = v2
    for _ in range(5):
        token = get(client, url).json()["next_page_token"]
        url = v2 + "&" + urlencode({"page_token": token})
    measure_get(table, client, "API v2 runs, page 6 (page_token)", url, args.n, show,
                api_rows)
    measure_get(table, client, "API v2 runs, sort_by=created_at desc",
                v2 + "&" + urlencode({"sort_by": "created_at desc"}), args.n, show, api_rows)
    failed = json.dumps({"predicates": [
        {"key": "state", "operation": "EQUALS", "string_value": "FAILED"}]})
    measure_get(table, client, "API v2 runs, filter state = FAILED, created_at desc",
                v2 + "&" + urlencode({"filter": failed, "sort_by": "created_at desc"}),
                args.n, show, api_rows)
    v1 = "/apis/v1beta1/runs?" + urlencode({
        "resource_reference_key.type": "NAMESPACE", "resource_reference_key.id": ns,
        "page_size": PAGE})
    measure_get(table, client, f"API v1 runs, page 1 of {PAGE}", v1, args.n, show, api_rows)
    measure_get(table, client, "`GET /apis/v2beta1/runs/{id}`", f"/apis/v2beta1/runs/{run.pk}",
                args.n, show)
    measure_get(table, client, "`GET /apis/v1beta1/runs/{id}`", f"/apis/v1beta1/runs/{run.pk}",
                args.n, show)

    print("2. HTML pages")
    page = reverse("runs", args=[ns])
    far = available // 20 - 10  # 20 a page
    measure_get(table, client, "HTML runs, page 1", page, args.n, show, html_rows)
    measure_get(table, client, f"HTML runs, page {far}", f"{page}?page={far}", args.n, show,
                html_rows)
    measure_get(table, client, "HTML runs, search \"0042\" (name or parameters)",
                f"{page}?q=0042", args.n, show, html_rows)
    measure_get(table, client, "HTML runs, state FAILED", f"{page}?state=FAILED", args.n,
                show, html_rows)
    measure_get(table, client, "HTML runs, metric \"accuracy > 0.9\"",
                f"{page}?" + urlencode({"metric": "accuracy > 0.9"}), args.n, show, html_rows)
    measure_get(table, client, f"HTML experiment \"{experiments[1].name}\", page 1",
                reverse("experiment-detail", args=[ns, experiments[1].pk]), args.n, show,
                html_rows)
    measure_get(table, client, "HTML run page", reverse("run-detail", args=[ns, run.pk]),
                args.n, show)

    print()
    print(f"host: {os.cpu_count()} CPUs, {platform.platform()}, Python "
          f"{platform.python_version()}, Django {django.get_version()}, kfp "
          f"{kfp.__version__}, database {connection.vendor} "
          f"{connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''}")
    print("load average (1, 5, 15 min) at the end: "
          + ", ".join(f"{load:.2f}" for load in os.getloadavg()))
    print(f"bulk-created {RUNS:,} runs in {bulk_seconds:.1f} s; whole run "
          f"{time.perf_counter() - began_all:.0f} s")
    print()
    print(table.markdown())


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
