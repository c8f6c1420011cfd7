"""The pipeline details page: graph data, parameters, the spec as YAML, the versions; and
deleting a pipeline or one version after a confirmation page."""

import json
import re

import pytest

from pipelines.models import Pipeline, PipelineVersion
from pipelines.specs import load


def detail_url(pipeline, version=None) -> str:
    url = f"/ns/team-a/pipelines/{pipeline.pk}/"
    return f"{url}?version={version.pk}" if version else url


def graph_json(html: str) -> dict:
    found = re.search(r'<script id="pipeline-graph-data" type="application/json">(.*?)</script>',
                      html, re.S)
    return json.loads(found.group(1))


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_it_shows_the_graph_parameters_spec_and_versions(request, login, who, stored):
    page = login(request.getfixturevalue(who)).get(detail_url(stored.pipeline))
    assert page.status_code == 200
    html = page.content.decode()
    graph = graph_json(html)
    assert sorted(t["name"] for t in graph["tasks"]) == [
        "evaluate", "load-data", "notify", "publish", "train"]
    assert {g["label"] for g in graph["groups"]} == {
        "good-enough: if evaluate.Output > 0.8", "for each in [a, b] (1 at a time)"}
    train = next(t for t in graph["tasks"] if t["name"] == "train")
    assert ["Retries", "2"] in train["facts"]
    assert {"name": "data", "kind": "artifact", "type": "system.Dataset",
            "source": "load-data.data"} in train["inputs"]
    assert graph["containers"][train["container"]][0] == ["Image", "python:3.11"]
    # parameters: name, type, default
    assert re.search(r"<code>rows</code>.*?NUMBER_INTEGER.*?<code>100</code>", html, re.S)
    assert "schemaVersion: 2.1.0" in html  # the spec as YAML
    assert 'data-version="hello-pipeline"' in html
    assert ("Upload version" in html) == (who != "viewer")
    assert 'src="/static/vendor/elk-api.js"' in html
    # Without JavaScript the tasks are a table, open; the script closes it once drawn.
    assert '<details class="task-table" data-task-table open>' in html
    assert '<th scope="row">publish</th>' in html
    assert "<td>good-enough: if evaluate.Output &gt; 0.8</td>" in html


def test_it_escapes_the_spec_and_labels(login, owner, profile, hello_package):
    text = hello_package.decode().replace("Load, train, evaluate; publish if good.",
                                          "</script><b>bold</b>")
    version = Pipeline.upload(profile, "x", load(text.encode()), owner)
    html = login(owner).get(detail_url(version.pipeline)).content.decode()
    assert "<b>bold</b>" not in html and "&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html


def test_it_shows_a_json_upload_as_yaml(login, owner, profile, hello_package):
    import yaml

    document = yaml.safe_load(hello_package)
    version = Pipeline.upload(profile, "json", load(json.dumps(document).encode()), owner)
    html = login(owner).get(detail_url(version.pipeline)).content.decode()
    assert "\npipelineInfo:\n" in html and "  name: hello-pipeline\n" in html
    assert "{&quot;components&quot;" not in html


def test_it_selects_a_version(login, owner, stored, big_package):
    big = stored.pipeline.add_version(load(big_package), owner, "big")
    client = login(owner)
    default = graph_json(client.get(detail_url(stored.pipeline)).content.decode())
    assert len(default["tasks"]) == 50  # the default version is the newest upload
    first = graph_json(client.get(detail_url(stored.pipeline, stored)).content.decode())
    assert len(first["tasks"]) == 5
    assert big.pk != stored.pk
    other = Pipeline.upload(stored.pipeline.profile, "other", load(big_package), owner)
    assert client.get(detail_url(stored.pipeline, other)).status_code == 404
    assert client.get(detail_url(stored.pipeline) + "?version=nonsense").status_code == 404


def test_it_names_loops_conditions_and_exit_handlers(login, owner, profile, big_package):
    version = Pipeline.upload(profile, "big", load(big_package), owner)
    graph = graph_json(login(owner).get(detail_url(version.pipeline)).content.decode())
    labels = sorted(g["label"] for g in graph["groups"])
    assert "cleanup: exit handler" in labels
    assert "for each in [0.1, 0.01, 0.001, … 1 more] (2 at a time)" in labels
    assert "if not (evaluate-final.Output > 0.8)" in labels
    done = next(t for t in graph["tasks"] if t["name"] == "notify-done")
    assert done["exit_handler"] and done["deps"] == ["exit-handler-1"]


def test_it_shows_a_pipeline_without_versions(login, owner, profile):
    pipeline = Pipeline.create(profile, "empty", owner)
    html = login(owner).get(detail_url(pipeline)).content.decode()
    assert "This pipeline has no versions yet." in html


def test_it_shows_shared_pipelines_but_hides_other_namespaces(login, viewer, stranger, owner,
                                                              cluster_admin, make_user, stored,
                                                              hello_package):
    from dashboard.models import Profile

    shared = Pipeline.upload(None, "everyones", load(hello_package), cluster_admin).pipeline
    other = make_user("other@example.com")
    theirs = Pipeline.upload(Profile.register("team-b", other), "theirs", load(hello_package),
                             other).pipeline
    html = login(viewer).get(detail_url(shared)).content.decode()
    assert "everyones" in html and "Delete" not in html
    assert "Upload version" not in login(owner).get(detail_url(shared)).content.decode()
    assert login(owner).get(detail_url(theirs)).status_code == 404
    assert login(stranger).get(detail_url(stored.pipeline)).status_code == 404


def test_it_deletes_a_pipeline_after_confirming(login, member, stored):
    client = login(member)
    url = detail_url(stored.pipeline) + "delete/"
    confirm = client.get(url)
    assert b"Delete the pipeline hello-pipeline?" in confirm.content
    assert b"its 1 version are deleted" in confirm.content
    assert Pipeline.objects.exists()  # a GET deletes nothing
    response = client.post(url)
    assert response["Location"] == "/ns/team-a/pipelines/"
    assert not Pipeline.objects.exists() and not PipelineVersion.objects.exists()


def test_it_deletes_one_version_after_confirming(login, member, owner, stored, big_package):
    pipeline = stored.pipeline
    newer = pipeline.add_version(load(big_package), owner, "v2")
    client = login(member)
    url = f"{detail_url(pipeline)}versions/{newer.pk}/delete/"
    assert b"Delete version v2?" in client.get(url).content
    response = client.post(url)
    assert response["Location"] == detail_url(pipeline)
    pipeline.refresh_from_db()
    assert list(pipeline.versions.all()) == [stored] and pipeline.default_version == stored


def test_it_refuses_deleting_to_viewers_strangers_and_shared_to_members(
        login, viewer, member, stranger, cluster_admin, stored, hello_package):
    shared = Pipeline.upload(None, "everyones", load(hello_package), cluster_admin)
    for url in (detail_url(stored.pipeline) + "delete/",
                f"{detail_url(stored.pipeline)}versions/{stored.pk}/delete/"):
        assert login(viewer).get(url).status_code == 403
        assert login(viewer).post(url).status_code == 403
        assert login(stranger).post(url).status_code == 404
    assert login(member).post(detail_url(shared.pipeline) + "delete/").status_code == 403
    assert login(member).post(
        f"{detail_url(shared.pipeline)}versions/{shared.pk}/delete/").status_code == 403
    assert Pipeline.objects.count() == 2 and PipelineVersion.objects.count() == 2
    assert login(cluster_admin).post(detail_url(shared.pipeline) + "delete/").status_code == 302
    assert not Pipeline.objects.filter(pk=shared.pipeline.pk).exists()
