"""A run's nodes in the Kubeflow Pipelines API: a step's log
(``/apis/v1alpha1/runs/{run_id}/nodes/{node_id}/log``, plain text, as the KFP server serves
it to its UI) and an output artifact (``…/runs/{run_id}/nodes/{node_id}/artifacts/{name}:read``
on v1beta1 and v2beta1, ``{"data": base64}``).

A node id is a task's ``node_id``: what v2's ``task_details[].pod_name`` and the keys of
v1's ``workflow_manifest`` ``status.nodes`` say. Both endpoints read with the view role,
through the access policy, like the run itself.
"""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from pipelines.api import run_serializers as rs
from pipelines.api import scoping
from pipelines.api import serializers as s
from pipelines.api.views import KfpView, PayloadTooLarge, answers, path_id
from pipelines.engines import EngineError, engine_for
from pipelines.models import Artifact, Run, RunTask

# An artifact travels base64 inside a JSON body held in memory: bigger ones are downloaded
# from the run page, which streams them.
READ_ARTIFACT_MAX_BYTES = 16 * 1024 * 1024
NODE_ID = OpenApiParameter("node_id", str, OpenApiParameter.PATH,
                           description="The task's node id (v2 task_details[].pod_name, v1 "
                                       "status.nodes key).")
ARTIFACT_NAME = OpenApiParameter("artifact_name", str, OpenApiParameter.PATH,
                                 description="The output's name.")


def task_of(run: Run, node_id: str) -> RunTask:
    task = RunTask.objects.filter(run=run, node_id=node_id).first()
    if task is None:
        raise Http404(f"The run {run.name} has no node {node_id!r}.")
    return task


class NodeLog(KfpView):
    def perform_content_negotiation(self, request, force=False):
        # The log is text whatever the client accepts (curl, a browser); errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(parameters=[path_id("run_id"), NODE_ID],
                   responses={(200, "text/plain"): OpenApiTypes.STR,
                              **{code: s.ErrorSerializer for code in (401, 403, 404)}})
    def get(self, request, run_id, node_id):
        """The step's log as stored (kept after it ends; very long logs keep their start
        and end)."""
        run = scoping.get_run(request.user, run_id)
        try:
            text = engine_for(run).read_log(task_of(run, node_id))
        except EngineError as exc:
            raise Http404(str(exc)) from None
        return HttpResponse(text, content_type="text/plain; charset=utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})


class ReadArtifact(KfpView):
    @extend_schema(parameters=[path_id("run_id"), NODE_ID, ARTIFACT_NAME],
                   responses=answers(rs.ReadArtifactSerializer, 413))
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
    if not artifact.path:
        raise Http404(f"The artifact {artifact.name} is not in kfdash's artifact store "
                      f"({artifact.uri}).")
    path = artifact.stored_file()
    if path is None:
        raise Http404(f"The artifact {artifact.name}'s file is no longer stored.")
    return path


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
