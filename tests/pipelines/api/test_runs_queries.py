"""Listing runs costs the same number of queries whatever the page holds: a page of 100
runs (with their experiment, pipeline version and metrics) is not 100 times a page of 5."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.models import Experiment, Pipeline, Run, RunMetric, RunTask
from pipelines.specs import load


def fill(profile, owner, loaded, version, count: int) -> None:
    """``count`` runs of ``version``, each with a task and a metric, half in a second
    experiment."""
    default = Experiment.default_for(profile, owner)
    other, _ = Experiment.objects.get_or_create(profile=profile, name="other")
    runs = Run.objects.bulk_create(Run(
        profile=profile, experiment=other if i % 2 else default, pipeline=version.pipeline,
        pipeline_version=version, name=f"run-{count}-{i}", format=loaded.format,
        document=loaded.document, graph=loaded.spec.to_dict(),
        parameters={"a": i, "msg": "hi", "ratio": 0.5}, state="SUCCEEDED")
        for i in range(count))
    tasks = RunTask.objects.bulk_create(RunTask(run=run, node_id="add", spec_id="add",
                                                display_name="add", state="SUCCEEDED")
                                        for run in runs)
    RunMetric.objects.bulk_create(RunMetric(run=task.run, task=task, name="accuracy",
                                            value=0.5) for task in tasks)


@pytest.mark.parametrize("url", [
    "/apis/v2beta1/runs?page_size=100",
    "/apis/v2beta1/runs?page_size=100&sort_by=display_name%20desc",
    "/apis/v1beta1/runs?page_size=100",
    "/apis/v1beta1/runs?page_size=100&resource_reference_key.type=NAMESPACE"
    "&resource_reference_key.id=team-a",
], ids=["v2", "v2-sorted", "v1", "v1-namespace"])
def test_it_makes_the_same_number_of_queries_whatever_the_page_size(
        api, viewer, profile, owner, ir_package, django_assert_num_queries, url):
    loaded = load(ir_package)
    version = Pipeline.upload(profile, "add", loaded, owner)
    client = api(viewer)
    fill(profile, owner, loaded, version, 5)
    client.get(url)  # the token's first use records it; later requests don't write
    with CaptureQueriesContext(connection) as few:
        response = client.get(url)
    assert response.status_code == 200 and len(response.json()["runs"]) == 5
    fill(profile, owner, loaded, version, 150)
    with django_assert_num_queries(len(few)):
        response = client.get(url)
    assert len(response.json()["runs"]) == 100


def test_lists_never_load_a_runs_pipeline(api, viewer, profile, owner, ir_package):
    loaded = load(ir_package)
    fill(profile, owner, loaded, Pipeline.upload(profile, "add", loaded, owner), 3)
    for url in ("/apis/v2beta1/runs", "/apis/v1beta1/runs"):
        with CaptureQueriesContext(connection) as queries:
            api(viewer).get(url)
        run_queries = [q["sql"] for q in queries if 'FROM "pipelines_run"' in q["sql"]]
        assert run_queries and not any('"pipelines_run"."document"' in sql or
                                       '"pipelines_run"."graph"' in sql or
                                       '"pipelines_pipelineversion"."document"' in sql
                                       for sql in run_queries), url
