"""The artifacts pages: a namespace's list (search, type and run filters, pages, a fixed
number of queries) and one artifact's page (facts, visualization, lineage, download).
Runs, tasks and artifacts are rows made here; files are written into the artifact store
where the local engine writes them."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pipelines.models import Artifact
from pipelines.views.listing import PAGE_SIZE
from tests.pipelines.pages.run_factory import make_run
from tests.pipelines.run_rows import add_task, artifact_uri, write_artifact

LIST = "/ns/team-a/artifacts/"
CONFIDENCE = [{"confidenceThreshold": 1.0, "recall": 0.0, "falsePositiveRate": 0.0},
              {"confidenceThreshold": 0.5, "recall": 0.8, "falsePositiveRate": 0.1},
              {"confidenceThreshold": 0.0, "recall": 1.0, "falsePositiveRate": 1.0}]
MATRIX = {"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
          "rows": [{"row": [8, 2]}, {"row": [1, 9]}]}


def detail(artifact) -> str:
    return f"/ns/{artifact.run.profile.name}/artifacts/{artifact.pk}/"


def names(response) -> list[str]:
    return [a.name for a in response.context["artifacts"]]


def metadata_artifact(task, name: str, type_: str, metadata: dict, ago: float = 0) -> Artifact:
    """An artifact whose content is its metadata (metrics): nothing in the store."""
    return Artifact.objects.create(
        run=task.run, task=task, name=name, type=type_, metadata=metadata,
        uri=artifact_uri(task.run, task, name),
        created_at=timezone.now() - timedelta(seconds=ago))


@pytest.fixture
def training(profile):
    """A run whose step ``prepare`` stored a CSV dataset read by its step ``train``, which
    logged metrics and classification metrics."""
    run = make_run(profile, "training")
    prepare = add_task(run, "prepare", "SUCCEEDED", display_name="Prepare data")
    data = write_artifact(run, prepare, "data", b"id,value\n1,2\n3,4\n", "system.Dataset")
    train = add_task(run, "train", "SUCCEEDED", display_name="Train", inputs={
        "parameters": {"lr": 0.1},
        "artifacts": {"dataset": [{"uri": data.uri, "type": "system.Dataset"}]}})
    metadata_artifact(train, "metrics", "system.Metrics", {"accuracy": 0.9, "loss": 0.25})
    metadata_artifact(train, "classification", "system.ClassificationMetrics",
                      {"confidenceMetrics": CONFIDENCE, "confusionMatrix": MATRIX})
    return run


def artifact(run, name: str) -> Artifact:
    return Artifact.objects.select_related("run__profile").get(run=run, name=name)


# --- the list -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_it_lists_the_namespaces_artifacts_newest_first(request, login, who, training,
                                                        make_user):
    from dashboard.models import Profile

    other = Profile.register("team-b", make_user("bob@example.com"))
    elsewhere = make_run(other, "elsewhere")
    write_artifact(elsewhere, add_task(elsewhere, "step", "SUCCEEDED"), "secret", b"x")
    Artifact.objects.filter(run=training, name="data").update(
        created_at=timezone.now() - timedelta(hours=1))
    response = login(request.getfixturevalue(who)).get(LIST)
    assert response.status_code == 200
    assert names(response) == ["classification", "metrics", "data"]
    html = response.content.decode()
    data = artifact(training, "data")
    prepare = data.task
    row = re.search(rf'<tr data-artifact="{data.pk}">(.*?)</tr>', html, re.S).group(1)
    assert f'href="/ns/team-a/artifacts/{data.pk}/">data</a>' in row
    assert "system.Dataset" in row
    assert f'href="/ns/team-a/runs/{training.pk}/">training</a>' in row
    assert f'href="/ns/team-a/runs/{training.pk}/?step={prepare.pk}#graph">Prepare data</a>' \
        in row
    assert data.uri in row
    assert "17\xa0bytes" in row  # filesizeformat
    assert "secret" not in html


def test_it_has_an_artifacts_link_after_runs_in_the_navigation(login, owner, profile):
    html = login(owner).get(LIST).content.decode()
    nav = re.search(r'<nav id="sidenav".*?</nav>', html, re.S).group(0)
    labels = re.findall(r"</svg>\s*(\w[\w ]*?)</a>", nav)
    runs = labels.index("Runs")
    assert labels[runs + 1:runs + 3] == ["Recurring runs", "Artifacts"]
    assert f'href="{LIST}" aria-current="page"' in nav
    assert "icons.svg#artifact" in nav


def test_it_says_when_there_are_none(login, owner, profile):
    response = login(owner).get(LIST)
    assert response.status_code == 200
    assert "No artifacts yet." in response.content.decode()


def test_it_searches_by_name_and_uri(login, owner, training):
    client = login(owner)
    assert names(client.get(LIST + "?q=METRIC")) == ["metrics"]
    # Every artifact's URI names its step's folder.
    assert names(client.get(LIST + "?q=/prepare/")) == ["data"]
    nothing = client.get(LIST + "?q=nothing-like-it")
    assert names(nothing) == []
    assert "No artifact matches these filters." in nothing.content.decode()


def test_it_filters_by_the_types_present(login, owner, training, make_user):
    from dashboard.models import Profile

    other = Profile.register("team-b", make_user("bob@example.com"))
    elsewhere = make_run(other, "elsewhere")
    metadata_artifact(add_task(elsewhere, "step", "SUCCEEDED"), "m", "system.Model", {})
    client = login(owner)
    response = client.get(LIST + "?type=system.Metrics")
    assert names(response) == ["metrics"]
    assert response.context["types"] == ["system.ClassificationMetrics", "system.Dataset",
                                         "system.Metrics"]  # not team-b's
    html = response.content.decode()
    assert '<option value="system.Metrics" selected>' in html
    assert names(client.get(LIST + "?type=system.Dataset&q=dat")) == ["data"]


def test_it_filters_by_run_as_the_run_page_links(login, owner, profile, training,
                                                  make_user, settings):
    from dashboard.models import Profile

    later = make_run(profile, "later")
    write_artifact(later, add_task(later, "step", "SUCCEEDED"), "model", b"weights",
                   "system.Model")
    client = login(owner)
    assert names(client.get(LIST)) == ["model", "classification", "metrics", "data"]
    response = client.get(f"{LIST}?run={training.pk}")
    assert names(response) == ["classification", "metrics", "data"]
    assert 'href="?sort=-created"' in response.content.decode()  # back to every run
    # The run page's Details tab links here.
    assert f'href="{LIST}?run={training.pk}"' in client.get(
        f"/ns/team-a/runs/{training.pk}/").content.decode()
    empty = make_run(profile, "empty")
    assert "This run has stored no artifacts." in client.get(
        f"{LIST}?run={empty.pk}").content.decode()
    # A run that is not this namespace's is as missing as one that is not a run.
    foreign = make_run(Profile.register("team-b", make_user("bob@example.com")), "foreign")
    assert client.get(f"{LIST}?run={foreign.pk}").status_code == 404
    assert client.get(f"{LIST}?run=not-a-uuid").status_code == 404


def test_it_pages_and_sorts_by_name(login, owner, profile):
    run = make_run(profile, "many")
    task = add_task(run, "step", "SUCCEEDED")
    Artifact.objects.bulk_create(
        Artifact(run=run, task=task, name=f"out-{n:02}", uri=f"s3://bucket/out-{n:02}",
                 created_at=timezone.now() - timedelta(seconds=n)) for n in range(25))
    client = login(owner)
    first = client.get(LIST)
    assert names(first) == [f"out-{n:02}" for n in range(PAGE_SIZE)]
    second = client.get(LIST + "?page=2")
    assert names(second) == [f"out-{n:02}" for n in range(PAGE_SIZE, 25)]
    assert "Page 2 of 2 · 25 in all" in second.content.decode()
    assert names(client.get(LIST + "?sort=-name"))[:2] == ["out-24", "out-23"]
    assert names(client.get(LIST + "?sort=name&page=2"))[0] == f"out-{PAGE_SIZE:02}"


def queries_for(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in queries]


@pytest.mark.parametrize("query", ["", "?q=out&type=system.Model&sort=name&page=2", "?run="])
def test_its_queries_do_not_grow_with_the_artifacts(login, owner, profile, query):
    """5 artifacts or 50: the same queries, and none reads any artifact's metadata."""
    run = make_run(profile, "many")
    task = add_task(run, "step", "SUCCEEDED")
    query = query.replace("?run=", f"?run={run.pk}")
    big = {"confidenceMetrics": CONFIDENCE * 100}

    def add(count: int) -> None:
        Artifact.objects.bulk_create(
            Artifact(run=run, task=task, name=f"out-{n}", type="system.Model",
                     uri=f"s3://b/out-{n}", metadata=big) for n in range(count))

    client = login(owner)
    add(5)
    few = queries_for(client, LIST + query)
    Artifact.objects.all().delete()
    add(50)
    many = queries_for(client, LIST + query)
    assert len(few) == len(many)
    assert not [sql for sql in many if '"pipelines_artifact"."metadata"' in sql]


