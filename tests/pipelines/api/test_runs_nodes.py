"""A run's nodes: a step's log (/apis/v1alpha1/…/log, plain text) and an output artifact
(…/artifacts/{name}:read on v1beta1 and v2beta1, base64 of a .tar.gz), through the access
policy like the run."""

from __future__ import annotations

import base64
import io
import tarfile
from urllib.parse import quote

import pytest

from pipelines.api import run_nodes
from pipelines.engines import layout
from tests.pipelines.api.run_samples import finished_run, install_engine
from tests.pipelines.run_rows import write_artifact

ADD = "for-loop-1/add.0"


@pytest.fixture
def engine(monkeypatch, settings):
    return install_engine(monkeypatch, settings)


@pytest.fixture
def run(profile, owner, ir_package):
    return finished_run(profile, owner, ir_package)


def log_url(run, node_id: str) -> str:
    return f"/apis/v1alpha1/runs/{run.pk}/nodes/{quote(node_id, safe='')}/log"


def read_url(run, node_id: str, name: str, version: str = "v1beta1") -> str:
    return f"/apis/{version}/runs/{run.pk}/nodes/{quote(node_id, safe='')}/artifacts/" \
           f"{name}:read"


def members(response) -> dict[str, bytes]:
    data = base64.b64decode(response.json()["data"])
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}


def test_it_serves_a_steps_log_as_text(api, viewer, engine, run):
    engine.logs[ADD] = "adding 3 and 2\n5\n"
    for accept in ("application/json", "text/plain", "*/*"):
        response = api(viewer).get(log_url(run, ADD), HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response.content == b"adding 3 and 2\n5\n"


def test_it_answers_404_for_an_unknown_node_or_a_stranger(api, viewer, stranger, engine, run):
    response = api(viewer).get(log_url(run, "nope"))
    assert response.status_code == 404 and "has no node 'nope'" in response.json()["message"]
    assert api(stranger).get(log_url(run, ADD)).status_code == 404


def test_it_serves_an_ended_steps_log_whole_when_asked_to_follow_it(api, viewer, stranger,
                                                                   engine, run):
    engine.logs[ADD] = "adding 3 and 2\n5\n"
    for follow in ("true", "false"):
        response = api(viewer).get(log_url(run, ADD) + f"?follow={follow}")
        assert response.status_code == 200 and not response.streaming
        assert response.content == b"adding 3 and 2\n5\n"
    assert api(stranger).get(log_url(run, ADD) + "?follow=true").status_code == 404


@pytest.mark.parametrize("version", ["v1beta1", "v2beta1"])
def test_it_reads_an_artifact_file_as_a_tar_gz(api, viewer, run, version):
    response = api(viewer).get(read_url(run, ADD, "sums", version))
    assert response.status_code == 200
    assert members(response) == {"sums": b"5\n"}


def test_it_reads_an_artifact_folder_under_its_name(api, viewer, run):
    add = run.tasks.get(node_id=ADD)
    model = write_artifact(run, add, "model", None, "system.Model")
    folder = layout.artifacts_root() / model.path
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "w.bin").write_bytes(b"\x00\x01")
    (folder / "config.json").write_text("{}")
    assert members(api(viewer).get(read_url(run, ADD, "model"))) == {
        "model/config.json": b"{}", "model/weights/w.bin": b"\x00\x01"}


def test_it_refuses_an_artifact_over_the_limit_with_413(api, viewer, run, monkeypatch):
    monkeypatch.setattr(run_nodes, "READ_ARTIFACT_MAX_BYTES", 1)
    response = api(viewer).get(read_url(run, ADD, "sums"))
    assert response.status_code == 413 and "download it from the run's page" in \
        response.json()["message"]


def test_it_answers_404_for_artifacts_it_does_not_hold(api, viewer, stranger, run):
    add = run.tasks.get(node_id=ADD)
    write_artifact(run, add, "gone", None)
    run.artifacts.create(task=add, name="remote", uri="gs://bucket/x")
    run.artifacts.create(task=add, name="sneaky", uri="x", path="../../etc/passwd")
    for name, message in (("missing", "has no artifact 'missing'"), ("gone", "no longer stored"),
                          ("remote", "not in kfdash's artifact store"),
                          ("sneaky", "no longer stored")):
        response = api(viewer).get(read_url(run, ADD, name))
        assert response.status_code == 404 and message in response.json()["message"], name
    assert api(stranger).get(read_url(run, ADD, "sums")).status_code == 404
