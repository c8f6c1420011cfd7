"""Kubernetes mode: each notebook is a Kubeflow ``Notebook`` (kubeflow.org/v1beta1), made
exactly as Kubeflow's Jupyter web app makes it, with PersistentVolumeClaims for its
volumes. Kubeflow's notebook controller turns it into a StatefulSet and a Service.

Clusters without the Notebook CRD (``KFDASH_NOTEBOOK_CRD = False``) get the StatefulSet
and Service directly, as the controller would have made them.

Stopping sets the ``kubeflow-resource-stopped`` annotation (the controller scales the
StatefulSet to 0; in StatefulSet mode kfdash scales it itself); starting removes it.
The server is reached at its Service, without a token: Kubeflow notebooks run
unauthenticated behind the mesh, and kfdash's proxy checks access before forwarding.
VS Code and RStudio servers serve at "/": the proxy removes the notebook's prefix and
sets RStudio's root-path header, as Istio does in Kubeflow from the annotations.

All objects are made through the official client, created lazily (dashboard.kube).
"""

from __future__ import annotations

import contextlib
import json
import time

from django.conf import settings

from dashboard import kube
from notebooks.choices import ServerType, Status
from notebooks.spawners import manifests
from notebooks.spawners.base import Endpoint, Observed, Progress, Spawner, SpawnError

NOTEBOOK = "Notebook"
STATEFULSET = "StatefulSet"
# JSON merge patch, where a null removes the stop annotation (said explicitly rather than
# left to the client's choice of patch type).
MERGE_PATCH = "application/merge-patch+json"


def _api_exceptions() -> tuple[type[BaseException], ...]:
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return ApiException, urllib3.exceptions.HTTPError, OSError


