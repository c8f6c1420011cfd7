"""The files visualizations read, and how much of them.

Everything comes from kfdash's artifact store, never from elsewhere on the host: an
artifact's own file (``Artifact.stored_file`` keeps to the store), or the file a KFP v1
output's ``source`` names, accepted only when it is one of this run's artifacts (or a file
inside a folder artifact), or a path its step declared as an output artifact (read from the
copy the engine put in the store). Files are read up to a cap, so a huge output costs one
message on its card instead of the page's memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from django.urls import reverse

from pipelines.engines import layout, remote_artifacts
from pipelines.engines.artifacts import MiB, size_text
from pipelines.models import Artifact

from .base import OutputError

METADATA_LIMIT = 10 * MiB  # an mlpipeline-ui-metadata or mlpipeline-metrics file
SOURCE_LIMIT = 20 * MiB  # a CSV, markdown or HTML source
ATTEMPT = re.compile(r"attempt-\d+")


def checked_size(path: Path, limit: int, what: str) -> int:
    """The file's size, when it is at most ``limit``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise OutputError(f"{what} cannot be read ({exc.strerror or exc}).") from None
    if size > limit:
        raise OutputError(f"{what} is {size_text(size)}; kfdash shows files of at most "
                          f"{size_text(limit)}.")
    return size


def read_text(path: Path, limit: int, what: str) -> str:
    """The text of a file no bigger than ``limit`` (undecodable bytes replaced)."""
    checked_size(path, limit, what)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # it may have grown since
    except OSError as exc:
        raise OutputError(f"{what} cannot be read ({exc.strerror or exc}).") from None
    if len(data) > limit:
        raise OutputError(f"{what} is over {size_text(limit)}; kfdash shows no more.")
    return data.decode("utf-8", errors="replace")


def read_json(path: Path, limit: int, what: str) -> Any:
    try:
        return json.loads(read_text(path, limit, what))
    except ValueError as exc:
        raise OutputError(f"{what} is not JSON ({exc}).") from None


def artifact_file(artifact: Artifact) -> Path:
    """The artifact's file or folder: in the store, or copied from the artifact store of a
    run on Argo."""
    try:
        return remote_artifacts.local_copy(artifact)
    except remote_artifacts.RemoteArtifactError as exc:
        raise OutputError(str(exc)) from None


def single_file(artifact: Artifact, what: str) -> Path:
    path = artifact_file(artifact)
    if not path.is_file():
        raise OutputError(f"{what} is a folder, not a file.")
    return path


def short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


class RunFiles:
    """What the visualizations of one run may read, and where its HTML outputs are served.

    ``artifacts`` (every artifact of the run) and ``graph`` (the run's normalized DAG) are
    asked for only when a v1 output names a file, so cards of v2 runs cost no more queries.
    """

    def __init__(self, run_id, namespace: str, artifacts: Callable[[], list[Artifact]],
                 graph: Callable[[], dict]):
        self.run_id = run_id
        self.namespace = namespace
        self._artifacts = artifacts
        self._graph = graph
        self._loaded: list[Artifact] | None = None

    def artifacts(self) -> list[Artifact]:
        if self._loaded is None:
            self._loaded = list(self._artifacts())
        return self._loaded

    def html_url(self, artifact: Artifact, index: int) -> str:
        return reverse("run-output-html", args=[self.namespace, self.run_id, artifact.pk, index])

    def resolve(self, source: str, artifact: Artifact) -> Path:
        """The stored file a v1 output's ``source`` names, ``artifact`` being the metadata
        file that names it; anything else is an OutputError."""
        text = source.strip()
        for candidate in self.artifacts():
            uri = candidate.uri.rstrip("/")
            if uri and (text == uri or text.startswith(f"{uri}/")):
                return _inside(candidate, text[len(uri):])
        found = self._declared(text, artifact)
        if found is not None:
            return found
        raise OutputError(f"kfdash reads inline sources and this run's own artifacts; "
                          f"{short(text)} is neither.")

    def _declared(self, source: str, artifact: Artifact) -> Path | None:
        """``source`` as a path the step declared as an output artifact (possibly a file in
        it), read from the engine's copy in the store. In ``rewrite`` isolation the step saw
        its declared path as ``<attempt>/root/<path>``: that is the same path."""
        task = artifact.task
        seen = PurePosixPath(self._as_declared(source, task.node_id))
        declared = _declared_outputs(self._graph(), task.spec_id)
        for path, name in declared.items():
            where = PurePosixPath(path)
            if seen == where or seen.is_relative_to(where):
                stored = next((a for a in self.artifacts()
                               if a.task_id == task.pk and a.name == name), None)
                if stored is None:
                    raise OutputError(f"The step did not store its output {name} "
                                      f"({short(path)}).")
                return _inside(stored, str(seen.relative_to(where)))
        return None

    def _as_declared(self, source: str, node_id: str) -> str:
        node = PurePosixPath(layout.node_folder(self.namespace, self.run_id, node_id))
        path = PurePosixPath(source)
        if path.is_relative_to(node):
            parts = path.relative_to(node).parts
            if len(parts) > 2 and ATTEMPT.fullmatch(parts[0]) and parts[1] == "root":
                return "/" + "/".join(parts[2:])
        return source


def _declared_outputs(graph: dict, spec_id: str) -> dict[str, str]:
    """Declared path -> output name of a v1 task's output artifacts, from the run's graph."""
    for task in (graph or {}).get("tasks") or []:
        if isinstance(task, dict) and task.get("id") == spec_id:
            return {port["path"]: port["name"] for port in task.get("outputs") or []
                    if isinstance(port, dict) and port.get("kind") == "artifact"
                    and port.get("path") and port.get("name")}
    return {}


def _inside(artifact: Artifact, rest: str) -> Path:
    """The file ``rest`` inside ``artifact`` ("" for the artifact itself), kept inside it."""
    base = artifact_file(artifact)
    path = (base / rest.strip("/")).resolve() if rest.strip("/") not in ("", ".") else base
    if not path.is_relative_to(base):
        raise OutputError("The source leads outside the artifact store.")
    if not path.is_file():
        raise OutputError(f"The source {short(rest.strip('/') or artifact.name)} is not a "
                          "file of this run's artifacts.")
    return path
