"""The Argo engine (kubernetes mode): a run is an Argo ``Workflow`` in its namespace.

- ``submit``: the Workflow is made by pure functions (``argo_manifests.make_workflow`` for
  a KFP v1 package, ``argo_compile.compile_v2_workflow`` for KFP v2 IR), validated
  (``validate_workflow``), then created. Its name comes from the run id, so submitting
  the same run twice meets a 409 rather than starting it twice. A manifest that cannot be
  made fails the run with the reason; nothing reaches the cluster.
- What happens next is reported by the watcher (``argo_watch.py``), which records the
  Workflow's status through ``argo_sync.record``.
- ``terminate``: ``spec.shutdown: Terminate`` (Argo stops the pods); CANCELING until
  Argo has ended the Workflow, then CANCELED.
- ``retry``: Argo's retry: failed and omitted step nodes (and their pods) are removed,
  the groups around them reset to Running, the Workflow back to Running; Argo runs the
  removed steps again and keeps what succeeded. It needs the Workflow, which Argo deletes
  ``KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED`` after the run finished (``Cleanup``); the run
  is left as it ended, and the user told to clone it.
- Logs: a running step's come from its pod (``read_namespaced_pod_log``, followed live);
  when a step ends, the watcher copies its pod's log into kfdash's log store, so logs
  outlive the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
from collections.abc import AsyncIterator
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.utils import timezone

from dashboard import kube
from pipelines.choices import FINISHED, RunState, SpecFormat, TaskState
from pipelines.engines.base import Engine, EngineError
from pipelines.models import Run, RunTask

from . import layout, logs
from .argo_compile import S3Repository
from .argo_manifests import (
    API_VERSION,
    RUN_ID_LABEL,
    Cleanup,
    make_workflow,
    validate_workflow,
)
from .argo_names import MAIN_CONTAINER
from .argo_templates import argo_text

log = logging.getLogger(__name__)

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "workflows"
# Argo's node types that hold other nodes (reset, not removed, by a retry).
BOUNDARIES = ("DAG", "Steps", "StepGroup", "TaskGroup")
RETRY_CONFLICTS = 5  # a retry rewrites the status; the controller may write in between
FOLLOW_RETRY_SECONDS = 1.0  # a followed step whose container has not started: ask again
# kfdash records a run's end when the watcher sees it, a little after Argo's finishedAt,
# from which Argo counts the TTL.
TTL_SLACK = timedelta(minutes=1)


def workflow_for(run: Run) -> dict:
    """The Workflow to submit for ``run``; ValueError when it cannot be made."""
    account = run.service_account or settings.KFDASH_ARGO_SERVICE_ACCOUNT
    cleanup = Cleanup(ttl_seconds=settings.KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED,
                      pod_gc=settings.KFDASH_ARGO_POD_GC_STRATEGY,
                      pod_gc_delay=settings.KFDASH_ARGO_POD_GC_DELAY)
    repository = S3Repository(
        endpoint=settings.KFDASH_ARTIFACT_S3_ENDPOINT,
        bucket=settings.KFDASH_ARTIFACT_S3_BUCKET,
        insecure=settings.KFDASH_ARTIFACT_S3_INSECURE,
        access_key_secret=(settings.KFDASH_ARTIFACT_S3_SECRET,
                           settings.KFDASH_ARTIFACT_S3_ACCESS_KEY_KEY),
        secret_key_secret=(settings.KFDASH_ARTIFACT_S3_SECRET,
                           settings.KFDASH_ARTIFACT_S3_SECRET_KEY_KEY),
        region=settings.KFDASH_ARTIFACT_S3_REGION,
        key_prefix=settings.KFDASH_ARTIFACT_KEY_PREFIX)
    common = {"run_id": str(run.pk), "run_name": run.name, "namespace": run.profile.name,
              "service_account": account, "cleanup": cleanup, "repository": repository}
    if run.format == SpecFormat.ARGO:
        manifest = make_workflow(run.document, parameters={
            name: argo_text(value) for name, value in run.parameters.items()}, **common)
    else:
        from .argo_cache import decide_for
        from .argo_compile import compile_v2_workflow

        cache = decide_for(run)  # what is served from the cache, the keys known now
        manifest = compile_v2_workflow(run.spec, run.document, parameters=run.parameters,
                                       launcher_image=settings.KFDASH_LAUNCHER_IMAGE,
                                       cached=cache.outputs, memoized=cache.at_run_time,
                                       platform_spec=run.platform_spec, **common)
        annotations = cache.annotations()
        if annotations:
            manifest["metadata"].setdefault("annotations", {}).update(annotations)
    validate_workflow(manifest)
    return manifest


class ArgoEngine(Engine):
    def __init__(self):
        self._copying = threading.Semaphore(4)  # pod logs copied at once

    @staticmethod
    def _custom():
        from kubernetes import client

        return client.CustomObjectsApi(kube.api_client())

    @staticmethod
    def _core():
        from kubernetes import client

        return client.CoreV1Api(kube.api_client())

    def find_workflow(self, run: Run) -> dict | None:
        """The run's Workflow, found by its label (its name is the engine's business)."""
        listing = self._custom().list_namespaced_custom_object(
            GROUP, VERSION, run.profile.name, PLURAL,
            label_selector=f"{RUN_ID_LABEL}={run.pk}")
        items = listing.get("items") or []
        return items[0] if items else None

    # --- the contract ----------------------------------------------------------------------

    def submit(self, run: Run) -> None:
        run = Run.objects.select_related("profile").get(pk=run.pk)
        try:
            manifest = workflow_for(run)
        except ValueError as exc:
            raise EngineError(f"This run cannot run on Argo: {exc}") from exc
        # 409: submitted before (the same run, the same name).
        self._call(lambda: self._custom().create_namespaced_custom_object(
            GROUP, VERSION, run.profile.name, PLURAL, manifest),
            doing="start the run", absent=(409,))

    def terminate(self, run: Run) -> None:
        run = Run.objects.select_related("profile").get(pk=run.pk)
        if run.is_finished:
            return
        workflow = self._call(self.find_workflow, run, doing="stop the run")
        if workflow is None:  # never made it to the cluster, or deleted there
            run.commit_changes(state=RunState.CANCELED)
            return
        self._call(lambda: self._custom().patch_namespaced_custom_object(
            GROUP, VERSION, run.profile.name, PLURAL, workflow["metadata"]["name"],
            {"spec": {"shutdown": "Terminate"}}), doing="stop the run")
        run.commit_changes(state=RunState.CANCELING)

    def retry(self, run: Run) -> None:
        """The run is RUNNING (its unfinished tasks PENDING) before Argo hears of it, so
        that nothing the watcher records afterwards is overwritten; if the cluster refuses,
        the run goes back to how it ended, with the reason."""
        run = Run.objects.select_related("profile").get(pk=run.pk)
        namespace = run.profile.name
        workflow = self._call(self.find_workflow, run, doing="retry the run")
        if workflow is None:
            raise EngineError(gone_message(run))
        ended_as, error = run.state, run.error
        again = list(RunTask.objects.filter(run=run).exclude(
            state__in=(TaskState.SUCCEEDED, TaskState.CACHED, TaskState.SKIPPED)))
        for task in again:
            task.state, task.error, task.finished_at = TaskState.PENDING, "", None
        run.commit_changes(again, state=RunState.RUNNING, error="")
        try:
            self._resubmit(workflow, run, namespace)
        except EngineError as exc:
            run.commit_changes(state=ended_as, error=f"{error}\nRetry refused: {exc}".strip())
            raise

    def _resubmit(self, workflow: dict, run: Run, namespace: str) -> None:
        for _ in range(RETRY_CONFLICTS):
            retried, pods = retry_workflow(workflow)
            for pod in pods:  # Argo remakes the retried steps' pods under the same names
                self._call(self._core().delete_namespaced_pod, pod, namespace,
                           doing="remove a failed step's pod", absent=(404,))
            # 409: the controller wrote in between; 404: deleted meanwhile. Read it again.
            if self._call(lambda w=workflow, r=retried: self._custom()
                          .replace_namespaced_custom_object(
                              GROUP, VERSION, namespace, PLURAL, w["metadata"]["name"], r),
                          doing="retry the run", absent=(404, 409)) is not None:
                return
            workflow = self._call(self.find_workflow, run, doing="retry the run")
            if workflow is None:
                raise EngineError(gone_message(run))
        raise EngineError("The run's Workflow kept changing; try again.")

    def forget(self, run: Run) -> None:
        namespace = run.profile.name
        try:
            workflow = self._call(self.find_workflow, run, doing="delete the run")
            if workflow is not None:
                self._call(self._custom().delete_namespaced_custom_object, GROUP, VERSION,
                           namespace, PLURAL, workflow["metadata"]["name"],
                           doing="delete the run's Workflow", absent=(404,))
        except EngineError as exc:  # the run goes; its Workflow is left to whoever can
            log.warning("run %s: %s", run.pk, exc)
        shutil.rmtree(layout.run_folder(namespace, run.pk), ignore_errors=True)
        # copies of outputs read back from the artifact store (remote_artifacts)
        shutil.rmtree(layout.run_artifacts(namespace, run.pk), ignore_errors=True)

    def resume(self) -> None:
        """Nothing to pick up: the cluster runs the Workflows; the watcher's first list
        brings every run up to date."""

    def shutdown(self, grace: float = 0) -> None:
        """Nothing runs in this process but log copies, which the next start redoes."""

    @staticmethod
    def _call(function, *args, doing: str = "ask the cluster", absent=(), **kwargs):
        """``function(*args, **kwargs)`` with the cluster's failures as EngineErrors saying
        what could not be done; a status in ``absent`` (404, 409...) returns None."""
        from kubernetes.client.exceptions import ApiException

        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            if exc.status in absent:
                return None
            raise EngineError(f"The cluster refused to {doing}: {kube.error_message(exc)}") \
                from exc
        except EngineError:
            raise
        except Exception as exc:  # no configuration, no connection
            raise EngineError(f"kfdash cannot reach the cluster to {doing}: {exc}") from exc

    # --- logs ------------------------------------------------------------------------------

    def keep_log(self, namespace: str, task: RunTask, pods: list[str]) -> None:
        """Copy a finished step's pod logs, one per attempt, into the log store (in the
        background, touching no database)."""
        def copy() -> None:
            with self._copying:
                for attempt, pod in enumerate(pods, start=1):
                    try:
                        self._copy_log(namespace, task, pod, attempt, len(pods))
                    except Exception:
                        log.exception("cannot keep the log of %s (attempt %s)", task, attempt)

        threading.Thread(target=copy, name="argo-keep-log", daemon=True).start()

    def _copy_log(self, namespace: str, task: RunTask, pod: str, attempt: int,
                  attempts: int) -> None:
        from kubernetes.client.exceptions import ApiException

        folder = layout.log_folder(namespace, task.run_id, task.node_id, attempt)
        if logs.ended(folder) is not None:
            return
        shutil.rmtree(folder, ignore_errors=True)
        writer = logs.LogWriter(folder, settings.KFDASH_MAX_LOG_BYTES)
        if attempts > 1:  # as the local engine heads each attempt of a retried step
            writer.note(f"attempt {attempt} of {attempts} (pod {pod})")
        try:
            response = self._core().read_namespaced_pod_log(
                pod, namespace, container=MAIN_CONTAINER, _preload_content=False)
            for chunk in response.stream(logs.CHUNK):
                writer.write(chunk)
            response.release_conn()
        except ApiException as exc:
            writer.note(f"the pod {pod} was gone before its log was kept "
                        f"({kube.error_message(exc)})")
        finally:
            writer.close(final=attempt == attempts)

    def _stored(self, task: RunTask) -> list:
        """The step's attempt logs kfdash has finished copying."""
        return [folder for folder in layout.attempt_logs(task.run.profile.name, task.run_id,
                                                         task.node_id)
                if logs.ended(folder) is not None]

    def read_log(self, task: RunTask, tail_bytes: int | None = None) -> str:
        kept = self._stored(task)
        if kept and task.state in FINISHED:
            return logs.read(kept, tail_bytes)
        pod = (task.runtime or {}).get("pod")
        if not pod:
            return logs.read(kept, tail_bytes) if kept else ""
        # 400: the container has not started; 404: the pod is gone.
        text = self._call(lambda: self._core().read_namespaced_pod_log(
            pod, task.run.profile.name, container=MAIN_CONTAINER),
            doing="read the step's log", absent=(400, 404))
        if text is None:
            return logs.read(kept, tail_bytes) if kept else ""
        return text[-tail_bytes:] if tail_bytes is not None and tail_bytes > 0 else text

    async def follow_log(self, task: RunTask) -> AsyncIterator[str]:
        kept = await sync_to_async(self._stored)(task)
        if kept and task.state in FINISHED:
            yield await sync_to_async(logs.read)(kept)
            return
        pod = (task.runtime or {}).get("pod")
        namespace = await sync_to_async(lambda: task.run.profile.name)()
        if not pod:
            yield await sync_to_async(self.read_log)(task)
            return
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        stopped = threading.Event()
        task_id = task.pk

        def ended() -> bool:
            try:
                state = RunTask.objects.filter(pk=task_id).values_list("state", flat=True).first()
                return state is None or state in FINISHED
            finally:
                connection.close()

        def pump() -> None:
            """The pod's log, followed; until its container starts (400) the step may still
            be waiting for a node or an image: ask again while the step has not ended."""
            try:
                while not stopped.is_set():
                    response = self._call(lambda: self._core().read_namespaced_pod_log(
                        pod, namespace, container=MAIN_CONTAINER, follow=True,
                        _preload_content=False), doing="follow the step's log",
                        absent=(400, 404))
                    if response is None:
                        if ended():
                            break
                        stopped.wait(FOLLOW_RETRY_SECONDS)
                        continue
                    try:
                        for chunk in response.stream(4096, decode_content=True):
                            if stopped.is_set():
                                break
                            loop.call_soon_threadsafe(queue.put_nowait, chunk)
                    finally:
                        with contextlib.suppress(Exception):
                            response.release_conn()
                    break
            except Exception as exc:  # EngineError, or the connection dropping midway
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, name="argo-follow-log", daemon=True).start()
        streamed = False
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, EngineError):
                    raise item
                if isinstance(item, Exception):
                    raise EngineError(f"The step's log stopped: {item}") from item
                streamed = True
                yield item.decode("utf-8", errors="replace")
        finally:
            stopped.set()
        if not streamed:  # the pod went before anything was read: what kfdash kept
            kept = await sync_to_async(self._stored)(task)
            if kept:
                yield await sync_to_async(logs.read)(kept)


