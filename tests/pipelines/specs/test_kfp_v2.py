"""KFP v2 IR from the real kfp 2.17 compiler, normalized: every construct it emits."""

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
def dag(kfp2_packages):
    return _load(kfp2_packages, "dag.yaml")


@pytest.fixture(scope="module")
def control(kfp2_packages):
    return _load(kfp2_packages, "control.yaml").spec


@pytest.fixture(scope="module")
def exits(kfp2_packages):
    return _load(kfp2_packages, "exit.yaml").spec


def test_it_reads_the_pipeline_info(dag):
    spec = dag.spec
    assert dag.format == SpecFormat.KFP_V2 == spec.format
    assert (spec.name, spec.description) == ("dag-pipeline",
                                             "Parameters of every type, Dataset to Model.")
    assert (spec.schema_version, spec.sdk_version) == ("2.1.0", "kfp-2.17.3")
    assert dag.document["pipelineInfo"]["name"] == "dag-pipeline"
    assert dag.source.startswith("# PIPELINE DEFINITION")
    assert (dag.filename, dag.platform_spec) == ("", None)


def test_it_types_parameters_and_makes_integer_defaults_ints(dag):
    params = {p.name: p for p in dag.spec.parameters}
    assert {name: (p.type, p.default, p.has_default) for name, p in params.items()} == {
        "required": ("STRING", None, False),
        "text": ("STRING", "hi", True),
        "count": ("NUMBER_INTEGER", 3, True),
        "rate": ("NUMBER_DOUBLE", 0.5, True),
        "flag": ("BOOLEAN", True, True),
        "items": ("LIST", [1, 2], True),
        "options": ("STRUCT", {"a": 1}, True),
    }
    assert type(params["count"].default) is int  # the IR says 3.0
    assert not params["required"].optional and params["text"].optional


def test_it_reads_steps_artifacts_and_dependencies(dag):
    spec = dag.spec
    assert sorted(t.id for t in spec.tasks) == ["echo", "evaluate", "make-data", "train"]
    assert spec.groups == []
    make_data, train, evaluate = (spec.task(i) for i in ("make-data", "train", "evaluate"))
    assert _input(make_data, "rows").source == Source("pipeline_parameter", parameter="count")
    data = _input(train, "data")
    assert (data.kind, data.type) == ("artifact", "system.Dataset")
    assert data.source == Source("task_output", task="make-data", output="data")
    assert train.dependencies == ["make-data"]
    assert evaluate.dependencies == ["make-data", "train"]  # .after(data) and the model it reads
    assert [(p.name, p.kind, p.type) for p in train.outputs] == [
        ("Output", "parameter", "NUMBER_DOUBLE"), ("model", "artifact", "system.Model")]
    assert {p.name: p.type for p in evaluate.outputs} == {
        "metrics": "system.Metrics", "roc": "system.ClassificationMetrics",
        "report": "system.HTML", "notes": "system.Markdown"}


def test_it_reads_caching_retries_resources_env_and_display_names(dag):
    spec = dag.spec
    make_data, train, echo = (spec.task(i) for i in ("make-data", "train", "echo"))
    assert (make_data.caching, train.caching) == (False, True)
    assert train.retries == 3
    assert train.retry_policy["backoffDuration"] == "10s"
    assert train.container.resources == {"limits": {"cpu": "2", "memory": "1G"},
                                         "requests": {"cpu": "1", "memory": "500M"}}
    assert train.container.env == {"MODE": "fast"}
    assert train.container.image == "python:3.11"
    assert "--executor_input" in train.container.args
    assert (echo.name, echo.component) == ("Say it", "comp-echo")


def test_json_ir_loads_like_yaml(kfp2_packages, dag):
    loaded = _load(kfp2_packages, "dag.json")
    assert loaded.spec == dag.spec
    assert loaded.document == dag.document
    assert json.loads(loaded.source) == dag.document


def test_if_elif_else_are_condition_groups_in_a_branches_group(control):
    branches = _group(control, "condition-branches-1")
    assert (branches.kind, branches.parent, branches.dependencies) == ("dag", None, ["number"])
    assert branches.inputs[0].source == Source("task_output", task="number", output="Output")
    conditions = [g for g in control.groups if g.parent == "condition-branches-1"]
    assert [(g.id, g.kind, g.label) for g in conditions] == [
        ("condition-2", "condition", "big"), ("condition-3", "condition", "condition-3"),
        ("condition-4", "condition", "condition-4")]
    assert conditions[0].condition == \
        "int(inputs.parameter_values['pipelinechannel--number-Output']) > 3"
    assert conditions[2].condition.startswith("!(")
    assert control.task("echo").parent == "condition-2"


def test_deprecated_condition_is_a_condition_group(control):
    group = _group(control, "condition-5")
    assert (group.kind, group.parent, group.dependencies) == ("condition", None, ["number"])
    assert group.condition.endswith("== 5")
    assert control.task("echo-4").parent == "condition-5"


def test_loop_over_a_parameter_with_parallelism_and_nested_loop_and_condition(control):
    outer = _group(control, "for-loop-6")
    assert (outer.kind, outer.parallelism, outer.loop_items) == ("loop", 2, None)
    assert outer.loop_parameter == "pipelinechannel--values"
    assert outer.loop_source == Source("pipeline_parameter", parameter="values")
    inner = _group(control, "for-loop-8")
    assert (inner.parent, inner.loop_items, inner.parallelism) == ("for-loop-6", ["a", "b"], 0)
    condition = _group(control, "condition-9")
    assert (condition.kind, condition.parent) == ("condition", "for-loop-8")
    # the condition's inputs are traced through both loops to their origins
    assert {p.name: p.source for p in condition.inputs}["pipelinechannel--threshold"] == \
        Source("pipeline_parameter", parameter="threshold")
    echo = control.task("echo-5")
    assert echo.parent == "condition-9"
    assert _input(echo, "msg").source == Source(
        "loop_item", parameter=inner.loop_item_name, group="for-loop-8")


