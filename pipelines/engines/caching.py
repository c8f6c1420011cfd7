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

from collections.abc import Callable
from typing import Any

from django.db.models import Q

from pipelines.choices import TaskKind, TaskState
from pipelines.models import RunTask

from . import layout
from .kfdash_launcher import cache_key


def key(component: Any, parameters: dict[str, Any],
        artifacts: dict[str, list[dict]]) -> str:
    """The launcher's ``cache_key``: a step on Argo computes its key in its own pod with
    the same function (``--cache-key-of``)."""
    return cache_key(component, parameters, artifacts)


def find(profile_id: int, cache_key: str, *, among: Q | None = None,
         usable: Callable[[RunTask], bool] | None = None) -> RunTask | None:
    """The latest successful execution with this key whose artifacts are still stored;
    ``among`` narrows the candidates, ``usable`` refuses one (an engine that can only
    read some of them: the Argo engine takes what ran on the cluster)."""
    candidates = RunTask.objects.filter(cache_key=cache_key, state=TaskState.SUCCEEDED,
                                        kind=TaskKind.TASK, run__profile_id=profile_id)
    if among is not None:
        candidates = candidates.filter(among)
    for candidate in candidates.order_by("-finished_at")[:5]:
        if _artifacts_present(candidate.outputs.get("artifacts") or {}) and \
                (usable is None or usable(candidate)):
            return candidate
    return None


def _artifacts_present(entries: dict[str, list[dict]]) -> bool:
    """Whether the artifacts in the store are still there (one outside it, an object
    store's ``s3://`` URI with no ``path``, is taken as present)."""
    for listed in entries.values():
        for entry in listed:
            if entry.get("path") and entry.get("size") is not None and \
                    not (layout.artifacts_root() / entry["path"]).exists():
                return False
    return True
