"""make_workflow and validate_workflow on real KFP v1 packages (compiled by kfp 1.8 in its
own virtualenv): the run filled in, everything else left exactly as the compiler wrote it,
kfdash's cleanup (ttlStrategy, podGC) only where the package has none, and every manifest
checked by hera's Argo models plus the strict unknown-key check."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipelines.engines.argo_manifests import Cleanup, make_workflow, validate_workflow
from tests.kfp_sdks import KFP1_COMPONENTS, run_kfp1

RUN_ID = "3f2a9c1e-0b7d-4e2a-9c1e-0b7d4e2a9c1e"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

KFP1_SCRIPT = KFP1_COMPONENTS + r'''


@dsl.pipeline(name="train-model")
def parameterized(dataset: str, epochs: int = 3, rate: float = 0.1):
    sh("train", "echo $0 $1 $2", arguments=[dataset, epochs, rate])


@dsl.pipeline(name="outputs")
def outputs(a: int = 3):
    first = sum_sq_op(a, 4)
    sh("show", 'echo "$0" > /tmp/outputs/shown/data; echo report > /tmp/report',
       arguments=[first.output], file_outputs={"shown": "/tmp/outputs/shown/data"},
       output_artifact_paths={"report": "/tmp/report"})


@dsl.pipeline(name="control")
def control(limit: int = 10):
    total = sum_sq_op(limit, 1)
    with dsl.Condition(total.output > 10):
        sh("big", "echo big")
    with dsl.ParallelFor([1, 2, 3], parallelism=2) as item:
        sh("each", "echo each $0", arguments=[item])
    generated = gen_op(2)
    with dsl.ParallelFor(generated.output) as value:
        sh("each-generated", "echo got $0", arguments=[value])


@dsl.pipeline(name="volume")
def volume(size: str = "1Gi"):
    claim = dsl.VolumeOp(name="make-volume", resource_name="data", size=size,
                         modes=dsl.VOLUME_MODE_RWO)
    sh("use", "echo hi > /data/x", pvolumes={"/data": claim.volume})


@dsl.pipeline(name="scored")
def scored():
    sh("score", """echo '{"metrics": [{"name": "f1", "numberValue": 0.9}]}' > /m.json""",
       output_artifact_paths={"mlpipeline-metrics": "/m.json"})


@dsl.pipeline(name="short-lived")
def short_lived():
    sh("once", "echo once")
    dsl.get_pipeline_conf().set_ttl_seconds_after_finished(60)


for pipeline in (parameterized, outputs, control, volume, scored, short_lived):
    compiler.Compiler().compile(pipeline, pipeline._component_human_name + ".yaml")
'''


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, dict]:
    """The documents of KFP1_SCRIPT's pipelines, as a run holds them."""
    out = tmp_path_factory.mktemp("argo-manifests")
    run_kfp1(KFP1_SCRIPT, out)
    return {path.stem: yaml.safe_load(path.read_text()) for path in Path(out).glob("*.yaml")}


def run_workflow(document: dict, **overrides) -> dict:
    arguments = {"run_id": RUN_ID, "run_name": "Nightly run", "namespace": "team-a",
                 "parameters": {}, **overrides}
    return make_workflow(document, **arguments)


def expected_workflow(document: dict, name: str, parameters: list[dict]) -> dict:
    """The package as compiled, with only what a run fills in changed."""
    expected = copy.deepcopy(document)
    expected["metadata"] = {
        "name": name,
        "namespace": "team-a",
        "labels": {"pipelines.kubeflow.org/kfp_sdk_version":
                   document["metadata"]["labels"]["pipelines.kubeflow.org/kfp_sdk_version"],
                   "kfdash.io/run-id": RUN_ID, "kfdash.io/managed-by": "kfdash"},
        "annotations": {**document["metadata"]["annotations"],
                        "kfdash.io/run-name": "Nightly run"},
    }
    expected["spec"]["arguments"] = {"parameters": parameters}
    expected["spec"]["serviceAccountName"] = "default-editor"
    for template in expected["spec"]["templates"]:  # the metrics come back as a parameter
        for artifact in (template.get("outputs") or {}).get("artifacts") or []:
            if artifact["name"] == "mlpipeline-metrics":
                template["outputs"].setdefault("parameters", []).append({
                    "name": "kfdash-mlpipeline-metrics",
                    "valueFrom": {"path": artifact["path"], "default": ""}})
    return expected


