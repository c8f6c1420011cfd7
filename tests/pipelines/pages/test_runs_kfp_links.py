"""The KFP UI links the kfp SDK prints: /go/... finds a run, experiment, pipeline or version
by id and redirects to its page, for people who may see its namespace (404 for others)."""

import pytest

from pipelines.models import Experiment, Pipeline
from pipelines.specs import load
from tests.pipelines.pages.run_factory import make_run


@pytest.fixture
def objects(profile, owner, stored):
    run = make_run(profile, "r", version=stored)
    return {"run": run, "experiment": run.experiment, "pipeline": stored.pipeline,
            "version": stored}


def targets(objects) -> dict[str, str]:
    """/go/ URL -> the page it leads to."""
    run, experiment = objects["run"], objects["experiment"]
    pipeline, version = objects["pipeline"], objects["version"]
    return {
        f"/go/runs/{run.pk}/": f"/ns/team-a/runs/{run.pk}/",
        f"/go/experiments/{experiment.pk}/": f"/ns/team-a/experiments/{experiment.pk}/",
        f"/go/pipelines/{pipeline.pk}/": f"/ns/team-a/pipelines/{pipeline.pk}/",
        f"/go/pipelines/{pipeline.pk}/versions/{version.pk}/":
            f"/ns/team-a/pipelines/{pipeline.pk}/?version={version.pk}",
    }


@pytest.mark.parametrize("who", ["owner", "member", "viewer", "cluster_admin"])
def test_it_redirects_to_the_objects_page(request, login, who, objects):
    client = login(request.getfixturevalue(who))
    for url, target in targets(objects).items():
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, target), url


def test_it_is_404_for_strangers(login, stranger, objects):
    client = login(stranger)
    for url in targets(objects):
        assert client.get(url).status_code == 404, url

def test_it_is_404_for_unknown_ids(login, owner, objects):
    client = login(owner)
    unknown = "00000000-0000-4000-8000-000000000000"
    for url in (f"/go/runs/{unknown}/", f"/go/experiments/{unknown}/",
                f"/go/pipelines/{unknown}/",
                f"/go/pipelines/{objects['pipeline'].pk}/versions/{unknown}/"):
        assert client.get(url).status_code == 404, url


def test_it_refuses_a_version_of_another_pipeline(login, owner, profile, objects,
                                                  hello_package):
    other = Pipeline.upload(profile, "other", load(hello_package), owner)
    url = f"/go/pipelines/{objects['pipeline'].pk}/versions/{other.pk}/"
    assert login(owner).get(url).status_code == 404


def test_it_opens_a_shared_pipeline_in_the_users_namespace(login, member, cluster_admin,
                                                           profile, hello_package,
                                                           stranger):
    shared = Pipeline.upload(None, "everyones", load(hello_package), cluster_admin)
    response = login(member).get(f"/go/pipelines/{shared.pipeline_id}/")
    assert response["Location"] == f"/ns/team-a/pipelines/{shared.pipeline_id}/"
    # Someone with no namespace has nowhere to open it.
    assert login(stranger).get(f"/go/pipelines/{shared.pipeline_id}/").status_code == 404


def test_it_sends_anonymous_callers_to_log_in_and_back(client, objects):
    url = f"/go/runs/{objects['run'].pk}/"
    response = client.get(url)
    assert response["Location"] == f"/login/?next={url}"


def test_the_pages_slash_leads_to_carry_the_hash_route_script(login, make_user, owner,
                                                               profile, client):
    """The hash never reaches the server: the script that reads it (tested in the browser
    by tests/e2e/test_journey_runs.py) is on every page ``/`` leads to (login, registration,
    a namespace's home) and on the 404 page (Kubeflow serves the KFP UI at /pipeline/)."""
    script = '<script type="module" src="/static/js/kfp-links.js"></script>'
    assert client.get("/")["Location"] == "/login/?next=/"
    assert script in client.get("/login/").content.decode()
    assert login(make_user("new@example.com")).get("/")["Location"] == "/register/"
    assert script in client.get("/register/").content.decode()
    assert login(owner).get("/")["Location"] == "/ns/team-a/"
    assert script in client.get("/ns/team-a/").content.decode()
    assert script in client.get("/pipeline/").content.decode()


def test_experiments_of_other_namespaces_stay_hidden(login, owner, make_user):
    from dashboard.models import Profile

    other = make_user("other@example.com")
    theirs = Experiment.create(Profile.register("team-b", other), "theirs", other)
    Profile.register("team-a", owner)
    assert login(owner).get(f"/go/experiments/{theirs.pk}/").status_code == 404
