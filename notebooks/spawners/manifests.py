"""Kubernetes objects for a notebook server, as Kubeflow's Jupyter web app makes them.

Pure functions of the notebook (and its data mounts) and the spawner config, so they
are tested by comparing dicts. ``make_notebook`` gives the ``kubeflow.org/v1beta1``
Notebook the JWA posts; ``make_statefulset_and_service`` gives what Kubeflow's
notebook controller would make of it, for clusters without the Notebook CRD.

``status_of`` is the JWA's status rules (``process_status``) as a pure function of
a Notebook object (as a dict) and the events about its pod.
"""

from __future__ import annotations

from datetime import UTC, datetime

from notebooks.choices import ServerType, Status
from notebooks.spawners.base import Observed

GROUP = "kubeflow.org"
VERSION = "v1beta1"
PLURAL = "notebooks"
KIND = "Notebook"
API_VERSION = f"{GROUP}/{VERSION}"

MANAGED_BY = {"app.kubernetes.io/managed-by": "kfdash"}
STOP_ANNOTATION = "kubeflow-resource-stopped"
SERVER_TYPE_ANNOTATION = "notebooks.kubeflow.org/server-type"
CREATOR_ANNOTATION = "notebooks.kubeflow.org/creator"
REWRITE_URI_ANNOTATION = "notebooks.kubeflow.org/http-rewrite-uri"
HEADERS_ANNOTATION = "notebooks.kubeflow.org/http-headers-request-set"
SERVICE_ACCOUNT = "default-editor"
DEFAULT_HOME = "/home/jovyan"
SHM_VOLUME = "dshm"
PORT = 8888
FS_GROUP = 100  # the notebook controller's default fsGroup (jovyan's group "users")

# Waiting reasons that do not get better by waiting (Kubeflow shows them as errors).
ERROR_REASONS = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
    "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError",
    "RunContainerError", "PreCreateHookError", "PostStartHookError",
})
# Warning events that mean the pod failed (others, like FailedScheduling, may resolve).
ERROR_EVENT_REASONS = frozenset({"Failed", "BackOff", "InspectFailed", "ErrImageNeverPull",
                                 "FailedCreate", "FailedCreatePodSandBox"})


def rfc3339(now: datetime | None = None) -> str:
    """Kubeflow's time format for the stop annotation: ``2024-05-01T12:00:00Z``."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pvc(volume) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": volume.name, "namespace": volume.profile.name,
                     "labels": dict(MANAGED_BY)},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": volume.size}}},
    }


def notebook_volumes(notebook) -> list:
    """The Volume rows a notebook needs as PVCs: its workspace, then its data volumes."""
    volumes = [notebook.workspace] if notebook.workspace_id else []
    for mount in data_mounts(notebook):
        if all(v.pk != mount.volume.pk for v in volumes):
            volumes.append(mount.volume)
    return volumes


def data_mounts(notebook) -> list:
    if not notebook.pk:
        return []
    return list(notebook.data_mounts.select_related("volume", "volume__profile")
                .order_by("mount_path"))


def workspace_mount(config) -> str:
    mount = (config["workspace"].value or {}).get("mount") if config is not None else None
    return str(mount or DEFAULT_HOME)


def _preset(field, key: str, wanted: str):
    """The ``key`` part of the option whose ``configKey`` is ``wanted`` (None if none)."""
    if not wanted:
        return None
    for option in field.options or []:
        if isinstance(option, dict) and option.get("configKey") == wanted:
            return option.get(key)
    return None


def _resources(notebook) -> dict:
    resources: dict = {"requests": {"cpu": str(notebook.cpu), "memory": str(notebook.memory)}}
    limits = {}
    if notebook.cpu_limit:
        limits["cpu"] = str(notebook.cpu_limit)
    if notebook.memory_limit:
        limits["memory"] = str(notebook.memory_limit)
    if notebook.gpu_count and notebook.gpu_vendor:
        limits[notebook.gpu_vendor] = str(notebook.gpu_count)
    if limits:
        resources["limits"] = limits
    return resources


def pod_spec(notebook, config, extra_env: dict[str, str] | None = None) -> dict:
    """The PodSpec of the notebook's server (the Notebook's ``spec.template.spec``)."""
    name = notebook.name
    environment = {str(k): str(v) for k, v in (notebook.environment or {}).items()}
    environment.update(extra_env or {})
    mounts, volumes = [], []

    def add_claim(claim: str, path: str) -> None:
        if all(v["name"] != claim for v in volumes):
            volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": claim, "mountPath": path})

    if notebook.workspace_id:
        add_claim(notebook.workspace.name, workspace_mount(config))
    for mount in data_mounts(notebook):
        add_claim(mount.volume.name, mount.mount_path)
    if notebook.shm:
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    container: dict = {
        "name": name,
        "image": notebook.image,
        "imagePullPolicy": notebook.image_pull_policy or "IfNotPresent",
        "resources": _resources(notebook),
    }
    if environment:
        container["env"] = [{"name": k, "value": environment[k]} for k in sorted(environment)]
    if mounts:
        container["volumeMounts"] = mounts
    spec: dict = {"serviceAccountName": SERVICE_ACCOUNT, "containers": [container]}
    if volumes:
        spec["volumes"] = volumes
    if config is not None:
        tolerations = _preset(config["tolerations"], "tolerations", notebook.tolerations)
        if tolerations:
            spec["tolerations"] = list(tolerations)
        affinity = _preset(config["affinity"], "affinity", notebook.affinity)
        if affinity:
            spec["affinity"] = affinity
    return spec


def _annotations(notebook) -> dict:
    annotations = {SERVER_TYPE_ANNOTATION: str(notebook.server_type)}
    if notebook.created_by_id is not None:
        annotations[CREATOR_ANNOTATION] = notebook.created_by.email
    # What the JWA adds for VS Code / RStudio, for Istio to act on (kfdash's proxy acts
    # on the same ServerType answers, through the spawner's Endpoint).
    server_type = ServerType(notebook.server_type)
    if server_type.rewrite_uri is not None:
        annotations[REWRITE_URI_ANNOTATION] = server_type.rewrite_uri
    headers = server_type.request_headers_annotation(notebook.base_url)
    if headers:
        annotations[HEADERS_ANNOTATION] = headers
    return annotations


def _labels(notebook) -> dict:
    return {"app": notebook.name, **{str(k): str(v) for k, v in (notebook.labels or {}).items()}}


def make_notebook(notebook, config, stopped_at: str | None = None) -> dict:
    """The Notebook custom resource; ``stopped_at`` (RFC 3339) makes it a stopped one."""
    annotations = _annotations(notebook)
    if stopped_at:
        annotations[STOP_ANNOTATION] = stopped_at
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        # managed-by: kfdash's watcher follows only the objects kfdash made
        "metadata": {"name": notebook.name, "namespace": notebook.namespace,
                     "labels": {**_labels(notebook), **MANAGED_BY}, "annotations": annotations},
        "spec": {"template": {"spec": pod_spec(notebook, config)}},
    }


def nb_prefix(notebook) -> str:
    return f"/notebook/{notebook.namespace}/{notebook.name}"


def make_statefulset_and_service(notebook, config,
                                 stopped_at: str | None = None) -> tuple[dict, dict]:
    """What Kubeflow's notebook controller makes of a Notebook: a StatefulSet of one
    pod (none while stopped) and a Service from port 80 to the server's 8888."""
    name, namespace = notebook.name, notebook.namespace
    spec = pod_spec(notebook, config, {"NB_PREFIX": nb_prefix(notebook)})
    container = spec["containers"][0]
    container["workingDir"] = workspace_mount(config)
    container["ports"] = [{"name": "notebook-port", "containerPort": PORT, "protocol": "TCP"}]
    spec["securityContext"] = {"fsGroup": FS_GROUP}
    annotations = _annotations(notebook)
    if stopped_at:
        annotations[STOP_ANNOTATION] = stopped_at
    labels = {**_labels(notebook), **MANAGED_BY}
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": annotations},
        "spec": {
            "replicas": 0 if stopped_at else 1,
            "serviceName": name,
            "selector": {"matchLabels": {"statefulset": name}},
            "template": {
                "metadata": {"labels": {"statefulset": name, "notebook-name": name,
                                        **_labels(notebook)}},
                "spec": spec,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": {"statefulset": name},
            "ports": [{"name": f"http-{name}", "port": 80, "targetPort": PORT,
                       "protocol": "TCP"}],
        },
    }
    return statefulset, service


