"""The seed's CI flow with real curl against a live kfdash server: a package compiled by
``dsl-compile`` (kfp 1.8) is uploaded, run without naming an experiment, and polled until
it says "Succeeded" (reference section 3a)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.kfp_sdks import KFP1_PYTHON

PIPELINE = '''
from kfp import dsl


@dsl.pipeline(name="demo", description="Two steps, one after the other.")
def demo(msg: str = "hello"):
    first = dsl.ContainerOp(name="step1", image="alpine", command=["echo", msg])
    dsl.ContainerOp(name="step2", image="alpine", command=["echo", "two"]).after(first)
'''


@pytest.fixture(scope="module")
def demo_package(live_kfp):
    """demo-0.tar.gz, as the seed makes it: ``dsl-compile --py demo.py --output …``."""
    folder = live_kfp.workdir / "seed"
    folder.mkdir()
    (folder / "demo.py").write_text(PIPELINE)
    dsl_compile = KFP1_PYTHON.parent / "dsl-compile"
    if not dsl_compile.exists():
        pytest.fail(f"{dsl_compile} is missing: `make setup-dev` builds the kfp 1.8 "
                    "virtualenv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTEST"))}
    subprocess.run([str(dsl_compile), "--py", "demo.py", "--output", "demo-0.tar.gz"],
                   cwd=folder, env={**env, **live_kfp.env}, check=True, capture_output=True,
                   timeout=120)
    return folder / "demo-0.tar.gz"


def curl(live_kfp, *args: str, cwd=None) -> tuple[int, dict]:
    done = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\\n%{http_code}",
         "-H", f"Authorization: Bearer {live_kfp.token}", *args],
        cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    body, status = done.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def test_the_seeds_three_curl_commands_run_a_pipeline_to_success(live_kfp, demo_package):
    status, pipeline = curl(live_kfp, "-F", "uploadfile=@demo-0.tar.gz",
                            f"{live_kfp.url}/apis/v1beta1/pipelines/upload?name=demo-0",
                            cwd=demo_package.parent)
    assert status == 200 and pipeline["name"] == "demo-0"

    status, created = curl(
        live_kfp, "-X", "POST", "-H", "Content-Type: application/json", "-d",
        json.dumps({"name": "demo-run", "pipeline_spec": {"pipeline_id": pipeline["id"]}}),
        f"{live_kfp.url}/apis/v1beta1/runs")
    assert status == 200, created
    run = created["run"]
    assert run["status"] in ("Pending", "Running", "Succeeded")
    assert {"key": {"type": "EXPERIMENT", "id": run["resource_references"][0]["key"]["id"]},
            "name": "Default", "relationship": "OWNER"} in run["resource_references"]
    assert "workflow_manifest" in created["pipeline_runtime"]

    deadline = time.monotonic() + 120
    while True:
        status, detail = curl(live_kfp, f"{live_kfp.url}/apis/v1beta1/runs/{run['id']}")
        assert status == 200
        if detail["run"]["status"] not in ("Pending", "Running") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert detail["run"]["status"] == "Succeeded", detail["run"]
    assert detail["run"]["finished_at"].endswith("Z")
    workflow = json.loads(detail["pipeline_runtime"]["workflow_manifest"])
    assert workflow["status"]["phase"] == "Succeeded"
    assert sorted(node["displayName"] for node in workflow["status"]["nodes"].values()
                  if node["type"] == "Pod") == ["step1", "step2"]


def test_curl_gets_kfp_errors_for_a_bad_run(live_kfp):
    status, body = curl(
        live_kfp, "-X", "POST", "-H", "Content-Type: application/json", "-d",
        json.dumps({"name": "no-pipeline", "pipeline_spec": {"parameters": []}}),
        f"{live_kfp.url}/apis/v1beta1/runs")
    assert status == 400 and body["code"] == 3 and "workflow_manifest" in body["message"]
    status, body = curl(live_kfp, f"{live_kfp.url}/apis/v1beta1/runs/not-a-run")
    assert status == 404 and body["code"] == 5