CASES = {
    "train-model": ({"dataset": "s3://bucket/iris.csv", "rate": "0.5"},
                    [{"name": "dataset", "value": "s3://bucket/iris.csv"},
                     {"name": "epochs", "value": "3"}, {"name": "rate", "value": "0.5"}]),
    "outputs": ({"a": "7"}, [{"name": "a", "value": "7"}]),
    "control": ({}, [{"name": "limit", "value": "10"}]),
    "volume": ({"size": "5Gi"}, [{"name": "size", "value": "5Gi"}]),
    "scored": ({}, []),
}


def test_a_steps_v1_metrics_come_back_as_an_output_parameter(packages):
    workflow = run_workflow(packages["scored"])
    (score,) = [t for t in workflow["spec"]["templates"] if t["name"] == "score"]
    assert {"name": "kfdash-mlpipeline-metrics",
            "valueFrom": {"path": "/m.json", "default": ""}} in score["outputs"]["parameters"]


@pytest.mark.parametrize("package", sorted(CASES))
def test_it_fills_in_the_run_and_leaves_the_rest_as_compiled(packages, package):
    document = packages[package]
    untouched = copy.deepcopy(document)
    given, parameters = CASES[package]
    workflow = run_workflow(document, parameters=given)
    assert workflow == expected_workflow(document, f"{package}-3f2a9c1e0b", parameters)
    assert document == untouched  # the run's stored document is not changed
    validate_workflow(workflow)


def test_the_packages_have_what_the_cases_are_about(packages):
    """The compiler wrote file outputs, a condition, loops and a resource template; if a
    kfp upgrade stopped writing them the comparisons above would prove less."""
    assert packages["train-model"]["metadata"]["generateName"] == "train-model-"
    assert packages["train-model"]["spec"]["serviceAccountName"] == "pipeline-runner"
    templates = {t["name"]: t for t in packages["outputs"]["spec"]["templates"]}
    assert templates["show"]["outputs"]["artifacts"] == [
        {"name": "report", "path": "/tmp/report"},
        {"name": "show-shown", "path": "/tmp/outputs/shown/data"}]
    tasks = [task for t in packages["control"]["spec"]["templates"]
             for task in t.get("dag", {}).get("tasks", [])]
    assert any("when" in task for task in tasks)
    assert any("withItems" in task for task in tasks)
    assert any("withParam" in task for task in tasks)
    templates = {t["name"]: t for t in packages["volume"]["spec"]["templates"]}
    assert templates["make-volume"]["resource"]["action"] == "create"


def test_it_refuses_parameters_the_package_does_not_declare(packages):
    with pytest.raises(ValueError, match=r"no parameter 'epoch', 'lr' \(its parameters: "
                                         r"'dataset', 'epochs', 'rate'\)"):
        run_workflow(packages["train-model"],
                     parameters={"dataset": "x", "epoch": "3", "lr": "1"})


def test_it_refuses_a_required_parameter_left_without_a_value(packages):
    with pytest.raises(ValueError, match="No value for the parameter 'dataset'"):
        run_workflow(packages["train-model"], parameters={"epochs": "5"})


def test_it_refuses_values_that_are_not_text(packages):
    with pytest.raises(ValueError, match="not text: 'epochs'"):
        run_workflow(packages["train-model"], parameters={"dataset": "x", "epochs": 5})


def test_it_refuses_a_value_outside_a_parameters_enum(packages):
    document = copy.deepcopy(packages["volume"])
    document["spec"]["arguments"]["parameters"][0]["enum"] = ["1Gi", "5Gi"]
    assert run_workflow(document, parameters={"size": "5Gi"})["spec"]["arguments"] == {
        "parameters": [{"name": "size", "value": "5Gi", "enum": ["1Gi", "5Gi"]}]}
    with pytest.raises(ValueError, match=r"'size \(one of 1Gi, 5Gi\)'"):
        run_workflow(document, parameters={"size": "9Gi"})


