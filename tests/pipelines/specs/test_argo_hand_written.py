"""Argo features kfp 1.8 does not write, as a hand-written Workflow has them: script
templates, withSequence, outputs.result, given input artifacts, and templates only a
cluster can run (they load and show in the graph; running them is the engine's refusal)."""

from __future__ import annotations

import copy

import pytest
import yaml

from pipelines.specs import SpecError, load
from pipelines.specs.argo import RESULT, sequence_items
from pipelines.specs.model import Container, Source
from pipelines.views.graph import graph_data

WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hand-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: n, value: "3"}]}
  templates:
  - name: main
    dag:
      tasks:
      - name: gen
        template: gen
      - name: counted
        template: echo
        withSequence: {count: 3, start: 1, format: "%02d"}
        arguments: {parameters: [{name: msg, value: "{{item}}"}]}
      - name: later
        template: echo
        withSequence: {end: "{{tasks.gen.outputs.result}}", format: "x%d"}
        arguments: {parameters: [{name: msg, value: "{{item}}"}]}
      - name: read
        template: echo
        arguments: {parameters: [{name: msg, value: "{{tasks.gen.outputs.result}}"}]}
      - name: from-loop
        template: echo
        arguments: {parameters: [{name: msg, value: "{{tasks.counted.outputs.result}}"}]}
      - name: from-dag
        template: echo
        arguments: {parameters: [{name: msg, value: "{{tasks.inner.outputs.parameters.out}}"}]}
      - name: inner
        template: inner
      - name: files
        template: files
        arguments:
          artifacts:
          - {name: given, raw: {data: hello}}
          - {name: remote, gcs: {bucket: b, key: k}}
  - name: inner
    outputs:
      parameters:
      - {name: out, valueFrom: {parameter: "{{tasks.deep.outputs.result}}"}}
    dag:
      tasks:
      - {name: deep, template: gen}
  - name: gen
    script:
      image: python:3.11
      command: [python]
      args: [-u]
      env: [{name: A, value: "1"}]
      source: print(3)
      resources: {limits: {cpu: "1"}}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.msg}}"]}
  - name: files
    inputs:
      artifacts:
      - {name: given, path: /tmp/given}
      - {name: remote, path: /tmp/remote}
      - {name: maybe, path: /tmp/maybe, optional: true, mode: 0755}
      - {name: fixed, path: /tmp/fixed, raw: {data: fixed}, archive: {none: {}}}
    container: {image: alpine, command: [ls, /tmp]}
