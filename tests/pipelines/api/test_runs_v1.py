"""v1beta1 runs: create from a workflow manifest, a pipeline or a version reference, answered
as ``{"run", "pipeline_runtime"}``; v1 statuses, metrics and the workflow status built from
the tasks; lists by experiment or namespace; terminate, retry, archive, delete. Runs are
rows here; real execution is in test_kfp1_runs.py and test_curl_runs.py."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import yaml

from pipelines.models import Experiment, Run
from tests.pipelines.api.conftest import upload
from tests.pipelines.api.run_samples import finished_run, install_engine, make_run

RUNS = "/apis/v1beta1/runs"


@pytest.fixture
def engine(monkeypatch, settings):
    return install_engine(monkeypatch, settings)


@pytest.fixture
def workflow(argo_package) -> str:
    """demo-param's Argo Workflow as kfp 1.8 sends it: a JSON string."""
    return json.dumps(yaml.safe_load(argo_package))


def experiment_reference(experiment) -> dict:
    return {"key": {"type": "EXPERIMENT", "id": str(experiment.pk)}, "relationship": "OWNER"}


def create(client, **body):
    return client.post(RUNS, body, format="json")


def test_it_runs_a_workflow_manifest_in_the_default_experiment(api, member, workflow):
    response = create(api(member), name="demo-run", pipeline_spec={
        "workflow_manifest": workflow, "parameters": [{"name": "msg", "value": "hi"}]})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"run", "pipeline_runtime"}
    run = body["run"]
    default = Experiment.objects.get(name="Default")
    assert run["status"] == "Pending" and run["name"] == "demo-run"
    assert run["resource_references"][0] == {**experiment_reference(default),
                                             "name": "Default"}
    assert run["pipeline_spec"]["parameters"] == [{"name": "msg", "value": "hi"}]
    assert json.loads(run["pipeline_spec"]["workflow_manifest"]) == json.loads(workflow)
    assert run["storage_state"] == "STORAGESTATE_AVAILABLE" and run["metrics"] == []
    runtime = json.loads(body["pipeline_runtime"]["workflow_manifest"])
    assert runtime["metadata"]["namespace"] == "team-a"
    assert runtime["spec"]["arguments"]["parameters"] == [{"name": "msg", "value": "hi"}]
    assert runtime["status"]["phase"] == "Pending"
    assert Run.objects.get(pk=run["id"]).parameters == {"msg": "hi"}


def test_it_takes_a_yaml_manifest_too(api, member, argo_package):
    response = create(api(member), name="yaml", pipeline_spec={
        "workflow_manifest": argo_package.decode()})
    assert response.status_code == 200
    assert response.json()["run"]["pipeline_spec"]["parameters"] == [
        {"name": "msg", "value": "hello"}]


def test_it_converts_text_parameters_to_their_declared_types(api, member, uploaded):
    response = create(api(member), name="typed", pipeline_spec={
        "pipeline_id": uploaded["pipeline_id"],
        "parameters": [{"name": "a", "value": "7"}, {"name": "ratio", "value": "0.25"}]})
    run = Run.objects.get(pk=response.json()["run"]["id"])
    assert run.parameters == {"a": 7, "msg": "hi", "ratio": 0.25}
    assert response.json()["run"]["pipeline_spec"]["parameters"] == [
        {"name": "a", "value": "7"}, {"name": "msg", "value": "hi"},
        {"name": "ratio", "value": "0.25"}]


