"""The real kfp 1.8 SDK (its own virtualenv) and the seed's ``curl`` upload, unchanged,
against a live kfdash server."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.kfp_sdks import run_kfp1

COMPILE = '''
from kfp import compiler, dsl


@dsl.pipeline(name="demo", description="Two steps, one after the other.")
def demo(msg: str = "hello"):
    first = dsl.ContainerOp(name="step1", image="alpine", command=["echo", msg])
    dsl.ContainerOp(name="step2", image="alpine", command=["echo", "two"]).after(first)


compiler.Compiler().compile(demo, "demo-0.tar.gz")
'''

SCRIPT = COMPILE + '''
import json

import kfp

client = kfp.Client(host={url!r}, existing_token={token!r})
out = {{}}

first = client.create_experiment("v1-exp", description="from kfp 1.8")
again = client.create_experiment("v1-exp")
out["same_experiment"] = first.id == again.id
out["owner"] = first.resource_references[0].key.id
out["by_name"] = client.get_experiment(experiment_name="v1-exp").id == first.id
out["experiments"] = [e.name for e in client.list_experiments().experiments]

pipeline = client.upload_pipeline("demo-0.tar.gz", pipeline_name="v1-demo")
unnamed = client.upload_pipeline("demo-0.tar.gz")
out["unnamed"] = unnamed.name
out["parameters"] = [[p.name, p.value] for p in pipeline.parameters]
version = client.upload_pipeline_version("demo-0.tar.gz", pipeline_version_name="second",
                                         pipeline_name="v1-demo")
out["version_of"] = version.resource_references[0].key.id == pipeline.id
out["pipeline_id"] = client.get_pipeline_id("v1-demo") == pipeline.id
out["pipelines"] = sorted(p.name for p in client.list_pipelines().pipelines)
out["default"] = client.get_pipeline(pipeline.id).default_version.name
out["versions"] = sorted(v.name for v in client.list_pipeline_versions(pipeline.id).versions)
client.delete_pipeline(pipeline.id)
out["pipelines_after"] = [p.name for p in client.list_pipelines().pipelines]
print(json.dumps(out))
'''


def test_the_kfp1_client_works_unchanged(live_kfp):
    done = run_kfp1(SCRIPT.format(url=live_kfp.url, token=live_kfp.token), live_kfp.workdir,
                    env=live_kfp.env)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "same_experiment": True, "owner": "team-a", "by_name": True,
        "experiments": ["v1-exp"], "unnamed": "demo-0.tar.gz",
        "parameters": [["msg", "hello"]], "version_of": True, "pipeline_id": True,
        "pipelines": ["demo-0.tar.gz", "v1-demo"], "default": "second",
        "versions": ["second", "v1-demo"], "pipelines_after": ["demo-0.tar.gz"],
    }


@pytest.fixture(scope="module")
def demo_package(live_kfp):
    """demo-0.tar.gz compiled by kfp 1.8 (as ``dsl-compile --output demo-0.tar.gz``)."""
    folder = live_kfp.workdir / "curl"
    folder.mkdir()
    run_kfp1(COMPILE, folder, env=live_kfp.env)
    return folder / "demo-0.tar.gz"


def test_the_seeds_curl_upload_works(live_kfp, demo_package):
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-F", "uploadfile=@demo-0.tar.gz",
         "-H", f"Authorization: Bearer {live_kfp.token}",
         f"{live_kfp.url}/apis/v1beta1/pipelines/upload?name=demo-curl"],
        cwd=demo_package.parent, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["name"] == "demo-curl" and body["parameters"] == [
        {"name": "msg", "value": "hello"}]
    assert body["created_at"].endswith("Z") and body["default_version"]["name"] == "demo-curl"


def test_curl_without_a_token_gets_a_kfp_401(live_kfp, demo_package):
    done = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\\n%{http_code}", "-F", "uploadfile=@demo-0.tar.gz",
         f"{live_kfp.url}/apis/v1beta1/pipelines/upload?name=anonymous"],
        cwd=demo_package.parent, capture_output=True, text=True, timeout=30)
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "401" and json.loads(body)["code"] == 16