"""


def _spec(text: str = WORKFLOW):
    return load(text.encode() if isinstance(text, str) else yaml.safe_dump(text).encode()).spec


def _input(task, name: str):
    return next(port for port in task.inputs if port.name == name)


def _group(spec, group_id: str):
    return next(group for group in spec.groups if group.id == group_id)


@pytest.fixture
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW)


def _dag_task(workflow: dict, name: str) -> dict:
    return next(t for t in workflow["spec"]["templates"][0]["dag"]["tasks"] if t["name"] == name)


def test_a_script_template_reads_as_its_container():
    gen = _spec().task("gen")
    assert gen.container == Container(image="python:3.11", command=["python"], args=["-u"],
                                      env={"A": "1"}, resources={"limits": {"cpu": "1"}})


def test_a_constant_with_sequence_is_a_loop_over_its_items():
    counted = _group(_spec(), "counted")
    assert (counted.kind, counted.loop_items, counted.loop_source) == (
        "loop", ["01", "02", "03"], None)


def test_a_with_sequence_with_placeholders_is_read_when_the_loop_starts():
    spec = _spec()
    later = _group(spec, "later")
    assert later.loop_items is None
    assert later.loop_source == Source("sequence", value={
        "end": "{{tasks.gen.outputs.result}}", "format": "x%d"})
    assert later.dependencies == ["gen"]
    assert _input(spec.task("later/later"), "msg").source == Source(
        "loop_item", parameter="msg", group="later")


@pytest.mark.parametrize(("sequence", "items"), [
    ({"count": "3"}, ["0", "1", "2"]),
    ({"count": "0"}, []),
    ({"count": "2", "start": "-1"}, ["-1", "0"]),
    ({"start": "5", "end": "3"}, ["5", "4", "3"]),
    ({"start": "2", "end": "2"}, ["2"]),
    ({"end": "2", "format": "%03d"}, ["000", "001", "002"]),
    ({"end": "11", "start": "9", "format": "0x%x"}, ["0x9", "0xa", "0xb"]),
    ({"count": "2", "format": "step-%v"}, ["step-0", "step-1"]),
])
def test_sequence_items_follow_argo(sequence, items):
    assert sequence_items(sequence, "here") == items


@pytest.mark.parametrize(("sequence", "message"), [
    ({"count": 2, "end": 3}, "withSequence needs either count or end, not both"),
    ({"start": 2}, "withSequence needs either count or end, not neither"),
    ({"count": "many"}, "withSequence count should be a whole number, not 'many'"),
    ({"count": -1}, "withSequence count should not be negative (-1)"),
    ({"count": 2, "format": "%d-%d"}, "withSequence format '%d-%d' is not a printf format"),
    ({"count": 2, "format": "plain"}, "withSequence format 'plain' is not a printf format"),
    ({"count": 20000}, "withSequence gives 20000 items, more than the 10000"),
    ({"count": "{{inputs.parameters.nothing}}"},
     "reads '{{inputs.parameters.nothing}}', which its DAG does not receive"),
])
def test_a_with_sequence_argo_would_refuse_is_refused(workflow, sequence, message):
    _dag_task(workflow, "counted")["withSequence"] = sequence
    with pytest.raises(SpecError, match="Task 'counted'") as error:
        _spec(workflow)
    assert message in str(error.value)


def test_outputs_result_is_a_task_output_of_its_own():
    spec = _spec()
    assert _input(spec.task("read"), "msg").source == Source("task_output", task="gen",
                                                             output=RESULT)
    # a loop straight over a step: its results, collected from the step
    assert _input(spec.task("from-loop"), "msg").source == Source(
        "task_output", task="counted/counted", output=RESULT)
    # a DAG's output that is a step's result
    assert _input(spec.task("from-dag"), "msg").source == Source("task_output", task="deep",
                                                                 output=RESULT)
    assert spec.task("read").dependencies == ["gen"]


def test_a_dag_has_no_result(workflow):
    _dag_task(workflow, "read")["arguments"]["parameters"][0]["value"] = \
        "{{tasks.inner.outputs.result}}"
    with pytest.raises(SpecError, match="reads the result of 'inner', which runs a DAG"):
        _spec(workflow)


def test_input_artifacts_keep_only_where_they_come_from():
    files = _spec().task("files")
    assert _input(files, "given").source == Source("constant", value={"raw": {"data": "hello"}})
    assert _input(files, "remote").source == Source("constant",
                                                    value={"gcs": {"bucket": "b", "key": "k"}})
    assert _input(files, "maybe").source is None  # optional, not given: no value
    assert _input(files, "fixed").source == Source("constant", value={"raw": {"data": "fixed"}})


CLUSTER_ONLY = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
    "metadata": {"generateName": "cluster-"},
    "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "dag": {"tasks": [
            {"name": "create-volume", "template": "create-volume"},
            {"name": "approve", "template": "approve", "dependencies": ["create-volume"]},
            {"name": "pair", "template": "pair", "dependencies": ["approve"]},
            {"name": "call", "template": "call"},
            {"name": "plug", "template": "plug"},
            {"name": "transform", "template": "transform"},
            {"name": "use", "template": "use", "arguments": {"parameters": [
                {"name": "pvc", "value":
                 "{{tasks.create-volume.outputs.parameters.create-volume-name}}"}]}}]}},
        {"name": "create-volume",
         "resource": {"action": "create", "manifest": "kind: PersistentVolumeClaim\n"},
         "outputs": {"parameters": [{"name": "create-volume-name",
                                     "valueFrom": {"jsonPath": "{.metadata.name}"}}]}},
        {"name": "approve", "suspend": {}},
        {"name": "pair", "containerSet": {"containers": [{"name": "a", "image": "alpine"}]}},
        {"name": "call", "http": {"url": "https://example.com"}},
        {"name": "plug", "plugin": {"hello": {}}},
        {"name": "transform", "data": {"source": {"artifactPaths": {"s3": {"bucket": "b"}}}}},
        {"name": "use", "inputs": {"parameters": [{"name": "pvc"}]},
         "container": {"image": "alpine", "command": ["ls", "/data"]}},
    ]},
}


def test_templates_only_a_cluster_runs_still_load_and_show_in_the_graph():
    spec = _spec(copy.deepcopy(CLUSTER_ONLY))
    assert [task.id for task in spec.tasks] == ["create-volume", "approve", "pair", "call",
                                                "plug", "transform", "use"]
    assert all(task.container is None for task in spec.tasks[:-1])
    assert _input(spec.task("use"), "pvc").source == Source(
        "task_output", task="create-volume", output="create-volume-name")
    shown = graph_data(spec)
    assert [task["id"] for task in shown["tasks"]] == [task.id for task in spec.tasks]


# -- steps templates ------------------------------------------------------------------------

STEPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: steps-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}]}
  templates:
  - name: main
    inputs: {parameters: [{name: who}]}
    steps:
    - - name: hello
        template: say
        arguments: {parameters: [{name: msg, value: "hello {{inputs.parameters.who}}"}]}
    - - name: a
        template: produce
      - name: b
        template: say
        continueOn: {failed: true}
        arguments: {parameters: [{name: msg, value: b}]}
    - []
    - - name: c
        template: two
        when: "{{steps.b.outputs.result}} == b"
        arguments:
          parameters:
          - {name: x, value: "{{steps.a.outputs.parameters.out}}"}
          - {name: y, value: "{{steps.b.outputs.result}}"}
      - name: each
        template: say
        withItems: [one, two]
        arguments: {parameters: [{name: msg, value: "{{item}}"}]}
      - name: inner
        template: inner
        arguments: {parameters: [{name: who, value: "{{steps.a.outputs.parameters.out}}"}]}
    - - name: last
        template: say
        arguments: {parameters: [{name: msg, value: "{{steps.inner.outputs.parameters.said}}"}]}
  - name: inner
    inputs: {parameters: [{name: who}]}
    outputs:
      parameters:
      - {name: said, valueFrom: {parameter: "{{tasks.deeper.outputs.parameters.said}}"}}
    dag:
      tasks:
      - name: hello
        template: say
        arguments: {parameters: [{name: msg, value: "{{inputs.parameters.who}}"}]}
      - name: deeper
        template: deeper
        dependencies: [hello]
        arguments: {parameters: [{name: who, value: "{{inputs.parameters.who}}"}]}
  - name: deeper
    inputs: {parameters: [{name: who}]}
    outputs:
      parameters:
      - {name: said, valueFrom: {parameter: "{{steps.hello.outputs.result}}"}}
    steps:
    - - name: hello
        template: say
        arguments: {parameters: [{name: msg, value: "deep {{inputs.parameters.who}}"}]}
  - name: say
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.msg}}"]}
  - name: produce
    container: {image: alpine, command: [sh, -c, "echo 7 > /tmp/out"]}
    outputs: {parameters: [{name: out, valueFrom: {path: /tmp/out}}]}
  - name: two
    inputs: {parameters: [{name: x}, {name: y}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.x}}",
                                         "{{inputs.parameters.y}}"]}
"""