def statefulset_view(name: str, namespace: str) -> dict | None:
    """A server made as a StatefulSet (no Notebook CRD), with its pod, seen as a Notebook
    (``manifests.notebook_view_of_statefulset``); None when there is no StatefulSet."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = kube.api_client()
    try:
        statefulset = _json(client.AppsV1Api(api).read_namespaced_stateful_set(
            name, namespace, _preload_content=False))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    pod = None
    with contextlib.suppress(ApiException):
        pod = _json(client.CoreV1Api(api).read_namespaced_pod(
            f"{name}-0", namespace, _preload_content=False))
    return manifests.notebook_view_of_statefulset(statefulset, pod)


def _json(response) -> dict:
    """The body of a raw response (objects are read as plain dicts, as the API sends
    them, rather than through the client's models, which refuse partial objects)."""
    return json.loads(response.data or b"{}")


def _status(exc) -> int:
    return getattr(exc, "status", 0) or 0


def _spawn_error(action: str, exc) -> SpawnError:
    status = _status(exc)
    retryable = status == 0 or status >= 500 or status == 429
    return SpawnError(f"Kubernetes refused to {action}: {kube.error_message(exc)}", retryable)


def delete_pvc(volume) -> None:
    """Delete a volume's PersistentVolumeClaim (already gone is fine)."""
    from kubernetes import client

    core = client.CoreV1Api(kube.api_client())
    try:
        core.delete_namespaced_persistent_volume_claim(volume.name, volume.profile.name)
    except _api_exceptions() as exc:
        if _status(exc) != 404:
            raise _spawn_error(f"delete the volume {volume.name}", exc) from exc


class KubernetesSpawner(Spawner):
    name = "kubernetes"
    watched = True  # notebooks/watcher.py follows the cluster
    # Seconds start() waits for the server to become ready, and between looks.
    start_timeout = 300.0
    poll_interval = 1.0
    # Events shown on the notebook's page.
    max_events = 50

    @classmethod
    def server_types(cls) -> dict[str, str]:
        """Every type: the images decide, and the admin's config lists them. The proxy
        does for VS Code and RStudio what Kubeflow's Istio does (the Endpoint says what)."""
        return {t.value: "" for t in ServerType}

    # --- clients and names ------------------------------------------------------------

    def _apis(self):
        from kubernetes import client

        api = kube.api_client()
        return client.CustomObjectsApi(api), client.CoreV1Api(api), client.AppsV1Api(api)

    @property
    def namespace(self) -> str:
        return self.notebook.namespace

    @property
    def pod_name(self) -> str:
        return f"{self.notebook.name}-0"  # the StatefulSet's one pod (statefulset_view)

    @property
    def kind(self) -> str:
        """Notebook or StatefulSet: as recorded when it was made, else the setting."""
        recorded = (self.notebook.runtime or {}).get("kind")
        if recorded in (NOTEBOOK, STATEFULSET):
            return recorded
        return NOTEBOOK if getattr(settings, "KFDASH_NOTEBOOK_CRD", True) else STATEFULSET

    def _config(self):
        from notebooks.config import spawner_config

        return spawner_config()

    # --- reading ----------------------------------------------------------------------

    def _read(self) -> dict | None:
        """The Notebook (or the StatefulSet seen as one), None when there is none."""
        from kubernetes.client.exceptions import ApiException

        if self.kind != NOTEBOOK:
            return statefulset_view(self.notebook.name, self.namespace)
        custom, _, _ = self._apis()
        try:
            return custom.get_namespaced_custom_object(
                manifests.GROUP, manifests.VERSION, self.namespace, manifests.PLURAL,
                self.notebook.name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def manifest(self) -> str:
        """The Notebook (or StatefulSet) as the cluster holds it, as YAML."""
        import yaml

        custom, _, apps = self._apis()
        name, namespace = self.notebook.name, self.namespace
        try:
            if self.kind == NOTEBOOK:
                obj = custom.get_namespaced_custom_object(
                    manifests.GROUP, manifests.VERSION, namespace, manifests.PLURAL, name)
            else:
                obj = _json(apps.read_namespaced_stateful_set(name, namespace,
                                                              _preload_content=False))
        except _api_exceptions() as exc:
            if _status(exc) == 404:
                return ""
            raise _spawn_error(f"read the notebook {name}", exc) from exc
        obj.get("metadata", {}).pop("managedFields", None)
        return yaml.safe_dump(obj, sort_keys=False)

    def _raw_events(self) -> list[dict]:
        """Events about the pod and about the notebook (its Notebook, StatefulSet, Service)."""
        _, core, _ = self._apis()
        found = []
        for involved in (self.pod_name, self.notebook.name):
            listed = _json(core.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={involved}",
                _preload_content=False))
            found += listed.get("items") or []
        return found

    def _observe(self) -> Observed:
        obj = self._read()
        if obj is None:
            if self.notebook.status in (Status.WAITING, Status.ERROR):
                return Observed(self.notebook.status, self.notebook.status_message)
            return Observed(Status.STOPPED, "The notebook server does not exist in the cluster.")
        seen = manifests.status_of(obj, [])
        if seen.status == Status.WAITING and not (obj.get("status") or {}).get("containerState"):
            seen = manifests.status_of(obj, self._raw_events())
        return seen

    # --- the contract -----------------------------------------------------------------

    def start(self, progress: Progress) -> None:
        notebook = self.notebook
        errors = _api_exceptions()
        kind = self.kind
        try:
            existing = self._read()
        except errors as exc:
            raise self._fail(_spawn_error(f"read the notebook {notebook.name}", exc)) from exc
        if existing is not None and manifests.status_of(existing, []).status == Status.RUNNING:
            if notebook.status != Status.RUNNING:
                progress("ready")
                notebook.mark(Status.RUNNING, "", kind=kind, object_name=notebook.name)
            return
        created: list[tuple[str, str]] = []  # (kind, name) made by this call, for cleanup
        try:
            progress("creating volumes")
            config = self._config()
            pvcs = self._missing_pvcs()
            objects = [] if existing is not None else self._server_objects(config)
            self._dry_run(pvcs, objects)
            for pvc in pvcs:
                if self._create_pvc(pvc):
                    created.append(("PersistentVolumeClaim", pvc["metadata"]["name"]))
            progress("creating server")
            if existing is None:
                for obj in objects:
                    self._create(obj)
                    created.append((obj["kind"], obj["metadata"]["name"]))
            elif manifests.STOP_ANNOTATION in (existing["metadata"].get("annotations") or {}):
                self._set_stopped(None)
        except SpawnError as exc:
            self._cleanup(created)
            raise self._fail(exc) from exc
        except errors as exc:
            self._cleanup(created)
            raise self._fail(_spawn_error(f"start the notebook {notebook.name}", exc)) from exc
        notebook.mark(Status.WAITING, "waiting for server to answer", kind=kind,
                      object_name=notebook.name)
        progress("waiting for server to answer")
        self._wait_until_ready(progress)

    def _wait_until_ready(self, progress: Progress) -> None:
        notebook = self.notebook
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while True:
            if type(notebook).objects.filter(pk=notebook.pk, stopped=True).exists():
                return  # stopped by its user meanwhile; the stop task takes over
            try:
                seen = self._observe()
            except _api_exceptions() as exc:
                seen = Observed(Status.WAITING, f"cannot read the notebook: "
                                f"{kube.error_message(exc)}")
            if seen.status == Status.RUNNING:
                progress("ready")
                notebook.mark(Status.RUNNING, "")
                return
            if seen.status == Status.ERROR:
                # The Notebook is kept, as in Kubeflow: its events and logs tell why.
                raise self._fail(SpawnError(f"The server cannot start: {seen.message}"))
            if seen.status == Status.STOPPED and not self._exists():
                raise self._fail(SpawnError("The notebook server was deleted while starting."))
            if seen.message and seen.message != last and seen.status == Status.WAITING:
                last = seen.message
                progress(seen.message)
            if time.monotonic() >= deadline:
                raise self._fail(SpawnError(
                    f"The server was not ready within {self.start_timeout:g} s "
                    f"({seen.message or seen.status}); Kubernetes keeps trying.", retryable=True))
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))

    def stop(self, grace: float = 10.0) -> None:
        try:
            obj = self._read()
            if obj is None:
                return
            if manifests.STOP_ANNOTATION in (obj["metadata"].get("annotations") or {}):
                return
            self._set_stopped(manifests.rfc3339())
        except _api_exceptions() as exc:
            raise _spawn_error(f"stop the notebook {self.notebook.name}", exc) from exc

    def delete(self, delete_volumes: bool) -> None:
        from kubernetes.client.exceptions import ApiException

        notebook = self.notebook
        custom, core, apps = self._apis()
        name, namespace = notebook.name, self.namespace
        calls = [
            lambda: custom.delete_namespaced_custom_object(
                manifests.GROUP, manifests.VERSION, namespace, manifests.PLURAL, name),
        ] if self.kind == NOTEBOOK else [
            lambda: apps.delete_namespaced_stateful_set(name, namespace),
            lambda: core.delete_namespaced_service(name, namespace),
        ]
        workspace = notebook.workspace if notebook.workspace_id else None
        if delete_volumes and workspace is not None and not (
                workspace.workspace_of.exclude(pk=notebook.pk).exists()
                or workspace.data_mounts.exists()):
            # Only the workspace, only when nothing else uses it; data volumes are kept.
            calls.append(lambda: core.delete_namespaced_persistent_volume_claim(
                workspace.name, namespace))
        try:
            for call in calls:
                try:
                    call()
                except ApiException as exc:
                    if exc.status != 404:
                        raise
        except _api_exceptions() as exc:
            raise _spawn_error(f"delete the notebook {name}", exc) from exc

    def poll(self) -> Observed:
        try:
            return self._observe()
        except _api_exceptions() as exc:
            raise _spawn_error(f"read the notebook {self.notebook.name}", exc) from exc

    def endpoint(self) -> Endpoint | None:
        """The cluster Service of a running server (one read of the Notebook)."""
        try:
            obj = self._read()
        except _api_exceptions():
            return None
        if obj is None or manifests.status_of(obj, []).status != Status.RUNNING:
            return None
        name, namespace = self.notebook.name, self.namespace
        return Endpoint.for_notebook(self.notebook,
                                     f"http://{name}.{namespace}.svc.cluster.local:80")

    def logs(self, tail: int = 1000) -> str:
        from kubernetes.client.exceptions import ApiException

        _, core, _ = self._apis()
        try:
            return core.read_namespaced_pod_log(self.pod_name, self.namespace,
                                                container=self.notebook.name, tail_lines=tail)
        except ApiException as exc:
            if exc.status in (400, 404):  # no pod (stopped, not scheduled) or not started
                return ""
            return f"(the logs cannot be read: {kube.error_message(exc)})"
        except _api_exceptions() as exc:
            return f"(the logs cannot be read: {exc})"

    def events(self) -> list[dict]:
        try:
            raw = self._raw_events()
        except _api_exceptions():
            return []
        seen, events = set(), []
        for event in raw:
            uid = (event.get("metadata") or {}).get("uid") or id(event)
            if uid in seen:
                continue
            seen.add(uid)
            events.append({"time": manifests._event_time(event),
                           "type": event.get("type") or "Normal",
                           "reason": event.get("reason") or "",
                           "message": event.get("message") or ""})
        events.sort(key=lambda e: e["time"])
        return events[-self.max_events:]

    # --- making things ----------------------------------------------------------------

    def _server_objects(self, config) -> list[dict]:
        if self.kind == NOTEBOOK:
            return [manifests.make_notebook(self.notebook, config)]
        return list(manifests.make_statefulset_and_service(self.notebook, config))

    def _missing_pvcs(self) -> list[dict]:
        from kubernetes.client.exceptions import ApiException

        _, core, _ = self._apis()
        missing = []
        for volume in manifests.notebook_volumes(self.notebook):
            try:
                core.read_namespaced_persistent_volume_claim(volume.name, self.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                missing.append(manifests.make_pvc(volume))
        return missing

    def _dry_run(self, pvcs: list[dict], objects: list[dict]) -> None:
        """Let the API server validate everything before anything is made."""
        from kubernetes.client.exceptions import ApiException

        for obj in [*pvcs, *objects]:
            try:
                self._create(obj, dry_run="All")
            except ApiException as exc:
                if exc.status != 409:
                    raise

    def _create(self, obj: dict, dry_run: str | None = None) -> None:
        custom, core, apps = self._apis()
        namespace = self.namespace
        kind = obj["kind"]
        if kind == manifests.KIND:
            custom.create_namespaced_custom_object(manifests.GROUP, manifests.VERSION, namespace,
                                                   manifests.PLURAL, obj, dry_run=dry_run)
        elif kind == "PersistentVolumeClaim":
            core.create_namespaced_persistent_volume_claim(namespace, obj, dry_run=dry_run)
        elif kind == "Service":
            core.create_namespaced_service(namespace, obj, dry_run=dry_run)
        elif kind == "StatefulSet":
            apps.create_namespaced_stateful_set(namespace, obj, dry_run=dry_run)
        else:  # pragma: no cover - manifests makes nothing else
            raise ValueError(kind)

    def _create_pvc(self, pvc: dict) -> bool:
        """Create a PVC; False when it already exists (made meanwhile by someone else)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self._create(pvc)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _set_stopped(self, stopped_at: str | None) -> None:
        """Set (a time) or remove (None) the stop annotation; in StatefulSet mode also
        scale to 0 or 1, as the notebook controller does."""
        from kubernetes.client.exceptions import ApiTypeError

        custom, _, apps = self._apis()
        name, namespace = self.notebook.name, self.namespace
        if self.kind == NOTEBOOK:
            # A JSON merge patch, where a null removes the annotation. kubernetes 30
            # (which kfp pins) sends every custom-object patch as one and refuses
            # _content_type; later clients need it said.
            patch = {"metadata": {"annotations": {manifests.STOP_ANNOTATION: stopped_at}}}
            args = (manifests.GROUP, manifests.VERSION, namespace, manifests.PLURAL, name,
                    patch)
            try:
                custom.patch_namespaced_custom_object(*args, _content_type=MERGE_PATCH)
            except ApiTypeError:  # refused by the client before anything was sent
                custom.patch_namespaced_custom_object(*args)
        else:
            # A JSON patch (a list): the one body every client version sends with the
            # right type without being told (kubernetes 30 has no _content_type for
            # built-in kinds and sends json-patch+json whatever the body).
            # The annotation is only removed when present and added when absent.
            path = "/metadata/annotations/" + manifests.STOP_ANNOTATION
            operations = [{"op": "add", "path": path, "value": stopped_at} if stopped_at
                          else {"op": "remove", "path": path},
                          {"op": "replace", "path": "/spec/replicas",
                           "value": 0 if stopped_at else 1}]
            apps.patch_namespaced_stateful_set(name, namespace, operations)

    def _exists(self) -> bool:
        with contextlib.suppress(*_api_exceptions()):
            return self._read() is not None
        return True

    def _cleanup(self, created: list[tuple[str, str]]) -> None:
        """Remove what a failed start made, newest first; best effort."""
        custom, core, apps = self._apis()
        namespace = self.namespace
        for kind, name in reversed(created):
            delete = {
                manifests.KIND: lambda n: custom.delete_namespaced_custom_object(
                    manifests.GROUP, manifests.VERSION, namespace, manifests.PLURAL, n),
                "PersistentVolumeClaim": lambda n: core.delete_namespaced_persistent_volume_claim(
                    n, namespace),
                "Service": lambda n: core.delete_namespaced_service(n, namespace),
                "StatefulSet": lambda n: apps.delete_namespaced_stateful_set(n, namespace),
            }[kind]
            with contextlib.suppress(*_api_exceptions()):
                delete(name)

    def _fail(self, error: SpawnError) -> SpawnError:
        self.notebook.mark(Status.ERROR, str(error))
        return error
