"""States and kinds of notebook servers, shared by models, spawners, pages and the API."""

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