# --- one artifact -------------------------------------------------------------------------


def test_it_shows_an_artifacts_facts_and_metadata(login, owner, training):
    metrics = artifact(training, "metrics")
    html = login(owner).get(detail(metrics)).content.decode()
    assert "<h1>metrics" in html
    assert f"<code>{metrics.uri}</code>" in html
    assert f'href="/ns/team-a/runs/{training.pk}/?step={metrics.task.pk}#graph">Train</a>' in html
    shown = re.search(r"<pre [^>]*data-artifact-metadata>(.*?)</pre>", html, re.S).group(1)
    assert json.loads(shown.replace("&quot;", '"')) == {"accuracy": 0.9, "loss": 0.25}
    assert '"accuracy": 0.9' in shown.replace("&quot;", '"')  # indented, one per line


def test_it_shows_a_metrics_artifact_as_a_metrics_card(login, owner, training):
    response = login(owner).get(detail(artifact(training, "metrics")))
    [card] = response.context["cards"]
    assert card.kind == "metrics"
    html = response.content.decode()
    assert 'data-viz-kind="metrics"' in html
    assert '<tr data-viz-metric="accuracy"><td>accuracy</td><td class="metric">0.9</td>' in html
    # The cards sit in an element the visualizations script draws at once.
    assert "data-run-outputs" in html
    assert 'type="module" src="/static/js/visualizations.js"' in html


