"""v2beta1 runs: create from a pipeline spec or a stored version, get with task details,
list, terminate, retry, archive, unarchive, delete; the errors of bad input. Runs are
rows here; real execution is in test_kfp2_runs.py."""

from __future__ import annotations

import copy
import json
from urllib.parse import urlencode

import pytest
import yaml

from dashboard.models import Profile
from pipelines.models import Experiment, Run
from tests.pipelines.api.conftest import upload
from tests.pipelines.api.run_samples import finished_run, install_engine, make_run

RUNS = "/apis/v2beta1/runs"


@pytest.fixture
def ir(ir_package) -> dict:
    return yaml.safe_load(ir_package)


@pytest.fixture
def engine(monkeypatch, settings):
    return install_engine(monkeypatch, settings)


@pytest.fixture
def other_namespace(make_user):
    """team-b, owned by someone else; the member of team-a may view it."""
    boss = make_user("boss@example.com")
    team_b = Profile.register("team-b", boss)
    team_b.set_contributor("member@example.com", "view", boss)
    return team_b


def create(client, **body):
    return client.post(RUNS, body, format="json")


def test_it_starts_a_run_from_a_pipeline_spec_in_the_default_experiment(api, member, ir):
    response = create(api(member), display_name="first", pipeline_spec=ir,
                      runtime_config={"parameters": {"a": 40}, "pipeline_root": "/tmp/root"},
                      service_account="robot")
    assert response.status_code == 200, response.json()
    body = response.json()
    run = Run.objects.get(pk=body["run_id"])
    assert run.experiment.name == "Default" and run.profile.name == "team-a"
    assert run.parameters == {"a": 40, "msg": "hi", "ratio": 0.5}
    assert (run.pipeline_root, run.service_account, run.caching) == ("/tmp/root", "robot", None)
    assert body["state"] == "PENDING" and body["display_name"] == "first"
    assert body["experiment_id"] == str(run.experiment_id)
    assert body["pipeline_spec"] == ir and body["pipeline_version_reference"] is None
    assert body["runtime_config"] == {"parameters": {"a": 40, "msg": "hi", "ratio": 0.5},
                                      "pipeline_root": "/tmp/root"}
    assert body["run_details"] == {"task_details": []}
    assert body["created_at"].endswith("Z") and body["finished_at"] is None
    assert [h["state"] for h in body["state_history"]] == ["PENDING"]


def test_it_keeps_a_platform_spec_sent_nested_with_the_pipeline(api, member, ir):
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}}
    nested = {"pipeline_spec": ir, "platform_spec": platform}
    body = create(api(member), display_name="nested", pipeline_spec=nested).json()
    assert Run.objects.get(pk=body["run_id"]).platform_spec == platform
    assert api(member).get(f"{RUNS}/{body['run_id']}").json()["pipeline_spec"] == nested


def test_it_runs_a_stored_version_in_a_named_experiment(api, member, uploaded, profile, owner):
    experiment = Experiment.create(profile, "nightly", owner)
    versions = api(member).get(f"/apis/v2beta1/pipelines/{uploaded['pipeline_id']}/versions")
    version_id = versions.json()["pipeline_versions"][0]["pipeline_version_id"]
    reference = {"pipeline_id": uploaded["pipeline_id"], "pipeline_version_id": version_id}
    body = create(api(member), display_name="by-version", experiment_id=str(experiment.pk),
                  pipeline_version_reference=reference,
                  runtime_config={"parameters": {"msg": "bye"}}).json()
    assert body["pipeline_version_reference"] == reference
    assert body["pipeline_version_id"] == version_id and body["pipeline_spec"] is None
    assert body["experiment_id"] == str(experiment.pk)
    assert Run.objects.get(pk=body["run_id"]).parameters["msg"] == "bye"


def test_it_runs_the_default_version_when_only_the_pipeline_is_named(api, member, uploaded):
    body = create(api(member), display_name="latest",
                  pipeline_version_reference={"pipeline_id": uploaded["pipeline_id"]}).json()
    run = Run.objects.get(pk=body["run_id"])
    assert run.pipeline_version.name == "add-pipeline"


def test_it_runs_a_shared_pipeline_in_the_callers_namespace(api, member, cluster_admin,
                                                            ir_package, profile):
    shared = upload(api(cluster_admin), ir_package, namespace="kubeflow",
                    name="shared-add").json()
    body = create(api(member), display_name="shared",
                  pipeline_version_reference={"pipeline_id": shared["pipeline_id"]}).json()
    assert Run.objects.get(pk=body["run_id"]).profile == profile


