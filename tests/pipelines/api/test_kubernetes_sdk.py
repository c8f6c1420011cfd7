"""The real kfp SDKs, unchanged, against a live kfdash server in kubernetes mode: runs
become Argo Workflows in the fake API server, ``ArgoSim`` plays Argo's controller there,
and the server's own watcher brings the runs to their end, which the SDKs wait for."""

from __future__ import annotations

import json
import threading
import time

import pytest

from pipelines.engines.argo_manifests import RUN_NAME_ANNOTATION, validate_workflow
from tests.fakekube import FakeKubeServer, configure_kubernetes_for
from tests.kfp_sdks import ROOT, run_kfp1, run_kfp2
from tests.pipelines.api.conftest import PACKAGES
from tests.pipelines.argo_sim import WORKFLOWS, Controller

NAMESPACE = "team-a"


def outputs(name: str, inputs: dict) -> dict:
    """What the steps of the tests' pipelines print."""
    if name == "add":
        return {"Output": str(int(inputs["a"]) + int(inputs["b"]))}
    return {}


class Argo(threading.Thread):
    """Drives every Workflow that appears to its end; a run named "hold…" is left running
    after its first steps until someone stops it (then Argo's terminate is played)."""

    def __init__(self, fake: FakeKubeServer):
        super().__init__(daemon=True)
        self.fake = fake
        self.done: set[str] = set()
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            while not self.stopping.wait(0.05):
                for workflow in self.fake.objects(WORKFLOWS, NAMESPACE):
                    name = workflow["metadata"]["name"]
                    if name not in self.done:
                        self.done.add(name)
                        threading.Thread(target=self.drive, args=(workflow,),
                                         daemon=True).start()
        except Exception as exc:  # seen by the test
            self.errors.append(repr(exc))

    def drive(self, workflow: dict) -> None:
        try:
            run_id = workflow["metadata"]["labels"]["kfdash.io/run-id"]
            controller = Controller(self.fake, run_id, NAMESPACE, outputs=outputs)
            if workflow["metadata"]["annotations"][RUN_NAME_ANNOTATION].startswith("hold"):
                controller.run(steps=4)
                while not self.stopping.is_set() and not self.fake.get_object(
                        WORKFLOWS, controller.name, NAMESPACE)["spec"].get("shutdown"):
                    time.sleep(0.05)
            while controller.step():
                time.sleep(0.01)
        except Exception as exc:
            self.errors.append(repr(exc))


@pytest.fixture(scope="module")
def cluster_kfp(tmp_path_factory):
    """A kfdash server in kubernetes mode, the fake API server it talks to, an Argo
    played over that fake, and a user with a token and a namespace."""
    from tests.pipelines.api.conftest import LiveKfp
    from tests.servers import start_kfdash

    root = tmp_path_factory.mktemp("kfp-kubernetes")
    fake = FakeKubeServer().start()
    fake.register_validator("argoproj.io", "Workflow", validate_workflow)
    config = configure_kubernetes_for(fake, root / "kubeconfig")
    argo = Argo(fake)
    argo.start()
    # The server's watchers run once it holds the leader Lease (in "default" here).
    server = start_kfdash(root / "server", KFDASH_PLATFORM="kubernetes",
                          KUBECONFIG=str(config), SECRET_KEY="test-" + "k" * 50,
                          KFDASH_LEADER_NAMESPACE="default")
    try:
        server.manage("create_user", "ada@example.com", "--namespace", NAMESPACE)
        assert fake.get_object("namespaces", NAMESPACE) is not None
        deadline = time.monotonic() + 10
        while not (fake.get_object("leases", "kfdash-leader", "default", group=
                                   "coordination.k8s.io") or {}).get("spec", {}).get(
                "holderIdentity"):
            assert time.monotonic() < deadline, "the server never took the leader Lease"
            time.sleep(0.05)
        token = server.manage("create_token", "ada@example.com").stdout.strip().splitlines()[-1]
        workdir = root / "work"
        workdir.mkdir()
        live = LiveKfp(server.url, token, workdir, {"HOME": str(workdir)})
        live.fake, live.argo, live.server = fake, argo, server
        yield live
    finally:
        argo.stopping.set()
        server.stop()
        fake.stop()
    assert not argo.errors, argo.errors
    assert not fake.errors, fake.errors


KFP2 = '''
import json, sys, time
sys.path.insert(0, {root!r})
import kfp
client = kfp.Client(host={url!r}, existing_token={token!r})
out = {{}}


def wait(run_id, states, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_run(run_id)
        if run.state in states or time.monotonic() > deadline:
            return run
        time.sleep(0.1)
'''


