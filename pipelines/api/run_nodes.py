"""A run's nodes in the Kubeflow Pipelines API: a step's log
(``/apis/v1alpha1/runs/{run_id}/nodes/{node_id}/log``, plain text, as the KFP server serves
it to its UI) and an output artifact (``…/runs/{run_id}/nodes/{node_id}/artifacts/{name}:read``
on v1beta1 and v2beta1, ``{"data": base64}``).

A node id is a task's ``node_id``: what v2's ``task_details[].pod_name`` and the keys of
v1's ``workflow_manifest`` ``status.nodes`` say. Both endpoints read with the view role,
through the access policy, like the run itself.

With ``?follow=true`` the log of a step that has not ended is streamed, as the KFP server
streams its pod's log: what is stored, then new output as the step writes it, until the
step ends (chunked plain text; the engine's ``follow_log``, which the run page's log
socket relays too). Access is checked before the first byte; an error after it can only
be said in the text.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

from django.http import Http404, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from pipelines.api import run_serializers as rs
from pipelines.api import scoping
from pipelines.api import serializers as s
from pipelines.api.views import KfpView, PayloadTooLarge, StoreUnavailable, answers, path_id
from pipelines.engines import EngineError, engine_for, remote_artifacts
from pipelines.models import Artifact, Run, RunTask

log = logging.getLogger(__name__)
# An artifact travels base64 inside a JSON body held in memory: bigger ones are downloaded
# from the run page, which streams them.
READ_ARTIFACT_MAX_BYTES = 16 * 1024 * 1024
NODE_ID = OpenApiParameter("node_id", str, OpenApiParameter.PATH,
                           description="The task's node id (v2 task_details[].pod_name, v1 "
                                       "status.nodes key).")
ARTIFACT_NAME = OpenApiParameter("artifact_name", str, OpenApiParameter.PATH,
                                 description="The output's name.")
FOLLOW = OpenApiParameter(
    "follow", bool, description="true: while the step runs, stream its log (chunked): what "
                                "is stored, then new output as it is written, ending when the "
                                "step ends. Otherwise (and for a step that has ended) the log "
                                "as stored.")
TEXT_HEADERS = {"X-Content-Type-Options": "nosniff"}


def task_of(run: Run, node_id: str) -> RunTask:
    task = RunTask.objects.filter(run=run, node_id=node_id).first()
    if task is None:
        raise Http404(f"The run {run.name} has no node {node_id!r}.")
    task.run = run  # already loaded, with its namespace
    return task


class NodeLog(KfpView):
    def perform_content_negotiation(self, request, force=False):
        # The log is text whatever the client accepts (curl, a browser); errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(parameters=[path_id("run_id"), NODE_ID, FOLLOW],
                   responses={(200, "text/plain"): OpenApiTypes.STR,
                              **{code: s.ErrorSerializer for code in (401, 403, 404)}})
    def get(self, request, run_id, node_id):
        """The step's log as stored (kept after it ends; very long logs keep their start
        and end); with ``follow=true``, streamed until the step ends."""
        run = scoping.get_run(request.user, run_id)
        task = task_of(run, node_id)
        try:
            engine = engine_for(run)
            if following(request) and not task.is_finished:
                return StreamingHttpResponse(
                    relay(engine.follow_log(task), task),
                    content_type="text/plain; charset=utf-8",
                    # Proxies (nginx) would hold the chunks back until the end otherwise.
                    headers={**TEXT_HEADERS, "Cache-Control": "no-cache",
                             "X-Accel-Buffering": "no"})
            text = engine.read_log(task)
        except EngineError as exc:
            raise Http404(str(exc)) from None
        return HttpResponse(text, content_type="text/plain; charset=utf-8",
                            headers=TEXT_HEADERS)


def following(request) -> bool:
    """``follow=true``, as the KFP server reads it (``1`` too, and any case)."""
    return request.query_params.get("follow", "").strip().lower() in ("true", "1")


async def relay(texts: AsyncIterator[str], task: RunTask) -> AsyncIterator[str]:
    """The engine's follow of one step's log as a response body. The status is sent by
    then, so a failure ends the text with a line that says so (as the engine marks its
    own lines); a client that goes away closes the engine's follower with it."""
    async with contextlib.aclosing(texts):
        try:
            async for text in texts:
                if text:
                    yield text
        except EngineError as exc:
            yield f"\n----- kfdash: {exc}\n"
        except Exception:
            log.exception("cannot follow the log of %s", task)
            yield "\n----- kfdash: the log could not be read further.\n"


class ReadArtifact(KfpView):
    @extend_schema(parameters=[path_id("run_id"), NODE_ID, ARTIFACT_NAME],
                   responses=answers(rs.ReadArtifactSerializer, 413, 502))
    def get(self, request, run_id, node_id, artifact_name):
        """The artifact as a .tar.gz (base64), as the KFP server returns what Argo archived:
        a file is the archive's one member, named after the output; a folder's files are
        under the output's name."""
        run = scoping.get_run(request.user, run_id)
        artifact = Artifact.objects.filter(run=run, task__node_id=node_id,
                                           name=artifact_name).first()
        if artifact is None:
            raise Http404(f"The node {node_id!r} of the run {run.name} has no artifact "
                          f"{artifact_name!r}.")
        data = archive(stored_path(artifact), artifact.name)
        return Response({"data": base64.b64encode(data).decode()})


def stored_path(artifact: Artifact) -> Path:
    """The artifact's file or folder on this host (copied from the artifact store for a run
    on Argo)."""
    try:
        return remote_artifacts.local_copy(artifact)
    except remote_artifacts.RemoteArtifactError as exc:
        if exc.status == 404:
            raise Http404(str(exc)) from None
        if exc.status == 413:
            raise PayloadTooLarge(str(exc)) from None
        raise StoreUnavailable(str(exc)) from None


def archive(path: Path, name: str) -> bytes:
    """A .tar.gz of ``path`` under ``name``; links are left out (they could lead outside the
    store). Over READ_ARTIFACT_MAX_BYTES of content is refused before anything is read."""
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    size = sum(p.stat().st_size for p in files)
    if size > READ_ARTIFACT_MAX_BYTES:
        raise PayloadTooLarge(
            f"The artifact {name} holds {size} bytes, more than the "
            f"{READ_ARTIFACT_MAX_BYTES // 2**20} MB this API returns: download it from the "
            f"run's page.")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for file in files:
            member = name if file == path else f"{name}/{file.relative_to(path).as_posix()}"
            tar.add(file, arcname=member, recursive=False)
    return buffer.getvalue()
