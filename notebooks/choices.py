"""States and kinds of notebook servers, shared by models, spawners, pages and the API."""

import json

from django.db import models


class Status(models.TextChoices):
    """What a server is observed to be doing (Kubeflow's notebook status phases)."""

    WAITING = "waiting", "Starting"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    TERMINATING = "terminating", "Stopping"
    ERROR = "error", "Error"


class ServerType(models.TextChoices):
    """Values of Kubeflow's ``notebooks.kubeflow.org/server-type`` annotation."""

    JUPYTER = "jupyter", "JupyterLab"
    VSCODE = "group-one", "VS Code"
    RSTUDIO = "group-two", "RStudio"

    # What a server of each type needs from whoever routes /notebook/<ns>/<name>/ to it.
    # Kubeflow says it in annotations that Istio acts on; kfdash's proxy acts on the
    # same two answers (spawners' Endpoint), so the cluster and the proxy agree.

    @property
    def rewrite_uri(self) -> str | None:
        """The path that replaces the notebook's prefix (http-rewrite-uri), or None when
        the server is served under its prefix itself (JupyterLab's base_url)."""
        return None if self is ServerType.JUPYTER else "/"

    def request_headers(self, base_url: str) -> dict[str, str]:
        """Headers set on every request to the server (http-headers-request-set)."""
        if self is ServerType.RSTUDIO:
            # RStudio builds its links and redirects from this root path.
            return {"X-RStudio-Root-Path": base_url}
        return {}

    def request_headers_annotation(self, base_url: str) -> str | None:
        """``request_headers`` as the JSON Kubeflow's web app writes (no spaces)."""
        headers = self.request_headers(base_url)
        return json.dumps(headers, separators=(",", ":")) if headers else None
