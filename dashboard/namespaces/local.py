"""Local mode: a namespace is a database row and a folder under the data dir."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from dashboard.namespaces.base import BackendError, NamespaceBackend


def namespace_dir(name: str) -> Path:
    """Where a namespace's files (workspaces, artifacts, logs) live in local mode."""
    return Path(settings.DATA_DIR) / "namespaces" / name


class LocalNamespaceBackend(NamespaceBackend):
    """Access is enforced by kfdash itself (dashboard/access.py), so roles need no
    counterpart on disk; only the folder is made and removed."""

    name = "local"

    def create_namespace(self, profile) -> None:
        try:
            namespace_dir(profile.name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Could not create the namespace folder: {exc}") from exc

    def delete_namespace(self, profile) -> None:
        shutil.rmtree(namespace_dir(profile.name), ignore_errors=True)

    def grant(self, profile, email, role) -> None:
        return None

    def revoke(self, profile, email) -> None:
        return None
