"""Runs at scale: 10,000 runs in one namespace, listed and opened through the KFP API
(v2beta1 and v1beta1) and the HTML pages.

Everything runs in-process against a throwaway SQLite database in a temporary
``KFDASH_DATA_DIR`` (or the database of ``DATABASE_URL`` if it is set: it must be an
empty database of its own), with Django's test client logged in as the namespace's
owner. Server time is the wall time around ``client.get``.

The runs are bulk-created by ``pipelines/demo.py`` (as ``manage.py seed_demo`` makes
them), unfinished ones included: each keeps its own copy of a 3-task pipeline compiled
in-process with the installed kfp SDK (``document`` ~5 kB of IR, ``graph`` ~6 kB),
three parameters, three tasks, three metrics of its evaluate step (``accuracy``,
``loss``, ``f1``), a state (mostly succeeded, some failed, canceled, running, pending)
with its history, in one of three experiments; two thirds were started from a stored
pipeline version, a third from an uploaded package; one in fifty is archived. Created
five minutes apart (five weeks of runs).

Measured: the API lists (first page of 100, the page after following
``next_page_token`` five times, ``sort_by=created_at desc``, a filter on state, the v1
list of a namespace), one run from each API version, the HTML runs page (page 1, a far
page, a search, a state filter, a metric condition), an experiment's page (the same runs
table, a third of the runs) and one run's page. Prints p50,
p95 and min-max, the response size and the SQL queries of one request of each kind, and
how many full (generation 2) garbage collections ran during its repeats.

    .venv/bin/python bench/runs_list.py [-n 30]
"""

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
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
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from measure import Table, get, measure_get  # noqa: E402  (bench/measure.py)

RUNS = 10_000
PAGE = 100  # the API's page size here (the HTML list shows 20)
HOST = "localhost"


def api_rows(response) -> int:
    return len(response.json().get("runs", []))


def html_rows(response) -> int:
    return response.content.count(b"<tr data-run=")


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
    from pipelines import demo
    from pipelines.models import Run

    profile, user, _ = demo.namespace_for("bench", "bench@example.com")
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    ns = profile.name
    table = Table()

    seeded = demo.seed_runs(profile, user, RUNS, unfinished=True)
    experiments = seeded.experiments
    gc.collect()  # the seeding's objects are gone: the heap is a server's, not the seeder's
    available = Run.objects.filter(profile=profile).available().count()
    sample = Run.objects.filter(profile=profile).first()
    print(f"bulk-created {RUNS:,} runs ({available:,} not archived), {seeded.tasks:,} tasks "
          f"and {seeded.metrics:,} metrics in {seeded.seconds:.1f} s (pipeline compiled "
          f"included); each run's document {len(json.dumps(sample.document)) / 1024:.1f} KiB, "
          f"graph {len(json.dumps(sample.graph)) / 1024:.1f} KiB")

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
    print(f"bulk-created {RUNS:,} runs in {seeded.seconds:.1f} s; whole run "
          f"{time.perf_counter() - began_all:.0f} s")
    print()
    print(table.markdown())


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