def test_kfp2_runs_a_v1_package_on_argo_and_waits_for_it(cluster_kfp):
    code = KFP2.format(root=str(ROOT), url=cluster_kfp.url, token=cluster_kfp.token) + f'''
pipeline = client.upload_pipeline({str(PACKAGES / "demo_param.yaml")!r}, "demo-param")
version = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
experiment = client.create_experiment("on-argo")
common = dict(experiment_id=experiment.experiment_id, pipeline_id=pipeline.pipeline_id,
              version_id=version.pipeline_version_id)
run = client.run_pipeline(job_name="plain run", params={{"msg": "from kfp 2"}}, **common)
done = client.wait_for_run_completion(run.run_id, timeout=60, sleep_duration=0.2)
out["state"] = done.state
out["tasks"] = sorted((t.display_name, t.state) for t in done.run_details.task_details)

held = client.run_pipeline(job_name="hold me", **common)
out["running"] = wait(held.run_id, ("RUNNING",)).state
client.terminate_run(held.run_id)
out["stopped"] = wait(held.run_id, ("CANCELED", "FAILED", "SUCCEEDED")).state
out["listed"] = sorted(r.display_name for r in
                       client.list_runs(experiment_id=experiment.experiment_id).runs)
client.archive_run(held.run_id)
out["archived"] = client.get_run(held.run_id).storage_state
client.delete_run(held.run_id)
out["held_id"] = held.run_id
print(json.dumps(out))
'''
    out = json.loads(run_kfp2(code, cluster_kfp.workdir, env=cluster_kfp.env)
                     .stdout.strip().splitlines()[-1])
    assert out["state"] == "SUCCEEDED"
    assert out["tasks"] == [["again", "SUCCEEDED"], ["say", "SUCCEEDED"]]
    assert out["running"] == "RUNNING" and out["stopped"] == "CANCELED"
    assert out["listed"] == ["hold me", "plain run"] and out["archived"] == "ARCHIVED"
    # Deleting a run deletes its Workflow.
    assert not [w for w in cluster_kfp.fake.objects(WORKFLOWS, NAMESPACE)
                if w["metadata"]["labels"]["kfdash.io/run-id"] == out["held_id"]]
    (plain,) = [w for w in cluster_kfp.fake.objects(WORKFLOWS, NAMESPACE)
                if w["metadata"]["annotations"][RUN_NAME_ANNOTATION] == "plain run"]
    assert plain["spec"]["arguments"]["parameters"] == [{"name": "msg", "value": "from kfp 2"}]
    assert plain["status"]["phase"] == "Succeeded"


def test_kfp2_runs_a_v2_pipeline_compiled_for_argo(cluster_kfp):
    code = KFP2.format(root=str(ROOT), url=cluster_kfp.url, token=cluster_kfp.token) + '''
from tests.pipelines.api.add_pipeline import add_pipeline
run = client.create_run_from_pipeline_func(add_pipeline, arguments={"a": 5},
                                           run_name="v2 run")
done = client.wait_for_run_completion(run.run_id, timeout=60, sleep_duration=0.2)
out["state"] = done.state
out["tasks"] = sorted((t.display_name, t.state) for t in done.run_details.task_details)
print(json.dumps(out))
'''
    out = json.loads(run_kfp2(code, cluster_kfp.workdir, env=cluster_kfp.env)
                     .stdout.strip().splitlines()[-1])
    assert out["state"] == "SUCCEEDED", out
    assert ["add", "SUCCEEDED"] in out["tasks"] and ["say", "SUCCEEDED"] in out["tasks"]


def test_kfp1_waits_for_a_run_on_argo(cluster_kfp):
    code = f'''
import json
import kfp
client = kfp.Client(host={cluster_kfp.url!r}, existing_token={cluster_kfp.token!r})
result = client.create_run_from_pipeline_package({str(PACKAGES / "demo_param.yaml")!r},
                                                 arguments={{"msg": "from kfp 1.8"}})
detail = result.wait_for_run_completion(timeout=60)
workflow = json.loads(detail.pipeline_runtime.workflow_manifest)
print(json.dumps({{"status": detail.run.status,
                   "nodes": sorted(n["displayName"] for n in
                                   workflow["status"]["nodes"].values())}}))
'''
    done = run_kfp1(code, cluster_kfp.workdir, env=cluster_kfp.env, timeout=180)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == "Succeeded"
    assert {"again", "say"} <= set(out["nodes"])
