"""KFP v2 artifacts by schema title: metrics and classification metrics live in the
artifact's metadata; HTML, markdown, datasets and models in its file."""

from __future__ import annotations

from pathlib import Path

from pipelines.models import Artifact

from . import confusion, metrics, previews, roc
from .base import OutputError, Shown, attempt
from .markdown import to_html
from .sources import SOURCE_LIMIT, RunFiles, artifact_file, checked_size, read_text, single_file


def metrics_cards(artifact: Artifact, files: RunFiles) -> list[Shown]:
    shown = attempt(0, "metrics", lambda: metrics.from_metadata(artifact.metadata) or {})
    return [shown] if shown.error or shown.data else []  # nothing logged: no card


def classification_cards(artifact: Artifact, files: RunFiles) -> list[Shown]:
    """An ROC curve (index 0) and a confusion matrix (index 1), whichever were logged."""
    if not isinstance(artifact.metadata, dict):
        return [Shown(0, "error", error="The artifact's metadata is not an object.")]
    return _classification(artifact.metadata, 0, "")


def sliced_classification_cards(artifact: Artifact, files: RunFiles) -> list[Shown]:
    """Per slice (``evaluationSlices``), its ROC curve and confusion matrix, titled with the
    slice: slice n has indexes 2n and 2n + 1."""
    slices = artifact.metadata.get("evaluationSlices", []) if isinstance(
        artifact.metadata, dict) else None
    if not isinstance(slices, list):
        return [Shown(0, "error", error="The artifact's metadata has no evaluationSlices list.")]
    shown = []
    for number, entry in enumerate(slices):
        if not isinstance(entry, dict) or not isinstance(
                entry.get("sliceClassificationMetrics"), dict):
            shown.append(Shown(2 * number, "error",
                               error=f"Slice {number + 1} has no classification metrics."))
            continue
        shown += _classification(entry["sliceClassificationMetrics"], 2 * number,
                                 str(entry.get("slice", number + 1)))
    return shown


def _classification(metadata: dict, first: int, slice_name: str) -> list[Shown]:
    suffix = f" · slice {slice_name}" if slice_name else ""
    shown = []
    if "confidenceMetrics" in metadata:
        shown.append(attempt(first, "roc", lambda: roc.from_confidence_metrics(
            metadata["confidenceMetrics"]), title=f"ROC curve{suffix}" if suffix else ""))
    if "confusionMatrix" in metadata:
        shown.append(attempt(first + 1, "confusion_matrix", lambda: confusion.from_struct(
            metadata["confusionMatrix"]), title=f"Confusion matrix{suffix}" if suffix else ""))
    return shown


def html_cards(artifact: Artifact, files: RunFiles) -> list[Shown]:
    def build() -> dict:
        html_file(artifact)  # the card says what is wrong, not the frame
        return {"url": files.html_url(artifact, 0)}

    return [attempt(0, "html", build)]


def markdown_cards(artifact: Artifact, files: RunFiles) -> list[Shown]:
    return [attempt(0, "markdown", lambda: {"html": to_html(read_text(
        single_file(artifact, "The markdown output"), SOURCE_LIMIT, "The markdown file"))})]


def dataset_cards(artifact: Artifact, files: RunFiles) -> list[Shown]:
    return [attempt(0, "dataset", lambda: previews.dataset(artifact_file(artifact)))]


def model_cards(artifact: Artifact, files: RunFiles) -> list[Shown]:
    return [attempt(0, "model", lambda: previews.model(artifact_file(artifact), artifact.size))]


def html_file(artifact: Artifact) -> Path:
    """A system.HTML artifact's page: its file, or a folder's index.html."""
    path = artifact_file(artifact)
    if path.is_dir():
        index = (path / "index.html").resolve()
        if not index.is_relative_to(path) or not index.is_file():
            raise OutputError("The HTML output is a folder without an index.html.")
        path = index
    checked_size(path, SOURCE_LIMIT, "The HTML file")
    return path


BY_TYPE = {
    "system.Metrics": metrics_cards,
    "system.ClassificationMetrics": classification_cards,
    "system.SlicedClassificationMetrics": sliced_classification_cards,
    "system.HTML": html_cards,
    "system.Markdown": markdown_cards,
    "system.Dataset": dataset_cards,
    "system.Model": model_cards,
}
