"""Caching, as KFP does it: a task whose component and resolved inputs are those of a
successful earlier execution in the same namespace reuses that execution's outputs.

The key hashes the component as the pipeline defines it (KFP v2: its component and
executor; v1: its template without its name and metadata) with the task's input parameter
values and the fingerprints of its input artifacts. An artifact's fingerprint names the
execution that produced it, and a cached task passes its source's fingerprints on, so
the tasks after a cached one can hit the cache too, while a task after one that really
ran again cannot (as KFP's artifact ids behave). Output paths are not in the key: they
differ per run by design.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pipelines.choices import TaskKind, TaskState
from pipelines.models import RunTask

from . import layout


def key(component: Any, parameters: dict[str, Any],
        artifacts: dict[str, list[dict]]) -> str:
    payload = {
        "component": component,
        "parameters": parameters,
        "artifacts": {name: [entry.get("fingerprint") or entry.get("uri") for entry in listed]
                      for name, listed in artifacts.items()},
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def find(profile_id: int, cache_key: str) -> RunTask | None:
    """The latest successful execution with this key whose artifacts are still stored."""
    candidates = (RunTask.objects.filter(cache_key=cache_key, state=TaskState.SUCCEEDED,
                                         kind=TaskKind.TASK, run__profile_id=profile_id)
                  .order_by("-finished_at")[:5])
    for candidate in candidates:
        if _artifacts_present(candidate.outputs.get("artifacts") or {}):
            return candidate
    return None


def _artifacts_present(entries: dict[str, list[dict]]) -> bool:
    for listed in entries.values():
        for entry in listed:
            if entry.get("path") and entry.get("size") is not None and \
                    not (layout.artifacts_root() / entry["path"]).exists():
                return False
    return True
