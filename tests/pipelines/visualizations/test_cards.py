"""run_cards and task_cards: order, keys, queries, and no exception out of a bad output."""

import dataclasses
import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from pipelines.visualizations import Card, run_cards, task_cards

pytestmark = pytest.mark.django_db

ROC_CSV = "0,0,1\n0.1,0.8,0.5\n1,1,0\n"


@pytest.fixture
def two_steps(v1_run, add_task, add_artifact):
    """``later`` started after ``step`` but was created first; each has a few outputs."""
    now = timezone.now()
    later = add_task(v1_run, "later", started_at=now, display_name="Later step")
    step = add_task(v1_run, "step", started_at=now - timedelta(seconds=10))
    add_artifact(later, "metrics", "", type="system.Metrics", metadata={"acc": 0.5})
    add_artifact(later, "cls", "", type="system.ClassificationMetrics", metadata={
        "confusionMatrix": {"annotationSpecs": [{"displayName": "a"}], "rows": [{"row": [1]}]},
        "confidenceMetrics": [{"recall": 0, "falsePositiveRate": 0},
                              {"recall": 1, "falsePositiveRate": 1}]})
    add_artifact(step, "step-roc_csv", ROC_CSV)
    add_artifact(step, "mlpipeline-ui-metadata", {"outputs": [
        {"type": "markdown", "storage": "inline", "source": "a"},
        {"type": "roc", "format": "csv", "source": "/tmp/outputs/roc_csv/data"}]})
    return step, later


def test_cards_come_by_step_start_then_artifact_name_then_index(two_steps):
    step, later = two_steps
    cards = run_cards(step.run)
    assert [(c.step, c.artifact_name, c.kind) for c in cards] == [
        ("step", "mlpipeline-ui-metadata", "markdown"),
        ("step", "mlpipeline-ui-metadata", "roc"),
        ("Later step", "cls", "roc"), ("Later step", "cls", "confusion_matrix"),
        ("Later step", "metrics", "metrics")]
    assert all(c.error == "" for c in cards)
    assert len({c.key for c in cards}) == len(cards)
    assert [c.key for c in run_cards(step.run)] == [c.key for c in cards]  # stable
    assert {c.task_id for c in cards} == {step.pk, later.pk}


def test_a_runs_cards_cost_one_query(two_steps, django_assert_num_queries):
    step, _ = two_steps
    run = type(step.run).objects.get(pk=step.run_id)
    with django_assert_num_queries(1):
        cards = run_cards(run)
    assert len(cards) == 5


def test_a_steps_cards_are_its_own(two_steps, django_assert_max_num_queries):
    step, later = two_steps
    with django_assert_max_num_queries(1):
        assert [c.kind for c in task_cards(later)] == ["roc", "confusion_matrix", "metrics"]
    # A source path of the step: the run's artifacts and graph are read once more.
    with django_assert_max_num_queries(3):
        assert [(c.kind, c.error) for c in task_cards(step)] == [("markdown", ""), ("roc", "")]


def test_a_run_without_outputs_has_no_cards(v1_run, add_task):
    add_task(v1_run, "step")
    assert run_cards(v1_run) == []


def test_cards_are_plain_json(two_steps):
    step, _ = two_steps
    for card in run_cards(step.run):
        json.dumps(dataclasses.asdict(card), default=str, allow_nan=False)


def test_a_failure_reading_an_artifact_is_an_error_card_not_an_exception(
        two_steps, monkeypatch, caplog):
    from pipelines.visualizations import v2

    def broken(artifact, files):
        raise RuntimeError("a bug")

    monkeypatch.setitem(v2.BY_TYPE, "system.Metrics", broken)
    _, later = two_steps
    with caplog.at_level(logging.ERROR):
        cards = task_cards(later)
    assert [(c.kind, c.error) for c in cards] == [
        ("roc", ""), ("confusion_matrix", ""),
        ("error", "kfdash could not read this output (its log says why).")]
    assert "a bug" in caplog.text


def test_matrix_rows_pair_each_row_with_its_label():
    card = Card(key="a:1", kind="confusion_matrix", title="Confusion matrix", step="s",
                task_id=None, artifact_id=None, artifact_name="cls",
                data={"labels": ["cat", "dog"], "matrix": [[8, 2], [1, 9]]})
    assert card.matrix_rows == [{"label": "cat", "counts": [8, 2]},
                                {"label": "dog", "counts": [1, 9]}]
    assert dataclasses.replace(card, kind="roc").matrix_rows == []
