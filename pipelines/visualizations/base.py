"""What every reader of outputs shares: the error a card shows instead of a chart, and one
visualization as read from an artifact, before ``cards.py`` dresses it as a ``Card``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The title of each kind of card.
TITLES = {
    "roc": "ROC curve",
    "confusion_matrix": "Confusion matrix",
    "table": "Table",
    "markdown": "Markdown",
    "html": "HTML",
    "metrics": "Metrics",
    "dataset": "Dataset",
    "model": "Model",
    "tensorboard": "TensorBoard",
    "error": "Output",
}


class OutputError(Exception):
    """Something wrong with a step's output, said in words for its card: a bad output never
    breaks the page, it only shows this message where its chart would be."""


@dataclass
class Shown:
    """One visualization of an artifact: ``index`` tells it from the artifact's others (a v1
    metadata file's output number), ``error`` replaces ``data`` when it could not be read."""

    index: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    title: str = ""  # when the kind's own title does not say it


def attempt(index: int, kind: str, build: Callable[[], dict[str, Any]],
            title: str = "") -> Shown:
    """``build()``'s data as a visualization, or its OutputError as the card's message."""
    try:
        return Shown(index, kind, build(), title=title)
    except OutputError as exc:
        return Shown(index, kind, error=str(exc), title=title)
