"""KFP v1 mlpipeline-ui-metadata and mlpipeline-metrics files as cards: every output type,
sources read only from this run's artifact store, and a message for every bad input."""

import json
import os

import pytest

from pipelines.engines import layout
from pipelines.visualizations import task_cards

pytestmark = pytest.mark.django_db

ROC_SCHEMA = [{"name": "fpr", "type": "NUMBER"}, {"name": "tpr", "type": "NUMBER"},
              {"name": "thresholds", "type": "NUMBER"}]
ROC_CSV = "0.0,0.0,1.0\n0.1,0.8,0.5\n1.0,1.0,0.0\n"
CM_SCHEMA = [{"name": "target", "type": "CATEGORY"}, {"name": "predicted", "type": "CATEGORY"},
             {"name": "count", "type": "NUMBER"}]
OUTSIDE = "kfdash reads inline sources and this run's own artifacts"


@pytest.fixture
def step(v1_run, add_task):
    return add_task(v1_run, "step", display_name="evaluate")


@pytest.fixture
def ui(step, add_artifact):
    """``ui(*outputs)``: the cards of a metadata file with these outputs."""

    def cards(*outputs, content=None):
        add_artifact(step, "mlpipeline-ui-metadata",
                     content if content is not None else {"version": 1, "outputs": outputs})
        return task_cards(step)

    return cards


def roc_output(source, **extra):
    return {"type": "roc", "format": "csv", "schema": ROC_SCHEMA, "source": source, **extra}


def test_every_inline_output_type_is_a_card(ui, step):
    cards = ui(
        roc_output(ROC_CSV, storage="inline"),
        {"type": "confusion_matrix", "format": "csv", "storage": "inline", "schema": CM_SCHEMA,
         "labels": ["cat", "dog"], "source": "cat,cat,8\ncat,dog,2\ndog,cat,1\ndog,dog,9\n"},
        {"type": "table", "format": "csv", "storage": "inline", "header": ["model", "acc"],
         "source": "tree,0.81\nforest,0.85\n"},
        {"type": "markdown", "storage": "inline", "source": "# Eval\n<script>x()</script>"},
        {"type": "web-app", "storage": "inline", "source": "<p>hi</p>"},
        {"type": "tensorboard", "source": "gs://bucket/logs"})
    assert [(c.kind, c.title, c.error) for c in cards] == [
        ("roc", "ROC curve", ""), ("confusion_matrix", "Confusion matrix", ""),
        ("table", "Table", ""), ("markdown", "Markdown", ""), ("html", "HTML", ""),
        ("tensorboard", "TensorBoard", "")]
    roc, matrix, table, markdown, html, board = cards
    assert roc.data["tpr"] == [0.0, 0.8, 1.0] and roc.data["auc"] == pytest.approx(0.85)
    assert matrix.data == {"labels": ["cat", "dog"], "matrix": [[8, 2], [1, 9]]}
    assert matrix.matrix_rows == [{"label": "cat", "counts": [8, 2]},
                                  {"label": "dog", "counts": [1, 9]}]
    assert table.data == {"header": ["model", "acc"], "total_rows": 2,
                          "rows": [["tree", "0.81"], ["forest", "0.85"]]}
    assert markdown.data["html"].startswith("<h1>Eval</h1>")
    assert "<script" not in markdown.data["html"]
    artifact = step.artifacts.get()
    assert html.data == {"url": f"/ns/team-a/runs/{step.run_id}/outputs/{artifact.pk}/4/"}
    assert board.data == {"log_dir": "gs://bucket/logs"}
    assert [c.key for c in cards] == [f"{artifact.pk}:{i}" for i in range(6)]
    assert {(c.step, c.task_id, c.artifact_id, c.artifact_name) for c in cards} == {
        ("evaluate", step.pk, artifact.pk, "mlpipeline-ui-metadata")}


