"""Argo Workflows from the real kfp 1.8 compiler (and dsl-compile), normalized."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.choices import SpecFormat
from pipelines.specs import PipelineSpec, load
from pipelines.specs.model import Source


def _load(directory: Path, name: str):
    return load((directory / name).read_bytes())


def _input(task, name: str):
    return next(port for port in task.inputs if port.name == name)


def _group(spec: PipelineSpec, group_id: str):
    return next(group for group in spec.groups if group.id == group_id)


@pytest.fixture(scope="module")
def control(kfp1_packages):
    return _load(kfp1_packages, "control_v1.yaml").spec


@pytest.mark.parametrize("package", ["demo.tar.gz", "demo-0.tar.gz"])
def test_compiled_and_dsl_compiled_archives_load_the_same(kfp1_packages, package):
    loaded = _load(kfp1_packages, package)
    spec = loaded.spec
    assert (loaded.format, loaded.filename) == (SpecFormat.ARGO, "pipeline.yaml")
    assert loaded.document["kind"] == "Workflow"
    assert loaded.source.startswith("apiVersion: argoproj.io/v1alpha1")
    assert (spec.name, spec.description) == ("demo", "Two steps, one after the other.")
    assert (spec.schema_version, spec.sdk_version) == ("argoproj.io/v1alpha1", "1.8.24")
    assert [(t.id, t.dependencies, t.parent) for t in spec.tasks] == [
        ("step1", [], None), ("step2", ["step1"], None)]
    step1 = spec.task("step1")
    assert (step1.container.image, step1.container.command) == ("alpine", ["echo", "one"])
    assert step1.caching  # the enable_caching label kfp 1.8 puts on every template


def test_pipeline_parameters_come_with_their_annotated_types(kfp1_packages):
    spec = _load(kfp1_packages, "demo_param.yaml").spec
    [param] = spec.parameters
    assert (param.name, param.type, param.default, param.has_default, param.declared_type) == \
        ("msg", "STRING", "hello", True, "String")
    say = spec.task("say")
    assert _input(say, "msg").source == Source("pipeline_parameter", parameter="msg")
    assert say.container.args == ["{{inputs.parameters.msg}}"]


def test_func_to_container_op_outputs_and_their_consumer(kfp1_packages):
    spec = _load(kfp1_packages, "sum_sq.tar.gz").spec
    assert {p.name: (p.default, p.declared_type) for p in spec.parameters} == {
        "a": ("3", "Integer"), "b": ("4", "Integer")}
    first, second = spec.task("sum-sq"), spec.task("sum-sq-2")
    assert [(p.name, p.kind, p.path) for p in first.outputs] == [
        ("sum-sq-Output", "parameter", "/tmp/outputs/Output/data"),
        ("sum-sq-Output", "artifact", "/tmp/outputs/Output/data")]
    assert _input(first, "a").source == Source("pipeline_parameter", parameter="a")
    assert second.dependencies == ["sum-sq"]
    assert _input(second, "sum-sq-Output").source == Source(
        "task_output", task="sum-sq", output="sum-sq-Output")
    assert first.container.command[:2] == ["sh", "-ec"]


def test_ui_metadata_and_metrics_artifacts_retries_resources_and_staleness(kfp1_packages):
    spec = _load(kfp1_packages, "metrics_v1.yaml").spec
    report, lightweight = spec.task("report"), spec.task("lightweight")
    assert [(p.name, p.kind, p.path) for p in report.outputs] == [
        ("mlpipeline-ui-metadata", "artifact", "/mlpipeline-ui-metadata.json"),
        ("mlpipeline-metrics", "artifact", "/mlpipeline-metrics.json")]
    assert [(p.name, p.path) for p in lightweight.outputs] == [
        ("mlpipeline-ui-metadata", "/tmp/outputs/mlpipeline_ui_metadata/data"),
        ("mlpipeline-metrics", "/tmp/outputs/mlpipeline_metrics/data")]
    assert (report.retries, report.retry_policy) == (2, {"limit": 2})
    assert report.container.resources == {"limits": {"cpu": "1", "memory": "1G"}}
    assert report.container.env == {"MODE": "fast"}
    assert (report.caching, lightweight.caching) == (False, True)  # max_cache_staleness P0D


def test_condition_is_a_group_that_waits_for_what_it_tests(control):
    group = _group(control, "condition-1")
    assert (group.kind, group.dependencies) == ("condition", ["sum-sq"])
    assert group.condition == "{{tasks.sum-sq.outputs.parameters.sum-sq-Output}} > 10"
    assert control.task("big").parent == "condition-1"
    assert _input(control.task("sum-sq"), "limit").source == Source(
        "pipeline_parameter", parameter="limit")


def test_parallel_for_over_items_with_parallelism(control):
    group = _group(control, "for-loop-3")
    assert (group.kind, group.loop_items, group.parallelism) == ("loop", [1, 2, 3], 2)
    each = control.task("each")
    assert each.parent == "for-loop-3"
    assert _input(each, "loop-item-param-2").source == Source(
        "loop_item", parameter="loop-item-param-2", group="for-loop-3")
    assert group.loop_item_name == "loop-item-param-2"


def test_parallel_for_over_a_task_output_is_with_param(control):
    group = _group(control, "for-loop-4")
    assert group.dependencies == ["gen"]
    assert group.loop_parameter == "{{tasks.gen.outputs.parameters.gen-Output}}"
    assert group.loop_source == Source("task_output", task="gen", output="gen-Output")
    source = _input(control.task("each-generated"), "gen-Output-loop-item").source
    assert (source.kind, source.group) == ("loop_item", "for-loop-4")


def test_parallel_for_over_dicts_selects_a_field(control):
    group = _group(control, "for-loop-6")
    assert group.loop_items == [{"a": 1, "b": 2}]
    source = _input(control.task("each-pair"), "loop-item-param-5-subvar-a").source
    assert (source.kind, source.group, source.selector) == ("loop_item", "for-loop-6", "a")


def test_exit_handler_runs_the_on_exit_template_after_everything(kfp1_packages):
    spec = _load(kfp1_packages, "exit_v1.yaml").spec
    group = _group(spec, "exit-handler-1")
    assert group.kind == "exit_handler"
    assert spec.task("work").parent == "exit-handler-1"
    goodbye = spec.task("goodbye")
    assert (goodbye.exit_handler, goodbye.parent, goodbye.dependencies) == \
        (True, None, ["exit-handler-1"])


def test_the_normalized_spec_round_trips_through_json(kfp1_packages):
    for name in ("sum_sq.tar.gz", "metrics_v1.yaml", "control_v1.yaml", "exit_v1.yaml"):
        spec = _load(kfp1_packages, name).spec
        assert PipelineSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


HAND_WRITTEN = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: by-hand
  labels: {pipelines.kubeflow.org/enable_caching: "true"}
spec:
  entrypoint: main
  onExit: report
  arguments:
    parameters: [{name: who}]
  templates:
  - name: main
    inputs: {parameters: [{name: who}]}
    dag:
      tasks:
      - {name: report, template: echo, arguments: {parameters: [{name: msg, value: hi}]}}
      - name: fan
        template: echo
        withItems: [a, b]
        arguments: {parameters: [{name: msg, value: "{{item}}"}]}
      - name: inner
        template: inner
        depends: "report && (fan.Succeeded || fan.Failed)"
        arguments: {parameters: [{name: who, value: "{{inputs.parameters.who}}"}]}
      - name: last
        template: echo
        arguments:
          parameters:
          - name: msg
            value: "{{tasks.inner.outputs.parameters.said}} to {{inputs.parameters.who}}"
      - name: direct
        template: echo
        arguments:
          parameters: [{name: msg, value: "{{tasks.inner.outputs.parameters.said}}"}]
  - name: inner
    inputs: {parameters: [{name: who}]}
    outputs:
      parameters:
      - {name: said, valueFrom: {parameter: "{{tasks.speak.outputs.parameters.said}}"}}
    dag:
      tasks:
      - name: speak
        template: echo
        arguments: {parameters: [{name: msg, value: "{{inputs.parameters.who}}"}]}
  - name: echo
    metadata:
      annotations: {pipelines.kubeflow.org/task_display_name: Echo}
    inputs: {parameters: [{name: msg}]}
    outputs:
      parameters:
      - {name: said, valueFrom: {path: /tmp/said}}
    container:
      image: alpine
      command: [echo, "{{inputs.parameters.msg}}"]
      env: [{name: A, value: "1"}, {name: SECRET, valueFrom: {secretKeyRef: {name: s, key: k}}}]
  - name: report
    container: {image: alpine, command: [echo, done]}
"""


