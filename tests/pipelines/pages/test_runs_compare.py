"""Comparing runs: 2 to 10 checked on a runs list; parameters and metrics side by side with
the rows that differ marked, ROC curves to overlay, confusion matrices, and the columns of
the parallel-coordinates plot; a shareable URL that only people who may view the
namespace can open."""

import re

import pytest

from pipelines.models import Artifact, RunMetric, RunTask
from tests.pipelines.pages.run_factory import make_run

COMPARE = "/ns/team-a/runs/compare/"

ROC = {"confidenceMetrics": [
    {"confidenceThreshold": 2.0, "recall": 0.0, "falsePositiveRate": 0.0},
    {"confidenceThreshold": 0.5, "recall": 0.8, "falsePositiveRate": 0.2},
    {"confidenceThreshold": 0.0, "recall": 1.0, "falsePositiveRate": 1.0}],
    "confusionMatrix": {"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
                        "rows": [{"row": [8, 2]}, {"row": [1, 9]}]}}


def with_classification(run, name="metrics", step="evaluate"):
    task = RunTask.objects.create(run=run, node_id=step, spec_id=step, display_name=step,
                                  state="SUCCEEDED")
    Artifact.objects.create(run=run, task=task, name=name, type="system.ClassificationMetrics",
                            uri=f"/nowhere/{run.pk}/{name}", metadata=ROC)
    return task


@pytest.fixture
def three(profile):
    runs = [make_run(profile, f"lr-{lr}", ago=10 - i,
                     parameters={"lr": lr, "epochs": 5, "optimizer": opt})
            for i, (lr, opt) in enumerate([(0.1, "sgd"), (0.01, "adam"), (0.001, "adam")])]
    for run, (accuracy, loss) in zip(runs, [(0.8, 0.5), (0.9, 0.3), (0.85, 0.3)], strict=True):
        RunMetric.objects.create(run=run, name="accuracy", value=accuracy, format="PERCENTAGE")
        RunMetric.objects.create(run=run, name="loss", value=loss)
    return runs


def url(*runs) -> str:
    return f"{COMPARE}?runs={','.join(str(run.pk) for run in runs)}"


def table_row(html: str, name: str) -> str:
    match = re.search(rf'<tr data-compare-row="{re.escape(name)}".*?</tr>', html, re.S)
    assert match, name
    return match.group(0)


def test_it_puts_parameters_and_metrics_side_by_side_marking_differences(login, viewer,
                                                                          three):
    page = login(viewer).get(url(*three))
    assert page.status_code == 200
    html = page.content.decode()
    for run in three:
        assert f'data-compare-run="{run.pk}"' in html
    lr = table_row(html, "lr")
    assert 'class="differs"' in lr and ">0.1<" in lr and ">0.01<" in lr and ">0.001<" in lr
    assert "data-same" in table_row(html, "epochs")
    assert 'class="differs"' in table_row(html, "optimizer")
    accuracy = table_row(html, "accuracy")
    assert ">80.000%<" in accuracy and ">90.000%<" in accuracy and ">85.000%<" in accuracy
    assert 'class="differs"' in table_row(html, "loss")
    assert 'data-differences-only' in html
    data = page.context["chart_data"]
    assert data["runs"] == ["lr-0.1", "lr-0.01", "lr-0.001"]
    by_label = {d["label"]: d for d in data["dimensions"]}
    assert set(by_label) == {"lr", "optimizer"}  # epochs is the same everywhere
    assert by_label["lr"]["values"] == [0.1, 0.01, 0.001]
    assert by_label["optimizer"] == {"label": "optimizer", "values": [1, 0, 0],
                                     "ticks": ["adam", "sgd"]}
    assert data["metrics"] == {"accuracy": [0.8, 0.9, 0.85], "loss": [0.5, 0.3, 0.3]}