def test_a_table_keeps_its_first_thousand_rows(ui):
    [card] = ui({"type": "table", "format": "csv", "storage": "inline", "header": ["i"],
                 "source": "".join(f"{i}\n" for i in range(1500))})
    assert len(card.data["rows"]) == 1000 and card.data["total_rows"] == 1500


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "The metadata file is not JSON (Expecting property name"),
    ([1, 2], 'The metadata file is not an object with an "outputs" list.'),
    ({"version": 1}, 'The metadata file is not an object with an "outputs" list.'),
])
def test_a_bad_metadata_file_is_one_error_card(ui, content, message):
    [card] = ui(content=content)
    assert card.kind == "error" and card.data == {} and card.error.startswith(message)


def test_a_metadata_file_over_the_limit_is_an_error_with_its_size(step, add_artifact):
    artifact = add_artifact(step, "mlpipeline-ui-metadata", b"{}")
    os.truncate(artifact.stored_file(), 12 * 1024 * 1024)
    [card] = task_cards(step)
    assert card.error == ("The metadata file is 12.0 MiB; kfdash shows files of at most "
                          "10.0 MiB.")


def test_each_bad_output_is_its_own_error_card(ui):
    cards = ui("roc", {"type": "plotly"}, roc_output("0,0,1\n0.5\n", storage="inline"),
               roc_output("{}", storage="inline", format="json"),
               {"type": "markdown", "storage": "inline", "source": ["a"]},
               {"type": "table", "format": "csv", "storage": "inline", "header": ["a", "b"],
                "source": "1,2\n3\n"},
               {"type": "confusion_matrix", "storage": "inline", "schema": CM_SCHEMA,
                "labels": ["cat", "dog"], "source": "cat,bird,1\n"},
               {"type": "tensorboard"},
               {"type": "markdown", "storage": "inline", "source": "fine"})
    assert [(c.kind, c.error) for c in cards] == [
        ("error", "Output 1 is not an object."),
        ("error", "Output 2 has the type 'plotly', which kfdash does not show (it shows roc, "
                  "confusion_matrix, table, markdown, web-app, tensorboard)."),
        ("roc", "Line 2 of the CSV has 1 field(s), not 3."),
        ("roc", "The format 'json' is not one kfdash reads; it reads csv."),
        ("markdown", 'The output\'s inline "source" is not text.'),
        ("table", "Line 2 of the CSV has 1 field(s), not 2."),
        ("confusion_matrix", "The CSV names bird, not among the labels (cat, dog)."),
        ("tensorboard", 'The output has no "source".'),
        ("markdown", "")]


def test_a_source_may_be_one_of_the_runs_artifacts(ui, step, add_task, add_artifact):
    other_step = add_task(step.run, "other")
    stored = add_artifact(other_step, "other-roc", ROC_CSV)
    [card] = ui(roc_output(stored.uri))
    assert card.error == "" and card.data["points"] == 3


def test_a_source_may_be_a_path_the_step_declared_as_an_output(ui, step, add_artifact):
    add_artifact(step, "step-roc_csv", ROC_CSV)
    add_artifact(step, "step-pages", {"notes.md": "# From a folder",
                                      "index.html": "<p>page</p>"}, folder=True)
    [roc, markdown, app] = ui(roc_output("/tmp/outputs/roc_csv/data"),
                              {"type": "markdown", "source": "/tmp/outputs/pages/notes.md"},
                              {"type": "web-app", "source": "/tmp/outputs/pages/index.html"})
    assert (roc.error, markdown.error, app.error) == ("", "", "")
    assert roc.data["auc"] == pytest.approx(0.85)
    assert markdown.data["html"] == "<h1>From a folder</h1>\n"


def test_a_declared_path_rewritten_into_the_steps_folder_is_the_same_path(ui, step,
                                                                         add_artifact):
    """In ``rewrite`` isolation the step saw <attempt>/root/tmp/outputs/roc_csv/data."""
    add_artifact(step, "step-roc_csv", ROC_CSV)
    seen = layout.attempt_folder("team-a", step.run_id, "step", 2) / "root" / \
        "tmp/outputs/roc_csv/data"
    [card] = ui(roc_output(str(seen)))
    assert card.error == "" and card.data["points"] == 3


