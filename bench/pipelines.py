"""Pipelines at scale: a 500-task pipeline (load, upload, details page) and lists of
10,000 pipelines and 10,000 experiments in one namespace (KFP API and HTML pages).

Everything runs in-process against a throwaway SQLite database in a temporary
``KFDASH_DATA_DIR`` (or the database of ``DATABASE_URL`` if it is set: it must be an
empty database of its own, as for the PostgreSQL 15 run in RESULTS.md), with Django's
test client logged in as the namespace's owner. Server time is the wall time around ``client.get``.

* a 500-task KFP v2 pipeline compiled in-process with the installed kfp SDK (50 blocks,
  each a chained head task, a ``dsl.ParallelFor`` of 3 tasks, a ``dsl.If`` of 3 tasks
  and 3 fan-out tasks: 500 tasks, 100 groups), as YAML and as JSON;
  ``pipelines.specs.load`` of either, and ``Pipeline.upload`` into the database;
* the pipeline details page for it (the graph's JSON is inlined in the page with
  ``json_script``: ``static/js/pipeline-graph.js`` fetches nothing) and, as the JSON
  the API gives for that version, ``GET /apis/v2beta1/pipelines/<id>/versions/<id>``;
* 10,000 pipelines (one small version each) and 10,000 experiments, bulk-created; the
  KFP API lists (first and later pages, a filter and sort) and the HTML lists (page 1,
  a far page, a search).

Prints p50 and p95 (min-max for the heavy, less repeated steps) and the SQL queries
of one request of each kind.

    .venv/bin/python bench/pipelines.py [-n 30]
"""

# No "from __future__ import annotations": kfp reads the components' annotations as types.
import argparse
import json
import os
import platform
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
DATA = Path(tempfile.mkdtemp(prefix="kfdash-bench-pipelines-"))
os.environ["KFDASH_DATA_DIR"] = str(DATA)
os.environ["KFDASH_PLATFORM"] = "local"
os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import kfp  # noqa: E402
import yaml  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from kfp import compiler, dsl  # noqa: E402
from measure import Table, get, measure_get, repeat  # noqa: E402  (bench/measure.py)

BLOCKS = 50  # of 10 tasks each
MANY = 10_000  # pipelines, and experiments
HOST = "localhost"
IMAGE = "python:3.11"


# --- the 500-task pipeline ---------------------------------------------------------------

@dsl.component(base_image=IMAGE)
def step(x: int) -> int:
    return x + 1


@dsl.component(base_image=IMAGE)
def echo(msg: str, n: int) -> str:
    return f"{msg} {n}"


@dsl.pipeline(name="bench-500", description="500 tasks: chains, loops, conditions, fan-out")
def big_pipeline(start: int = 1, label: str = "bench"):
    prev = step(x=start)
    for block in range(BLOCKS):
        head = step(x=prev.output) if block else prev  # the chain through all blocks
        with dsl.ParallelFor([1, 2, 3]) as item:
            a = step(x=item)
            c = echo(msg=label, n=a.output)
            step(x=a.output).after(c)
        with dsl.If(head.output > 5):
            d = step(x=head.output)
            e = step(x=d.output)
            echo(msg=label, n=e.output)
        f = echo(msg=label, n=head.output)  # fan-out from the head
        echo(msg=f.output, n=head.output)
        step(x=head.output)
        prev = head


@dsl.pipeline(name="tiny")
def tiny_pipeline(n: int = 3):
    step(x=n)


def compiled(pipeline, suffix: str) -> bytes:
    path = DATA / f"{pipeline.name}{suffix}"
    compiler.Compiler().compile(pipeline, str(path))
    return path.read_bytes()


