"""Namespace backends: turn a Profile and its contributors into a place to work.

``local`` keeps a folder per namespace under the data dir; ``kubernetes`` makes a
Namespace, service accounts and RoleBindings as Kubeflow's profile controller
and access manager (KFAM) do. ``KFDASH_PLATFORM`` picks one.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from dashboard.namespaces.base import BackendError, NamespaceBackend

BACKENDS = {
    "local": "dashboard.namespaces.local.LocalNamespaceBackend",
    "kubernetes": "dashboard.namespaces.kubernetes.KubernetesNamespaceBackend",
}

__all__ = ["BackendError", "NamespaceBackend", "get_backend"]


@cache
def _backend_for(platform: str) -> NamespaceBackend:
    return import_string(BACKENDS[platform])()


def get_backend() -> NamespaceBackend:
    """The backend for the configured platform, created on first use."""
    return _backend_for(settings.KFDASH_PLATFORM)
