"""read_status: an Argo Workflow's status read back as a run's task rows.

The statuses come from ``tests/pipelines/argo_sim.py`` playing Argo's controller on the
Workflows kfdash submits for real kfp 1.8 packages; the rows must be the ones the local
engine makes when it runs the same package (same node ids, kinds, parents, iterations and
states), so that pages and the API cannot tell the engines apart."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from pipelines.choices import RunState, TaskState
from pipelines.engines.argo_manifests import make_workflow
from pipelines.engines.argo_status import pod_name, read_status, run_state
from pipelines.specs import load
from tests.pipelines.argo_sim import ArgoSim
from tests.pipelines.engine.conftest import tasks_of, wait_for

RUN_ID = "0f5e4d3c-2b1a-4c9d-8e7f-6a5b4c3d2e1f"


def package(folder: Path, name: str) -> bytes:
    return (folder / f"{name}.yaml").read_bytes()


def kfp1_outputs(name: str, inputs: dict) -> dict:
    """What the kfp 1.8 test components would print, computed from their inputs."""
    if name.startswith("sum-sq"):  # sum_sq_op(limit, 1): the constant is in the command
        numbers = [int(value) for value in inputs.values()]
        return {"sum-sq-Output": str(sum(n * n for n in numbers) + (len(numbers) == 1))}
    if name == "gen":
        return {"gen-Output": json.dumps(list(range(int(inputs.get("count", 2)))))}
    if name.startswith("each-generated"):
        return {"each-generated-v": f"got {inputs.get('gen-Output-loop-item', '')}"}
    return {}


def submitted(data: bytes, **parameters) -> tuple:
    loaded = load(data)
    workflow = make_workflow(loaded.document, run_id=RUN_ID, run_name="r",
                             namespace="team-a", parameters=parameters)
    return loaded.spec, workflow


def rows_of(state) -> dict:
    return {n.node_id: (n.spec_id, n.kind, n.state, n.parent, n.iteration)
            for n in state.nodes.values()}


def local_rows(run) -> dict:
    tasks = tasks_of(run)
    by_pk = {t.pk: t.node_id for t in tasks.values()}
    return {t.node_id: (t.spec_id, t.kind, t.state, by_pk.get(t.parent_id), t.iteration)
            for t in tasks.values()}


@pytest.mark.django_db(transaction=True)
def test_a_v1_run_with_conditions_and_loops_reads_as_the_local_engine_runs_it(
        kfp1_packages, start_run):
    data = package(kfp1_packages, "control_v1")
    local = wait_for(start_run(data, limit="10"))
    assert local.state == "SUCCEEDED", local.error

    spec, workflow = submitted(data, limit="10")
    sim = ArgoSim(workflow, outputs=kfp1_outputs)
    seen_states = []
    while (now := sim.step()) is not None:
        state = read_status(spec, now)  # every intermediate status reads without error
        seen_states.append(state.state)
    final = read_status(spec, sim.workflow)
    assert final.state == RunState.SUCCEEDED and set(seen_states) >= {"RUNNING", "SUCCEEDED"}
    argo, expected = rows_of(final), local_rows(local)
    # Argo makes no nodes inside a branch whose condition is false; the local engine
    # keeps those tasks as SKIPPED rows. Everything else is the same.
    assert argo == {k: v for k, v in expected.items()
                    if not (v[2] == TaskState.SKIPPED and v[1] == "task")}
    assert argo["condition-2"][2] == TaskState.SKIPPED and "small" not in argo
    assert len(argo) > 15  # conditions, three loops with their iterations and steps


@pytest.mark.django_db(transaction=True)
def test_retries_an_exit_handler_and_a_failure_read_as_the_local_engine_runs_them(
        kfp1_packages, start_run):
    data = package(kfp1_packages, "exit_v1")
    counter = Path(django_settings.DATA_DIR) / f"counter-{threading.get_ident()}"
    counter.unlink(missing_ok=True)
    local = wait_for(start_run(data, counter=str(counter)))
    assert local.state == "FAILED"

    spec, workflow = submitted(data, counter=str(counter))
    sim = ArgoSim(workflow, fail=lambda name, attempt: name == "work" or (
        name == "flaky" and attempt == 0))
    final = read_status(spec, sim.run_all())
    assert final.state == RunState.FAILED
    assert rows_of(final) == local_rows(local)
    flaky = final.nodes["flaky"]
    assert flaky.attempts == 2 and flaky.pod.startswith(workflow["metadata"]["name"])
    assert final.nodes["work"].exit_code == 1
    assert final.nodes["goodbye"].state == TaskState.SUCCEEDED


def test_a_terminated_workflow_reads_as_canceled(kfp1_packages):
    spec, workflow = submitted(package(kfp1_packages, "control_v1"), limit="10")
    sim = ArgoSim(workflow, outputs=kfp1_outputs)
    for _ in range(6):
        sim.step()
    workflow = sim.workflow
    workflow["spec"]["shutdown"] = "Terminate"
    assert read_status(spec, workflow).state == RunState.CANCELING
    final = read_status(spec, sim.terminate())
    assert final.state == RunState.CANCELED
    assert TaskState.CANCELED in {n.state for n in final.nodes.values()}
    assert not {TaskState.RUNNING, TaskState.PENDING} & {n.state for n in final.nodes.values()}


def test_outputs_and_artifacts_read_back_with_their_kfp_names(kfp1_packages):
    spec, workflow = submitted(package(kfp1_packages, "metrics_v1"))
    final = read_status(spec, ArgoSim(workflow).run_all(), bucket="mlpipeline")
    report = final.nodes["report"]
    assert set(report.artifacts) == {"mlpipeline-metrics", "mlpipeline-ui-metadata",
                                     "report-text"}
    pod = report.pod
    assert report.artifacts["report-text"] == (
        f"s3://mlpipeline/{workflow['metadata']['name']}/{pod}/report-text.tgz")
    # An output parameter comes back under its name (kfp 1.8's sum_sq_op's Output).
    spec, workflow = submitted(package(kfp1_packages, "control_v1"), limit="2")
    final = read_status(spec, ArgoSim(workflow, outputs=kfp1_outputs).run_all())
    assert final.nodes["sum-sq"].parameters == {"sum-sq-Output": "5"}
    assert final.nodes["condition-1"].state == TaskState.SKIPPED  # 5 > 10 is false
    assert final.nodes["small"].state == TaskState.SUCCEEDED


def test_run_state_follows_the_workflow_phase():
    assert run_state({"status": {}}) == (RunState.PENDING, "")
    assert run_state({"status": {"phase": "Running"}}) == (RunState.RUNNING, "")
    assert run_state({"status": {"phase": "Failed", "message": "boom"}}) == (
        RunState.FAILED, "boom")
    assert run_state({"status": {"phase": "Error", "message": "x"}}) == (RunState.FAILED, "x")
    stopping = {"spec": {"shutdown": "Terminate"}, "status": {"phase": "Running"}}
    assert run_state(stopping) == (RunState.CANCELING, "")
    stopping["status"]["phase"] = "Failed"
    assert run_state(stopping) == (RunState.CANCELED, "")


def test_pod_names_follow_argos_two_namings():
    node = {"id": "wf-123", "name": "foobar", "templateName": "train"}
    # Argo 3.4+'s default (POD_NAMES=v2): workflow-template-fnv32a(node name); FNV-1a's
    # published test vector: "foobar" → 0xbf9cf968.
    assert pod_name({"metadata": {"name": "wf"}}, node) == f"wf-train-{0xbf9cf968}"
    v1 = {"metadata": {"name": "wf", "annotations": {
        "workflows.argoproj.io/pod-name-format": "v1"}}}
    assert pod_name(v1, node) == "wf-123"
    long = {"metadata": {"name": "w" * 250}}
    assert len(pod_name(long, node)) <= 253


# --- KFP v2: compiled for Argo, played, read back ------------------------------------------

def kfp2_outputs(name: str, inputs: dict) -> dict:
    """What engine_pipelines.py's components return, computed from their inputs (Argo
    names them as kfp does; a second use of a component is ``add-2``)."""
    component = re.sub(r"-\d+$", "", name)
    number = lambda key, default=0: int(inputs.get(key, default))  # noqa: E731
    if component == "add":
        return {"Output": str(number("a") + number("b", 1))}
    if component == "number":
        return {"Output": str(number("value", 5))}
    if component in ("echo",):
        return {"Output": inputs.get("msg", "")}
    if component == "listing":
        return {"Output": json.dumps(list(range(4, 4 + number("count"))))}
    if component == "total":
        return {"Output": str(sum(int(v) for v in json.loads(inputs["values"])))}
    if component == "flaky":
        return {"Output": "2"}
    return {}


def compiled(data: bytes, **parameters) -> tuple:
    from django.test import override_settings

    from dashboard.models import Profile
    from pipelines.engines.argo import workflow_for
    from pipelines.models import Run

    loaded = load(data)
    run = Run(pk=RUN_ID, name="r", format=loaded.format, document=loaded.document,
              graph=loaded.spec.to_dict(), parameters={**{
                  p.name: p.default for p in loaded.spec.parameters if p.has_default},
                  **parameters})
    run.profile = Profile(name="team-a")
    with override_settings(KFDASH_PLATFORM="kubernetes"):
        return loaded.spec, workflow_for(run)


V2_CASES = {
    "branches": ({"value": 5}, None),
    "loops": ({"values": [1, 2, 3], "marker": "m"}, None),
    "exit_handling": ({"marker": "m"}, lambda name, attempt: name == "boom"),
    "retrying": ({"counter": "a", "other_counter": "b"},
                 lambda name, attempt: name == "flaky-2" or (name == "flaky" and attempt == 0)),
    "one_of": ({"value": 5}, None),
}


@pytest.mark.parametrize("name", sorted(V2_CASES))
@pytest.mark.django_db(transaction=True)
def test_a_v2_run_compiled_for_argo_reads_as_the_local_engine_runs_it(
        name, kfp2_package, start_run, tmp_path):
    parameters, fail = V2_CASES[name]
    local_parameters = {key: str(tmp_path / value) if key in ("marker", "counter",
                                                             "other_counter") else value
                        for key, value in parameters.items()}
    local = wait_for(start_run(kfp2_package(name), **local_parameters))
    spec, workflow = compiled(kfp2_package(name), **parameters)
    final = read_status(spec, ArgoSim(workflow, outputs=kfp2_outputs, fail=fail).run_all())
    assert final.state == local.state, (final.error, local.error)
    expected = {k: v for k, v in local_rows(local).items()
                if not (v[2] == TaskState.SKIPPED and v[1] == "task")}
    assert rows_of(final) == expected


def test_an_importer_succeeds_with_its_artifact_once_the_workflow_runs(kfp2_package):
    spec, workflow = compiled(kfp2_package("artifacts_pipeline"), source="s3://bucket/data.csv")
    assert json.loads(workflow["metadata"]["annotations"]["kfdash.io/importers"]) == [
        "importer"]
    final = read_status(spec, ArgoSim(workflow).run_all())
    assert final.state == RunState.SUCCEEDED
    assert "importer" not in final.nodes  # no node: argo_sync adds its row