def test_loop_over_dicts_selects_a_field(control):
    group = _group(control, "for-loop-11")
    assert group.loop_items == [{"label": "x"}, {"label": "y"}]
    source = _input(control.task("echo-6"), "msg").source
    assert (source.kind, source.group, source.selector) == ("loop_item", "for-loop-11", "label")


def test_loop_over_a_task_output_and_collected_fan_in(control):
    group = _group(control, "for-loop-12")
    assert group.dependencies == ["numbers"]
    assert group.loop_source == Source("task_output", task="numbers", output="Output")
    total = control.task("total")
    assert total.dependencies == ["for-loop-12"]
    assert _input(total, "values").source == Source("task_output", task="number-2",
                                                    output="Output")
    assert control.task("number-2").parent == "for-loop-12"


def test_exit_handler_and_final_status(exits):
    group = _group(exits, "exit-handler-1")
    assert (group.kind, group.label, group.parent) == ("exit_handler", "cleanup", None)
    final = exits.task("report-status")
    assert (final.exit_handler, final.parent, final.dependencies) == \
        (True, None, ["exit-handler-1"])
    assert _input(final, "status").source == Source("task_final_status", task="exit-handler-1")
    assert not any(t.exit_handler for t in exits.tasks if t is not final)


def test_pipelines_used_as_components_flatten_with_unique_ids(exits):
    for group_id, message in (("inner-pipeline", Source("pipeline_parameter",
                                                        parameter="greeting")),
                              ("inner-pipeline-2", Source("constant", value="again"))):
        group = _group(exits, group_id)
        assert (group.kind, group.parent) == ("dag", "exit-handler-1")
        echo = exits.task(f"{group_id}/echo")  # "echo" is used in three DAGs
        assert (echo.name, echo.parent) == ("echo", group_id)
        assert _input(echo, "msg").source == message
    square = exits.task("exit-handler-1/square")
    assert square.dependencies == ["inner-pipeline"]
    # the sub-pipeline's output is traced to the task inside that writes it
    assert _input(square, "x").source == Source("task_output", task="inner-pipeline/number",
                                                output="Output")
    ids = [node.id for node in [*exits.tasks, *exits.groups]]
    assert len(ids) == len(set(ids))


def test_one_of_lists_the_branch_outputs(exits):
    source = _input(exits.task("square-2"), "x").source
    assert source.kind == "one_of"
    assert source.options == [Source("task_output", task="condition-2/square", output="Output"),
                              Source("task_output", task="number-2", output="Output")]


def test_f_strings_stay_expressions_next_to_their_channels(exits):
    echo = exits.task("exit-handler-1/echo")
    assert _input(echo, "msg").source == Source(
        "expression", value="{{$.inputs.parameters['pipelinechannel--greeting']}}, world")
    assert _input(echo, "pipelinechannel--greeting").source == Source(
        "pipeline_parameter", parameter="greeting")


def test_the_normalized_spec_round_trips_through_json(dag, kfp2_packages):
    for spec in (dag.spec, _load(kfp2_packages, "control.yaml").spec,
                 _load(kfp2_packages, "exit.yaml").spec):
        assert PipelineSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_importer_accelerator_container_component_and_ignore_upstream_failure(kfp2_packages):
    spec = _load(kfp2_packages, "extras.yaml").spec
    importer, train, shout = (spec.task(i) for i in ("importer", "train", "shout"))
    assert importer.container is None
    assert importer.importer["artifactUri"] == {"constant": "gs://bucket/data.csv"}
    assert [(p.name, p.type) for p in importer.outputs] == [("artifact", "system.Dataset")]
    assert _input(train, "data").source == Source("task_output", task="importer",
                                                  output="artifact")
    assert train.container.resources == {"limits": {"nvidia.com/gpu": "1"}}
    assert (shout.container.image, shout.container.command) == ("alpine", ["echo"])
    assert shout.container.args == ["{{$.inputs.parameters['word']}}"]
    assert shout.exit_handler  # ALL_UPSTREAM_TASKS_COMPLETED: runs whatever its upstream did


def test_five_hundred_tasks_in_a_chain():
    step = {"componentRef": {"name": "comp-step"}, "cachingOptions": {"enableCache": True}}
    tasks = {"t0": dict(step)}
    for i in range(1, 500):
        tasks[f"t{i}"] = {**step, "dependentTasks": [f"t{i - 1}"], "inputs": {"parameters": {
            "x": {"taskOutputParameter": {"producerTask": f"t{i - 1}",
                                          "outputParameterKey": "Output"}}}}}
    ir = {
        "pipelineInfo": {"name": "chain"}, "schemaVersion": "2.1.0", "sdkVersion": "kfp-2.17.3",
        "components": {"comp-step": {
            "executorLabel": "exec-step",
            "inputDefinitions": {"parameters": {"x": {"parameterType": "NUMBER_INTEGER",
                                                      "defaultValue": 0.0}}},
            "outputDefinitions": {"parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}}},
        }},
        "deploymentSpec": {"executors": {"exec-step": {"container": {"image": "alpine"}}}},
        "root": {"dag": {"tasks": tasks}},
    }
    spec = load(json.dumps(ir).encode()).spec
    assert len(spec.tasks) == 500
    assert spec.task("t499").dependencies == ["t498"]
    assert _input(spec.task("t0"), "x").source == Source("constant", value=0)
    assert _input(spec.task("t1"), "x").source == Source("task_output", task="t0",
                                                         output="Output")