@pytest.fixture
def steps_workflow() -> dict:
    return yaml.safe_load(STEPS)


def _steps(workflow: dict, template: str = "main") -> list[list[dict]]:
    return next(t for t in workflow["spec"]["templates"] if t["name"] == template)["steps"]


def test_a_steps_template_is_the_dag_its_groups_make():
    """Each step waits for every step of the group before (an empty group is no group);
    nested templates are groups, their tasks named as in nested DAGs."""
    spec = _spec(STEPS)
    assert [(task.id, task.parent, task.dependencies) for task in spec.tasks] == [
        ("hello", None, []),
        ("a", None, ["hello"]), ("b", None, ["hello"]),
        ("c", None, ["a", "b"]),
        ("each/each", "each", []),
        ("inner/hello", "inner", []),
        ("deeper/hello", "deeper", []),
        ("last", None, ["c", "each", "inner"]),
    ]
    assert [(group.id, group.kind, group.parent, group.dependencies)
            for group in spec.groups] == [
        ("each", "loop", None, ["a", "b"]),
        ("inner", "dag", None, ["a", "b"]),
        ("deeper", "dag", "inner", ["inner/hello"]),
    ]
    assert _group(spec, "each").loop_items == ["one", "two"]
    assert _input(spec.task("each/each"), "msg").source == Source(
        "loop_item", parameter="msg", group="each")


def test_steps_read_each_other_and_their_template_inputs():
    spec = _spec(STEPS)
    c = spec.task("c")
    assert c.condition == "{{steps.b.outputs.result}} == b"
    assert _input(c, "x").source == Source("task_output", task="a", output="out")
    assert _input(c, "y").source == Source("task_output", task="b", output=RESULT)
    assert _input(spec.task("hello"), "msg").source == Source(
        "expression", value="hello {{inputs.parameters.who}}")
    # a steps template's output, through the DAG around it, is the step that writes it
    assert _input(spec.task("last"), "msg").source == Source(
        "task_output", task="deeper/hello", output=RESULT)
    assert _input(_group(spec, "inner"), "who").source == Source(
        "task_output", task="a", output="out")
    assert _input(_group(spec, "deeper"), "who").source == Source(
        "task_output", task="a", output="out")