def test_a_given_value_replaces_a_value_from(packages):
    document = copy.deepcopy(packages["volume"])
    document["spec"]["arguments"]["parameters"] = [
        {"name": "size", "valueFrom": {"configMapKeyRef": {"name": "sizes", "key": "big"}}}]
    assert run_workflow(document)["spec"]["arguments"] == document["spec"]["arguments"]
    assert run_workflow(document, parameters={"size": "2Gi"})["spec"]["arguments"] == {
        "parameters": [{"name": "size", "value": "2Gi"}]}


def test_its_name_is_a_dns_label_of_at_most_63_characters_and_deterministic(packages):
    document = copy.deepcopy(packages["control"])
    document["metadata"]["generateName"] = "My_Pipeline.With " + "a-very-long-name-" * 5
    name = run_workflow(document)["metadata"]["name"]
    assert name == "my-pipeline-with-a-very-long-name-a-very-long-name-a-3f2a9c1e0b"
    assert len(name) <= 63 and DNS_LABEL.match(name)
    assert run_workflow(document)["metadata"]["name"] == name
    other = run_workflow(document, run_id="9b1d0c2e-aaaa-4bbb-8ccc-dddddddddddd")
    assert other["metadata"]["name"].endswith("-9b1d0c2eaa")


def test_without_generate_name_it_builds_on_the_packages_own_name(packages):
    document = copy.deepcopy(packages["control"])
    del document["metadata"]["generateName"]
    document["metadata"]["name"] = "hand-written"
    assert run_workflow(document)["metadata"]["name"] == "hand-written-3f2a9c1e0b"
    del document["metadata"]["name"]
    assert run_workflow(document)["metadata"]["name"] == "run-3f2a9c1e0b"


def test_the_service_account_given_wins_over_the_packages(packages):
    document = copy.deepcopy(packages["control"])
    document["spec"]["serviceAccountName"] = "cluster-admin-ish"
    workflow = run_workflow(document, service_account="team-runner")
    assert workflow["spec"]["serviceAccountName"] == "team-runner"
    del document["spec"]["serviceAccountName"]
    assert run_workflow(document)["spec"]["serviceAccountName"] == "default-editor"


def test_extra_labels_are_merged_but_cannot_replace_kfdashs(packages):
    workflow = run_workflow(packages["control"], labels={
        "team": "vision", "kfdash.io/run-id": "forged", "pipelines.kubeflow.org/kfp_sdk_version":
        "0"})
    assert workflow["metadata"]["labels"] == {
        "pipelines.kubeflow.org/kfp_sdk_version": "0", "team": "vision",
        "kfdash.io/run-id": RUN_ID, "kfdash.io/managed-by": "kfdash"}
    validate_workflow(workflow)


def test_it_refuses_labels_kubernetes_would_refuse(packages):
    with pytest.raises(ValueError, match=r"team='a team'.*key 'Bad_/x'"):
        run_workflow(packages["control"], labels={"team": "a team", "Bad_/x": "1"})


CLEANUP = Cleanup(ttl_seconds=86400, pod_gc="OnPodCompletion", pod_gc_delay="5m")
CLEANUP_POD_GC = {"strategy": "OnPodCompletion", "deleteDelayDuration": "5m"}


def test_argo_is_told_to_delete_the_finished_workflow_and_its_pods(packages):
    document = packages["control"]
    workflow = run_workflow(document, parameters={"limit": "3"}, cleanup=CLEANUP)
    expected = expected_workflow(document, "control-3f2a9c1e0b",
                                 [{"name": "limit", "value": "3"}])
    expected["spec"]["ttlStrategy"] = {"secondsAfterCompletion": 86400}
    expected["spec"]["podGC"] = CLEANUP_POD_GC
    assert workflow == expected
    validate_workflow(workflow)  # hera knows both, the unknown-key check too


