"""Scalar metrics as a card's table: KFP v1 ``mlpipeline-metrics`` entries and KFP v2
``system.Metrics`` metadata, each with the text the KFP UI would show."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from pipelines.models.runs import metric_text

from .base import OutputError

FORMATS = ("RAW", "PERCENTAGE")
# Keys kfp and KFP backends put beside logged metrics; they are not metrics.
BOOKKEEPING = ("display_name",)


def row(name: str, value: float, form: str = "RAW") -> dict[str, Any]:
    return {"name": name, "value": value, "format": form, "text": metric_text(value, form)}


def from_metadata(metadata: Any) -> dict[str, Any] | None:
    """A system.Metrics artifact's numbers, by name (None when it logged none). Keys that
    are not numbers (kfp's bookkeeping, text) are left out."""
    if not isinstance(metadata, dict):
        raise OutputError("The artifact's metadata is not an object.")
    rows = [row(str(key), float(value)) for key, value in sorted(metadata.items())
            if key not in BOOKKEEPING and _number(value)]
    return {"rows": rows} if rows else None


def from_v1_file(data: Any) -> dict[str, Any]:
    """``{"metrics": [{"name", "numberValue", "format"}]}``; an entry kfdash cannot show is
    named in the error (RunMetric rows keep the valid ones either way)."""
    entries = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise OutputError('The metrics file has no "metrics" list.')
    rows = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not entry["name"]:
            raise OutputError(f"Metric {number} has no name.")
        value = entry.get("numberValue")
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if not _number(value):
            raise OutputError(f"The metric {entry['name'][:80]} has no number as its "
                              f"numberValue ({str(value)[:40]!r}).")
        form = str(entry.get("format") or "RAW").upper()
        rows.append(row(entry["name"], float(value), form if form in FORMATS else "RAW"))
    if not rows:
        raise OutputError("The metrics file lists no metric.")
    return {"rows": rows}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)
