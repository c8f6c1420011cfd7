"""Recurring runs through the real SDKs, unchanged, against a live kfdash server: kfp 2.17
``create_recurring_run`` (from a package and from a stored version, cron and period),
``list_recurring_runs``, ``get_recurring_run``, ``disable/enable/delete_recurring_run``;
kfp 1.8 ``create_recurring_run``, ``list_recurring_runs``, ``disable_job``, ``delete_job``;
and one schedule that really fires, its run found by ``recurring_run_id``."""

from __future__ import annotations

import json

from tests.kfp_sdks import ROOT, run_kfp1, run_kfp2

PRELUDE_V2 = '''
import json
import sys
import time

sys.path.insert(0, {root!r})

import kfp
from kfp import compiler
from kfp_server_api.exceptions import ApiException

from tests.pipelines.api.add_pipeline import add_pipeline

client = kfp.Client(host={url!r}, existing_token={token!r})
out = {{}}
compiler.Compiler().compile(add_pipeline, "add.yaml")


def refused(**kwargs):
    try:
        client.create_recurring_run(experiment_id, "bad", pipeline_package_path="add.yaml",
                                    **kwargs)
    except ApiException as exc:
        return [exc.status, json.loads(exc.body)["message"]]
'''

PRELUDE_V1 = '''
import json

import kfp
from kfp import compiler, dsl
from kfp_server_api.exceptions import ApiException

client = kfp.Client(host={url!r}, existing_token={token!r})
out = {{}}


@dsl.pipeline(name="demo", description="Two steps, one after the other.")
def demo(msg: str = "hello"):
    first = dsl.ContainerOp(name="step1", image="alpine", command=["echo", msg])
    dsl.ContainerOp(name="step2", image="alpine", command=["echo", "two"]).after(first)


compiler.Compiler().compile(demo, "demo.tar.gz")
'''


