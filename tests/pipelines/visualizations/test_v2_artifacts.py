"""KFP v2 artifacts as cards, by schema title."""

import os

import pytest

from pipelines.visualizations import task_cards

pytestmark = pytest.mark.django_db

CONFIDENCE = [{"confidenceThreshold": 1.0, "recall": 0.0, "falsePositiveRate": 0.0},
              {"confidenceThreshold": 0.5, "recall": 0.8, "falsePositiveRate": 0.1},
              {"confidenceThreshold": 0.0, "recall": 1.0, "falsePositiveRate": 1.0}]
MATRIX = {"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
          "rows": [{"row": [8, 2]}, {"row": [1, 9]}]}


@pytest.fixture
def step(v1_run, add_task):
    return add_task(v1_run, "train", display_name="train")


def only(step):
    [card] = task_cards(step)
    return card


def test_metrics_are_a_table_of_their_numbers(step, add_artifact):
    add_artifact(step, "metrics", "", type="system.Metrics",
                 metadata={"accuracy": 0.9, "n": 6, "display_name": "metrics"})
    card = only(step)
    assert (card.kind, card.title, card.error) == ("metrics", "Metrics", "")
    assert [(r["name"], r["text"]) for r in card.data["rows"]] == [("accuracy", "0.9"),
                                                                   ("n", "6")]


def test_metrics_without_a_number_have_no_card(step, add_artifact):
    add_artifact(step, "metrics", "", type="system.Metrics", metadata={"display_name": "m"})
    assert task_cards(step) == []


def test_classification_metrics_are_an_roc_curve_and_a_confusion_matrix(step, add_artifact):
    artifact = add_artifact(step, "cls", "", type="system.ClassificationMetrics",
                            metadata={"confidenceMetrics": CONFIDENCE, "confusionMatrix": MATRIX})
    roc, matrix = task_cards(step)
    assert (roc.key, roc.kind, roc.title) == (f"{artifact.pk}:0", "roc", "ROC curve")
    assert roc.data == {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0],
                        "thresholds": [1.0, 0.5, 0.0], "auc": pytest.approx(0.85), "points": 3}
    assert (matrix.key, matrix.kind) == (f"{artifact.pk}:1", "confusion_matrix")
    assert matrix.data == {"labels": ["cat", "dog"], "matrix": [[8, 2], [1, 9]]}


def test_sliced_classification_metrics_are_cards_per_slice(step, add_artifact):
    """The metadata kfp's SlicedClassificationMetrics writes: per slice, what its
    ClassificationMetrics logged."""
    from kfp.dsl import ClassificationMetrics

    north, south = ClassificationMetrics(), ClassificationMetrics()
    north.log_roc_curve(fpr=[0.0, 0.1, 1.0], tpr=[0.0, 0.8, 1.0], threshold=[1.0, 0.5, 0.0])
    south.log_roc_data_point(0.6, 0.3, 0.5)
    south.set_confusion_matrix_categories(["cat", "dog"])
    south.log_confusion_matrix_row("cat", [3, 1])
    south.log_confusion_matrix_row("dog", [0, 4])
    logged = {"evaluationSlices": [
        {"slice": name, "sliceClassificationMetrics": metrics.metadata}
        for name, metrics in (("north", north), ("south", south))]}
    artifact = add_artifact(step, "sliced", "", type="system.SlicedClassificationMetrics",
                            metadata=logged)
    cards = task_cards(step)
    assert [(c.key, c.kind, c.title) for c in cards] == [
        (f"{artifact.pk}:0", "roc", "ROC curve · slice north"),
        (f"{artifact.pk}:2", "roc", "ROC curve · slice south"),
        (f"{artifact.pk}:3", "confusion_matrix", "Confusion matrix · slice south")]
    assert cards[0].data["auc"] == pytest.approx(0.85)
    assert cards[2].data["matrix"] == [[3, 1], [0, 4]]


def test_sliced_metrics_without_slices_are_an_error(step, add_artifact):
    add_artifact(step, "sliced", "", type="system.SlicedClassificationMetrics",
                 metadata={"evaluationSlices": [{"slice": "x"}]})
    card = only(step)
    assert card.error == "Slice 1 has no classification metrics."