@pytest.mark.parametrize("source", [
    "gs://bucket/roc.csv", "s3://bucket/roc.csv", "minio://mlpipeline/roc.csv", "/etc/passwd",
    "/tmp/outputs/other/data", "relative/roc.csv"])
def test_any_other_source_is_an_error_and_never_read(ui, source):
    [card] = ui(roc_output(source))
    assert card.kind == "roc" and card.error.startswith(OUTSIDE) and source in card.error


def test_a_source_cannot_climb_out_of_an_artifact(ui, step, add_artifact):
    stored = add_artifact(step, "step-roc_csv", ROC_CSV)
    store_file = layout.artifacts_root() / "team-a" / "secret.csv"
    store_file.write_text(ROC_CSV)
    cards = ui(*(roc_output(source) for source in (
        f"{stored.uri}/../../../secret.csv",
        "/tmp/outputs/roc_csv/data/../../../../../../etc/passwd",
        f"{stored.uri}/../../{step.run_id}/step/mlpipeline-ui-metadata")))
    assert [card.error for card in cards] == ["The source leads outside the artifact store."] * 3


def test_another_runs_artifact_is_not_a_source(ui, v1_run, add_task, add_artifact, owner):
    from pipelines.models import Run

    other_run = Run.objects.create(profile=v1_run.profile, experiment=v1_run.experiment,
                                   name="other", format="argo-workflow", document={},
                                   graph=v1_run.graph, state="SUCCEEDED", created_by=owner)
    theirs = add_artifact(add_task(other_run, "step"), "step-roc_csv", ROC_CSV)
    [card] = ui(roc_output(theirs.uri))
    assert card.error.startswith(OUTSIDE)


def test_a_missing_or_oversized_source_file_is_an_error(ui, step, add_artifact):
    stored = add_artifact(step, "step-roc_csv", ROC_CSV)
    os.truncate(stored.stored_file(), 21 * 1024 * 1024)
    [card] = ui(roc_output("/tmp/outputs/roc_csv/data"))
    assert card.error == "The CSV file is 21.0 MiB; kfdash shows files of at most 20.0 MiB."
    stored.stored_file().unlink()
    assert task_cards(step)[0].error == \
        "The file of the artifact step-roc_csv is no longer stored."


def test_a_declared_output_the_step_did_not_write_is_an_error(ui):
    [card] = ui(roc_output("/tmp/outputs/roc_csv/data"))
    assert card.error == "The step did not store its output step-roc_csv " \
                         "(/tmp/outputs/roc_csv/data)."


def test_a_missing_metadata_file_is_an_error(step, add_artifact):
    artifact = add_artifact(step, "mlpipeline-ui-metadata", {"outputs": []})
    artifact.stored_file().unlink()
    [card] = task_cards(step)
    assert card.kind == "error" and "is no longer stored" in card.error


def test_a_metrics_file_is_a_metrics_card(step, add_artifact):
    add_artifact(step, "mlpipeline-metrics", {"metrics": [
        {"name": "accuracy-score", "numberValue": 0.85, "format": "PERCENTAGE"},
        {"name": "roc-auc", "numberValue": 0.91, "format": "RAW"}]})
    [card] = task_cards(step)
    assert (card.kind, card.title, card.error) == ("metrics", "Metrics", "")
    assert card.data == {"rows": [
        {"name": "accuracy-score", "value": 0.85, "format": "PERCENTAGE", "text": "85.000%"},
        {"name": "roc-auc", "value": 0.91, "format": "RAW", "text": "0.91"}]}


def test_a_metrics_file_that_is_not_json_is_an_error_card(step, add_artifact):
    add_artifact(step, "mlpipeline-metrics", b"accuracy=0.9")
    [card] = task_cards(step)
    assert (card.kind, card.title) == ("error", "Metrics")
    assert card.error.startswith("The metrics file is not JSON")


def test_cards_are_plain_json(ui):
    cards = ui(roc_output("0,0,inf\n1,1,0\n", storage="inline"),
               {"type": "markdown", "storage": "inline", "source": "x"})
    for card in cards:
        json.dumps(card.data, allow_nan=False)