def test_it_runs_a_pipeline_version_reference_in_a_named_experiment(api, member, uploaded,
                                                                    profile, owner):
    experiment = Experiment.create(profile, "nightly", owner)
    pipeline = api(member).get(f"/apis/v1beta1/pipelines/{uploaded['pipeline_id']}").json()
    version = pipeline["default_version"]
    response = create(api(member), name="by-version", pipeline_spec={"parameters": []},
                      resource_references=[
                          experiment_reference(experiment),
                          {"key": {"type": "PIPELINE_VERSION", "id": version["id"]},
                           "relationship": "CREATOR"}])
    run = response.json()["run"]
    assert {**experiment_reference(experiment), "name": "nightly"} in run["resource_references"]
    assert {"key": {"type": "PIPELINE_VERSION", "id": version["id"]},
            "relationship": "CREATOR", "name": version["name"]} in run["resource_references"]
    assert run["pipeline_spec"]["pipeline_id"] == uploaded["pipeline_id"]
    assert run["pipeline_spec"]["pipeline_name"] == "add-pipeline"
    assert "pipeline_manifest" in run["pipeline_spec"]  # a v2 pipeline: the IR


def test_it_files_a_run_under_a_named_namespace(api, member, workflow, other_namespace):
    other_namespace.set_contributor("member@example.com", "edit", other_namespace.owner)
    response = create(api(member), name="there", pipeline_spec={"workflow_manifest": workflow},
                      resource_references=[{"key": {"type": "NAMESPACE", "id": "team-b"},
                                            "relationship": "OWNER"}])
    assert Run.objects.get(pk=response.json()["run"]["id"]).profile == other_namespace


@pytest.fixture
def other_namespace(make_user):
    from dashboard.models import Profile

    boss = make_user("boss@example.com")
    return Profile.register("team-b", boss)


@pytest.mark.parametrize("spec, references, status, message", [
    ({"parameters": []}, [], 400, "Name the pipeline once"),
    ({"workflow_manifest": "{}", "pipeline_manifest": "{}"}, [], 400, "Name the pipeline once"),
    ({"workflow_manifest": "[1, 2"}, [], 400, "JSON syntax error at line 1, column 6"),
    ({"workflow_manifest": "{}"}, [], 400, "neither a KFP v2 pipeline nor an Argo Workflow"),
    ({"pipeline_id": "00000000-0000-4000-8000-000000000000"}, [], 404, "No pipeline"),
    ({}, [{"key": {"type": "EXPERIMENT", "id": "00000000-0000-4000-8000-000000000000"},
           "relationship": "OWNER"}], 404, "No experiment"),
])
def test_it_refuses_runs_it_cannot_start(api, member, profile, spec, references, status,
                                         message):
    response = create(api(member), name="x", pipeline_spec=spec,
                      resource_references=references)
    assert response.status_code == status and message in response.json()["message"]
    assert not Run.objects.exists()


def test_it_refuses_a_manifest_beside_a_stored_pipeline(api, member, uploaded, workflow):
    response = create(api(member), name="x", pipeline_spec={
        "pipeline_id": uploaded["pipeline_id"], "workflow_manifest": workflow})
    assert response.status_code == 400 and "not both" in response.json()["message"]


def test_it_names_a_bad_text_parameter(api, member, uploaded):
    response = create(api(member), name="x", pipeline_spec={
        "pipeline_id": uploaded["pipeline_id"], "parameters": [{"name": "a", "value": "x"}]})
    assert response.status_code == 400
    assert response.json()["details"] == [{"field": "a",
                                           "errors": ["'a' must be an integer, not 'x'."]}]


def test_it_hides_a_version_of_another_namespace(api, member, other_namespace, ir_package):
    theirs = upload(api(other_namespace.owner), ir_package, namespace="team-b").json()
    response = create(api(member), name="x", pipeline_spec={"pipeline_id":
                                                            theirs["pipeline_id"]})
    assert response.status_code == 404


# --- one run ---------------------------------------------------------------------------


@pytest.mark.parametrize("state, status", [
    ("PENDING", "Pending"), ("PAUSED", "Pending"), ("RUNNING", "Running"),
    ("SUCCEEDED", "Succeeded"), ("SKIPPED", "Skipped"), ("FAILED", "Failed"),
    ("CANCELING", "Terminating"), ("CANCELED", "Failed"),
])
def test_it_reports_v1_statuses(api, viewer, profile, owner, ir_package, state, status):
    run = make_run(profile, owner, ir_package, state=state)
    assert api(viewer).get(f"{RUNS}/{run.pk}").json()["run"]["status"] == status