def run_v2(live_kfp, body: str) -> dict:
    code = PRELUDE_V2.format(root=str(ROOT), url=live_kfp.url, token=live_kfp.token) + body
    done = run_kfp2(code + "\nprint(json.dumps(out))\n", live_kfp.workdir, timeout=240,
                    env=live_kfp.env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_v1(live_kfp, body: str) -> dict:
    code = PRELUDE_V1.format(url=live_kfp.url, token=live_kfp.token) + body
    done = run_kfp1(code + "\nprint(json.dumps(out))\n", live_kfp.workdir, timeout=240,
                    env=live_kfp.env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_kfp2_creates_lists_gets_disables_enables_and_deletes(live_kfp):
    out = run_v2(live_kfp, '''
experiment_id = client.create_experiment("sdk-recurring").experiment_id
package = client.create_recurring_run(
    experiment_id, "from-package", description="weekdays at nine",
    cron_expression="0 0 9 ? * 2-6", max_concurrency=2, no_catchup=True, params={"a": 5},
    pipeline_package_path="add.yaml")
out["package"] = [package.status, package.mode, package.max_concurrency,
                  package.trigger.cron_schedule.cron, package.no_catchup,
                  package.runtime_config.parameters, package.pipeline_spec["pipelineInfo"]["name"],
                  package.namespace, package.experiment_id == experiment_id]

pipeline = client.upload_pipeline("add.yaml", pipeline_name="sdk-recurring-add")
version = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
stored = client.create_recurring_run(
    experiment_id, "by-version", interval_second=3600, start_time="2030-01-01T00:00:00Z",
    end_time="2031-01-01T00:00:00Z", pipeline_id=pipeline.pipeline_id,
    version_id=version.pipeline_version_id, enabled=False)
periodic = stored.trigger.periodic_schedule
out["stored"] = [stored.status, periodic.interval_second, periodic.start_time.isoformat(),
                 periodic.end_time.isoformat(),
                 stored.pipeline_version_reference.pipeline_version_id
                 == version.pipeline_version_id, stored.max_concurrency]

listed = client.list_recurring_runs(experiment_id=experiment_id, sort_by="created_at")
out["listed"] = [[r.display_name for r in listed.recurring_runs], listed.total_size]
paged = client.list_recurring_runs(namespace="team-a", page_size=1)
following = client.list_recurring_runs(namespace="team-a", page_size=1,
                                       page_token=paged.next_page_token)
out["paged"] = [len(paged.recurring_runs), following.recurring_runs[0].display_name]
out["everything"] = client.list_recurring_runs().total_size

got = client.get_recurring_run(package.recurring_run_id)
out["got"] = [got.display_name, got.created_at is not None, got.updated_at is not None]
client.disable_recurring_run(package.recurring_run_id)
out["disabled"] = client.get_recurring_run(package.recurring_run_id).status
client.enable_recurring_run(package.recurring_run_id)
out["enabled"] = client.get_recurring_run(package.recurring_run_id).status
client.delete_recurring_run(package.recurring_run_id)
try:
    client.get_recurring_run(package.recurring_run_id)
except ApiException as exc:
    out["after_delete"] = exc.status

out["bad_cron"] = refused(cron_expression="every day at nine")
out["bad_period"] = refused(interval_second=-60)
out["bad_window"] = refused(interval_second=60, start_time="2030-01-02T00:00:00Z",
                            end_time="2030-01-01T00:00:00Z")
out["bad_concurrency"] = refused(interval_second=60, max_concurrency=0)
out["bad_parameter"] = refused(interval_second=60, params={"a": "many"})
out["left"] = client.list_recurring_runs(experiment_id=experiment_id).total_size
''')
    assert out.pop("package") == [
        "ENABLED", "ENABLE", "2", "0 0 9 ? * 2-6", True, {"a": 5, "msg": "hi", "ratio": 0.5},
        "add-pipeline", "team-a", True]
    assert out.pop("stored") == ["DISABLED", "3600", "2030-01-01T00:00:00+00:00",
                                 "2031-01-01T00:00:00+00:00", True, "1"]
    bad = {key: out.pop(key) for key in list(out) if key.startswith("bad_")}
    assert bad == {
        "bad_cron": [400, bad["bad_cron"][1]], "bad_period": [400, bad["bad_period"][1]],
        "bad_window": [400, "trigger.periodic_schedule.end_time: The end must come after "
                            "the start."],
        "bad_concurrency": [400, "max_concurrency: At least 1 run at a time."],
        "bad_parameter": [400, "a: 'a' must be an integer, not 'many'."]}
    assert bad["bad_cron"][1].startswith("trigger.cron_schedule.cron: “every day at nine” is "
                                         "not a cron expression")
    assert bad["bad_period"][1].startswith("trigger.periodic_schedule.interval_second: ")
    assert out == {"listed": [["from-package", "by-version"], 2], "paged": [1, "by-version"],
                   "everything": 2, "got": ["from-package", True, True],
                   "disabled": "DISABLED", "enabled": "ENABLED", "after_delete": 404,
                   "left": 1}


def test_kfp2_a_schedule_fires_and_its_run_names_it(live_kfp):
    """The server's own scheduler starts a real run; the SDK finds it by recurring_run_id."""
    out = run_v2(live_kfp, '''
experiment_id = client.create_experiment("sdk-firing").experiment_id
schedule = client.create_recurring_run(experiment_id, "every-2s", interval_second=2,
                                       max_concurrency=1, params={"msg": "scheduled"},
                                       pipeline_package_path="add.yaml")
by_schedule = json.dumps({"predicates": [{"operation": "EQUALS", "key": "recurring_run_id",
                                          "stringValue": schedule.recurring_run_id}]})
deadline = time.monotonic() + 60
runs = []
while not runs and time.monotonic() < deadline:
    runs = client.list_runs(experiment_id=experiment_id, filter=by_schedule).runs or []
    time.sleep(0.5)
client.disable_recurring_run(schedule.recurring_run_id)
run = client.get_run(runs[0].run_id)
out["run"] = [run.recurring_run_id == schedule.recurring_run_id,
              run.runtime_config.parameters["msg"], run.display_name.startswith("every-2s ")]
done = client.wait_for_run_completion(run.run_id, timeout=120, sleep_duration=0.5)
out["state"] = done.state
out["status"] = client.get_recurring_run(schedule.recurring_run_id).status
''')
    assert out == {"run": [True, "scheduled", True], "state": "SUCCEEDED",
                   "status": "DISABLED"}


def test_kfp1_creates_lists_disables_and_deletes_jobs(live_kfp):
    out = run_v1(live_kfp, '''
experiment = client.create_experiment("v1-recurring")
job = client.create_recurring_run(experiment.id, "nightly-v1", cron_expression="0 0 0 * * *",
                                  pipeline_package_path="demo.tar.gz", params={"msg": "hi"},
                                  max_concurrency=2)
out["created"] = [job.name, job.enabled, job.mode, job.max_concurrency,
                  job.trigger.cron_schedule.cron, job.pipeline_spec.parameters[0].value,
                  [r.key.type for r in job.resource_references]]

pipeline = client.upload_pipeline("demo.tar.gz", "v1-recurring-demo")
by_version = client.create_recurring_run(experiment.id, "by-version-v1", interval_second=3600,
                                         version_id=pipeline.default_version.id,
                                         enabled=False)
out["by_version"] = [by_version.enabled, by_version.mode,
                     by_version.trigger.periodic_schedule.interval_second,
                     sorted(r.key.type for r in by_version.resource_references)]

listed = client.list_recurring_runs(experiment_id=experiment.id, sort_by="name")
out["listed"] = [[j.name for j in listed.jobs], listed.total_size]
client.disable_job(job.id)
out["disabled"] = [client.get_recurring_run(job.id).enabled,
                   client.get_recurring_run(job.id).mode]
client.delete_job(job.id)
try:
    client.get_recurring_run(job.id)
except ApiException as exc:
    out["after_delete"] = exc.status
try:
    client.create_recurring_run(experiment.id, "bad", interval_second=-1,
                                pipeline_package_path="demo.tar.gz")
except ApiException as exc:
    out["bad_period"] = exc.status
out["left"] = client.list_recurring_runs(experiment_id=experiment.id).total_size
''')
    assert out == {
        "created": ["nightly-v1", True, "ENABLED", "2", "0 0 0 * * *", "hi",
                    ["EXPERIMENT", "NAMESPACE"]],
        "by_version": [False, "DISABLED", "3600",
                       ["EXPERIMENT", "NAMESPACE", "PIPELINE_VERSION"]],
        "listed": [["by-version-v1", "nightly-v1"], 2], "disabled": [False, "DISABLED"],
        "after_delete": 404, "bad_period": 400, "left": 1}
