"""Notebook servers and the volumes they use: what a user asked for, and what was observed.

The spawner (notebooks/spawners/) turns a Notebook into a process or Kubernetes
objects; it saves what it needs to find the server again in ``runtime``, so a
restarted dashboard re-adopts servers that are still alive.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from dashboard import live
from dashboard.models import Profile, User
from notebooks.choices import ServerType, Status


def notebook_group(namespace: str) -> str:
    """The channel-layer group of a namespace's notebook changes."""
    return f"ns.{namespace}.notebooks"


class Volume(models.Model):
    """A persistent volume in a namespace: a folder in local mode, a PVC in kubernetes mode."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="volumes")
    name = models.CharField(max_length=63)
    size = models.CharField(max_length=20, default="10Gi")
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["profile", "name"],
                                               name="unique_volume_name")]

    def __str__(self) -> str:
        return f"{self.profile_id}/{self.name}"

    @property
    def users(self) -> list[str]:
        """The notebooks that use the volume (as workspace or data), by name. Reads
        ``workspace_of`` and ``data_mounts__notebook``: prefetch them for lists."""
        return sorted({n.name for n in self.workspace_of.all()}
                      | {m.notebook.name for m in self.data_mounts.all()})

    def remove(self, by: User) -> None:
        """Delete the volume and its files. Refused while a notebook uses it."""
        import shutil

        from django.core.exceptions import ValidationError

        users = self.users
        if users:
            raise ValidationError(f"The volume {self.name} is used by {', '.join(users)}; "
                                  "delete or change those notebooks first.")
        with transaction.atomic():
            self.profile.record(by, "volume", f"{by.email} deleted the volume {self.name}",
                                self.name)
            self.delete()
            if settings.KFDASH_PLATFORM == "kubernetes":
                from notebooks.spawners.kubernetes import delete_pvc

                delete_pvc(self)  # a refusal rolls the row back
        if settings.KFDASH_PLATFORM == "local":
            shutil.rmtree(self.local_path, ignore_errors=True)

    @property
    def local_path(self) -> Path:
        """Where the volume's files live in local mode."""
        return Path(settings.DATA_DIR) / "volumes" / self.profile.name / self.name