def test_a_metric_several_steps_report_gets_a_row_per_step(login, owner, profile):
    runs = [make_run(profile, name) for name in ("a", "b")]
    for run in runs:
        for step, value in (("train", 0.7), ("test", 0.6)):
            task = RunTask.objects.create(run=run, node_id=step, spec_id=step,
                                          display_name=step)
            RunMetric.objects.create(run=run, task=task, name="accuracy", value=value)
    html = login(owner).get(url(*runs)).content.decode()
    assert ">0.7<" in table_row(html, "accuracy (train)")
    assert ">0.6<" in table_row(html, "accuracy (test)")


def test_it_overlays_each_runs_roc_curve_and_shows_the_confusion_matrices(login, owner,
                                                                          profile):
    runs = [make_run(profile, name) for name in ("first", "second")]
    for run in runs:
        with_classification(run)
    page = login(owner).get(url(*runs))
    html = page.content.decode()
    rocs = page.context["chart_data"]["rocs"]
    assert [roc["run"] for roc in rocs] == ["first", "second"]
    assert rocs[0]["fpr"] == [0.0, 0.2, 1.0] and rocs[0]["tpr"] == [0.0, 0.8, 1.0]
    assert rocs[0]["auc"] == pytest.approx(0.2 * 0.8 / 2 + 0.8 * (0.8 + 1.0) / 2)
    assert "data-roc-overlay" in html
    for run in runs:
        assert f'data-roc-of="{run.pk}"' in html and f'data-matrix-of="{run.pk}"' in html
    assert html.count('data-viz-chart="confusion_matrix"') == 2
    assert "js/run-compare.js" in html


@pytest.mark.parametrize("query, message", [
    ("", "Choose 2 to 10 runs to compare (0 given)."),
    ("?runs=one", "“one” is not a run id."),
])
def test_a_bad_selection_says_what_is_wrong(login, owner, profile, query, message):
    page = login(owner).get(COMPARE + query)
    assert page.status_code == 400
    assert message in page.content.decode()


def test_it_takes_two_to_ten_runs(login, owner, profile):
    runs = [make_run(profile, f"r{i}") for i in range(11)]
    client = login(owner)
    assert client.get(url(runs[0])).status_code == 400
    assert client.get(url(runs[0], runs[0])).status_code == 400  # the same run twice is one
    assert client.get(url(*runs[:10])).status_code == 200
    page = client.get(url(*runs))
    assert page.status_code == 400
    assert "(11 given)" in page.content.decode()
    # Repeated parameters work as well as a comma-separated list (a form without script).
    assert client.get(f"{COMPARE}?runs={runs[0].pk}&runs={runs[1].pk}").status_code == 200


def test_a_run_of_another_namespace_is_not_found(login, owner, profile, make_user):
    from dashboard.models import Profile

    other = make_user("other@example.com")
    theirs = make_run(Profile.register("team-b", other), "theirs")
    mine = make_run(profile, "mine")
    assert login(owner).get(url(mine, theirs)).status_code == 404


def test_strangers_and_anonymous_callers_cannot_open_a_comparison(client, login, make_user,
                                                                  three):
    assert client.get(url(*three)).status_code == 302  # to the login page
    stranger = make_user("stranger@example.com")
    assert login(stranger).get(url(*three)).status_code == 404


def test_the_runs_list_offers_compare_to_viewers_and_bulk_changes_to_editors(login, viewer,
                                                                             owner, three):
    html = login(viewer).get("/ns/team-a/runs/").content.decode()
    assert 'formaction="/ns/team-a/runs/compare/"' in html and "data-compare" in html
    assert f'name="runs" value="{three[0].pk}"' in html
    assert 'value="archive"' not in html and 'value="delete"' not in html
    html = login(owner).get("/ns/team-a/runs/").content.decode()
    assert "data-compare" in html and 'value="archive"' in html


def test_the_page_costs_the_same_queries_for_two_runs_as_for_ten(login, owner, profile):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    runs = [make_run(profile, f"r{i}", metrics={"accuracy": i / 10}) for i in range(10)]
    for run in runs:
        with_classification(run)
    client = login(owner)
    counts = []
    for chosen in (runs[:2], runs):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(*chosen)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