def required_a(ir: dict) -> dict:
    """add-pipeline with ``a`` required (no default)."""
    changed = copy.deepcopy(ir)
    declared = changed["root"]["inputDefinitions"]["parameters"]["a"]
    del declared["defaultValue"], declared["isOptional"]
    return changed


@pytest.mark.parametrize("parameters, field, message", [
    ({"zz": 1, "a": 1}, "zz", "The pipeline has no parameter 'zz' (its parameters: a, msg, "
                              "ratio)."),
    ({"a": "three"}, "a", "'a' must be an integer, not 'three'."),
    ({"a": 2.5}, "a", "'a' must be an integer, not 2.5."),
    ({"a": 1, "msg": 7}, "msg", "'msg' must be a string, not 7."),
    ({}, "a", "The parameter 'a' needs a value."),
])
def test_it_refuses_bad_parameters_with_400_naming_each(api, member, ir, parameters, field,
                                                        message):
    response = create(api(member), display_name="bad", pipeline_spec=required_a(ir),
                      runtime_config={"parameters": parameters})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3 and f"{field}: {message}" in body["message"]
    assert {"field": field, "errors": [message]} in body["details"]
    assert not Run.objects.exists()


@pytest.mark.parametrize("body, message", [
    ({"display_name": "x"}, "either pipeline_spec or pipeline_version_reference"),
    ({"display_name": "x", "pipeline_spec": {"a": 1},
      "pipeline_version_reference": {"pipeline_id": "p"}}, "either pipeline_spec or"),
    ({"display_name": "x", "pipeline_spec": {"kind": "Pod", "apiVersion": "v1"}},
     "neither a KFP v2 pipeline nor an Argo Workflow"),
    ({"display_name": "", "pipeline_spec": {"a": 1}}, "display_name"),
    ({"display_name": "x", "pipeline_spec": {"a": 1}, "runtime_config": {"parameters": []}},
     "runtime_config"),
])
def test_it_refuses_bodies_without_one_good_pipeline(api, member, body, message):
    response = api(member).post(RUNS, body, format="json")
    assert response.status_code == 400 and message in response.json()["message"]


def test_it_refuses_a_body_over_the_size_limit_before_reading_it(api, member, ir, settings):
    settings.KFDASH_MAX_PIPELINE_BYTES = 1024
    ir["padding"] = "x" * 100_000
    response = create(api(member), display_name="huge", pipeline_spec=ir)
    assert response.status_code == 413 and response.json()["code"] == 8


def test_it_refuses_a_version_of_another_namespace_with_404(api, member, other_namespace,
                                                              ir_package, profile, owner):
    theirs = upload(api(other_namespace.owner), ir_package, namespace="team-b",
                    name="theirs").json()
    # The member may view team-b, but a run in team-a cannot use team-b's pipeline.
    response = create(api(member), display_name="x",
                      experiment_id=str(Experiment.default_for(profile, owner).pk),
                      pipeline_version_reference={"pipeline_id": theirs["pipeline_id"]})
    assert response.status_code == 404
    assert "in the namespace team-a" in response.json()["message"]
    assert not Run.objects.exists()


def test_it_hides_experiments_and_versions_from_strangers(api, stranger, other_namespace, ir,
                                                          uploaded):
    Profile.register("stranger-ns", stranger)
    hidden = Experiment.default_for(other_namespace, other_namespace.owner)
    response = create(api(stranger), display_name="x", pipeline_spec=ir,
                      experiment_id=str(hidden.pk))
    assert response.status_code == 404
    response = create(api(stranger), display_name="x",
                      pipeline_version_reference={"pipeline_id": uploaded["pipeline_id"]})
    assert response.status_code == 404
    assert not Run.objects.exists()


def test_it_refuses_an_archived_experiment_with_400(api, member, ir, profile, owner):
    experiment = Experiment.create(profile, "old", owner)
    experiment.archive(owner)
    response = create(api(member), display_name="x", pipeline_spec=ir,
                      experiment_id=str(experiment.pk))
    assert response.status_code == 400
    assert "is archived: restore it" in response.json()["message"]


def test_it_lets_viewers_read_but_not_start(api, viewer, ir, profile, owner, ir_package):
    run = make_run(profile, owner, ir_package)
    assert create(api(viewer), display_name="x", pipeline_spec=ir,
                  experiment_id=str(run.experiment_id)).status_code == 403
    assert api(viewer).get(f"{RUNS}/{run.pk}").status_code == 200


