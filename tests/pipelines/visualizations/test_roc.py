"""ROC curves from v1 CSVs and v2 confidenceMetrics: exact AUC, thinned drawing, and a
message for each way the input can be wrong."""

import math
from itertools import pairwise

import pytest

from pipelines.visualizations import roc
from pipelines.visualizations.base import OutputError

SCHEMA = [{"name": "fpr", "type": "NUMBER"}, {"name": "tpr", "type": "NUMBER"},
          {"name": "thresholds", "type": "NUMBER"}]


def test_it_reads_the_kfp_v1_sample():
    data = roc.from_csv("0.0,0.0,1.0\n0.1,0.8,0.5\n1.0,1.0,0.0\n", SCHEMA)
    assert data == {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0],
                    "thresholds": [1.0, 0.5, 0.0], "auc": pytest.approx(0.85), "points": 3}


def test_it_takes_the_column_order_from_the_schema():
    schema = [{"name": "thresholds"}, {"name": "tpr"}, {"name": "fpr"}]
    data = roc.from_csv("1.0,0,0\n0.5,0.8,0.1\n0,1,1\n", schema)
    assert data["fpr"] == [0.0, 0.1, 1.0] and data["thresholds"] == [1.0, 0.5, 0.0]


def test_it_takes_fpr_tpr_thresholds_in_order_without_a_schema_or_names():
    for schema in (None, [{"name": "a"}, {"name": "b"}, {"name": "c"}]):
        assert roc.from_csv("0,0,1\n1,1,0\n", schema)["tpr"] == [0.0, 1.0]


def test_thresholds_are_optional_and_inf_becomes_none():
    assert roc.from_csv("0,0\n1,1\n", None)["thresholds"] == [None, None]
    data = roc.from_csv("0,0,inf\n0.5,0.9,\n1,1,0\n", SCHEMA)
    assert data["thresholds"] == [None, None, 0.0]


def test_it_skips_a_header_row_and_blank_lines():
    data = roc.from_csv("fpr,tpr,thresholds\n\n0,0,1\n\n1,1,0\n", SCHEMA)
    assert data["points"] == 2
    schema = [{"name": "Threshold"}, {"name": "TPR"}, {"name": "FPR"}]
    assert roc.from_csv("Threshold,TPR,FPR\n1,0,0\n0,1,1\n", schema)["points"] == 2


def test_it_sorts_points_along_the_curve():
    data = roc.from_csv("1,1,0\n0,0,1\n0.2,0.6,0.5\n", SCHEMA)
    assert data["fpr"] == [0.0, 0.2, 1.0] and data["thresholds"] == [1.0, 0.5, 0.0]


@pytest.mark.parametrize(("text", "message"), [
    ("0,0,1\n0.5,0.5\n1,1,0\n", "Line 2 of the CSV has 2 field(s), not 3."),
    ("0,0,1\nzero,0.5,0.5\n", "Line 2 of the CSV: “zero” in the column fpr is not a number."),
    ("0,nan,1\n", "Line 1 of the CSV: tpr is nan."),
    ("0,0,high\n", "“high” in the column thresholds is not a number"),
    ("", "The ROC curve has no points."),
    ('0,0,1\n"1,1,0\n', "has 1 field(s), not 3"),
])
def test_bad_csv_is_an_error_naming_the_line(text, message):
    with pytest.raises(OutputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        roc.from_csv(text, SCHEMA)


def test_a_schema_that_is_not_a_list_is_an_error():
    with pytest.raises(OutputError, match="schema"):
        roc.from_csv("0,0,1\n", {"fpr": 0})


def test_it_reads_v2_confidence_metrics():
    readings = [{"confidenceThreshold": 1.0, "recall": 0.0, "falsePositiveRate": 0.0},
                {"confidenceThreshold": 0.5, "recall": 0.8, "falsePositiveRate": 0.1},
                {"confidenceThreshold": 0.0, "recall": 1.0, "falsePositiveRate": 1.0}]
    data = roc.from_confidence_metrics(readings)
    assert data["tpr"] == [0.0, 0.8, 1.0] and data["fpr"] == [0.0, 0.1, 1.0]
    assert data["auc"] == pytest.approx(0.85) and data["points"] == 3


@pytest.mark.parametrize(("readings", "message"), [
    ({"recall": 1}, "confidenceMetrics is not a list."),
    ([1, 2], "Point 1 of confidenceMetrics is not an object."),
    ([{"recall": 0.5}], "Point 1 of confidenceMetrics has no number as falsePositiveRate"),
    ([{"recall": "high", "falsePositiveRate": 0}], "has no number as recall"),
    ([], "The ROC curve has no points."),
])
def test_bad_confidence_metrics_are_an_error(readings, message):
    with pytest.raises(OutputError, match=message):
        roc.from_confidence_metrics(readings)


def test_a_curve_of_thousands_of_points_is_thinned_but_its_auc_is_exact():
    count = 10_001  # tpr = sqrt(fpr), on an even grid
    fpr = [i / (count - 1) for i in range(count)]
    text = "".join(f"{x},{math.sqrt(x)},{1 - x}\n" for x in fpr)
    data = roc.from_csv(text, SCHEMA)
    exact = math.fsum((b - a) * (math.sqrt(a) + math.sqrt(b)) / 2
                      for a, b in pairwise(fpr))
    assert data["auc"] == pytest.approx(exact, abs=1e-12)
    assert data["points"] == count
    assert len(data["fpr"]) == len(data["tpr"]) == len(data["thresholds"]) == roc.MAX_POINTS
    assert (data["fpr"][0], data["tpr"][0]) == (0.0, 0.0)
    assert (data["fpr"][-1], data["tpr"][-1]) == (1.0, 1.0)
    assert data["fpr"] == sorted(data["fpr"])


def test_thinning_keeps_the_corners_of_a_step_curve():
    # A perfect classifier: up the left side, then along the top; the corner must stay.
    points = [(0.0, i / 999, None) for i in range(1000)] + \
        [(i / 999, 1.0, None) for i in range(1, 1000)]
    kept = roc.downsample(points, 50)
    assert len(kept) == 50 and (0.0, 1.0, None) in kept
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert roc.auc(points) == pytest.approx(1.0)
