"""Metric rows as the KFP UI shows them, from v2 metadata and v1 mlpipeline-metrics."""

import pytest

from pipelines.visualizations import metrics
from pipelines.visualizations.base import OutputError


def test_it_shows_percentages_as_the_kfp_ui_and_raw_numbers_short():
    assert metrics.metric_text(0.85, "PERCENTAGE") == "85.000%"
    assert metrics.metric_text(0.91, "RAW") == "0.91"
    assert metrics.metric_text(120.0, "RAW") == "120"
    assert metrics.metric_text(1 / 3, "RAW") == "0.333333"
    assert metrics.metric_text(1.5e20, "RAW") == "1.5e+20"


def test_it_reads_v2_metadata_leaving_out_what_is_not_a_number():
    data = metrics.from_metadata({"accuracy": 0.9, "n": 6, "display_name": "metrics",
                                  "note": "text", "flag": True, "nested": {"a": 1}})
    assert data == {"rows": [
        {"name": "accuracy", "value": 0.9, "format": "RAW", "text": "0.9"},
        {"name": "n", "value": 6.0, "format": "RAW", "text": "6"}]}
    assert metrics.from_metadata({"display_name": "metrics"}) is None


def test_it_reads_a_v1_metrics_file():
    data = metrics.from_v1_file({"metrics": [
        {"name": "accuracy-score", "numberValue": 0.85, "format": "PERCENTAGE"},
        {"name": "roc-auc", "numberValue": "0.91", "format": "raw"},
        {"name": "loss", "numberValue": 2, "format": "ODD"}]})
    assert [(r["name"], r["value"], r["format"], r["text"]) for r in data["rows"]] == [
        ("accuracy-score", 0.85, "PERCENTAGE", "85.000%"), ("roc-auc", 0.91, "RAW", "0.91"),
        ("loss", 2.0, "RAW", "2")]


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], 'The metrics file has no "metrics" list.'),
    ({"metrics": {}}, 'The metrics file has no "metrics" list.'),
    ({"metrics": []}, "The metrics file lists no metric."),
    ({"metrics": [{"numberValue": 1}]}, "Metric 1 has no name."),
    ({"metrics": [{"name": "acc", "numberValue": "high"}]},
     r"The metric acc has no number as its numberValue \('high'\)."),
    ({"metrics": [{"name": "acc", "numberValue": float("nan")}]}, "no number"),
])
def test_a_bad_v1_metrics_file_is_an_error(data, message):
    with pytest.raises(OutputError, match=message):
        metrics.from_v1_file(data)
