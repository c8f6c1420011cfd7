"""A KFP v2 run on Argo, end to end to its outputs: the compiled Workflow names where Argo
stores each output, the watcher records those locations, and kfdash reads what Argo put
there (a tar.gz in the S3-compatible store, moto's server here) for the run's pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pipelines.choices import RunState
from pipelines.engines import remote_artifacts
from pipelines.models import Artifact, Run
from pipelines.specs import load
from pipelines.visualizations import task_cards
from tests import s3
from tests.pipelines.argo_sim import Controller
from tests.pipelines.engine.conftest import tasks_of, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_steps_dataset_is_previewed_and_downloaded_from_where_argo_stored_it(
        argo_cluster, artifact_store, client, owner, profile, kfp2_package):
    run = Run.start(profile, owner, name="outputs", loaded=load(kfp2_package(
        "artifacts_pipeline")), parameters={"source": "s3://datasets/iris.csv"})
    Controller(argo_cluster, run.pk).run()
    assert wait_for(run).state == RunState.SUCCEEDED, run.error
    step = tasks_of(run)["make-dataset"]
    data = Artifact.objects.get(task=step, name="data")
    key = data.uri.removeprefix(f"s3://{s3.BUCKET}/")
    assert key.startswith(f"artifacts/{profile.name}/") and key.endswith("/data.tgz")
    # What Argo's executor uploads when the step ends: the output file, tarred as "data".
    artifact_store.client().put_object(Bucket=s3.BUCKET, Key=key,
                                       Body=s3.argo_archive("data", b"0\n1\n2"))

    dataset = next(card for card in task_cards(step) if card.kind == "dataset")
    assert dataset.error == ""
    assert dataset.data["text"] == "0\n1\n2"
    client.force_login(owner)
    answer = client.get(reverse("run-artifact", args=[profile.name, run.pk, data.pk]))
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == b"0\n1\n2"
    imported = Artifact.objects.get(task=tasks_of(run)["importer"])
    assert not imported.downloadable  # another bucket: not kfdash's to read


def test_a_v1_steps_output_is_read_back_from_kfdashs_repository(
        argo_cluster, artifact_store, owner, profile, kfp1_packages):
    from tests.pipelines.engine.test_argo_status import package

    run = Run.start(profile, owner, name="v1", loaded=load(package(kfp1_packages,
                                                                   "metrics_v1")))
    Controller(argo_cluster, run.pk).run()
    assert wait_for(run).state == RunState.SUCCEEDED, run.error
    text = Artifact.objects.get(task=tasks_of(run)["report"], name="report-text")
    key = text.uri.removeprefix(f"s3://{s3.BUCKET}/")
    assert key.startswith(f"artifacts/{profile.name}/") and key.endswith("/report-text.tgz")
    artifact_store.client().put_object(Bucket=s3.BUCKET, Key=key,
                                       Body=s3.argo_archive("report-text", b"# report\n"))
    assert text.downloadable
    assert remote_artifacts.local_copy(text).read_bytes() == b"# report\n"


def test_deleting_a_run_removes_the_copies_kfdash_made(argo_cluster, artifact_store, owner,
                                                       profile, kfp2_package):
    run = Run.start(profile, owner, name="outputs", loaded=load(kfp2_package(
        "artifacts_pipeline")), parameters={"source": "s3://datasets/iris.csv"})
    Controller(argo_cluster, run.pk).run()
    assert wait_for(run).state == RunState.SUCCEEDED, run.error
    data = Artifact.objects.get(task=tasks_of(run)["make-dataset"], name="data")
    artifact_store.client().put_object(
        Bucket=s3.BUCKET, Key=data.uri.removeprefix(f"s3://{s3.BUCKET}/"),
        Body=s3.argo_archive("data", b"rows"))
    copy = remote_artifacts.local_copy(data)
    assert copy.read_bytes() == b"rows"
    run.remove(owner)
    assert not copy.exists()

