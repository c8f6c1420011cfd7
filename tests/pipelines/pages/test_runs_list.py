"""The runs page: columns (state, duration, pipeline, experiment, common metrics), filters
by state, name, parameter value and metric condition, sorts, tabs, pages in a constant
number of queries; the same table in each experiment's page."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.models import Experiment, Run, RunMetric
from tests.pipelines.pages.run_factory import make_run

LIST = "/ns/team-a/runs/"


def names(response) -> list[str]:
    return [run.name for run in response.context["runs"]]


def row(html: str, run: Run) -> str:
    """The table row of ``run`` in a page."""
    match = re.search(rf'<tr data-run="{run.pk}".*?</tr>', html, re.S)
    assert match, run.name
    return match.group(0)


def test_it_lists_the_namespaces_runs_with_their_columns(login, owner, profile, stored,
                                                         make_user):
    tuning = Experiment.create(profile, "tuning", owner)
    done = make_run(profile, "trained", experiment=tuning, version=stored, took=125,
                    metrics={"accuracy": 0.93})
    going = make_run(profile, "going", state="RUNNING", took=4, ago=4)
    failed = make_run(profile, "broken", state="FAILED", took=1.5, ago=10)
    failed.error = "step train exited with code 1"
    failed.save()
    make_run(profile, "hidden", storage_state="ARCHIVED")
    from dashboard.models import Profile

    other = make_user("other@example.com")
    make_run(Profile.register("team-b", other), "theirs")
    page = login(owner).get(LIST)
    assert page.status_code == 200
    assert names(page) == ["trained", "going", "broken"]  # newest first, active only
    html = page.content.decode()
    cells = row(html, done)
    assert 'class="runs-state s-SUCCEEDED"' in cells and ">Succeeded<" in cells
    assert f'href="/ns/team-a/runs/{done.pk}/">trained</a>' in cells
    assert ">2 min 5 s<" in cells
    assert f'href="/ns/team-a/pipelines/{stored.pipeline_id}/">hello-pipeline</a>' in cells
    assert f'?version={stored.pk}">hello-pipeline</a>' in cells
    assert f'href="/ns/team-a/experiments/{tuning.pk}/">tuning</a>' in cells
    assert '<td class="metric">0.93</td>' in cells
    running = row(html, going)
    assert ">Running<" in running and 'data-started="' in running \
        and "data-finished" not in running
    assert re.search(r'data-cell="duration"[^>]*>\d\.\d s<', running)
    assert "not stored" in running  # no stored pipeline behind it
    assert 'title="step train exited with code 1"' in row(html, failed)
    # What the live list needs: the namespace, when it was rendered, each row's revision.
    assert 'data-runs-live="team-a"' in html and 'data-since="' in html
    assert f'<tr data-run="{done.pk}" data-revision="0">' in html


def test_it_shows_the_two_most_common_metrics_as_columns(login, owner, profile):
    make_run(profile, "a", metrics={"accuracy": 0.5, "loss": 0.25, "f1": 0.1})
    make_run(profile, "b", metrics={"accuracy": 0.75, "loss": 0.5})
    c = make_run(profile, "c", metrics={"accuracy": 0.875, "recall": 0.2})
    RunMetric.objects.filter(run=c, name="accuracy").update(format="PERCENTAGE")
    make_run(profile, "d")
    page = login(owner).get(LIST + "?sort=name")
    assert [m["name"] for m in page.context["metric_columns"]] == ["accuracy", "loss"]
    assert [run.metric_cells for run in page.context["runs"]] == [
        ["0.5", "0.25"], ["0.75", "0.5"], ["87.500%", ""], ["", ""]]
    html = page.content.decode()
    assert '<th scope="col" class="metric" data-metric-column="accuracy" aria-sort="none">' \
        '<a class="sort-link" href="?show=active&amp;sort=-metric-0">accuracy</a></th>' in html
    # Filtering keeps the namespace's columns: a run without one of them shows an empty cell.
    filtered = login(owner).get(LIST + "?q=c")
    assert [m["name"] for m in filtered.context["metric_columns"]] == ["accuracy", "loss"]
    assert [run.metric_cells for run in filtered.context["runs"]] == [["87.500%", ""]]


def test_it_filters_by_state_name_parameter_value_and_metric(login, owner, profile):
    make_run(profile, "alpha", state="FAILED", parameters={"target": "prod", "lr": 0.1},
             metrics={"accuracy": 0.95, "loss": 0.1})
    make_run(profile, "beta", parameters={"target": "staging", "note": "café \"x\""},
             metrics={"accuracy": 0.85, "loss": 0.3})
    make_run(profile, "gamma-prod", parameters={"lr": 0.5}, metrics={"accuracy": 0.9})
    client = login(owner)

    def found(query: str) -> list[str]:
        return sorted(names(client.get(f"{LIST}?{query}")))

    assert found("state=FAILED") == ["alpha"]
    assert found("state=SUCCEEDED") == ["beta", "gamma-prod"]
    assert found("q=PROD") == ["alpha", "gamma-prod"]  # a name or a parameter value
    assert found("q=staging") == ["beta"]
    assert found("q=caf%C3%A9") == ["beta"]  # non-ASCII, however the database stores it
    assert found("q=%22x%22") == ["beta"]  # quotes, escaped inside JSON strings
    assert found("q=0.5") == ["gamma-prod"]
    assert found("metric=accuracy+>+0.9") == ["alpha"]
    assert found("metric=accuracy+>%3D+0.9") == ["alpha", "gamma-prod"]
    assert found("metric=accuracy>0.8+and+loss<0.2") == ["alpha"]
    assert found("metric=loss+!%3D+0.1") == ["beta"]
    assert found("metric=accuracy+>+0.8&state=SUCCEEDED&q=a") == ["beta", "gamma-prod"]
    assert found("metric=f1+>+0") == []
    page = client.get(f"{LIST}?metric=accuracy+is+high")
    assert sorted(names(page)) == ["alpha", "beta", "gamma-prod"]  # shown, not applied
    assert "“accuracy is high” is not a metric condition" in page.content.decode()
    html = client.get(f"{LIST}?state=PAUSED").content.decode()
    assert "No run matches these filters." in html
    assert 'href="?show=active&amp;sort=-created">Clear</a>' in html


def test_it_sorts_by_state_name_created_and_duration(login, owner, profile):
    make_run(profile, "b-slow", took=300, ago=30)
    make_run(profile, "a-quick", state="FAILED", took=2, ago=20)
    make_run(profile, "c-waiting", state="PENDING", ago=10)
    make_run(profile, "d-going", state="RUNNING", took=60, ago=60)
    client = login(owner)
    assert names(client.get(LIST)) == ["c-waiting", "a-quick", "b-slow", "d-going"]
    assert names(client.get(LIST + "?sort=created")) == [
        "d-going", "b-slow", "a-quick", "c-waiting"]
    assert names(client.get(LIST + "?sort=name")) == ["a-quick", "b-slow", "c-waiting",
                                                      "d-going"]
    assert names(client.get(LIST + "?sort=-name"))[0] == "d-going"
    # States in their declared order: pending, running, succeeded, ..., failed.
    assert names(client.get(LIST + "?sort=state")) == [
        "c-waiting", "d-going", "b-slow", "a-quick"]
    # Longest first; a run still going counts until now; one not started comes last.
    assert names(client.get(LIST + "?sort=-duration")) == [
        "b-slow", "d-going", "a-quick", "c-waiting"]
    assert names(client.get(LIST + "?sort=duration")) == [
        "a-quick", "d-going", "b-slow", "c-waiting"]
    html = client.get(LIST + "?sort=-duration").content.decode()
    assert 'aria-sort="descending"><a class="sort-link" href="?show=active&amp;sort=duration">' \
           "Duration" in html


def test_it_shows_archived_runs_under_their_tab(login, owner, profile):
    make_run(profile, "kept")
    make_run(profile, "old", storage_state="ARCHIVED")
    client = login(owner)
    assert names(client.get(LIST + "?show=archived")) == ["old"]
    html = client.get(LIST + "?show=archived").content.decode()
    assert 'value="restore"' in html and 'value="archive"' not in html
    assert names(client.get(LIST + "?show=nonsense")) == ["kept"]


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_it_lets_every_member_read_it_and_editors_act(request, login, who, profile):
    make_run(profile, "one")
    page = login(request.getfixturevalue(who)).get(LIST)
    assert page.status_code == 200 and names(page) == ["one"]
    html = page.content.decode()
    editor = who != "viewer"
    assert ("Create run</a>" in html) == editor
    assert 'name="runs"' in html  # the checkboxes: everyone may compare runs
    assert ('value="delete"' in html) == editor
    assert ('value="archive"' in html) == editor


def test_it_hides_the_page_from_strangers(login, stranger, profile):
    make_run(profile, "one")
    assert login(stranger).get(LIST).status_code == 404


def test_it_says_when_there_are_no_runs(login, viewer, member, profile):
    assert "No runs yet." in login(viewer).get(LIST).content.decode()
    assert "Create one</a> from a pipeline." in login(member).get(LIST).content.decode()


def _runs(profile, count: int) -> None:
    """``count`` runs over two experiments, with metrics and pipelines, made in bulk."""
    from pipelines.models import Pipeline, PipelineVersion

    experiments = [Experiment.default_for(profile, profile.owner),
                   Experiment.objects.get_or_create(profile=profile, name="tuning")[0]]
    pipeline = Pipeline.objects.create(profile=profile, name=f"p{count}")
    version = PipelineVersion.objects.create(pipeline=pipeline, name="v1", format="kfp-v2",
                                             source="", document={}, graph={})
    runs = Run.objects.bulk_create(
        Run(profile=profile, experiment=experiments[i % 2], name=f"r-{i:03}", format="kfp-v2",
            document={}, graph={}, pipeline=pipeline, pipeline_version=version,
            parameters={"i": i}, state="SUCCEEDED")
        for i in range(count))
    RunMetric.objects.bulk_create(
        RunMetric(run=run, name=name, value=i / count)
        for i, run in enumerate(runs) for name in ("accuracy", "loss", "f1"))


@pytest.mark.parametrize("where", ["namespace", "experiment"])
def test_it_pages_with_the_same_number_of_queries_for_few_or_many(login, owner, profile,
                                                                  where):
    client = login(owner)
    _runs(profile, 3)
    experiment = Experiment.default_for(profile, owner)
    url = LIST if where == "namespace" else f"/ns/team-a/experiments/{experiment.pk}/"
    client.get(url)  # the session and namespace choice settle first
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    _runs(profile, 130)
    with CaptureQueriesContext(connection) as many:
        page = client.get(f"{url}?page=2&sort=name&metric=accuracy+>%3D+0&q=r-")
    assert len(page.context["runs"]) == 20
    assert [m["name"] for m in page.context["metric_columns"]] == ["accuracy", "f1"]
    assert len(many) == len(few), [q["sql"] for q in many]
    html = page.content.decode()
    total = 133 if where == "namespace" else 2 + 65  # every other run is in Default
    assert f"Page 2 of {-(-total // 20)} · {total} in all" in html
    assert 'rel="next" href="?q=r-&amp;show=active&amp;metric=accuracy+%3E%3D+0&amp;' \
           'sort=name&amp;page=3"' in html


def test_it_shows_an_experiments_runs_in_its_page(login, owner, viewer, profile):
    tuning = Experiment.create(profile, "tuning", owner)
    make_run(profile, "in it", experiment=tuning, metrics={"accuracy": 0.5})
    make_run(profile, "elsewhere")
    url = f"/ns/team-a/experiments/{tuning.pk}/"
    page = login(owner).get(url)
    assert names(page) == ["in it"]
    html = page.content.decode()
    assert f'data-experiment="{tuning.pk}"' in html and ">Experiment</th>" not in html
    assert f'href="/ns/team-a/runs/new/?experiment={tuning.pk}">Create run' in html
    assert '<td class="metric">0.5</td>' in html
    assert "Create run" not in login(viewer).get(url).content.decode()


def test_it_shows_each_experiments_latest_run_states_in_one_query(login, owner, profile):
    client = login(owner)
    tuning = Experiment.create(profile, "tuning", owner)
    states = ["SUCCEEDED", "FAILED", "RUNNING", "PENDING", "CANCELED", "SUCCEEDED"]
    for i, state in enumerate(states):  # the first is the oldest
        make_run(profile, f"t{i}", experiment=tuning, state=state, ago=100 - i)
    make_run(profile, "hidden", experiment=tuning, state="FAILED", storage_state="ARCHIVED")
    Experiment.create(profile, "empty", owner)
    client.get("/ns/team-a/experiments/")
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/ns/team-a/experiments/")
    latest = {e.name: [r.state for r in e.latest_runs]
              for e in page.context["listing"].page.object_list}
    assert latest == {"tuning": ["SUCCEEDED", "CANCELED", "PENDING", "RUNNING", "FAILED"],
                      "empty": []}
    html = page.content.decode()
    assert 'title="t5: Succeeded"' in html and 'class="runs-state s-CANCELED"' in html
    assert "none yet" in html
    for i in range(8):
        Experiment.create(profile, f"more-{i}", owner)
        make_run(profile, f"m{i}", experiment=Experiment.objects.get(name=f"more-{i}"))
    with CaptureQueriesContext(connection) as more:
        client.get("/ns/team-a/experiments/")
    assert len(more) == len(queries)


def test_it_sorts_by_a_metric_column_with_runs_lacking_it_last(login, owner, profile):
    make_run(profile, "low", ago=3, metrics={"accuracy": 0.5, "loss": 0.9})
    make_run(profile, "high", ago=2, metrics={"accuracy": 0.9, "loss": 0.1})
    make_run(profile, "mid", ago=1, metrics={"accuracy": 0.7})
    make_run(profile, "none")
    client = login(owner)
    page = client.get(LIST + "?sort=-metric-0")
    assert [c["name"] for c in page.context["metric_columns"]] == ["accuracy", "loss"]
    assert names(page) == ["high", "mid", "low", "none"]
    assert page.context["metric_columns"][0]["header"]["aria"] == "descending"
    assert names(client.get(LIST + "?sort=metric-0")) == ["low", "mid", "high", "none"]
    assert names(client.get(LIST + "?sort=metric-1")) == ["high", "low", "none", "mid"]
    # A sort for a column that does not exist falls back to the newest first.
    assert names(client.get(LIST + "?sort=metric-5")) == ["none", "mid", "high", "low"]
