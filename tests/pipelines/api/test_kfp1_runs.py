"""Runs through the real kfp 1.8 SDK (its own virtualenv), unchanged, against a live kfdash
server whose local engine really executes them."""

from __future__ import annotations

import json

from tests.kfp_sdks import run_kfp1

PRELUDE = '''
import base64
import io
import json
import tarfile
import time
import urllib.request

import kfp
from kfp import compiler, dsl
from kfp_server_api.exceptions import ApiException

URL, TOKEN = {url!r}, {token!r}
client = kfp.Client(host=URL, existing_token=TOKEN)
out = {{}}


@dsl.pipeline(name="demo", description="Two steps, one after the other.")
def demo(msg: str = "hello"):
    first = dsl.ContainerOp(name="step1", image="alpine", command=["echo", msg])
    dsl.ContainerOp(name="step2", image="alpine", command=["echo", "two"]).after(first)


@dsl.pipeline(name="scored")
def scored(score: str = "0.85"):
    evaluate = dsl.ContainerOp(
        name="evaluate", image="alpine",
        command=["sh", "-c", 'echo "scored $0"; echo -n 42 > /tmp/answer.txt; '
                 'printf \\'{{"metrics": [{{"name": "accuracy-score", "numberValue": %s, '
                 '"format": "PERCENTAGE"}}]}}\\' "$0" > /mlpipeline-metrics.json', score],
        file_outputs={{"answer": "/tmp/answer.txt"}},
        output_artifact_paths={{"mlpipeline-metrics": "/mlpipeline-metrics.json"}})
    dsl.ContainerOp(name="report", image="alpine",
                    command=["echo", evaluate.outputs["answer"]])


def wait_for(run_id, statuses=("Succeeded", "Failed", "Error", "Skipped"), timeout=120):
    """Poll get_run without the SDK's fixed 5 s sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        detail = client.get_run(run_id)
        if detail.run.status in statuses or time.monotonic() > deadline:
            return detail
        time.sleep(0.2)


def get(path):
    request = urllib.request.Request(URL + path,
                                     headers={{"Authorization": "Bearer " + TOKEN}})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()
'''


def run_script(live_kfp, body: str) -> dict:
    code = PRELUDE.format(url=live_kfp.url, token=live_kfp.token) + body
    done = run_kfp1(code + "\nprint(json.dumps(out))\n", live_kfp.workdir, timeout=240,
                    env=live_kfp.env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_package_run_succeeds_through_wait_for_run_completion(live_kfp):
    """The SDK's own wait, with its 5 s sleep after every poll (one test pays for it)."""
    out = run_script(live_kfp, '''
compiler.Compiler().compile(demo, "demo-0.tar.gz")
result = client.create_run_from_pipeline_package("demo-0.tar.gz", arguments={"msg": "hi"})
detail = result.wait_for_run_completion(timeout=120)
out["status"] = detail.run.status
out["experiment"] = [r.name for r in detail.run.resource_references
                     if r.key.type == "EXPERIMENT"]
workflow = json.loads(detail.pipeline_runtime.workflow_manifest)
out["phase"] = workflow["status"]["phase"]
out["nodes"] = sorted((n["displayName"], n["phase"]) for n in workflow["status"]["nodes"].values()
                      if n["type"] == "Pod")
out["arguments"] = workflow["spec"]["arguments"]["parameters"]
step1 = next(n for n in workflow["status"]["nodes"].values() if n["displayName"] == "step1")
out["log"] = get(f"/apis/v1alpha1/runs/{result.run_id}/nodes/{step1['id']}/log")
''')
    assert out["status"] == "Succeeded" and out["experiment"] == ["Default"]
    assert out["phase"] == "Succeeded"
    assert out["nodes"] == [["step1", "Succeeded"], ["step2", "Succeeded"]]
    assert out["arguments"] == [{"name": "msg", "value": "hi"}]
    assert "hi" in out["log"]


def test_a_stored_version_runs_with_metrics_and_artifacts(live_kfp):
    out = run_script(live_kfp, '''
compiler.Compiler().compile(scored, "scored.tar.gz")
pipeline = client.upload_pipeline("scored.tar.gz", pipeline_name="v1-scored")
experiment = client.create_experiment("v1-runs")
run = client.run_pipeline(experiment.id, "by-version", version_id=pipeline.default_version.id,
                          params={"score": "0.9"})
detail = wait_for(run.id)
out["status"] = detail.run.status
out["metrics"] = [[m.name, m.number_value, m.format, m.node_id != ""]
                  for m in detail.run.metrics]
workflow = json.loads(detail.pipeline_runtime.workflow_manifest)
node = next(n for n in workflow["status"]["nodes"].values() if n["displayName"] == "evaluate")
out["outputs"] = node["outputs"]["parameters"]
out["children"] = [workflow["status"]["nodes"][child]["displayName"]
                   for child in node["children"]]
data = client.runs.read_artifact(run.id, node["id"], "evaluate-answer").data
with tarfile.open(fileobj=io.BytesIO(base64.b64decode(data))) as archive:
    out["artifact"] = [[m.name, archive.extractfile(m).read().decode()]
                       for m in archive.getmembers()]

by_pipeline = client.run_pipeline(experiment.id, "by-pipeline", pipeline_id=pipeline.id)
out["by_pipeline"] = wait_for(by_pipeline.id).run.status
listed = client.list_runs(experiment_id=experiment.id, sort_by="name")
out["listed"] = [[r.name, r.status] for r in listed.runs]

client.runs.archive_run(run.id)
out["archived"] = client.get_run(run.id).run.storage_state
client.runs.delete_run(by_pipeline.id)
out["left"] = [r.name for r in client.list_runs(experiment_id=experiment.id).runs]
try:
    client.run_pipeline(experiment.id, "bad", version_id=pipeline.default_version.id,
                        params={"scroe": "1"})
except ApiException as exc:
    out["refused"] = [exc.status, json.loads(exc.body)["message"]]
''')
    assert out["status"] == "Succeeded" and out["by_pipeline"] == "Succeeded"
    assert out["metrics"] == [["accuracy-score", 0.9, "PERCENTAGE", True]]
    assert out["children"] == ["report"]
    assert out["outputs"] == [{"name": "evaluate-answer", "value": "42"}]
    assert out["artifact"] == [["evaluate-answer", "42"]]
    assert out["listed"] == [["by-pipeline", "Succeeded"], ["by-version", "Succeeded"]]
    assert out["archived"] == "STORAGESTATE_ARCHIVED" and out["left"] == ["by-version"]
    status, message = out["refused"]
    assert status == 400 and "scroe" in message


def test_a_running_run_is_terminated_and_retried(live_kfp):
    out = run_script(live_kfp, '''
@dsl.pipeline(name="napping")
def napping():
    dsl.ContainerOp(name="nap", image="alpine", command=["sleep", "120"])


compiler.Compiler().compile(napping, "napping.yaml")
experiment = client.create_experiment("v1-napping")
run = client.run_pipeline(experiment.id, "napping", "napping.yaml")
out["running"] = wait_for(run.id, ("Running",)).run.status
try:
    client.runs.retry_run(run.id)
except ApiException as exc:
    out["retry_running"] = exc.status
client.runs.terminate_run(run.id)
out["terminated"] = wait_for(run.id).run.status
client.runs.retry_run(run.id)
out["retried"] = wait_for(run.id, ("Running",)).run.status
client.runs.terminate_run(run.id)
out["again"] = wait_for(run.id).run.status
''')
    assert out == {"running": "Running", "retry_running": 400, "terminated": "Failed",
                   "retried": "Running", "again": "Failed"}