def test_it_shows_classification_metrics_as_an_roc_curve_and_a_matrix(login, owner, training):
    response = login(owner).get(detail(artifact(training, "classification")))
    assert [card.kind for card in response.context["cards"]] == ["roc", "confusion_matrix"]
    html = response.content.decode()
    assert 'data-viz-chart="roc"' in html
    assert "AUC <strong data-viz-auc>0.8500</strong>" in html
    assert 'data-viz-chart="confusion_matrix"' in html


def test_it_previews_a_stored_dataset_and_links_its_download(login, owner, training):
    data = artifact(training, "data")
    client = login(owner)
    response = client.get(detail(data))
    [card] = response.context["cards"]
    assert (card.kind, card.error) == ("dataset", "")
    html = response.content.decode()
    download = f"/ns/team-a/runs/{training.pk}/artifacts/{data.pk}/"
    assert f'href="{download}" download data-artifact-download>Download</a>' in html
    assert client.get(download).getvalue() == b"id,value\n1,2\n3,4\n"


def test_it_says_when_there_is_nothing_to_show_or_download(login, owner, profile):
    run = make_run(profile, "remote")
    task = add_task(run, "import", "SUCCEEDED")
    remote = Artifact.objects.create(run=run, task=task, name="raw", uri="gs://bucket/raw")
    html = login(owner).get(detail(remote)).content.decode()
    assert "data-artifact-download" not in html
    assert "Not in kfdash's artifact store" in html
    assert "Nothing to show for a system.Artifact" in html
    assert "No metadata." in html
    assert "No step has read it yet." in html
    assert "visualizations.js" not in html