def test_a_confusion_matrix_alone_keeps_its_key(step, add_artifact):
    artifact = add_artifact(step, "cls", "", type="system.ClassificationMetrics",
                            metadata={"confusionMatrix": MATRIX})
    assert only(step).key == f"{artifact.pk}:1"


def test_a_confusion_matrix_whose_labels_do_not_match_is_an_error(step, add_artifact):
    add_artifact(step, "cls", "", type="system.ClassificationMetrics", metadata={
        "confidenceMetrics": CONFIDENCE,
        "confusionMatrix": {**MATRIX, "annotationSpecs": [{"displayName": "cat"}]}})
    roc, matrix = task_cards(step)
    assert roc.error == "" and matrix.kind == "confusion_matrix" and matrix.data == {}
    assert matrix.error == "The confusion matrix names 1 classes (cat) but has 2 rows."


def test_an_html_file_is_served_sandboxed(step, add_artifact):
    artifact = add_artifact(step, "page", "<p>hi</p>", type="system.HTML")
    card = only(step)
    assert (card.kind, card.title, card.error) == ("html", "HTML", "")
    assert card.data == {"url": f"/ns/team-a/runs/{step.run_id}/outputs/{artifact.pk}/0/"}


def test_an_html_folder_needs_an_index(step, add_artifact):
    add_artifact(step, "site", {"index.html": "<p>hi</p>", "a.css": "p{}"}, folder=True,
                 type="system.HTML")
    assert only(step).error == ""
    add_artifact(step, "bare", {"page.html": "<p>hi</p>"}, folder=True, type="system.HTML")
    assert [c.error for c in task_cards(step)] == [
        "The HTML output is a folder without an index.html.", ""]


def test_an_html_file_over_the_limit_is_an_error(step, add_artifact):
    artifact = add_artifact(step, "page", "<p>hi</p>", type="system.HTML")
    os.truncate(artifact.stored_file(), 25 * 1024 * 1024)
    assert only(step).error == "The HTML file is 25.0 MiB; kfdash shows files of at most " \
                               "20.0 MiB."


def test_markdown_is_rendered_safely(step, add_artifact):
    add_artifact(step, "notes", "# Notes\n<script>alert(1)</script>", type="system.Markdown")
    card = only(step)
    assert card.data == {"html": "<h1>Notes</h1>\n<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"}


def test_a_dataset_is_previewed(step, add_artifact):
    add_artifact(step, "data", "a,b\n1,2\n", type="system.Dataset")
    card = only(step)
    assert (card.kind, card.title) == ("dataset", "Dataset")
    assert card.data == {"format": "csv", "header": ["a", "b"], "rows": [["1", "2"]],
                         "text": "", "size": 8, "truncated": False}


def test_a_model_lists_its_files(step, add_artifact):
    add_artifact(step, "model", {"weights.bin": b"\0" * 100, "config.json": "{}"}, folder=True,
                 type="system.Model")
    assert only(step).data == {"files": [{"path": "config.json", "size": 2},
                                         {"path": "weights.bin", "size": 100}],
                               "total_size": 102, "truncated": False}


def test_an_artifact_outside_the_store_says_so(step):
    from pipelines.models import Artifact

    Artifact.objects.create(run=step.run, task=step, name="imported", type="system.Dataset",
                            uri="gs://bucket/data.csv")
    card = only(step)
    assert (card.kind, card.data) == ("dataset", {})
    assert card.error == "The artifact imported is not in kfdash's artifact store " \
                         "(gs://bucket/data.csv)."


def test_a_deleted_file_says_so(step, add_artifact):
    artifact = add_artifact(step, "notes", "# gone", type="system.Markdown")
    artifact.stored_file().unlink()
    assert only(step).error == "The file of the artifact notes is no longer stored."


def test_metadata_that_is_not_an_object_is_an_error(step, add_artifact):
    add_artifact(step, "cls", "", type="system.ClassificationMetrics", metadata=[1, 2])
    add_artifact(step, "metrics", "", type="system.Metrics", metadata=["a"])
    assert [(c.kind, c.error) for c in task_cards(step)] == [
        ("error", "The artifact's metadata is not an object."),
        ("metrics", "The artifact's metadata is not an object.")]


def test_other_artifacts_have_no_card(step, add_artifact):
    add_artifact(step, "blob", "x", type="system.Artifact")
    add_artifact(step, "sliced", "", type="system.SlicedClassificationMetrics")
    assert task_cards(step) == []