def bulk_lists(profile, user, tiny) -> None:
    """MANY pipelines with one small version each, and MANY experiments, created one
    second apart (so that every sort order is exercised), in one transaction."""
    from pipelines.models import Experiment, Pipeline, PipelineVersion

    base = timezone.now() - timedelta(seconds=2 * MANY)
    pipelines, versions, experiments = [], [], []
    graph = tiny.spec.to_dict()
    for i in range(MANY):
        created = base + timedelta(seconds=i)
        pipeline_id, version_id = uuid.uuid4(), uuid.uuid4()
        # Foreign keys are checked at commit, so the default version may come later.
        pipelines.append(Pipeline(
            id=pipeline_id, profile=profile, name=f"pipeline-{i:05d}",
            description=f"bulk pipeline number {i}", created_at=created, created_by=user,
            default_version_id=version_id))
        versions.append(PipelineVersion(
            id=version_id, pipeline_id=pipeline_id, name="v1", created_at=created,
            created_by=user, format=tiny.format, source=tiny.source,
            document=tiny.document, graph=graph))
        experiments.append(Experiment(
            profile=profile, name=f"experiment-{i:05d}",
            description=f"bulk experiment number {i}", created_at=created, created_by=user))
    with transaction.atomic():
        Pipeline.objects.bulk_create(pipelines, batch_size=1000)
        PipelineVersion.objects.bulk_create(versions, batch_size=1000)
        Experiment.objects.bulk_create(experiments, batch_size=1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30,
                        help="requests per list or page (default 30); loads and uploads "
                             "of the 500-task pipeline and the slow JSON-upload details "
                             "page: a fifth of it")
    parser.add_argument("--show-queries", action="store_true",
                        help="print the SQL of each measured request")
    args = parser.parse_args()
    heavy = max(3, args.n // 5)
    show = args.show_queries

    began_all = time.perf_counter()
    call_command("migrate", verbosity=0)
    from dashboard.models import Profile, User
    from pipelines.models import Pipeline
    from pipelines.specs import PipelineSpec, load
    from pipelines.views.graph import graph_data

    user = User.objects.create_user("bench@example.com", "bench-password-0123456789")
    profile = Profile.register("bench", user)
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    ns = profile.name
    table = Table()

    # 1. the 500-task pipeline: compile, load, upload
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        began = time.perf_counter()
        as_yaml = compiled(big_pipeline, ".yaml")
        compile_seconds = time.perf_counter() - began
        as_json = compiled(big_pipeline, ".json")
        tiny = load(compiled(tiny_pipeline, ".yaml"))
    loaded = load(as_yaml)
    spec = loaded.spec
    print(f"500-task pipeline: {len(spec.tasks)} tasks, {len(spec.groups)} groups; "
          f"YAML {len(as_yaml) / 1024:.0f} KiB, JSON {len(as_json) / 1024:.0f} KiB; "
          f"kfp compile {compile_seconds:.2f} s")
    print("1. load and upload the 500-task pipeline")
    table.add("`load()` 500 tasks, YAML bytes", repeat(lambda: load(as_yaml), heavy))
    table.add("`load()` 500 tasks, JSON bytes", repeat(lambda: load(as_json), heavy))
    # Where the YAML load's time goes.
    from pipelines.specs import kfp_v2, yaml_safe
    text = as_yaml.decode()
    table.add("  in it: YAML safety scan (`yaml_safe._check_events`)", repeat(
        lambda: yaml_safe._check_events(text), heavy))
    table.add("  in it: YAML to objects (`yaml.load_all`, `_Loader`)", repeat(
        lambda: list(yaml.load_all(text, Loader=yaml_safe._Loader)), heavy))
    table.add("  for comparison: plain `yaml.CSafeLoader`, no checks", repeat(
        lambda: list(yaml.load_all(text, Loader=yaml.CSafeLoader)), heavy))
    table.add("  in it: normalize the IR (`kfp_v2.parse`)", repeat(
        lambda: kfp_v2.parse(loaded.document), heavy))
    loaded_json = load(as_json)
    counter = iter(range(10_000))

    def upload(what=loaded):
        return Pipeline.upload(profile, f"bench-500-{next(counter)}", what, user)

    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        upload()
    queries = len(captured.captured_queries)
    table.add("`Pipeline.upload()` 500 tasks (loaded from YAML)", repeat(upload, heavy),
              queries=queries)
    version_yaml = upload()
    version_json = upload(loaded_json)

    # 2. the details page of the 500-task pipeline
    print("2. details page of the 500-task pipeline")
    detail = reverse("pipeline-detail", args=[ns, version_yaml.pipeline_id])
    response = measure_get(table, client, "details page, YAML upload", detail, args.n, show)
    html = response.content.decode()
    start = html.index('id="pipeline-graph-data"')
    inline = html[html.index(">", start) + 1:html.index("</script>", start)]
    detail_json = reverse("pipeline-detail", args=[ns, version_json.pipeline_id])
    measure_get(table, client, "details page, JSON upload (spec shown as YAML)", detail_json,
                heavy, show)  # about a second each: fewer
    api_version = (f"/apis/v2beta1/pipelines/{version_yaml.pipeline_id}/versions/"
                   f"{version_yaml.pk}")
    measure_get(table, client, "`GET /apis/v2beta1/pipelines/{id}/versions/{id}`",
                api_version, args.n, show)
    # Where the details page's time goes, measured outside the request.
    from django.template.loader import render_to_string
    from django.utils.html import json_script

    from pipelines.models import PipelineVersion
    table.add("  details page, in it: read the version row", repeat(
        lambda: PipelineVersion.objects.get(pk=version_yaml.pk), heavy))
    stored = PipelineVersion.objects.get(pk=version_yaml.pk)
    table.add("  details page, in it: `PipelineSpec.from_dict(graph)`", repeat(
        lambda: PipelineSpec.from_dict(stored.graph), heavy))
    table.add("  details page, in it: `graph_data(spec)`", repeat(lambda: graph_data(spec),
                                                                  heavy))
    graph = graph_data(spec)
    table.add("  details page, in it: render the 500-row task table", repeat(
        lambda: render_to_string("pipelines/_task_table.html", {"graph": graph}), heavy))
    table.add("  details page, in it: `json_script` of the graph", repeat(
        lambda: json_script(graph, "pipeline-graph-data"), heavy))
    from pipelines.views.pipelines import _as_yaml
    stored_json = PipelineVersion.objects.get(pk=version_json.pk)
    table.add("  details page, in it: a JSON upload's spec as YAML (`_as_yaml`)", repeat(
        lambda: _as_yaml(stored_json), heavy))
    table.add("  for comparison: the same with `yaml.CSafeDumper`", repeat(
        lambda: yaml.dump_all([stored_json.document], Dumper=yaml.CSafeDumper,
                              sort_keys=False, allow_unicode=True), heavy))

    # 3. the lists
    print(f"3. lists of {MANY:,} pipelines and {MANY:,} experiments")
    began = time.perf_counter()
    bulk_lists(profile, user, tiny)
    bulk_seconds = time.perf_counter() - began
    print(f"  bulk-created in {bulk_seconds:.1f} s")
    with connection.cursor() as cursor:  # fresh statistics, as a live database would have
        cursor.execute("ANALYZE")

    v2 = "/apis/v2beta1/pipelines?" + urlencode({"namespace": ns, "page_size": 100})
    measure_get(table, client, "API v2 pipelines, page 1 of 100", v2, args.n, show)
    token, url = "", v2
    for _ in range(5):
        token = get(client, url).json()["next_page_token"]
        url = v2 + "&" + urlencode({"page_token": token})
    measure_get(table, client, "API v2 pipelines, page 6 (page_token)", url, args.n, show)
    v1 = "/apis/v1beta1/pipelines?" + urlencode({
        "resource_reference_key.type": "NAMESPACE", "resource_reference_key.id": ns,
        "page_size": 100})
    measure_get(table, client, "API v1 pipelines, page 1 of 100", v1, args.n, show)
    name_filter = json.dumps({"predicates": [
        {"key": "display_name", "operation": "IS_SUBSTRING", "string_value": "12"}]})
    filtered = "/apis/v2beta1/pipelines?" + urlencode({
        "namespace": ns, "page_size": 100, "sort_by": "name desc", "filter": name_filter})
    measure_get(table, client, "API v2 pipelines, name contains \"12\", sort name desc",
                filtered, args.n, show)
    experiments = "/apis/v2beta1/experiments?" + urlencode({"namespace": ns,
                                                              "page_size": 100})
    measure_get(table, client, "API v2 experiments, page 1 of 100", experiments, args.n, show)
    experiments_sorted = experiments + "&" + urlencode({"sort_by": "display_name desc"})
    measure_get(table, client, "API v2 experiments, sort display_name desc",
                experiments_sorted, args.n, show)

    pipelines_page = reverse("pipelines", args=[ns])
    experiments_page = reverse("experiments", args=[ns])
    last = MANY // 20 - 10  # 20 a page
    for what, page in (("pipelines", pipelines_page), ("experiments", experiments_page)):
        measure_get(table, client, f"HTML {what}, page 1", page, args.n, show)
        measure_get(table, client, f"HTML {what}, page {last}", f"{page}?page={last}",
                    args.n, show)
        measure_get(table, client, f"HTML {what}, search \"12\"", f"{page}?q=12", args.n,
                    show)
        measure_get(table, client, f"HTML {what}, sort name desc, page 100",
                    f"{page}?sort=-name&page=100", args.n, show)

    print()
    print(f"host: {os.cpu_count()} CPUs, {platform.platform()}, Python "
          f"{platform.python_version()}, Django {django.get_version()}, kfp "
          f"{kfp.__version__}, database {connection.vendor} "
          f"{connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''}")
    print(f"500-task pipeline: {len(spec.tasks)} tasks, {len(spec.groups)} groups, YAML "
          f"{len(as_yaml) / 1024:.0f} KiB, JSON {len(as_json) / 1024:.0f} KiB; the page's "
          f"inline graph JSON {len(inline) / 1024:.0f} KiB")
    print("load average (1, 5, 15 min) at the end: "
          + ", ".join(f"{load:.2f}" for load in os.getloadavg()))
    print(f"bulk-created {MANY:,} pipelines + versions and {MANY:,} experiments in "
          f"{bulk_seconds:.1f} s; whole run {time.perf_counter() - began_all:.0f} s")
    print()
    print(table.markdown())


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
