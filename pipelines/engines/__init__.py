"""Pipeline engines: the local one runs each step as a process on this host, the Argo one
(kubernetes mode) makes each run an Argo Workflow. ``KFDASH_PLATFORM`` picks one."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from pipelines.engines.base import Engine, EngineError

ENGINES = {
    "local": "pipelines.engines.local.LocalEngine",
    "kubernetes": "pipelines.engines.argo.ArgoEngine",
}

__all__ = ["Engine", "EngineError", "engine", "engine_for"]

_engines: dict[str, Engine] = {}


def engine() -> Engine:
    """The configured platform's engine (one per process: it owns the running steps)."""
    platform = settings.KFDASH_PLATFORM
    if platform not in _engines:
        path = ENGINES.get(platform)
        if path is None:
            raise EngineError(f"kfdash cannot run pipelines on the {platform} platform yet.")
        _engines[platform] = import_string(path)()
    return _engines[platform]


def engine_for(run) -> Engine:
    return engine()