def test_a_packages_own_ttl_and_pod_gc_are_kept(packages):
    """kfp 1.8's set_ttl_seconds_after_finished writes ttlStrategy; a hand-edited package
    may carry its own podGC (here without a delay: the author's choice)."""
    document = copy.deepcopy(packages["short-lived"])
    assert document["spec"]["ttlStrategy"] == {"secondsAfterCompletion": 60}
    workflow = run_workflow(document, cleanup=CLEANUP)
    assert workflow["spec"]["ttlStrategy"] == {"secondsAfterCompletion": 60}
    assert workflow["spec"]["podGC"] == CLEANUP_POD_GC
    document["spec"]["podGC"] = {"strategy": "OnWorkflowSuccess"}
    del document["spec"]["ttlStrategy"]
    workflow = run_workflow(document, cleanup=CLEANUP)
    assert workflow["spec"]["ttlStrategy"] == {"secondsAfterCompletion": 86400}
    assert workflow["spec"]["podGC"] == {"strategy": "OnWorkflowSuccess"}
    validate_workflow(workflow)


def test_zero_and_empty_settings_leave_workflows_and_pods_alone(packages):
    document = packages["control"]
    kept = run_workflow(document)  # the default: nothing deleted
    assert "ttlStrategy" not in kept["spec"] and "podGC" not in kept["spec"]
    assert run_workflow(document, cleanup=Cleanup(ttl_seconds=0, pod_gc="",
                                                  pod_gc_delay="5m")) == kept
    workflow = run_workflow(document, cleanup=Cleanup(ttl_seconds=0, pod_gc="OnPodSuccess"))
    assert workflow == {**kept, "spec": {**kept["spec"],
                                          "podGC": {"strategy": "OnPodSuccess"}}}


def test_outputs_go_to_kfdashs_repository_under_the_runs_namespace(packages):
    """Where v2 runs' outputs go too, so kfdash can read them back; a location the package
    names itself, and Argo's archive choice, are kept."""
    from pipelines.engines.argo_compile import S3Repository

    repository = S3Repository(endpoint="minio:9000", bucket="mlpipeline", insecure=True,
                              access_key_secret=("s3-keys", "a"),
                              secret_key_secret=("s3-keys", "s"), key_prefix="runs")
    document = copy.deepcopy(packages["outputs"])
    show = next(t for t in document["spec"]["templates"] if t["name"] == "show")
    own = {"name": "own", "path": "/tmp/own", "s3": {"key": "somewhere/own.tgz"}}
    plain = {"name": "plain", "path": "/tmp/plain", "archive": {"none": {}}}
    show["outputs"]["artifacts"] += [own, plain]
    workflow = run_workflow(document, repository=repository)
    placed = {a["name"]: a for t in workflow["spec"]["templates"]
              for a in (t.get("outputs") or {}).get("artifacts") or []}
    where = "runs/{{workflow.namespace}}/{{workflow.name}}/{{pod.name}}"
    assert placed["report"] == {"name": "report", "path": "/tmp/report", "s3": {
        "endpoint": "minio:9000", "bucket": "mlpipeline", "insecure": True,
        "accessKeySecret": {"name": "s3-keys", "key": "a"},
        "secretKeySecret": {"name": "s3-keys", "key": "s"},
        "key": f"{where}/report.tgz"}}
    assert placed["show-shown"]["s3"]["key"] == f"{where}/show-shown.tgz"
    assert placed["plain"]["s3"]["key"] == f"{where}/plain"
    assert placed["own"] == own
    validate_workflow(workflow)


def test_it_refuses_a_document_that_is_not_a_workflow():
    with pytest.raises(ValueError, match="not an Argo Workflow"):
        run_workflow({"kind": "PipelineSpec"})


@pytest.fixture
def control_workflow(packages) -> dict:
    return run_workflow(packages["control"])


def task_path(workflow: dict, key: str) -> tuple[int, int]:
    """The indexes of the first template and DAG task holding ``key``."""
    for i, template in enumerate(workflow["spec"]["templates"]):
        for j, task in enumerate(template.get("dag", {}).get("tasks", [])):
            if key in task:
                return i, j
    raise AssertionError(f"no task has {key}")


