"""Comparing runs side by side (2 to 10 of one namespace, as the KFP UI allows): their
parameters and metrics as tables whose rows say whether the runs differ, every ROC curve
to overlay, the confusion matrices, and one row of numbers per run for a
parallel-coordinates plot of parameters against a chosen metric."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from pipelines.models import Run, RunMetric
from pipelines.models.runs import metric_text
from pipelines.visualizations import Card, cards_by_run

MIN_RUNS, MAX_RUNS = 2, 10


def run_ids(values: list[str]) -> list[uuid.UUID]:
    """The ids of ``?runs=a,b&runs=c`` in their order, without repeats; a wrong count or a
    malformed id is a ValidationError that says so."""
    ids: list[uuid.UUID] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                run_id = uuid.UUID(part.strip())
            except ValueError:
                raise ValidationError(f"“{part.strip()}” is not a run id.") from None
            if run_id not in ids:
                ids.append(run_id)
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise ValidationError(f"Choose {MIN_RUNS} to {MAX_RUNS} runs to compare "
                              f"({len(ids)} given).")
    return ids


@dataclass
class Row:
    """One parameter or metric across the runs: its display value in each run ("" when a
    run has none) and whether they all agree."""

    name: str
    values: list[str]
    numbers: list[float | None] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return len(set(self.values)) <= 1


class Comparison:
    def __init__(self, runs: list[Run]):
        self.runs = runs
        self.parameters = self._parameter_rows()
        self.metrics = self._metric_rows()
        self.cards = cards_by_run(runs)

    def _parameter_rows(self) -> list[Row]:
        names: list[str] = []
        for run in self.runs:
            names += [name for name in run.parameters if name not in names]
        return [Row(name, [_text(run.parameters[name]) if name in run.parameters else ""
                           for run in self.runs],
                    [_number(run.parameters.get(name)) for run in self.runs])
                for name in names]

    def _metric_rows(self) -> list[Row]:
        """One row per metric name; a name several steps of one run report gets a row per
        step ("accuracy (train)")."""
        found = RunMetric.objects.filter(run__in=[run.pk for run in self.runs]) \
            .order_by("pk").values_list("run_id", "task__display_name", "name", "value",
                                        "format")
        per_run: dict[uuid.UUID, dict[str, list[tuple[str, float, str]]]] = {}
        for run_id, step, name, value, form in found:
            per_run.setdefault(run_id, {}).setdefault(name, []).append((step or "", value, form))
        shared = {name for metrics in per_run.values() for name, entries in metrics.items()
                  if len({step for step, _, _ in entries}) > 1}
        cells: dict[str, dict[uuid.UUID, tuple[float, str]]] = {}
        for run_id, metrics in per_run.items():
            for name, entries in metrics.items():
                for step, value, form in entries:
                    key = f"{name} ({step})" if name in shared and step else name
                    cells.setdefault(key, {})[run_id] = (value, form)
        rows = []
        for key in sorted(cells):
            values = [cells[key].get(run.pk) for run in self.runs]
            rows.append(Row(key, [metric_text(*v) if v else "" for v in values],
                            [v[0] if v else None for v in values]))
        return rows

    @property
    def tables(self) -> list[tuple[str, list[Row], str]]:
        """The page's two tables: title, rows, and what to say when there are none."""
        return [("Parameters", self.parameters, "None of these runs takes parameters."),
                ("Metrics", self.metrics, "None of these runs has reported a metric.")]

    def cards_of(self, kind: str) -> list[tuple[Run, Card]]:
        return [(run, card) for run in self.runs for card in self.cards[run.pk]
                if card.kind == kind and not card.error]

    def chart_data(self) -> dict[str, Any]:
        """What the page's script draws: the ROC curves to overlay, and the numeric columns
        of the parallel-coordinates plot (parameters that differ, then every metric)."""
        rocs = [{"run": run.name, "step": card.step, "name": card.artifact_name,
                 "fpr": card.data["fpr"], "tpr": card.data["tpr"],
                 "thresholds": card.data["thresholds"], "auc": card.data["auc"]}
                for run, card in self.cards_of("roc")]
        dimensions = []
        for row in self.parameters:
            if row.same:
                continue
            if all(n is not None for n in row.numbers):
                dimensions.append({"label": row.name, "values": row.numbers})
            else:  # text values: one tick per distinct value
                labels = sorted(set(row.values))
                dimensions.append({"label": row.name,
                                   "values": [labels.index(v) for v in row.values],
                                   "ticks": labels})
        metrics = {row.name: row.numbers for row in self.metrics
                   if any(n is not None for n in row.numbers)}
        return {"runs": [run.name for run in self.runs], "rocs": rocs,
                "dimensions": dimensions, "metrics": metrics}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                             sort_keys=True)


def _number(value: Any) -> float | None:
    """A parameter as a number for plotting (ints, floats and numeric text)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None