def test_a_hand_written_workflow():
    spec = load(HAND_WRITTEN.encode()).spec
    assert (spec.name, spec.parameters[0].has_default) == ("by-hand", False)
    # the DAG has a task named "report" too, so the onExit one gets another id
    exit_task = spec.task("onExit")
    assert (exit_task.component, exit_task.exit_handler) == ("report", True)
    assert exit_task.dependencies == ["report", "fan", "inner", "last", "direct"]
    # a loop straight over a step becomes a loop group around it
    fan = _group(spec, "fan")
    assert (fan.kind, fan.loop_items, fan.loop_item_name) == ("loop", ["a", "b"], "msg")
    step = spec.task("fan/fan")
    assert (step.parent, step.dependencies, step.name) == ("fan", [], "Echo")
    assert _input(step, "msg").source == Source("loop_item", parameter="msg", group="fan")
    inner = _group(spec, "inner")
    assert (inner.kind, inner.depends) == ("dag", "report && (fan.Succeeded || fan.Failed)")
    assert inner.dependencies == ["report", "fan"]
    assert _input(spec.task("speak"), "msg").source == Source("pipeline_parameter",
                                                              parameter="who")
    # a sub-DAG's output is followed to the step that writes it
    assert _input(spec.task("direct"), "msg").source == Source("task_output", task="speak",
                                                               output="said")
    last = spec.task("last")
    assert last.dependencies == ["inner"]
    assert _input(last, "msg").source.kind == "expression"
    assert step.container.env == {"A": "1"}
    assert step.caching  # from the workflow's label


def test_a_workflow_whose_entrypoint_is_a_container():
    text = HAND_WRITTEN.replace("entrypoint: main", "entrypoint: echo").replace(
        "[{name: who}]", "[{name: msg, value: hey}]", 1).replace("onExit: report", "")
    spec = load(text.encode()).spec
    [task] = spec.tasks
    assert (task.id, task.parent) == ("echo", None)
    assert _input(task, "msg").source == Source("pipeline_parameter", parameter="msg")
