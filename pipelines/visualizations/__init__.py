"""Visualizations of a run's outputs: KFP v1 ``mlpipeline-ui-metadata`` and
``mlpipeline-metrics`` files, KFP v2 metrics, classification metrics, HTML, markdown,
datasets and models, as ``Card`` objects for the run page, a step's panel and the compare
page (``templates/pipelines/_visualization.html`` renders one)."""

from pipelines.visualizations.cards import Card, cards_by_run, run_cards, task_cards

__all__ = ["Card", "cards_by_run", "run_cards", "task_cards"]