def test_validate_names_every_misspelt_key_however_deep(control_workflow, packages):
    workflow = control_workflow
    i, j = task_path(workflow, "withItems")
    workflow["spec"]["templates"][i]["dag"]["tasks"][j]["withItem"] = \
        workflow["spec"]["templates"][i]["dag"]["tasks"][j].pop("withItems")
    k = next(n for n, t in enumerate(workflow["spec"]["templates"])
             if t.get("outputs", {}).get("parameters"))
    workflow["spec"]["templates"][k]["container"]["imagee"] = "alpine"
    workflow["spec"]["templates"][k]["outputs"]["parameters"][0]["valueFrom"]["pth"] = "/x"
    workflow["metadata"]["lables"] = {}
    volume = run_workflow(packages["volume"])
    volume["spec"]["templates"][1]["volumes"][0]["persistentVolumeClaim"]["claimname"] = "x"
    with pytest.raises(ValueError) as refused:
        validate_workflow(workflow)
    prefix, _, paths = str(refused.value).partition(": ")
    assert prefix == "Unknown keys in the Workflow"
    assert set(paths.split(", ")) == {  # listed in the document's order
        "metadata.lables", f"spec.templates[{k}].container.imagee",
        f"spec.templates[{k}].outputs.parameters[0].valueFrom.pth",
        f"spec.templates[{i}].dag.tasks[{j}].withItem"}
    with pytest.raises(ValueError, match=r"^Unknown keys in the Workflow: "
                       r"spec\.templates\[1\]\.volumes\[0\]\.persistentVolumeClaim\.claimname$"):
        validate_workflow(volume)


def test_validate_walks_steps_templates_and_lists_of_lists(control_workflow):
    """A hand-written ``steps`` template: groups of steps (hera's ParallelSteps root model)."""
    control_workflow["spec"]["templates"].append({"name": "in-steps", "steps": [
        [{"name": "first", "template": "in-steps-leaf"}],
        [{"name": "second", "template": "in-steps-leaf", "argumentss": {}}]]})
    control_workflow["spec"]["templates"].append(
        {"name": "in-steps-leaf", "container": {"image": "alpine", "args": ["x"]}})
    at = len(control_workflow["spec"]["templates"]) - 2
    with pytest.raises(ValueError, match=rf"spec\.templates\[{at}\]\.steps\[1\]\[0\]\.argumentss$"):
        validate_workflow(control_workflow)
    del control_workflow["spec"]["templates"][at]["steps"][1][0]["argumentss"]
    validate_workflow(control_workflow)


def test_validate_refuses_python_names_hera_would_accept(control_workflow):
    """hera's models also take their Python field names (populate_by_name); the API
    server takes only the JSON names."""
    control_workflow["spec"]["service_account_name"] = control_workflow["spec"].pop(
        "serviceAccountName")
    with pytest.raises(ValueError, match=r"spec\.service_account_name$"):
        validate_workflow(control_workflow)


def test_validate_refuses_wrong_types_through_hera(control_workflow):
    control_workflow["spec"]["arguments"]["parameters"][0]["value"] = 10
    with pytest.raises(ValidationError, match=r"arguments\.parameters\.0\.value"):
        validate_workflow(control_workflow)
    del control_workflow["spec"]["arguments"]["parameters"][0]["value"]
    control_workflow["spec"]["templates"][0]["name"] = ["not", "a", "name"]
    with pytest.raises(ValueError, match=r"templates\.0\.name"):
        validate_workflow(control_workflow)


def test_validate_refuses_what_is_not_an_argo_workflow(control_workflow):
    control_workflow["apiVersion"] = "argoproj.io/v1"
    with pytest.raises(ValueError, match=r"apiVersion must be argoproj\.io/v1alpha1"):
        validate_workflow(control_workflow)
    with pytest.raises(ValueError, match="mapping"):
        validate_workflow([control_workflow])
