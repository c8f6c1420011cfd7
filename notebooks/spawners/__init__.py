"""Spawners turn Notebook rows into servers: local JupyterLab processes, or
Kubeflow Notebooks on Kubernetes. ``KFDASH_PLATFORM`` picks one."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from notebooks.spawners.base import Endpoint, Observed, Progress, Spawner, SpawnError

SPAWNERS = {
    "local": "notebooks.spawners.local.LocalProcessSpawner",
    "kubernetes": "notebooks.spawners.kubernetes.KubernetesSpawner",
}

__all__ = ["Endpoint", "Observed", "Progress", "SpawnError", "Spawner", "spawner_class",
           "spawner_for"]


def spawner_class() -> type[Spawner]:
    """The configured platform's spawner class."""
    path = SPAWNERS.get(settings.KFDASH_PLATFORM)
    if path is None:
        raise SpawnError(f"No notebook spawner for the {settings.KFDASH_PLATFORM} platform.")
    return import_string(path)


def spawner_for(notebook) -> Spawner:
    """The configured platform's spawner for ``notebook``."""
    return spawner_class()(notebook)