def test_its_lineage_names_the_producer_and_the_consumers(login, owner, training):
    data = artifact(training, "data")
    response = login(owner).get(detail(data))
    lineage = response.context["lineage"]
    assert lineage.producer.pk == data.task_id
    assert [(use.task.spec_id, use.input) for use in lineage.consumers] == [
        ("train", "dataset")]
    html = response.content.decode()
    train = lineage.consumers[0].task
    assert re.search(rf'data-lineage-consumer="{train.pk}"><a href="/ns/team-a/runs/'
                     rf'{training.pk}/\?step={train.pk}#graph">Train</a>', html)
    producer = re.search(r"<dd data-lineage-producer>(.*?)</dd>", html, re.S).group(1)
    assert f"?step={data.task_id}#graph" in producer and "Prepare data" in producer


def test_its_lineage_follows_cached_copies_into_later_runs(login, owner, profile, training):
    """A later run whose ``prepare`` was a cache hit got a copy of the dataset with its own
    URI; its ``train`` read the copy: both pages tell."""
    data = artifact(training, "data")
    later = make_run(profile, "later")
    cached = add_task(later, "prepare", "CACHED", display_name="Prepare data",
                      cached_from=data.task)
    copy = write_artifact(later, cached, "data", b"id,value\n1,2\n3,4\n", "system.Dataset")
    reader = add_task(later, "train", "SUCCEEDED", display_name="Train again", inputs={
        "artifacts": {"dataset": {"uri": copy.uri}}})  # a single entry, not a list
    add_task(later, "other", "SUCCEEDED", inputs={"artifacts": {"x": "s3://elsewhere"}})
    client = login(owner)
    lineage = client.get(detail(data)).context["lineage"]
    assert [a.pk for a in lineage.copies] == [copy.pk]
    assert [(use.task.display_name, use.artifact.pk) for use in lineage.consumers] == [
        ("Train", data.pk), ("Train again", copy.pk)]
    html = client.get(detail(copy)).content.decode()
    producer = re.search(r"<dd data-lineage-producer>(.*?)</dd>", html, re.S).group(1)
    assert f'href="/ns/team-a/artifacts/{data.pk}/"' in producer  # the original
    assert f'data-lineage-consumer="{reader.pk}"' in html


# --- who may look ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_it_shows_an_artifact_to_its_namespace(request, login, who, training):
    response = login(request.getfixturevalue(who)).get(detail(artifact(training, "data")))
    assert response.status_code == 200


def test_it_hides_artifacts_from_strangers(login, stranger, training):
    client = login(stranger)
    data = artifact(training, "data")
    assert client.get(LIST).status_code == 404
    assert client.get(detail(data)).status_code == 404
    assert client.get(f"/ns/team-a/runs/{training.pk}/artifacts/{data.pk}/").status_code == 404


def test_it_hides_artifacts_from_members_of_another_namespace(login, training, make_user):
    """Bob owns team-b: guessing a team-a artifact's id, under team-a's URL or his own,
    finds nothing, and neither does its download."""
    from dashboard.models import Profile

    bob = make_user("bob@example.com")
    Profile.register("team-b", bob)
    client = login(bob)
    data = artifact(training, "data")
    assert client.get("/ns/team-b/artifacts/").status_code == 200
    assert client.get(detail(data)).status_code == 404
    assert client.get(f"/ns/team-b/artifacts/{data.pk}/").status_code == 404
    assert client.get(f"/ns/team-b/runs/{training.pk}/artifacts/{data.pk}/").status_code == 404
    assert client.get(f"/ns/team-b/artifacts/?run={training.pk}").status_code == 404


def test_it_sends_anonymous_callers_to_log_in(client, training):
    url = detail(artifact(training, "data"))
    for target in (LIST, url):
        response = client.get(target)
        assert response.status_code == 302
        assert response["Location"] == f"/login/?next={target}"
