"""Run.start checks everything before creating anything; Run.commit_changes saves under a
new revision and publishes only what was committed, in order."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError

from dashboard.models import Profile
from pipelines.models import Experiment, Pipeline, Run, RunTask, run_group, runs_group
from pipelines.specs import load
from tests.pipelines.api.conftest import ir_package  # noqa: F401  (a session fixture)


@pytest.fixture
def version(owner, profile, ir_package):  # noqa: F811
    return Pipeline.upload(profile, "add", load(ir_package), owner)


@pytest.fixture
def no_engine(settings, tmp_path, monkeypatch):
    """An engine that cannot start runs (a cluster nobody answers for): runs are created,
    then fail with the reason."""
    from dashboard import kube
    from tests.fakekube import kubeconfig_dict

    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps(kubeconfig_dict("http://127.0.0.1:9")))
    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KUBECONFIG = str(config)
    kube.reset()
    yield
    kube.reset()


def listen(*groups: str):
    """Subscribe to ``groups`` now; the returned function gives what has arrived since."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    for group in groups:
        async_to_sync(layer.group_add)(group, channel)

    async def drain() -> list[dict]:
        events = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.2)
            except TimeoutError:
                return events
            events.append(message["event"])

    return async_to_sync(drain)


@pytest.mark.django_db(transaction=True)
def test_it_starts_a_run_in_the_default_experiment_with_typed_parameters(
        owner, profile, version, no_engine):
    run = Run.start(profile, owner, name="first", version=version, parameters={"a": 5})
    assert run.parameters == {"a": 5, "msg": "hi", "ratio": 0.5}
    assert run.experiment.name == "Default" and run.pipeline == version.pipeline
    assert run.graph == version.graph and run.document == version.document
    run.refresh_from_db()
    # The engine cannot start it: the run says so instead of waiting forever.
    assert run.state == "FAILED" and "cannot reach the cluster" in run.error
    assert [h["state"] for h in run.state_history] == ["PENDING", "FAILED"]
    assert run.finished_at is not None
    assert Experiment.objects.get(pk=run.experiment_id).last_run_created_at == run.created_at
    assert profile.activities.filter(message__contains="started the run first").exists()


@pytest.mark.django_db(transaction=True)
def test_it_starts_a_run_from_a_package_without_storing_a_pipeline(
        owner, profile, ir_package, no_engine):  # noqa: F811
    run = Run.start(profile, owner, name="from a file", loaded=load(ir_package),
                    parameters={"msg": "yo"}, caching=False)
    assert run.pipeline is None and run.pipeline_version is None
    assert run.parameters["msg"] == "yo" and run.caching is False
    assert run.spec.name == "add-pipeline"


def test_it_creates_nothing_when_anything_is_wrong(owner, profile, version, make_user):
    other = Profile.register("team-b", make_user("b@example.com"))
    foreign_version = Pipeline.upload(other, "theirs", load_of(version), other.owner)
    archived = Experiment.create(profile, "old", owner)
    archived.archive(owner)
    cases = [
        ({"version": version, "parameters": {"a": "x", "nope": 1}}, {"a", "nope"}),
        ({"version": foreign_version}, None),
        ({"version": version, "experiment": archived}, None),
        ({"version": version, "experiment": Experiment.create(other, "e", other.owner)}, None),
        ({"version": version, "loaded": load_of(version)}, None),
        ({}, None),
    ]
    for kwargs, fields in cases:
        with pytest.raises(ValidationError) as exc:
            Run.start(profile, owner, name="r", **kwargs)
        if fields:
            assert set(exc.value.message_dict) == fields
    with pytest.raises(ValidationError):
        Run.start(profile, owner, name="", version=version)
    assert not Run.objects.exists()


def load_of(version):
    return load(version.source.encode())


def test_it_commits_changes_under_a_new_revision_and_publishes_them_in_order(
        owner, profile, version, django_capture_on_commit_callbacks):
    experiment = Experiment.default_for(profile, owner)
    run = Run.objects.create(profile=profile, experiment=experiment, name="r",
                             format=version.format, document={}, graph=version.graph)
    task = RunTask(run=run, node_id="add", spec_id="add", display_name="add")
    received = listen(run_group(run.pk), runs_group(profile.name))

    with django_capture_on_commit_callbacks(execute=True):
        run.commit_changes([task], state="RUNNING")
    task.state = "SUCCEEDED"
    with django_capture_on_commit_callbacks(execute=True):
        run.commit_changes([task], state="SUCCEEDED")

    run.refresh_from_db()
    task.refresh_from_db()
    assert run.revision == 2 and task.revision == 2
    assert [h["state"] for h in run.state_history] == ["RUNNING", "SUCCEEDED"]
    assert run.started_at and run.finished_at and task.finished_at
    events = received()
    # Each commit: the run and its tasks to the run's group, the run to the namespace's.
    assert [(e["type"], e["revision"], e["state"]) for e in events] == [
        ("run", 1, "RUNNING"), ("task", 1, "PENDING"), ("run", 1, "RUNNING"),
        ("run", 2, "SUCCEEDED"), ("task", 2, "SUCCEEDED"), ("run", 2, "SUCCEEDED")]


def test_a_commit_of_tasks_alone_is_news_to_the_run_page_not_to_run_lists(
        owner, profile, version, django_capture_on_commit_callbacks):
    run = Run.objects.create(profile=profile, experiment=Experiment.default_for(profile, owner),
                             name="r", format=version.format, document={}, graph=version.graph,
                             state="RUNNING")
    task = RunTask(run=run, node_id="add", spec_id="add", display_name="add", state="RUNNING")
    page, lists = listen(run_group(run.pk)), listen(runs_group(profile.name))

    with django_capture_on_commit_callbacks(execute=True):
        run.commit_changes([task])
    with django_capture_on_commit_callbacks(execute=True):
        run.commit_changes([task], state="RUNNING")  # the same state: nothing new for lists

    assert [(e["type"], e["revision"]) for e in page()] == [
        ("run", 1), ("task", 1), ("run", 2), ("task", 2)]
    assert lists() == []


def test_it_publishes_nothing_that_was_rolled_back(owner, profile, version,
                                                    django_capture_on_commit_callbacks):
    from django.db import transaction

    run = Run.objects.create(profile=profile, experiment=Experiment.default_for(profile, owner),
                             name="r", format=version.format, document={}, graph={})
    received = listen(run_group(run.pk))
    with (django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError), transaction.atomic()):
        run.commit_changes(state="RUNNING")
        raise RuntimeError("the engine crashed")
    assert callbacks == [] and received() == []
    run.refresh_from_db()
    assert run.state == "PENDING" and run.revision == 0


def test_it_refuses_to_terminate_a_finished_run_or_retry_a_running_one(owner, profile,
                                                                        version):
    experiment = Experiment.default_for(profile, owner)
    finished = Run.objects.create(profile=profile, experiment=experiment, name="done",
                                  format=version.format, document={}, graph={},
                                  state="SUCCEEDED")
    running = Run.objects.create(profile=profile, experiment=experiment, name="going",
                                 format=version.format, document={}, graph={},
                                 state="RUNNING")
    with pytest.raises(ValidationError, match="already ended"):
        finished.terminate(owner)
    for run in (finished, running):
        with pytest.raises(ValidationError, match="Only a failed or canceled run"):
            run.retry(owner)
