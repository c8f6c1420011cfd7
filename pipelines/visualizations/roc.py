"""ROC curves from KFP v1 CSVs (fpr, tpr, thresholds) and KFP v2 ``confidenceMetrics``:
the AUC computed exactly over every point, the curve thinned to what a chart can draw."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from . import tables
from .base import OutputError

MAX_POINTS = 500  # drawn; the AUC always uses them all
COLUMNS = ("fpr", "tpr", "thresholds")

Point = tuple[float, float, float | None]  # fpr, tpr, threshold


def from_csv(text: str, schema: Any) -> dict[str, Any]:
    (fpr, tpr, threshold), width = tables.columns(schema, COLUMNS)
    if fpr is None or tpr is None:
        raise OutputError("The ROC CSV needs the columns fpr and tpr.")
    rows = tables.checked(tables.without_header(tables.csv_rows(text), schema, COLUMNS), width,
                          max(fpr, tpr) + 1)
    return curve([(tables.number(row, fpr, "fpr"), tables.number(row, tpr, "tpr"),
                   tables.optional_number(row, threshold if threshold is not None and
                                          threshold < len(row.cells) else None, "thresholds"))
                  for row in rows])


def from_confidence_metrics(readings: Any) -> dict[str, Any]:
    """``[{"confidenceThreshold", "recall" (the TPR), "falsePositiveRate"}]``."""
    if not isinstance(readings, list):
        raise OutputError("confidenceMetrics is not a list.")
    points = []
    for number, reading in enumerate(readings, 1):
        if not isinstance(reading, dict):
            raise OutputError(f"Point {number} of confidenceMetrics is not an object.")
        fpr = _finite(reading.get("falsePositiveRate"), number, "falsePositiveRate")
        tpr = _finite(reading.get("recall"), number, "recall")
        threshold = reading.get("confidenceThreshold")
        points.append((fpr, tpr, float(threshold) if _is_number(threshold)
                       and math.isfinite(threshold) else None))
    return curve(points)


def curve(points: list[Point]) -> dict[str, Any]:
    """The card's data: points sorted along the curve, at most MAX_POINTS of them."""
    if not points:
        raise OutputError("The ROC curve has no points.")
    ordered = sorted(points, key=lambda p: (p[0], p[1]))
    drawn = downsample(ordered, MAX_POINTS)
    return {"fpr": [p[0] for p in drawn], "tpr": [p[1] for p in drawn],
            "thresholds": [p[2] for p in drawn], "auc": auc(ordered), "points": len(points)}


def auc(ordered: list[Point]) -> float:
    """The area under the curve by the trapezoid rule, over points sorted by fpr."""
    return math.fsum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in pairwise(ordered))


def downsample(points: list[Point], limit: int) -> list[Point]:
    """At most ``limit`` points keeping the curve's shape: Largest-Triangle-Three-Buckets
    (Steinarsson, 2013) keeps the first and last points and, from each bucket between,
    the one making the largest triangle with its neighbours, so corners survive."""
    count = len(points)
    if count <= limit or limit < 3:
        return points
    bucket = (count - 2) / (limit - 2)
    kept = [points[0]]
    previous = 0
    for i in range(limit - 2):
        start, end = int(i * bucket) + 1, int((i + 1) * bucket) + 1
        after = points[end:min(int((i + 2) * bucket) + 1, count)] or [points[-1]]
        next_x = sum(p[0] for p in after) / len(after)
        next_y = sum(p[1] for p in after) / len(after)
        ax, ay = points[previous][0], points[previous][1]
        previous = max(range(start, max(end, start + 1)), key=lambda j: abs(
            (ax - next_x) * (points[j][1] - ay) - (ax - points[j][0]) * (next_y - ay)))
        kept.append(points[previous])
    kept.append(points[-1])
    return kept


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any, number: int, key: str) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise OutputError(f"Point {number} of confidenceMetrics has no number as {key} "
                          f"({value!r}).")
    return float(value)
