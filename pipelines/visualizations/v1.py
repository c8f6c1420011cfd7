"""KFP v1 outputs: the ``mlpipeline-ui-metadata`` file a step writes (``{"version": 1,
"outputs": [...]}``, one visualization per output) and its ``mlpipeline-metrics`` file.

An output's ``source`` is its content when ``"storage": "inline"``, else a path or URI;
kfdash reads a path only when it is one of this run's stored artifacts (see
``sources.RunFiles.resolve``): a bucket URI is a message on the card.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.models import Artifact

from . import confusion, metrics, roc
from .base import OutputError, Shown, attempt
from .markdown import to_html
from .sources import (
    METADATA_LIMIT,
    SOURCE_LIMIT,
    RunFiles,
    checked_size,
    read_json,
    read_text,
    single_file,
)
from .tables import checked, csv_rows

UI_METADATA = "mlpipeline-ui-metadata"
METRICS = "mlpipeline-metrics"
# The output types of the KFP UI, as card kinds.
KINDS = {"roc": "roc", "confusion_matrix": "confusion_matrix", "table": "table",
         "markdown": "markdown", "web-app": "html", "tensorboard": "tensorboard"}
MAX_TABLE_ROWS = 1000


def ui_metadata(artifact: Artifact, files: RunFiles) -> list[Shown]:
    try:
        outputs = outputs_of(artifact)
    except OutputError as exc:
        return [Shown(0, "error", error=str(exc))]
    return [_output(index, output, artifact, files) for index, output in enumerate(outputs)]


def metrics_file(artifact: Artifact) -> list[Shown]:
    try:
        data = read_json(single_file(artifact, "The metrics file"), METADATA_LIMIT,
                         "The metrics file")
    except OutputError as exc:
        return [Shown(0, "error", error=str(exc), title="Metrics")]
    return [attempt(0, "metrics", lambda: metrics.from_v1_file(data))]


def outputs_of(artifact: Artifact) -> list[Any]:
    data = read_json(single_file(artifact, "The metadata file"), METADATA_LIMIT,
                     "The metadata file")
    outputs = data.get("outputs") if isinstance(data, dict) else None
    if not isinstance(outputs, list):
        raise OutputError('The metadata file is not an object with an "outputs" list.')
    return outputs


def web_app(output: dict, artifact: Artifact, files: RunFiles) -> str | Path:
    """A web-app output's HTML: the inline text, or the stored file it names (not read
    here: the sandboxed endpoint streams it)."""
    if _inline(output):
        return _inline_source(output)
    path = files.resolve(_source(output), artifact)
    checked_size(path, SOURCE_LIMIT, "The HTML file")
    return path


def _output(index: int, output: Any, artifact: Artifact, files: RunFiles) -> Shown:
    if not isinstance(output, dict):
        return Shown(index, "error", error=f"Output {index + 1} is not an object.")
    kind = KINDS.get(output.get("type"))
    if kind is None:
        return Shown(index, "error", error=(
            f"Output {index + 1} has the type {str(output.get('type'))[:60]!r}, which kfdash "
            f"does not show (it shows {', '.join(KINDS)})."))
    return attempt(index, kind, lambda: BUILD[kind](output, index, artifact, files))


def _roc(output: dict, index: int, artifact: Artifact, files: RunFiles) -> dict[str, Any]:
    return roc.from_csv(_csv_text(output, artifact, files), output.get("schema"))


def _confusion(output: dict, index: int, artifact: Artifact, files: RunFiles) -> dict:
    return confusion.from_csv(_csv_text(output, artifact, files), output.get("schema"),
                              output.get("labels"))


def _table(output: dict, index: int, artifact: Artifact, files: RunFiles) -> dict[str, Any]:
    header = output.get("header") or []
    if not isinstance(header, list):
        raise OutputError('The table\'s "header" is not a list of column names.')
    header = [str(name) for name in header]
    rows = checked(csv_rows(_csv_text(output, artifact, files)), len(header) or None, 1)
    return {"header": header, "rows": [row.cells for row in rows[:MAX_TABLE_ROWS]],
            "total_rows": len(rows)}


def _markdown(output: dict, index: int, artifact: Artifact, files: RunFiles) -> dict:
    return {"html": to_html(_text(output, artifact, files, "The markdown file"))}


def _web_app(output: dict, index: int, artifact: Artifact, files: RunFiles) -> dict:
    web_app(output, artifact, files)  # the card says what is wrong, not the frame
    return {"url": files.html_url(artifact, index)}


def _tensorboard(output: dict, index: int, artifact: Artifact, files: RunFiles) -> dict:
    return {"log_dir": _source(output)}


BUILD: dict[str, Callable[[dict, int, Artifact, RunFiles], dict[str, Any]]] = {
    "roc": _roc, "confusion_matrix": _confusion, "table": _table, "markdown": _markdown,
    "html": _web_app, "tensorboard": _tensorboard}


def _csv_text(output: dict, artifact: Artifact, files: RunFiles) -> str:
    form = str(output.get("format") or "csv").lower()
    if form != "csv":
        raise OutputError(f"The format {form[:40]!r} is not one kfdash reads; it reads csv.")
    return _text(output, artifact, files, "The CSV file")


def _text(output: dict, artifact: Artifact, files: RunFiles, what: str) -> str:
    if _inline(output):
        return _inline_source(output)
    return read_text(files.resolve(_source(output), artifact), SOURCE_LIMIT, what)


def _inline(output: dict) -> bool:
    return str(output.get("storage") or "").lower() == "inline"


def _inline_source(output: dict) -> str:
    source = output.get("source")
    if not isinstance(source, str):
        raise OutputError('The output\'s inline "source" is not text.')
    return source


def _source(output: dict) -> str:
    source = output.get("source")
    if not isinstance(source, str) or not source.strip():
        raise OutputError('The output has no "source".')
    return source.strip()
