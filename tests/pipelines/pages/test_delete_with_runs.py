"""Deleting a pipeline, a version or an experiment that runs concern is refused until the
person confirms it; an experiment's runs go with it, logs and artifacts included."""

from django.urls import reverse

from pipelines.models import Experiment, Pipeline, PipelineVersion, Run
from tests.pipelines.pages.run_factory import make_run


def test_it_asks_before_deleting_a_pipeline_runs_were_started_from(login, owner, profile,
                                                                    stored):
    run = make_run(profile, "from it", version=stored)
    client = login(owner)
    url = reverse("pipeline-delete", args=["team-a", stored.pipeline_id])
    page = client.get(url).content.decode()
    assert "1 run was started from it." in page and 'name="confirm_runs"' in page

    refused = client.post(url)
    assert refused.status_code == 200 and "Tick the box to delete anyway." in \
        refused.content.decode()
    assert Pipeline.objects.filter(pk=stored.pipeline_id).exists()

    assert client.post(url, {"confirm_runs": "on"}).status_code == 302
    assert not Pipeline.objects.filter(pk=stored.pipeline_id).exists()
    run.refresh_from_db()  # the run stays, with its own copy of the pipeline
    assert run.pipeline is None and run.graph == stored.graph


def test_it_asks_before_deleting_a_version_runs_were_started_from(login, owner, profile,
                                                                   stored):
    make_run(profile, "a", version=stored)
    make_run(profile, "b", version=stored)
    client = login(owner)
    url = reverse("pipeline-version-delete", args=["team-a", stored.pipeline_id, stored.pk])
    assert "2 runs were started from it." in client.get(url).content.decode()
    client.post(url)
    assert PipelineVersion.objects.filter(pk=stored.pk).exists()
    client.post(url, {"confirm_runs": "on"})
    assert not PipelineVersion.objects.filter(pk=stored.pk).exists()
    assert Run.objects.count() == 2


def test_it_deletes_a_pipeline_without_runs_at_once(login, owner, stored):
    url = reverse("pipeline-delete", args=["team-a", stored.pipeline_id])
    assert "confirm_runs" not in login(owner).get(url).content.decode()
    assert login(owner).post(url).status_code == 302
    assert not Pipeline.objects.exists()


def test_it_deletes_an_experiment_with_its_runs_once_confirmed(login, owner, profile,
                                                                settings):
    settings.KFDASH_PLATFORM = "local"
    experiment = Experiment.create(profile, "exp", owner)
    make_run(profile, "one", experiment=experiment)
    make_run(profile, "two", experiment=experiment)
    other = make_run(profile, "elsewhere")
    client = login(owner)
    url = reverse("experiment-delete", args=["team-a", experiment.pk])
    assert "Its 2 runs are deleted with it" in client.get(url).content.decode()
    client.post(url)
    assert Experiment.objects.filter(pk=experiment.pk).exists()

    client.post(url, {"confirm_runs": "on"})
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    assert list(Run.objects.all()) == [other]
    assert profile.activities.filter(
        message="owner@example.com deleted the experiment exp and its 2 runs").exists()
    assert not profile.activities.filter(message__contains="deleted the run").exists()