def gone_message(run: Run) -> str:
    """Why a run whose Workflow is no longer on the cluster cannot be retried: most often
    Argo deleted it (``ttlStrategy``) once the run had been over long enough."""
    ttl = settings.KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED
    ago = timezone.now() - run.finished_at if run.finished_at else None
    if ttl and ago is not None and ago + TTL_SLACK >= timedelta(seconds=ttl):
        why = (f"its Workflow was removed from the cluster, as Argo does {_about(ttl)} after "
               f"a run ends (KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED={ttl}), and it ended "
               f"{_about(ago.total_seconds())} ago")
    else:
        why = "its Workflow is no longer on the cluster (it was deleted)"
    return f"The run {run.name} cannot be retried: {why}. Clone the run to start it again."


def _about(seconds: float) -> str:
    """A span in its largest whole unit: '1 day', '3 hours', '45 seconds'."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = max(int(seconds), 0)
    return f"{count} second{'s' if count != 1 else ''}"


def retry_workflow(workflow: dict) -> tuple[dict, list[str]]:
    """Argo's retry of a finished Workflow, as a new object to write: step nodes that did
    not succeed are removed (Argo runs them again), the groups around them reset to
    Running, the Workflow back to Running; returns it and the pods to delete."""
    import copy

    from .argo_status import pod_name

    retried = copy.deepcopy(workflow)
    spec = retried.setdefault("spec", {})
    spec.pop("shutdown", None)
    status = retried.setdefault("status", {})
    nodes = status.get("nodes") or {}
    keep = {"Succeeded", "Skipped"}
    removed: set[str] = set()
    pods: list[str] = []
    for node_id, node in nodes.items():
        if node.get("type") in BOUNDARIES or node.get("phase") in keep:
            continue
        removed.add(node_id)
        if node.get("type") == "Pod":
            pods.append(pod_name(workflow, node))
    for node_id in list(removed):  # a retried step's attempts go with it
        if nodes[node_id].get("type") == "Retry":
            removed.update(nodes[node_id].get("children") or [])
    for node_id in removed:
        node = nodes.pop(node_id, None)
        if node is not None and node.get("type") == "Pod":
            name = pod_name(workflow, node)
            if name not in pods:
                pods.append(name)
    for node in nodes.values():
        node["children"] = [c for c in node.get("children") or [] if c not in removed]
        if "outboundNodes" in node:
            node["outboundNodes"] = [c for c in node["outboundNodes"] if c not in removed]
        if node.get("type") in BOUNDARIES and node.get("phase") not in keep:
            node["phase"] = "Running"
            node.pop("finishedAt", None)
            node.pop("message", None)
    status["phase"] = "Running"
    status.pop("finishedAt", None)
    status.pop("message", None)
    return retried, pods
