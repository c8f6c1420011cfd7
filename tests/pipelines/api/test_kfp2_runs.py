"""Runs through the real kfp 2.17 SDK, unchanged, against a live kfdash server whose local
engine really executes them: started from a function, a package and a stored version,
waited for, listed, terminated, archived and deleted."""

from __future__ import annotations

import json

from tests.kfp_sdks import ROOT, run_kfp2

PRELUDE = '''
import json
import sys
import time

sys.path.insert(0, {root!r})

import kfp
from kfp import compiler, dsl
from kfp_server_api.exceptions import ApiException

from tests.pipelines.api.add_pipeline import add_pipeline

client = kfp.Client(host={url!r}, existing_token={token!r})
out = {{}}


def wait_for(run_id, states, timeout=120):
    """Poll get_run until the run is in one of ``states`` (the SDK's own wait does not stop
    on CANCELED)."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_run(run_id)
        if run.state in states or time.monotonic() > deadline:
            return run
        time.sleep(0.2)
'''


def run_script(live_kfp, body: str) -> dict:
    code = PRELUDE.format(root=str(ROOT), url=live_kfp.url, token=live_kfp.token) + body
    done = run_kfp2(code + "\nprint(json.dumps(out))\n", live_kfp.workdir, timeout=240,
                    env=live_kfp.env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_runs_from_a_function_and_a_package_succeed_and_are_listed(live_kfp):
    out = run_script(live_kfp, '''
compiler.Compiler().compile(add_pipeline, "add.yaml")
started = client.create_run_from_pipeline_func(add_pipeline, arguments={"a": 40},
                                               experiment_name="sdk-runs")
done = client.wait_for_run_completion(started.run_id, timeout=120, sleep_duration=0.5)
out["from_function"] = done.state
out["finished"] = done.finished_at is not None and done.finished_at >= done.created_at
out["parameters"] = done.runtime_config.parameters
tasks = {t.display_name: t for t in done.run_details.task_details}
out["tasks"] = sorted((name, t.state) for name, t in tasks.items())
out["history"] = [h.state for h in done.state_history][-1]

package = client.create_run_from_pipeline_package(
    "add.yaml", arguments={"msg": "from a package"}, run_name="from-package",
    experiment_name="sdk-runs", enable_caching=False)
done = client.wait_for_run_completion(package.run_id, timeout=120, sleep_duration=0.5)
out["from_package"] = done.state
out["package_spec"] = done.pipeline_spec["pipelineInfo"]["name"]

experiment = client.get_experiment(experiment_name="sdk-runs")
listed = client.list_runs(experiment_id=experiment.experiment_id, sort_by="created_at desc")
out["listed"] = [r.display_name for r in listed.runs]
out["total"] = listed.total_size
by_namespace = client.list_runs(namespace="team-a", page_size=1)
out["paged"] = [len(by_namespace.runs), bool(by_namespace.next_page_token)]
''')
    listed = out.pop("listed")
    assert listed[0] == "from-package" and listed[1].startswith("add-pipeline ")  # SDK default
    assert out == {
        "from_function": "SUCCEEDED", "finished": True,
        "parameters": {"a": 40, "msg": "hi", "ratio": 0.5},
        "tasks": [["add", "SUCCEEDED"], ["say", "SUCCEEDED"]], "history": "SUCCEEDED",
        "from_package": "SUCCEEDED", "package_spec": "add-pipeline",
        "total": 2, "paged": [1, True],
    }


def test_a_stored_version_runs_and_the_run_is_archived_and_deleted(live_kfp):
    out = run_script(live_kfp, '''
compiler.Compiler().compile(add_pipeline, "add.yaml")
pipeline = client.upload_pipeline("add.yaml", pipeline_name="sdk-run-add")
version = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
experiment = client.create_experiment("sdk-versions")
run = client.run_pipeline(experiment.experiment_id, "by-version",
                          pipeline_id=pipeline.pipeline_id,
                          version_id=version.pipeline_version_id, params={"a": 1})
done = client.wait_for_run_completion(run.run_id, timeout=120, sleep_duration=0.5)
out["state"] = done.state
out["reference"] = done.pipeline_version_reference.pipeline_version_id == \\
    version.pipeline_version_id

client.archive_run(run.run_id)
out["archived"] = client.get_run(run.run_id).storage_state
client.unarchive_run(run.run_id)
out["unarchived"] = client.get_run(run.run_id).storage_state
try:
    client.run_pipeline(experiment.experiment_id, "bad", pipeline_id=pipeline.pipeline_id,
                        version_id=version.pipeline_version_id, params={"a": "many", "b": 2})
except ApiException as exc:
    out["refused"] = [exc.status, sorted(d["field"] for d in json.loads(exc.body)["details"])]
client.delete_run(run.run_id)
try:
    client.get_run(run.run_id)
except ApiException as exc:
    out["after_delete"] = exc.status
''')
    assert out == {"state": "SUCCEEDED", "reference": True, "archived": "ARCHIVED",
                   "unarchived": "AVAILABLE", "refused": [400, ["a", "b"]],
                   "after_delete": 404}


def test_a_running_run_is_terminated(live_kfp):
    out = run_script(live_kfp, '''
@dsl.component(base_image="python:3.11")
def nap(seconds: int):
    import time
    time.sleep(seconds)


@dsl.pipeline(name="napping")
def napping(seconds: int = 120):
    nap(seconds=seconds)


started = client.create_run_from_pipeline_func(napping)
out["running"] = wait_for(started.run_id, {"RUNNING"}).state
client.terminate_run(started.run_id)
out["terminated"] = wait_for(started.run_id, {"CANCELED", "FAILED"}, timeout=60).state
try:
    client.terminate_run(started.run_id)
except ApiException as exc:
    out["again"] = [exc.status, json.loads(exc.body)["message"]]
''')
    assert out["running"] == "RUNNING" and out["terminated"] == "CANCELED"
    status, message = out["again"]
    assert status == 400 and "has already ended" in message