class Notebook(models.Model):
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="notebooks")
    name = models.CharField(max_length=52)
    server_type = models.CharField(max_length=20, choices=ServerType.choices,
                                   default=ServerType.JUPYTER)
    image = models.CharField(max_length=500)
    image_pull_policy = models.CharField(max_length=20, default="IfNotPresent")
    cpu = models.CharField(max_length=20, default="0.5")
    cpu_limit = models.CharField(max_length=20, blank=True)
    memory = models.CharField(max_length=20, default="1Gi")
    memory_limit = models.CharField(max_length=20, blank=True)
    gpu_count = models.PositiveSmallIntegerField(default=0)
    gpu_vendor = models.CharField(max_length=100, blank=True)
    workspace = models.ForeignKey(Volume, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="workspace_of")
    configurations = models.JSONField(default=list, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    shm = models.BooleanField(default=True)
    affinity = models.CharField(max_length=100, blank=True)
    tolerations = models.CharField(max_length=100, blank=True)

    # Intent: the user wants it running (not stopped).
    stopped = models.BooleanField(default=False)
    # Observation: what the spawner last saw.
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.WAITING)
    status_message = models.CharField(max_length=500, blank=True)
    runtime = models.JSONField(default=dict, blank=True)

    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["profile", "name"],
                                               name="unique_notebook_name")]

    def __str__(self) -> str:
        return f"{self.profile_id}/{self.name}"

    @classmethod
    def create(cls, profile: Profile, user: User, spec: dict, config) -> Notebook:
        """Create a notebook and its new volumes from a validated form (all or nothing).
        Configurations are resolved now into environment variables and labels, as
        Kubeflow's PodDefaults are applied when the pod is made."""
        environment, labels = {}, {}
        for name in spec["configurations"]:
            preset = config.configuration(name) or {}
            environment.update({str(k): str(v) for k, v in (preset.get("env") or {}).items()})
            labels.update({str(k): str(v) for k, v in (preset.get("labels") or {}).items()})
        with transaction.atomic():
            workspace = spec.get("workspace_volume")
            if spec["workspace_mode"] == "new":
                workspace = Volume.objects.create(profile=profile, name=spec["workspace_name"],
                                                  size=spec["workspace_size"], created_by=user)
            elif spec["workspace_mode"] == "none":
                workspace = None
            notebook = cls.objects.create(
                profile=profile, name=spec["name"], server_type=spec["server_type"],
                image=spec["image"], image_pull_policy=spec["image_pull_policy"],
                cpu=spec["cpu"], cpu_limit=spec["cpu_limit"], memory=spec["memory"],
                memory_limit=spec["memory_limit"], gpu_count=spec["gpu_count"],
                gpu_vendor=spec["gpu_vendor"], workspace=workspace,
                configurations=spec["configurations"], environment=environment, labels=labels,
                shm=spec["shm"], affinity=spec["affinity"], tolerations=spec["tolerations"],
                created_by=user, status=Status.WAITING, status_message="queued",
            )
            for row in spec.get("data_volumes", []):
                volume = row.get("volume") or Volume.objects.create(
                    profile=profile, name=row["name"], size=row["size"], created_by=user)
                notebook.data_mounts.create(volume=volume, mount_path=row["mount_path"])
            profile.record(user, "notebook", f"{user.email} created the notebook {notebook.name}",
                           notebook.name)
        return notebook

    # --- what users ask for; the spawner work runs in the background (notebooks/tasks.py)

    def request_start(self, by: User) -> None:
        from notebooks import tasks

        self.stopped = False
        self.save(update_fields=["stopped"])
        self.mark(Status.WAITING, "starting", progress=[])
        self.profile.record(by, "notebook", f"{by.email} started the notebook {self.name}",
                            self.name)
        transaction.on_commit(lambda: tasks.in_background(tasks.start_notebook, self.pk))

    def request_stop(self, by: User) -> None:
        from notebooks import tasks

        self.stopped = True
        self.save(update_fields=["stopped"])
        self.mark(Status.TERMINATING, "stopping")
        self.profile.record(by, "notebook", f"{by.email} stopped the notebook {self.name}",
                            self.name)
        reason = f"stopped by {by.email}"
        transaction.on_commit(lambda: tasks.in_background(tasks.stop_notebook, self.pk, reason))

    def cull(self, idle_for) -> None:
        """Stop a server nobody used for ``idle_for`` (a timedelta); the workspace stays."""
        from notebooks import tasks

        minutes = int(idle_for.total_seconds() // 60)
        reason = f"culled after {minutes} minutes without activity"
        self.stopped = True
        self.save(update_fields=["stopped"])
        self.mark(Status.TERMINATING, reason)
        self.profile.record(None, "notebook", f"The idle notebook {self.name} was stopped "
                            f"({minutes} minutes without activity)", self.name)
        transaction.on_commit(lambda: tasks.in_background(tasks.stop_notebook, self.pk, reason))

    def request_delete(self, by: User, delete_volumes: bool) -> None:
        from notebooks import tasks

        self.mark(Status.TERMINATING, "deleting")
        kept = "" if delete_volumes or not self.workspace else " (its workspace is kept)"
        self.profile.record(by, "notebook",
                            f"{by.email} deleted the notebook {self.name}{kept}", self.name)
        transaction.on_commit(
            lambda: tasks.in_background(tasks.delete_notebook, self.pk, delete_volumes))

    def remove(self, delete_volumes: bool) -> None:
        """Forget the notebook once its server is gone; its workspace volume too when asked
        (data volumes are shared things and are always kept)."""
        from notebooks import pipelines_access

        workspace, namespace, name = self.workspace, self.profile.name, self.name
        with transaction.atomic():
            pipelines_access.revoke(self)
            self.delete()
            if delete_volumes and workspace and not workspace.workspace_of.exists() \
                    and not workspace.data_mounts.exists():
                workspace.delete()
            live.publish_on_commit(notebook_group(namespace), {"type": "deleted", "name": name})

    @property
    def namespace(self) -> str:
        return self.profile.name

    @property
    def base_url(self) -> str:
        """Where the server is reached through kfdash's proxy."""
        return f"/notebook/{self.profile.name}/{self.name}/"

    def mark(self, status: Status | str, message: str = "", **runtime) -> None:
        """Record an observed state (and spawner runtime facts) and tell open pages."""
        self.status = status
        self.status_message = message[:500]
        fields = ["status", "status_message"]
        if runtime:
            self.runtime = {**self.runtime, **runtime}
            fields.append("runtime")
        self.save(update_fields=fields)
        live.publish_on_commit(notebook_group(self.profile.name), self.live_event())

    def live_event(self) -> dict:
        return {"type": "notebook", "name": self.name, "status": self.status,
                "status_label": Status(self.status).label, "message": self.status_message,
                "progress": self.runtime.get("progress", [])}


class NotebookVolume(models.Model):
    """A data volume mounted into a notebook at ``mount_path``."""

    notebook = models.ForeignKey(Notebook, on_delete=models.CASCADE, related_name="data_mounts")
    volume = models.ForeignKey(Volume, on_delete=models.PROTECT, related_name="data_mounts")
    mount_path = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notebook", "mount_path"],
                                               name="one_volume_per_path")]

    def __str__(self) -> str:
        return f"{self.volume_id} at {self.mount_path}"
