"""Pipelines compiled by the real kfp SDKs, run on the local engine: their outputs become
the cards a person expects, and their HTML is served by the sandboxed endpoint."""

import pytest
from django.urls import reverse

from pipelines.visualizations import run_cards, task_cards
from tests.pipelines.engine.conftest import tasks_of
from tests.pipelines.visualizations import pipelines

pytestmark = pytest.mark.django_db(transaction=True)


def by_kind(cards) -> dict:
    found = {}
    for card in cards:
        found.setdefault(card.kind, []).append(card)
    return found


def get(client, card) -> str:
    response = client.get(card.data["url"])
    assert response.status_code == 200, card.data["url"]
    assert response["Content-Security-Policy"].startswith("sandbox allow-scripts;")
    return b"".join(response.streaming_content).decode() if response.streaming \
        else response.content.decode()


def test_a_kfp2_runs_outputs_are_cards(profile, owner, engine, login):
    run = pipelines.start_kfp2_run(profile, owner)
    assert run.state == "SUCCEEDED", run.error
    cards = run_cards(run)
    assert [card.error for card in cards] == [""] * len(cards)
    kinds = by_kind(cards)
    assert sorted(kinds) == ["confusion_matrix", "dataset", "html", "markdown", "metrics",
                             "model", "roc"]
    [roc] = kinds["roc"]
    assert (roc.step, roc.artifact_name) == ("evaluate", "classification")
    assert roc.data == {**pipelines.V2_ROC, "auc": pytest.approx(0.9), "points": 5}
    [matrix] = kinds["confusion_matrix"]
    assert matrix.data == {"labels": pipelines.V2_LABELS, "matrix": pipelines.V2_MATRIX}
    [metrics] = kinds["metrics"]
    assert [(r["name"], r["value"], r["text"]) for r in metrics.data["rows"]] == [
        ("accuracy", 0.85, "0.85"), ("samples", 120.0, "120")]
    [markdown] = kinds["markdown"]
    assert "<strong>good</strong>" in markdown.data["html"]
    assert "<script" not in markdown.data["html"]
    [dataset] = kinds["dataset"]
    assert dataset.data["format"] == "csv" and dataset.data["header"] == ["id", "feature",
                                                                         "label"]
    assert dataset.data["rows"][:2] == [["0", "0.0", "dog"], ["1", "0.5", "cat"]]
    assert len(dataset.data["rows"]) == 20 and dataset.data["truncated"] is True
    [model] = kinds["model"]
    assert model.data == {"files": [{"path": "config.json", "size": 13},
                                    {"path": "weights.bin", "size": 1024},
                                    {"path": "assets/vocab.txt", "size": 8}],
                          "total_size": 1045, "truncated": False}
    [html] = kinds["html"]
    assert pipelines.HTML_MARKER in get(login(owner), html)
    # A step's panel shows its own cards, in the same form.
    tasks = tasks_of(run)
    assert [(c.key, c.kind) for c in task_cards(tasks["evaluate"])] == [
        (c.key, c.kind) for c in cards if c.step == "evaluate"]


@pytest.mark.parametrize("isolation", ["auto", "rewrite"])
def test_a_kfp1_runs_outputs_are_cards(profile, owner, engine, login, settings, isolation):
    """``rewrite`` isolation: the step named its CSV by a path inside its own folder."""
    settings.KFDASH_STEP_ISOLATION = isolation
    run = pipelines.start_kfp1_run(profile, owner)
    assert run.state == "SUCCEEDED", run.error
    evaluate = [c for c in run_cards(run) if c.step == "evaluate"]
    assert [(c.artifact_name, c.kind, c.error) for c in evaluate] == [
        ("mlpipeline-metrics", "metrics", ""),
        *(("mlpipeline-ui-metadata", kind, "") for kind in (
            "roc", "roc", "confusion_matrix", "table", "markdown", "markdown", "html",
            "tensorboard"))]
    metrics, inline_roc, file_roc, matrix, table, markdown, file_markdown, html, board = evaluate
    assert [(r["name"], r["format"], r["text"]) for r in metrics.data["rows"]] == [
        ("accuracy-score", "PERCENTAGE", "85.000%"), ("roc-auc", "RAW", "0.91")]
    assert inline_roc.data == {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0],
                               "thresholds": [1.0, 0.5, 0.0], "auc": pytest.approx(0.85),
                               "points": 3}
    assert file_roc.data["points"] == pipelines.V1_ROC_POINTS
    assert len(file_roc.data["fpr"]) == 500 and file_roc.data["auc"] == pytest.approx(0.75)
    assert matrix.data == {"labels": ["cat", "dog"], "matrix": [[8, 2], [1, 9]]}
    assert table.data == {"header": ["model", "accuracy"], "total_rows": 2,
                          "rows": [["tree", "0.81"], ["forest", "0.85"]]}
    assert markdown.data["html"] == "<h1>Eval</h1>\n<p>acc <strong>0.85</strong></p>\n"
    assert file_markdown.data["html"].startswith("<h2>Notes from a file</h2>")
    assert "&lt;script&gt;" in file_markdown.data["html"]
    assert "<h1>Web app</h1>" in get(login(owner), html)
    assert html.data["url"] == reverse("run-output-html", args=[
        "team-a", run.pk, html.artifact_id, 6])
    assert board.data == {"log_dir": "gs://bucket/logs/run-1"}
    # The ContainerOp's ROC names a bucket: a message on its card, its markdown still shows.
    summary = [(c.kind, c.error) for c in run_cards(run) if c.step == "summary"]
    assert summary == [("roc", "kfdash reads inline sources and this run's own artifacts; "
                               "gs://bucket/roc.csv is neither."), ("markdown", "")]
