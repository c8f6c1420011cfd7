"""Enumerations shared by pipeline models, the API, pages and (later) engines."""

from django.db import models


class SpecFormat(models.TextChoices):
    """What a pipeline package holds, sniffed from its bytes."""

    KFP_V2 = "kfp-v2", "KFP v2 IR"
    ARGO = "argo", "Argo Workflow (KFP v1)"


class StorageState(models.TextChoices):
    """Whether an experiment (or run) is shown in the main list or the archive."""

    AVAILABLE = "AVAILABLE", "Available"
    ARCHIVED = "ARCHIVED", "Archived"


class RunState(models.TextChoices):
    """A run's state, as KFP v2 names it (``RuntimeState``); v1 strings come from ``V1_STATUS``."""

    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    SKIPPED = "SKIPPED", "Skipped"
    FAILED = "FAILED", "Failed"
    CANCELING = "CANCELING", "Canceling"
    CANCELED = "CANCELED", "Canceled"
    PAUSED = "PAUSED", "Paused"


class TaskState(models.TextChoices):
    """A task's (or a group instance's) state: the run states, plus CACHED for a task whose
    outputs were reused from an earlier execution (the KFP UI shows it apart)."""

    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    CACHED = "CACHED", "Cached"
    SKIPPED = "SKIPPED", "Skipped"
    FAILED = "FAILED", "Failed"
    CANCELING = "CANCELING", "Canceling"
    CANCELED = "CANCELED", "Canceled"


# States a run or task never leaves (unless retried).
FINISHED = frozenset({"SUCCEEDED", "CACHED", "SKIPPED", "FAILED", "CANCELED"})

# The KFP server's v2 -> v1 mapping (RuntimeState.ToV1): CANCELED is "Failed" on v1.
V1_STATUS = {
    "PENDING": "Pending", "PAUSED": "Pending", "RUNNING": "Running", "SUCCEEDED": "Succeeded",
    "CACHED": "Succeeded", "SKIPPED": "Skipped", "FAILED": "Failed", "CANCELING": "Terminating",
    "CANCELED": "Failed",
}


class TaskKind(models.TextChoices):
    """What a row of a run's task table stands for: a step, or an instance of a group."""

    TASK = "task", "Task"
    CONDITION = "condition", "Condition"
    LOOP = "loop", "Loop"
    ITERATION = "iteration", "Loop iteration"
    EXIT_HANDLER = "exit_handler", "Exit handler"
    DAG = "dag", "Sub-pipeline"
