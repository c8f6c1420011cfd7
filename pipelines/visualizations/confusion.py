"""Confusion matrices from KFP v1 CSVs (target, predicted, count with ``labels``) and KFP
v2 ``confusionMatrix`` (``annotationSpecs`` and ``rows``). Rows are the true class,
columns the predicted one; labels that do not match the counts are an error, not a guess."""

from __future__ import annotations

import math
from typing import Any

from . import tables
from .base import OutputError

COLUMNS = ("target", "predicted", "count")


def from_csv(text: str, schema: Any, labels: Any) -> dict[str, Any]:
    names = _labels(labels, 'The output\'s "labels"')
    (target, predicted, count), width = tables.columns(schema, COLUMNS)
    if count is None:
        raise OutputError("The confusion matrix CSV needs the columns target, predicted "
                          "and count.")
    rows = tables.checked(tables.without_header(tables.csv_rows(text), schema, COLUMNS), width,
                          max(target, predicted, count) + 1)
    index = {label: i for i, label in enumerate(names)}
    matrix: list[list[float]] = [[0] * len(names) for _ in names]
    unknown: list[str] = []
    for row in rows:
        value = tables.number(row, count, "count")
        true, guess = row.cells[target].strip(), row.cells[predicted].strip()
        unknown += [label for label in (true, guess) if label not in index
                    and label not in unknown]
        if true in index and guess in index:
            matrix[index[true]][index[guess]] += value
    if unknown:
        raise OutputError(f"The CSV names {_list(unknown)}, not among the labels "
                          f"({_list(names)}).")
    return {"labels": names, "matrix": [[_tidy(v) for v in row] for row in matrix]}


def from_struct(confusion: Any) -> dict[str, Any]:
    """``{"annotationSpecs": [{"displayName"}], "rows": [{"row": [n, ...]}]}``."""
    if not isinstance(confusion, dict):
        raise OutputError("confusionMatrix is not an object.")
    specs = confusion.get("annotationSpecs")
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise OutputError("confusionMatrix has no annotationSpecs list.")
    names = _labels([spec.get("displayName") for spec in specs], "annotationSpecs")
    rows = confusion.get("rows")
    if not isinstance(rows, list):
        raise OutputError("confusionMatrix has no rows list.")
    if len(rows) != len(names):
        raise OutputError(f"The confusion matrix names {len(names)} classes "
                          f"({_list(names)}) but has {len(rows)} rows.")
    matrix = []
    for label, row in zip(names, rows, strict=True):
        cells = row.get("row") if isinstance(row, dict) else None
        if not isinstance(cells, list) or len(cells) != len(names):
            found = len(cells) if isinstance(cells, list) else "no"
            raise OutputError(f"The row of {label} has {found} counts; the matrix names "
                              f"{len(names)} classes ({_list(names)}).")
        if not all(isinstance(v, int | float) and not isinstance(v, bool)
                   and math.isfinite(v) for v in cells):
            raise OutputError(f"The row of {label} holds something that is not a number.")
        matrix.append([_tidy(v) for v in cells])
    return {"labels": names, "matrix": matrix}


def _labels(labels: Any, what: str) -> list[str]:
    if not isinstance(labels, list) or not labels:
        raise OutputError(f"{what} must be a list of class names.")
    if any(label is None or isinstance(label, dict | list) for label in labels):
        raise OutputError(f"{what} must be a list of class names.")
    names = [str(label).strip() for label in labels]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise OutputError(f"{what} repeat {_list(repeated)}.")
    return names


def _tidy(value: float) -> int | float:
    """Counts as integers when they are."""
    return int(value) if float(value).is_integer() else float(value)


def _list(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