def test_it_shows_metrics_and_the_workflow_status_built_from_the_tasks(
        api, viewer, profile, owner, ir_package):
    run = finished_run(profile, owner, ir_package)
    body = api(viewer).get(f"{RUNS}/{run.pk}").json()
    assert body["run"]["metrics"] == [{"name": "accuracy-score", "node_id": "for-loop-1/add.0",
                                       "number_value": 0.9, "format": "PERCENTAGE"}]
    workflow = json.loads(body["pipeline_runtime"]["workflow_manifest"])
    root = workflow["metadata"]["name"]
    assert root.startswith("add-pipeline-") and workflow["metadata"]["uid"] == str(run.pk)
    assert workflow["status"]["phase"] == "Succeeded"
    nodes = workflow["status"]["nodes"]
    assert nodes[root]["children"] == ["for-loop-1"]
    loop, add, say = nodes["for-loop-1"], nodes["for-loop-1/add.0"], nodes["for-loop-1/say.0"]
    assert loop["type"] == "TaskGroup" and loop["children"] == ["for-loop-1.0"]
    assert nodes["for-loop-1.0"]["children"] == ["for-loop-1/add.0"]
    assert add["children"] == ["for-loop-1/say.0"]  # say runs after add
    assert add["boundaryID"] == "for-loop-1.0" and add["type"] == "Pod"
    assert add["templateName"] == "comp-add" and add["phase"] == "Succeeded"
    assert add["inputs"] == {"parameters": [{"name": "a", "value": "3"},
                                            {"name": "b", "value": "2"}]}
    assert add["outputs"]["parameters"] == [{"name": "Output", "value": "5"}]
    assert add["outputs"]["artifacts"][0]["name"] == "sums"
    assert add["outputs"]["exitCode"] == "0"
    assert say["phase"] == "Succeeded"  # cached
    assert add["startedAt"].endswith("Z") and add["finishedAt"].endswith("Z")


def test_it_reports_a_failed_steps_message(api, viewer, profile, owner, ir_package):
    from tests.pipelines.run_rows import add_task

    run = make_run(profile, owner, ir_package, state="FAILED", error="add failed")
    add_task(run, "add", "FAILED", error="exit code 1", exit_code=1)
    body = api(viewer).get(f"{RUNS}/{run.pk}").json()
    assert body["run"]["error"] == "add failed"
    workflow = json.loads(body["pipeline_runtime"]["workflow_manifest"])
    assert workflow["status"]["message"] == "add failed"
    assert workflow["status"]["nodes"]["add"]["message"] == "exit code 1"
    assert workflow["status"]["nodes"]["add"]["phase"] == "Failed"


def test_a_v1_run_keeps_its_workflow_and_labels(api, member, workflow):
    body = create(api(member), name="demo", pipeline_spec={"workflow_manifest": workflow}).json()
    runtime = json.loads(body["pipeline_runtime"]["workflow_manifest"])
    submitted = json.loads(workflow)
    assert runtime["spec"]["templates"] == submitted["spec"]["templates"]
    assert runtime["metadata"]["name"].startswith("demo-param-")
    assert "generateName" not in runtime["metadata"]
    assert runtime["metadata"]["labels"]["pipeline/runid"] == body["run"]["id"]
    assert runtime["metadata"]["labels"]["pipelines.kubeflow.org/kfp_sdk_version"] == "1.8.24"


# --- lists ---------------------------------------------------------------------------------


