"""What load refuses, and that the message says what and where."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from pipelines.specs import SpecError, load

DEPLOYMENT = b"""apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
"""


def refused(data: bytes | str | dict, *messages: str) -> str:
    if isinstance(data, dict):
        data = yaml.safe_dump(data)
    if isinstance(data, str):
        data = data.encode()
    with pytest.raises(SpecError) as error:
        load(data)
    for message in messages:
        assert message in str(error.value)
    return str(error.value)


@pytest.fixture(scope="module")
def ir(kfp2_packages) -> dict:
    return yaml.safe_load((kfp2_packages / "dag.yaml").read_text())


@pytest.fixture
def dag(ir) -> dict:
    """A fresh copy of the compiled IR to break."""
    return copy.deepcopy(ir)


@pytest.fixture(scope="module")
def workflow(kfp1_packages) -> dict:
    return yaml.safe_load((kfp1_packages / "control_v1.yaml").read_text())


@pytest.fixture
def argo(workflow) -> dict:
    return copy.deepcopy(workflow)


def _template(workflow: dict, name: str) -> dict:
    return next(t for t in workflow["spec"]["templates"] if t["name"] == name)


def _dag_task(workflow: dict, template: str, name: str) -> dict:
    return next(t for t in _template(workflow, template)["dag"]["tasks"] if t["name"] == name)


# -- text ---------------------------------------------------------------------------------

def test_empty_and_blank_files():
    refused(b"", "The file is empty")
    refused(b"  \n\t\n", "The file is empty")
    refused(b"# only a comment\n", "holds no YAML document")


def test_invalid_utf8():
    refused(b"name: caf\xe9\n", "not UTF-8 text (invalid byte at offset 9)")


def test_yaml_syntax_errors_name_line_and_column():
    refused("pipelineInfo:\n  name: x\n root: [1, 2\n", "YAML error at line 3, column 2")
    refused('{"pipelineInfo": {"name": "x"},, }', "JSON syntax error at line 1, column 32")


def test_duplicate_keys_are_refused():
    refused("root: 1\nroot: 2\n", "line 2, column 1: duplicate key 'root'")
    refused('{"a": 1, "a": 2}', "key 'a' twice")


def test_values_json_cannot_hold_are_refused():
    refused("a: !!binary aGVsbG8=\n", "a binary value cannot be stored as JSON")
    refused("a: !!set {x, y}\n", "a set value cannot be stored as JSON")


def test_three_documents():
    refused("a: 1\n---\nb: 2\n---\nc: 3\n", "more than 2 documents (the third starts at line 4)")


def test_billion_laughs():
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
        previous = name
    refused(text, "aliases (*name) expand to more than 10000 values (line 5)")


def test_too_many_aliases():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    refused(text, "more than 100 aliases")


def test_deep_nesting():
    refused(b"[" * 100_000, "The JSON is nested more than 100 levels deep")
    refused(b'{"a":' * 150 + b"1" + b"}" * 150, "nested more than 100 levels deep")
    deep_yaml = "".join(f"{'  ' * depth}k:\n" for depth in range(150)) + "  " * 150 + "v\n"
    refused(deep_yaml, "The YAML is nested more than 100 levels deep (line 101)")


@pytest.mark.parametrize("text, found", [
    (DEPLOYMENT, "it is a Kubernetes Deployment (apps/v1)"),
    (b"apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\n", "an Argo CronWorkflow"),
    (b"- 1\n- 2\n", "it is a list"),
    (b"just words\n", "it is a string"),
    (b"42\n", "it is a number"),
    (b"name: add\nimplementation: {container: {image: alpine}}\n", "a component, not a pipeline"),
    (b"pipelineInfo: {name: x}\nschemaVersion: 2.1.0\n", "without its 'root' DAG"),
    (b"colour: blue\nsize: 3\n", "a mapping with the keys colour, size"),
])
def test_neither_kfp_nor_argo(text, found):
    refused(text, "neither a KFP v2 pipeline nor an Argo Workflow", found)


# -- KFP v2 IR ----------------------------------------------------------------------------

def test_unsupported_schema_versions(dag):
    dag["schemaVersion"] = "3.0.0"
    refused(dag, "Unsupported KFP schemaVersion '3.0.0': kfdash reads 2.0.0 and 2.1.0")
    del dag["schemaVersion"]
    refused(dag, "has no schemaVersion")


def test_ir_2_0_0_is_accepted(dag):
    dag["schemaVersion"] = "2.0.0"
    assert load(json.dumps(dag).encode()).spec.schema_version == "2.0.0"


def test_dangling_dependency(dag):
    dag["root"]["dag"]["tasks"]["train"]["dependentTasks"].append("nowhere")
    refused(dag, "Task 'train' depends on 'nowhere', which is not a task in its DAG")


def test_cycle_names_its_tasks(dag):
    dag["root"]["dag"]["tasks"]["make-data"]["dependentTasks"] = ["evaluate"]
    refused(dag, "The dependencies form a cycle: make-data → evaluate → make-data")


def test_task_depending_on_itself(dag):
    dag["root"]["dag"]["tasks"]["echo"]["dependentTasks"] = ["echo"]
    refused(dag, "cycle: echo → echo")


def test_missing_component(dag):
    del dag["components"]["comp-train"]
    refused(dag, "Task 'train' uses the component 'comp-train', which the pipeline does not define")


def test_missing_executor(dag):
    del dag["deploymentSpec"]["executors"]["exec-train"]
    refused(dag, "Task 'train': its component 'comp-train' runs the executor 'exec-train', "
                 "which deploymentSpec does not define")


def test_reading_an_output_that_does_not_exist(dag):
    wired = dag["root"]["dag"]["tasks"]["train"]["inputs"]["artifacts"]["data"]
    wired["taskOutputArtifact"]["outputArtifactKey"] = "nothing"
    refused(dag, "Task 'train', input 'data' reads the output 'nothing' of 'make-data'")
    wired["taskOutputArtifact"]["producerTask"] = "ghost"
    refused(dag, "reads an output of 'ghost', which is not in its DAG")


def test_reading_an_input_the_dag_does_not_have(dag):
    dag["root"]["dag"]["tasks"]["echo"]["inputs"]["parameters"]["msg"] = {
        "componentInputParameter": "nope"}
    refused(dag, "Task 'echo', input 'msg' reads 'nope', which its DAG does not receive")


def test_duplicate_task_names_in_one_dag(kfp2_packages):
    text = (kfp2_packages / "dag.yaml").read_text()
    duplicated = text.replace("      make-data:\n", "      train:\n", 1)
    refused(duplicated, "duplicate key 'train'")


def test_a_component_that_contains_itself(dag):
    dag["components"]["comp-loop"] = {"dag": {"tasks": {"again": {
        "componentRef": {"name": "comp-loop"}, "taskInfo": {"name": "again"}}}}}
    dag["root"]["dag"]["tasks"]["loop"] = {"componentRef": {"name": "comp-loop"}}
    refused(dag, "Component 'comp-loop' contains itself (task 'again')")


def test_a_pipeline_that_expands_past_the_task_limit(dag):
    # five levels of ten uses each: 100 000 tasks once expanded, from a few lines of IR
    dag["components"]["comp-level-0"] = {"executorLabel": "exec-echo"}
    for level in range(1, 6):
        dag["components"][f"comp-level-{level}"] = {"dag": {"tasks": {
            f"t{i}": {"componentRef": {"name": f"comp-level-{level - 1}"}} for i in range(10)}}}
    dag["root"]["dag"]["tasks"] = {"top": {"componentRef": {"name": "comp-level-5"}}}
    refused(dag, "expands to more than 10000 tasks")


def test_wrong_shapes_are_refused_not_crashed(dag):
    dag["root"]["dag"]["tasks"]["train"]["dependentTasks"] = "make-data"
    refused(dag, "Task 'train': 'dependentTasks' should be a list, not a string")
    dag["root"]["dag"]["tasks"] = ["a list"]
    refused(dag, "root: 'tasks' should be a mapping, not a list")


# -- Argo Workflows -----------------------------------------------------------------------

def test_missing_entrypoint(argo):
    argo["spec"]["entrypoint"] = "nowhere"
    refused(argo, "spec.entrypoint names the template 'nowhere', which spec.templates does "
                  "not define")
    del argo["spec"]["entrypoint"]
    refused(argo, "The Workflow has no spec.entrypoint")


def test_missing_template(argo):
    argo["spec"]["templates"] = [t for t in argo["spec"]["templates"] if t["name"] != "big"]
    refused(argo, "Task 'big' uses the template 'big', which spec.templates does not define")


def test_argo_dangling_dependency(argo):
    _dag_task(argo, "control-v1", "gen")["dependencies"] = ["ghost"]
    refused(argo, "Task 'gen' depends on 'ghost', which is not a task in its DAG")


def test_argo_cycle(argo):
    _dag_task(argo, "control-v1", "sum-sq")["dependencies"] = ["condition-1"]
    refused(argo, "The dependencies form a cycle: sum-sq → condition-1 → sum-sq")


def test_argo_duplicate_task_names(argo):
    tasks = _template(argo, "control-v1")["dag"]["tasks"]
    tasks.append(dict(tasks[-1]))
    refused(argo, f"Task name '{tasks[-1]['name']}' is used twice in the pipeline's DAG")


def test_argo_recursive_template(argo):
    _template(argo, "condition-1")["dag"]["tasks"].append(
        {"name": "again", "template": "condition-1"})
    refused(argo, "Template 'condition-1' contains itself (task 'again')")


def test_argo_a_step_reading_a_step_of_its_own_group(argo):
    """Argo starts the steps of a group together: one cannot wait for another's output."""
    reads = {"parameters": [{"name": "limit", "value": "{{steps.s.outputs.parameters.x}}"}]}
    _template(argo, "condition-1")["steps"] = [[{"name": "s", "template": "big"},
                                                {"name": "t", "template": "sum-sq",
                                                 "arguments": reads}]]
    del _template(argo, "condition-1")["dag"]
    refused(argo, "Step 't' reads an output of 's', which is not a step of an earlier group "
                  "of the steps template 'condition-1'")


def test_argo_reading_an_unknown_output(argo):
    task = _dag_task(argo, "control-v1", "for-loop-4")
    task["withParam"] = "{{tasks.gen.outputs.parameters.nothing}}"
    refused(argo, "Task 'for-loop-4' reads the output 'nothing' of 'gen'")