def test_it_shows_a_run_with_its_tasks_and_artifacts(api, viewer, profile, owner, ir_package):
    run = finished_run(profile, owner, ir_package)
    body = api(viewer).get(f"{RUNS}/{run.pk}").json()
    assert body["state"] == "SUCCEEDED" and body["finished_at"].endswith("Z")
    tasks = {t["pod_name"]: t for t in body["run_details"]["task_details"]}
    assert set(tasks) == {"for-loop-1", "for-loop-1.0", "for-loop-1/add.0", "for-loop-1/say.0"}
    loop, iteration = tasks["for-loop-1"], tasks["for-loop-1.0"]
    add, say = tasks["for-loop-1/add.0"], tasks["for-loop-1/say.0"]
    assert loop["child_tasks"] == [{"task_id": iteration["task_id"],
                                    "pod_name": "for-loop-1.0"}]
    assert [c["pod_name"] for c in iteration["child_tasks"]] == ["for-loop-1/add.0",
                                                                "for-loop-1/say.0"]
    assert add["parent_task_id"] == iteration["task_id"] and loop["parent_task_id"] is None
    dataset = str(run.artifacts.get(name="sums").pk)
    assert add["outputs"] == {"sums": {"artifact_ids": [dataset]}}
    assert say["inputs"] == {"sums": {"artifact_ids": [dataset]}}
    assert say["state"] == "SUCCEEDED"  # cached: v2beta1 has no CACHED state
    assert add["start_time"].endswith("Z") and add["end_time"].endswith("Z")
    assert add["run_id"] == str(run.pk) and add["display_name"] == "add"


def test_it_reports_errors_as_rpc_statuses(api, viewer, profile, owner, ir_package):
    from tests.pipelines.run_rows import add_task

    run = make_run(profile, owner, ir_package, state="FAILED", error="add failed: exit 1")
    add_task(run, "add", "FAILED", error="exit code 1", exit_code=1)
    body = api(viewer).get(f"{RUNS}/{run.pk}").json()
    assert body["error"] == {"code": 2, "message": "add failed: exit 1", "details": []}
    assert body["state_history"][-1]["error"]["message"] == "add failed: exit 1"
    assert body["run_details"]["task_details"][0]["error"]["message"] == "exit code 1"


