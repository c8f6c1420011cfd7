"""Where the local engine keeps things, under ``DATA_DIR``::

    runs/<namespace>/<run>/<node>/attempt-<n>/
        work/        the step's working folder (its cwd)
        tmp/         its TMPDIR
        outputs/     KFP v2: output parameter files and executor_output.json
        ephemeral_component.py   KFP v2: a Python component's source
        root/        KFP v1: the step's private root (see isolation.py)
        log/         its output (see logs.py)
    runs/<namespace>/<run>/workspace/    KFP's {{$.workspace_path}}, shared by the run's steps
    artifacts/<namespace>/<run>/<node>/<output name>
    engine/      the engine's own files (the warm Python's folder, isolation probes)

``<node>`` is the task's node id with "/" and other unsafe characters %-escaped.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from django.conf import settings


def data_dir() -> Path:
    return Path(settings.DATA_DIR)


def runs_root() -> Path:
    return data_dir() / "runs"


def artifacts_root() -> Path:
    return data_dir() / "artifacts"


def engine_folder() -> Path:
    return data_dir() / "engine"


def safe(node_id: str) -> str:
    return quote(node_id, safe="-_.")


def run_folder(namespace: str, run_id) -> Path:
    return runs_root() / namespace / str(run_id)


def node_folder(namespace: str, run_id, node_id: str) -> Path:
    return run_folder(namespace, run_id) / safe(node_id)


def attempt_folder(namespace: str, run_id, node_id: str, attempt: int) -> Path:
    return node_folder(namespace, run_id, node_id) / f"attempt-{attempt}"


def log_folder(namespace: str, run_id, node_id: str, attempt: int) -> Path:
    return attempt_folder(namespace, run_id, node_id, attempt) / "log"


def attempt_logs(namespace: str, run_id, node_id: str) -> list[Path]:
    """The log folders of a step's attempts that exist, in attempt order."""
    node = node_folder(namespace, run_id, node_id)
    numbers = []
    if node.is_dir():
        for entry in node.iterdir():
            if entry.name.startswith("attempt-") and entry.name[8:].isdigit():
                numbers.append(int(entry.name[8:]))
    return [node / f"attempt-{n}" / "log" for n in sorted(numbers)]


def run_artifacts(namespace: str, run_id) -> Path:
    return artifacts_root() / namespace / str(run_id)


def artifact_path(namespace: str, run_id, node_id: str, name: str) -> Path:
    return run_artifacts(namespace, run_id) / safe(node_id) / safe(name)