# --- status ----------------------------------------------------------------------------


def _event_time(event: dict) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def status_of(obj: dict, events: list[dict]) -> Observed:
    """Kubeflow's status of a Notebook (a dict as the API returns it), given the events
    about it and its pod (dicts; newest wins)."""
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    status = obj.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    if STOP_ANNOTATION in annotations:
        if ready == 0:
            return Observed(Status.STOPPED, "No pods are running for this notebook server.")
        return Observed(Status.TERMINATING, "The notebook server is stopping.")
    if metadata.get("deletionTimestamp"):
        return Observed(Status.TERMINATING, "Deleting this notebook server.")
    if ready >= 1:
        return Observed(Status.RUNNING, "")
    state = status.get("containerState") or {}
    waiting = state.get("waiting")
    if isinstance(waiting, dict) and waiting.get("reason"):
        reason, message = str(waiting["reason"]), str(waiting.get("message") or "")
        if reason in ERROR_REASONS:
            return Observed(Status.ERROR, f"{reason}: {message}" if message else reason)
        return Observed(Status.WAITING, reason)
    terminated = state.get("terminated")
    if isinstance(terminated, dict):
        reason = str(terminated.get("reason") or "Terminated")
        text = f"The server terminated ({reason}, exit code {terminated.get('exitCode', '?')})"
        if terminated.get("message"):
            text += f": {terminated['message']}"
        return Observed(Status.ERROR, text[:500])
    ordered = sorted(events, key=_event_time, reverse=True)
    for event in ordered:
        if event.get("type") == "Warning":
            message = str(event.get("message") or event.get("reason") or "")
            if event.get("reason") in ERROR_EVENT_REASONS:
                return Observed(Status.ERROR, message[:500])
            return Observed(Status.WAITING, message[:500])
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("message"):
            return Observed(Status.WAITING, str(condition["message"])[:500])
    if ordered and ordered[0].get("message"):
        return Observed(Status.WAITING, str(ordered[0]["message"])[:500])
    return Observed(Status.WAITING, "Scheduling the pod")


def notebook_view_of_statefulset(statefulset: dict, pod: dict | None) -> dict:
    """A StatefulSet and its pod seen as a Notebook (the controller's status mirroring),
    so ``status_of`` serves both modes."""
    metadata = dict(statefulset.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    if (statefulset.get("spec") or {}).get("replicas") == 0:
        annotations.setdefault(STOP_ANNOTATION, "")
    metadata["annotations"] = annotations
    status: dict = {"readyReplicas": (statefulset.get("status") or {}).get("readyReplicas", 0)}
    if pod:
        pod_status = pod.get("status") or {}
        name = metadata.get("name")
        for container in pod_status.get("containerStatuses") or []:
            if container.get("name") == name:
                status["containerState"] = container.get("state") or {}
        status["conditions"] = pod_status.get("conditions") or []
    return {"metadata": metadata, "status": status}