def test_it_never_sends_empty_timestamps(api, viewer, profile, owner, ir_package):
    make_run(profile, owner, ir_package, state="PENDING")

    def timestamps(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from timestamps(v, k)
        elif isinstance(value, list):
            for v in value:
                yield from timestamps(v, key)
        elif key.endswith(("_at", "_time")):
            yield value

    body = api(viewer).get(RUNS).json()
    found = list(timestamps(body))
    assert found and all(v is None or v.endswith("Z") for v in found)


# --- lists --------------------------------------------------------------------------------


@pytest.fixture
def many(profile, owner, ir_package):
    """r0…r4 in Default (r3 failed, r4 archived) and e0, e1 in ``other``."""
    other = Experiment.create(profile, "other", owner)
    runs = [make_run(profile, owner, ir_package, name=f"r{i}",
                     state="FAILED" if i == 3 else "SUCCEEDED",
                     storage_state="ARCHIVED" if i == 4 else "AVAILABLE") for i in range(5)]
    runs += [make_run(profile, owner, ir_package, name=f"e{i}", experiment=other)
             for i in range(2)]
    return runs


def names(client, **query) -> list[str]:
    response = client.get(f"{RUNS}?{urlencode(query)}")
    assert response.status_code == 200, response.json()
    return [run["display_name"] for run in response.json().get("runs", [])]


def where(key, value, op="EQUALS") -> str:
    return json.dumps({"predicates": [{"key": key, "operation": op, "string_value": value}]})


def test_it_lists_a_namespace_or_an_experiment(api, viewer, many):
    client = api(viewer)
    assert names(client, sort_by="display_name", namespace="", page_token="") == [
        "e0", "e1", "r0", "r1", "r2", "r3", "r4"]
    assert names(client, namespace="team-a", sort_by="display_name desc", page_size=2) == [
        "r4", "r3"]
    other = str(many[-1].experiment_id)
    assert names(client, experiment_id=other, sort_by="display_name") == ["e0", "e1"]


@pytest.mark.parametrize("filter_, expected", [
    (where("state", "FAILED"), ["r3"]),
    (where("state", "failed"), ["r3"]),
    (where("storage_state", "ARCHIVED"), ["r4"]),
    (where("display_name", "e", "IS_SUBSTRING"), ["e0", "e1"]),
])
def test_it_filters_runs(api, viewer, many, filter_, expected):
    assert names(api(viewer), filter=filter_, sort_by="display_name") == expected


def test_it_pages_runs_by_token(api, viewer, many):
    client, seen, token = api(viewer), [], ""
    while True:
        body = client.get(f"{RUNS}?{urlencode({'page_size': 3, 'page_token': token})}").json()
        seen += [run["run_id"] for run in body["runs"]]
        assert body["total_size"] == 7
        token = body["next_page_token"]
        if not token:
            break
    assert seen == [str(run.pk) for run in sorted(many, key=lambda r: (r.created_at, r.pk))]


def test_it_lists_runs_without_their_pipeline_or_tasks(api, viewer, profile, owner,
                                                       ir_package):
    finished_run(profile, owner, ir_package)
    [run] = api(viewer).get(RUNS).json()["runs"]
    assert "pipeline_spec" not in run and "run_details" not in run
    assert run["runtime_config"]["parameters"] == {"a": 3, "msg": "hi", "ratio": 0.5}


def test_it_hides_other_namespaces_from_lists(api, stranger, many):
    assert api(stranger).get(f"{RUNS}?namespace=team-a").status_code == 404
    other = str(many[-1].experiment_id)
    assert api(stranger).get(f"{RUNS}?experiment_id={other}").status_code == 404
    assert names(api(stranger)) == []  # no namespace of their own: nothing


# --- actions -------------------------------------------------------------------------------


def test_it_terminates_a_running_run(api, member, engine, profile, owner, ir_package):
    run = make_run(profile, owner, ir_package, state="RUNNING")
    response = api(member).post(f"{RUNS}/{run.pk}:terminate")
    assert response.status_code == 200 and response.json() == {}
    assert engine.calls == [("terminate", "nightly")]
    run.refresh_from_db()
    assert run.state == "CANCELING"


@pytest.mark.parametrize("state, verb, message", [
    ("SUCCEEDED", "terminate", "The run nightly has already ended (succeeded)."),
    ("CANCELED", "terminate", "The run nightly has already ended (canceled)."),
    ("RUNNING", "retry", "Only a failed or canceled run can be retried; nightly is running."),
    ("SUCCEEDED", "retry", "Only a failed or canceled run can be retried; nightly is "
                           "succeeded."),
])
def test_it_refuses_what_the_runs_state_does_not_allow_with_400(
        api, member, engine, profile, owner, ir_package, state, verb, message):
    run = make_run(profile, owner, ir_package, state=state)
    response = api(member).post(f"{RUNS}/{run.pk}:{verb}")
    assert response.status_code == 400 and response.json()["message"] == message
    assert engine.calls == []


def test_it_retries_a_failed_run(api, member, engine, profile, owner, ir_package):
    run = make_run(profile, owner, ir_package, state="FAILED")
    assert api(member).post(f"{RUNS}/{run.pk}:retry").json() == {}
    assert engine.calls == [("retry", "nightly")]


def test_it_archives_and_unarchives(api, member, profile, owner, ir_package):
    run = make_run(profile, owner, ir_package)
    client = api(member)
    assert client.post(f"{RUNS}/{run.pk}:archive").json() == {}
    assert client.get(f"{RUNS}/{run.pk}").json()["storage_state"] == "ARCHIVED"
    assert client.post(f"{RUNS}/{run.pk}:unarchive").json() == {}
    assert client.get(f"{RUNS}/{run.pk}").json()["storage_state"] == "AVAILABLE"


def test_it_deletes_a_run(api, member, engine, profile, owner, ir_package):
    run = make_run(profile, owner, ir_package)
    assert api(member).delete(f"{RUNS}/{run.pk}").json() == {}
    assert engine.calls == [("forget", "nightly")]
    assert api(member).get(f"{RUNS}/{run.pk}").status_code == 404


@pytest.mark.parametrize("method, path", [
    ("post", ":terminate"), ("post", ":retry"), ("post", ":archive"), ("post", ":unarchive"),
    ("delete", ""),
])
def test_it_lets_only_editors_act(api, viewer, stranger, engine, profile, owner, ir_package,
                                  method, path):
    run = make_run(profile, owner, ir_package, state="RUNNING")
    assert getattr(api(viewer), method)(f"{RUNS}/{run.pk}{path}").status_code == 403
    assert getattr(api(stranger), method)(f"{RUNS}/{run.pk}{path}").status_code == 404
    assert engine.calls == []


def test_it_answers_404_for_unknown_runs(api, viewer, profile):
    for run_id in ("00000000-0000-4000-8000-000000000000", "not-an-id"):
        response = api(viewer).get(f"{RUNS}/{run_id}")
        assert response.status_code == 404 and response.json()["code"] == 5