def test_continue_on_failed_is_kept_for_steps_and_dag_tasks(steps_workflow):
    spec = _spec(STEPS)
    assert [task.id for task in spec.tasks if task.continue_on_failure] == ["b"]
    _steps(steps_workflow)[3][1]["continueOn"] = {"failed": True}  # a looping step
    dag = next(t for t in steps_workflow["spec"]["templates"] if t["name"] == "inner")
    dag["dag"]["tasks"][1]["continueOn"] = {"failed": "true", "error": True}
    spec = _spec(steps_workflow)
    assert [task.id for task in spec.tasks if task.continue_on_failure] == ["b", "each/each"]
    assert [group.id for group in spec.groups if group.continue_on_failure] == [
        "each", "deeper"]


def test_the_graph_of_a_steps_template_shows_its_groups_in_order():
    shown = graph_data(_spec(STEPS))
    tasks = {task["id"]: task for task in shown["tasks"]}
    assert tasks["c"]["after"] == ["a", "b"]
    assert tasks["last"]["after"] == ["c", "each", "inner"]
    assert ("Runs if", "b.result == b") in tasks["c"]["facts"]


def test_a_steps_entrypoint_without_inputs_and_a_steps_template_called_from_a_dag():
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": "w"}, "spec": {"entrypoint": "top", "templates": [
                    {"name": "top", "dag": {"tasks": [
                        {"name": "one", "template": "pair"},
                        {"name": "two", "template": "pair", "dependencies": ["one"]}]}},
                    {"name": "pair", "steps": [[{"name": "x", "template": "echo"}],
                                               [{"name": "y", "template": "echo"}]]},
                    {"name": "echo", "container": {"image": "alpine", "command": ["true"]}}]}}
    spec = _spec(workflow)
    assert [(task.id, task.dependencies) for task in spec.tasks] == [
        ("one/x", []), ("one/y", ["one/x"]), ("two/x", []), ("two/y", ["two/x"])]
    assert [(group.id, group.dependencies) for group in spec.groups] == [
        ("one", []), ("two", ["one"])]


@pytest.mark.parametrize(("change", "message"), [
    (lambda w: _steps(w)[1][1]["arguments"]["parameters"][0].update(
        value="{{steps.a.outputs.parameters.out}}"),
     "Step 'b' reads an output of 'a', which is not a step of an earlier group of the steps "
     "template 'main'"),
    (lambda w: _steps(w)[0][0]["arguments"]["parameters"][0].update(
        value="{{steps.last.outputs.result}}"),
     "Step 'hello' reads an output of 'last', which is not a step of an earlier group"),
    (lambda w: _steps(w)[0][0]["arguments"]["parameters"][0].update(
        value="{{steps.nobody.outputs.result}}"),
     "Step 'hello' reads an output of 'nobody', which is not a step"),
    (lambda w: _steps(w)[3][0].update(when="{{tasks.b.outputs.result}} == b"),
     "Step 'c' reads '{{tasks.b…}}'; in a steps template that is '{{steps.b…}}'"),
    (lambda w: next(t for t in w["spec"]["templates"] if t["name"] == "inner")["dag"][
        "tasks"][1].update(when="{{steps.hello.outputs.result}}"),
     "Task 'deeper' reads '{{steps.hello…}}'; in a DAG that is '{{tasks.hello…}}'"),
    (lambda w: _steps(w)[1].append({"name": "a", "template": "say"}),
     "Task name 'a' is used twice in the pipeline's DAG"),
    (lambda w: _steps(w)[1].append({"template": "say"}),
     "The steps template 'main': a step of steps[1] has no name"),
    (lambda w: _steps(w).append({"name": "flat", "template": "say"}),
     "The steps template 'main': steps[5] should be a list of mappings"),
    (lambda w: _steps(w, "deeper")[0].append(
        {"name": "again", "template": "inner", "arguments": {"parameters": [
            {"name": "who", "value": "x"}]}}),
     "Template 'inner' contains itself (task 'again')"),
    (lambda w: _steps(w)[1][0].update(continueOn="yes"),
     "'continueOn' should be a mapping, not a string"),
])
def test_steps_argo_would_refuse_are_refused(steps_workflow, change, message):
    change(steps_workflow)
    with pytest.raises(SpecError) as error:
        _spec(steps_workflow)
    assert message in str(error.value)
