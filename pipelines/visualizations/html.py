"""What the sandboxed HTML endpoint (``pipelines/views/outputs.py``) serves: the page of a
v2 ``system.HTML`` artifact, or of a v1 ``web-app`` output, found exactly as its card
found it."""

from __future__ import annotations

from pathlib import Path

from pipelines.models import Artifact

from . import v1, v2
from .base import OutputError
from .cards import files_of_run


def html_output(artifact: Artifact, index: int) -> str | Path:
    """The inline HTML text, or the stored file to stream; OutputError for anything that
    is not an HTML output."""
    if artifact.type == "system.HTML" and index == 0:
        return v2.html_file(artifact)
    if artifact.name == v1.UI_METADATA and artifact.type not in v2.BY_TYPE:
        outputs = v1.outputs_of(artifact)
        output = outputs[index] if 0 <= index < len(outputs) else None
        if isinstance(output, dict) and output.get("type") == "web-app":
            return v1.web_app(output, artifact, files_of_run(artifact.run))
    raise OutputError("This is not an HTML output.")
