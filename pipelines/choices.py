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