@pytest.fixture
def listed(profile, owner, ir_package):
    other = Experiment.create(profile, "other", owner)
    finished_run(profile, owner, ir_package, name="r0")
    make_run(profile, owner, ir_package, name="r1", state="RUNNING")
    make_run(profile, owner, ir_package, name="e0", experiment=other)
    return other


def names(client, **query) -> list[str]:
    response = client.get(f"{RUNS}?{urlencode(query)}")
    assert response.status_code == 200, response.json()
    return [run["name"] for run in response.json().get("runs", [])]


def test_it_lists_by_experiment_or_namespace(api, viewer, listed):
    client = api(viewer)
    assert names(client, **{"resource_reference_key.type": "EXPERIMENT",
                            "resource_reference_key.id": str(listed.pk)}) == ["e0"]
    assert names(client, sort_by="name", **{"resource_reference_key.type": "NAMESPACE",
                                            "resource_reference_key.id": "team-a"}) == [
        "e0", "r0", "r1"]
    assert names(client, sort_by="name desc", page_size=1, page_token="",
                 **{"resource_reference_key.id": ""}) == ["r1"]


def test_it_lists_runs_with_metrics_but_without_manifests(api, viewer, listed):
    runs = api(viewer).get(f"{RUNS}?sort_by=name").json()["runs"]
    assert [r["status"] for r in runs] == ["Succeeded", "Succeeded", "Running"]
    assert runs[1]["metrics"][0]["name"] == "accuracy-score"
    assert all("workflow_manifest" not in r["pipeline_spec"] for r in runs)


@pytest.mark.parametrize("query, status", [
    ({"resource_reference_key.type": "PIPELINE", "resource_reference_key.id": "x"}, 400),
    ({"resource_reference_key.type": "JOB", "resource_reference_key.id": "x"}, 404),
    ({"resource_reference_key.type": "EXPERIMENT", "resource_reference_key.id": ""}, 400),
    ({"resource_reference_key.type": "NAMESPACE", "resource_reference_key.id": "team-a"}, 404),
])
def test_it_refuses_lists_it_cannot_scope(api, stranger, listed, query, status):
    assert api(stranger).get(f"{RUNS}?{urlencode(query)}").status_code == status


# --- actions -------------------------------------------------------------------------------


def test_it_terminates_and_retries_by_v1_paths(api, member, engine, profile, owner,
                                               ir_package):
    run = make_run(profile, owner, ir_package, state="RUNNING")
    client = api(member)
    assert client.post(f"{RUNS}/{run.pk}/terminate").json() == {}
    assert client.post(f"{RUNS}/{run.pk}/retry").status_code == 400  # still canceling
    Run.objects.filter(pk=run.pk).update(state="CANCELED")
    assert client.post(f"{RUNS}/{run.pk}/retry").json() == {}
    assert engine.calls == [("terminate", "nightly"), ("retry", "nightly")]


def test_it_archives_unarchives_and_deletes(api, member, engine, profile, owner, ir_package):
    run = make_run(profile, owner, ir_package)
    client = api(member)
    assert client.post(f"{RUNS}/{run.pk}:archive").json() == {}
    assert client.get(f"{RUNS}/{run.pk}").json()["run"]["storage_state"] == \
        "STORAGESTATE_ARCHIVED"
    assert client.post(f"{RUNS}/{run.pk}:unarchive").json() == {}
    assert client.delete(f"{RUNS}/{run.pk}").json() == {}
    assert client.get(f"{RUNS}/{run.pk}").status_code == 404


def test_it_lets_only_editors_act(api, viewer, stranger, engine, profile, owner, ir_package):
    run = make_run(profile, owner, ir_package, state="RUNNING")
    for client, status in ((api(viewer), 403), (api(stranger), 404)):
        assert client.post(f"{RUNS}/{run.pk}/terminate").status_code == status
        assert client.delete(f"{RUNS}/{run.pk}").status_code == status
    assert api(stranger).get(f"{RUNS}/{run.pk}").status_code == 404
    assert engine.calls == []
