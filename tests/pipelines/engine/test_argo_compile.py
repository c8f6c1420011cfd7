"""compile_v2_workflow on pipelines compiled by the real kfp 2 SDK (in this process), loaded
as uploads are: every Workflow is checked by validate_workflow (hera's Argo models plus the
strict unknown-key walk), one is compared whole, the others on what the watcher relies on
(DAG task names, loop wrappers, when, withParam, depends) and on how data flows. Two run
through the tests' Argo controller (argo_sim) to see the values arrive."""

import copy
import dataclasses
import json
import warnings
from typing import Optional

import pytest
from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output

from pipelines.engines import argo_names
from pipelines.engines.argo_compile import (
    IMPORTERS_ANNOTATION,
    S3Repository,
    compile_v2_workflow,
)
from pipelines.engines.argo_manifests import Cleanup, validate_workflow
from pipelines.specs import load
from tests.pipelines.argo_sim import ArgoSim

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # engine_pipelines' dsl.Condition
    from tests.pipelines.engine.engine_pipelines import (
        add,
        boom,
        echo,
        listing,
        make_dataset,
        number,
        read_dataset,
        report,
        shell,
        shout,
        total,
    )

RUN_ID = "3f2a9c1e-0b7d-4e2a-9c1e-0b7d4e2a9c1e"
REPOSITORY = S3Repository(
    endpoint="minio-service.kubeflow:9000", bucket="mlpipeline", insecure=True,
    access_key_secret=("mlpipeline-minio-artifact", "accesskey"),
    secret_key_secret=("mlpipeline-minio-artifact", "secretkey"))
S3 = {"endpoint": "minio-service.kubeflow:9000", "bucket": "mlpipeline", "insecure": True,
      "accessKeySecret": {"name": "mlpipeline-minio-artifact", "key": "accesskey"},
      "secretKeySecret": {"name": "mlpipeline-minio-artifact", "key": "secretkey"}}
ANY_OUTCOME = "(exit-handler-1.Succeeded || exit-handler-1.Failed || exit-handler-1.Errored " \
              "|| exit-handler-1.Skipped || exit-handler-1.Omitted)"


@dsl.container_component
def train(word: str, out: dsl.OutputPath(str), table: Output[Dataset],
          opt: Optional[str] = None):  # noqa: UP045 (kfp reads no "str | None")
    return dsl.ContainerSpec(
        image="alpine", command=["sh", "-c", 'echo "$0" > "$1"; echo "$2" > "$3"'],
        args=[dsl.ConcatPlaceholder(["word=", word]), out, table.path,
              dsl.IfPresentPlaceholder(input_name="opt", then=["--opt", opt], else_=["--no"])])


@dsl.container_component
def uses_data(data: Input[Dataset]):
    return dsl.ContainerSpec(image="alpine", command=["cat"], args=[data.path])


@dsl.component(base_image="python:3.11")
def gather(data: Input[list[Dataset]]) -> int:
    return len(data)


@dsl.pipeline(name="small")
def small(word: str = "hello"):
    said = shout(word=word)
    with dsl.If(said.outputs["out"] == "hello!", name="loud"):
        shell(script="echo loud")


@dsl.pipeline(name="parallel-fan-in")
def parallel_fan_in(count: int = 3):
    produced = listing(count=count)
    with dsl.ParallelFor(produced.output, parallelism=2) as item:
        doubled = add(a=item, b=item)
    total(values=dsl.Collected(doubled.output))


@dsl.pipeline(name="nested")
def nested(n: int = 3):
    first = number(value=n)
    with dsl.If(first.output > 1, name="outer"):
        second = add(a=first.output)
        with dsl.ParallelFor([10, 20]) as item:
            add(a=second.output, b=item)
            with dsl.If(item > 15, name="inner"):
                add(a=first.output, b=item)


@dsl.pipeline(name="exit")
def exit_pipeline(marker: str = "m"):
    final = report(marker=marker)
    with dsl.ExitHandler(final, name="guarded"):
        boom(msg="inside")
    first = number()
    add(a=first.output)


@dsl.pipeline(name="retries")
def retries():
    add(a=1).set_retry(num_retries=3, backoff_duration="10s", backoff_factor=2,
                       backoff_max_duration="1h")
    number().set_retry(num_retries=1)


@dsl.pipeline(name="container-outputs")
def container_outputs(word: str = "w"):
    made = train(word=word)
    train(word=made.outputs["out"], opt="fast")
    uses_data(data=make_dataset(rows=1).outputs["data"])
    read_dataset(data=made.outputs["table"])


@dsl.pipeline(name="imports")
def imports(source: str = "s3://mlpipeline/data/x.csv"):
    for uri in (source, "s3://other-bucket/y.csv", "https://example.com/z.csv",
                "gs://gcs-bucket/path/w.csv"):
        imported = dsl.importer(artifact_uri=uri, artifact_class=Dataset,
                                metadata={"origin": "outside"})
        read_dataset(data=imported.output)
    uses_data(data=dsl.importer(artifact_uri=source, artifact_class=Dataset).output)


@dsl.pipeline(name="resources")
def resources():
    (add(a=1).set_cpu_limit("2").set_memory_request("1Gi").set_accelerator_type(
        "nvidia.com/gpu").set_accelerator_limit(1).set_env_variable("MODE", "fast"))


@dsl.pipeline(name="collect-artifacts")
def collect_artifacts():
    with dsl.ParallelFor([1, 2]) as rows:
        made = make_dataset(rows=rows)
    gather(data=dsl.Collected(made.outputs["data"]))


@dsl.pipeline(name="nested-collect")
def nested_collect():
    with dsl.ParallelFor([1, 2]) as outer, dsl.ParallelFor([3, 4]) as inner:
        summed = add(a=outer, b=inner)
    total(values=dsl.Collected(summed.output))


@dsl.pipeline(name="imported-from-task")
def imported_from_task():
    uri = echo(msg="s3://mlpipeline/x")
    read_dataset(data=dsl.importer(artifact_uri=uri.output, artifact_class=Dataset).output)


@dsl.pipeline(name="local-import")
def local_import():
    read_dataset(data=dsl.importer(artifact_uri="/data/x.csv", artifact_class=Dataset).output)


@dsl.pipeline(name="input-artifact")
def input_artifact(data: Input[Dataset]):
    read_dataset(data=data)


@dsl.pipeline(name="one-of-artifacts")
def one_of_artifacts(n: int = 1):
    number_task = number(value=n)
    with dsl.If(number_task.output > 1):
        big = make_dataset(rows=1)
    with dsl.Else():
        small_data = make_dataset(rows=2)
    read_dataset(data=dsl.OneOf(big.outputs["data"], small_data.outputs["data"]))


@dsl.pipeline(name="placeholders")
def placeholders():
    echo(msg=dsl.PIPELINE_TASK_ID_PLACEHOLDER)
    shell(script=f"echo {dsl.PIPELINE_JOB_ID_PLACEHOLDER} {dsl.PIPELINE_ROOT_PLACEHOLDER} "
                 f"{dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER} "
                 f"{dsl.PIPELINE_TASK_NAME_PLACEHOLDER}")


@dsl.pipeline(name="only-importers")
def only_importers(n: int = 1):
    with dsl.If(n > 0):
        dsl.importer(artifact_uri="s3://mlpipeline/x", artifact_class=Dataset)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """``package(pipeline_function)``: its IR as an upload's bytes."""
    out = tmp_path_factory.mktemp("argo-compile")
    made = {}

    def compiled(pipeline) -> bytes:
        if pipeline not in made:
            path = out / f"{pipeline.name}.yaml"
            compiler.Compiler().compile(pipeline, str(path))
            made[pipeline] = path.read_bytes()
        return made[pipeline]

    return compiled


def loaded_and_compiled(package: bytes, repository: S3Repository = REPOSITORY,
                        **parameters) -> dict:
    loaded = load(package)
    return compile_spec(loaded.spec, loaded.document, repository, **parameters)


def compile_spec(spec, document, repository: S3Repository = REPOSITORY, **parameters) -> dict:
    workflow = compile_v2_workflow(
        spec, document, run_id=RUN_ID, run_name="Nightly run", namespace="team-a",
        parameters=parameters, service_account="default-editor", repository=repository,
        launcher_image="kfdash:test", labels={"team": "a"})
    validate_workflow(workflow)
    return workflow


def templates(workflow: dict) -> dict[str, dict]:
    found = {t["name"]: t for t in workflow["spec"]["templates"]}
    assert len(found) == len(workflow["spec"]["templates"]), "template names are unique"
    return found


def tasks(workflow: dict, template: str | None = None) -> dict[str, dict]:
    """The DAG tasks of a template (the entrypoint's by default), by name."""
    name = template or workflow["spec"]["entrypoint"]
    return {t["name"]: t for t in templates(workflow)[name]["dag"]["tasks"]}


def step_of(workflow: dict, task: dict) -> dict:
    return templates(workflow)[task["template"]]


def arguments(task: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in (task.get("arguments") or {}).get("parameters", [])}


def test_it_compiles_a_small_pipeline_to_exactly_this_workflow(package):
    workflow = loaded_and_compiled(package(small))
    assert workflow == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": "small-3f2a9c1e0b", "namespace": "team-a",
            "labels": {"team": "a", "kfdash.io/run-id": RUN_ID,
                       "kfdash.io/managed-by": "kfdash"},
            "annotations": {"kfdash.io/run-name": "Nightly run"},
        },
        "spec": {
            "entrypoint": "root",
            "arguments": {"parameters": [{"name": "word", "value": "hello"}]},
            "templates": [
                {"name": "root", "dag": {"tasks": [
                    {"name": "condition-1", "template": "condition-1",
                     "when": "'{{tasks.shout.outputs.parameters.out}}' == 'hello!'",
                     "dependencies": ["shout"]},
                    {"name": "shout", "template": "shout",
                     "arguments": {"parameters": [
                         {"name": "word", "value": "{{workflow.parameters.word}}"}]}},
                ]}},
                {"name": "condition-1", "dag": {"tasks": [
                    {"name": "shell", "template": "shell",
                     "arguments": {"parameters": [{"name": "script", "value": "echo loud"}]}},
                ]}},
                {"name": "shell",
                 "inputs": {"parameters": [{"name": "script"}]},
                 "container": {"name": "main", "image": "alpine", "command": ["sh", "-c"],
                               "args": ["{{inputs.parameters.script}}"]}},
                {"name": "shout",
                 "inputs": {"parameters": [{"name": "word"}]},
                 "outputs": {"parameters": [{
                     "name": "out",
                     "valueFrom": {"path": "/tmp/kfdash/outputs/parameters/out"}}]},
                 "container": {
                     "name": "main", "image": "alpine",
                     "command": ["sh", "-c", 'printf "%s!" "$0" > "$1"'],
                     "args": ["{{inputs.parameters.word}}",
                              "/tmp/kfdash/outputs/parameters/out"],
                     "volumeMounts": [{"name": "kfdash-outputs",
                                       "mountPath": "/tmp/kfdash/outputs/parameters",
                                       "subPath": "parameters"}]},
                 "volumes": [{"name": "kfdash-outputs", "emptyDir": {}}]},
            ],
            "serviceAccountName": "default-editor",
        },
    }


def test_argo_is_told_to_delete_the_finished_workflow_and_its_pods(package):
    """The same cleanup as a v1 package gets (fill_run_metadata), nothing else changed."""
    loaded = load(package(small))
    kept = compile_spec(loaded.spec, loaded.document)
    workflow = compile_v2_workflow(
        loaded.spec, loaded.document, run_id=RUN_ID, run_name="Nightly run",
        namespace="team-a", parameters={}, service_account="default-editor",
        repository=REPOSITORY, launcher_image="kfdash:test", labels={"team": "a"},
        cleanup=Cleanup(ttl_seconds=3600, pod_gc="OnWorkflowCompletion", pod_gc_delay="90s"))
    validate_workflow(workflow)
    assert workflow == {**kept, "spec": {
        **kept["spec"], "ttlStrategy": {"secondsAfterCompletion": 3600},
        "podGC": {"strategy": "OnWorkflowCompletion", "deleteDelayDuration": "90s"}}}


def test_it_runs_a_lightweight_component_through_the_launcher(kfp2_package):
    workflow = loaded_and_compiled(kfp2_package("chain"), start=5)
    assert workflow["spec"]["arguments"] == {"parameters": [{"name": "start", "value": "5"}]}
    root = tasks(workflow)
    assert set(root) == {"add", "add-2", "add-3", "echo", "shout"}
    step = step_of(workflow, root["add-2"])
    main = step["container"]
    assert main["name"] == argo_names.MAIN_CONTAINER and main["image"] == "python:3.11"
    assert main["command"] == ["python3", "/kfdash/kfdash_launcher.py"]
    separator = main["args"].index("--")
    assert main["args"][:separator] == [
        "--parameter", "a", "NUMBER_INTEGER", "{{inputs.parameters.a}}",
        "--parameter", "b", "NUMBER_INTEGER", "{{inputs.parameters.b}}",
        "--output-parameter", "Output", "Output", "NUMBER_INTEGER"]
    program = main["args"][separator + 1:]
    assert program[:2] == ["sh", "-c"] and program[-4:] == [
        "--executor_input", "{{$}}", "--function_to_execute", "add"]
    assert step["initContainers"] == [{
        "name": "kfdash-launcher", "image": "kfdash:test",
        "command": ["cp", "/app/pipelines/engines/kfdash_launcher.py",
                    "/kfdash/kfdash_launcher.py"],
        "volumeMounts": [{"name": "kfdash-launcher", "mountPath": "/kfdash"}]}]
    assert {"name": "kfdash-launcher", "mountPath": "/kfdash"} in main["volumeMounts"]
    assert step["outputs"]["parameters"] == [
        {"name": "Output", "valueFrom": {"path": "/tmp/kfdash/outputs/parameters/Output"}},
        {"name": argo_names.EXECUTOR_OUTPUT, "valueFrom": {
            "path": "/tmp/kfdash/outputs/parameters/kfdash-executor-output", "default": "{}"}}]
    assert arguments(root["add-2"]) == {
        "a": "{{tasks.add.outputs.parameters.Output}}", "b": "10"}
    assert root["add-2"]["dependencies"] == ["add"]
    # An f-string over another task's output, and the job name placeholder, resolved at
    # the DAG: the run's name is known when it is compiled.
    assert arguments(root["echo"]) == {"msg": "total {{tasks.add-3.outputs.parameters.Output}}"}
    assert root["echo"]["dependencies"] == ["add-3"]
    assert arguments(root["shout"]) == {"word": "Nightly run"}
    assert "initContainers" not in step_of(workflow, root["shout"])


def test_it_fills_in_the_runs_placeholders(package):
    workflow = loaded_and_compiled(package(placeholders))
    root = tasks(workflow)
    assert arguments(root["shell"]) == {"script": (
        f"echo {RUN_ID} s3://mlpipeline/artifacts/{{{{workflow.namespace}}}}/"
        "{{workflow.name}} {{workflow.creationTimestamp}} shell")}
    # The pod's name is only known in the pod: the launcher fills it in.
    assert arguments(root["echo"]) == {"msg": "{{$.pipeline_task_uuid}}"}
    args = step_of(workflow, root["echo"])["container"]["args"]
    at = args.index("--context")
    assert args[at:at + 3] == ["--context", "pipeline_task_uuid", "{{pod.name}}"]


def test_it_passes_artifacts_and_their_metadata(kfp2_package):
    repository = dataclasses.replace(REPOSITORY, region="eu-west-1", key_prefix="runs/")
    workflow = loaded_and_compiled(kfp2_package("cached"), repository, counter="c")
    root = tasks(workflow)
    make = step_of(workflow, root["make-dataset"])
    key = "runs/{{workflow.namespace}}/{{workflow.name}}/{{pod.name}}/data.tgz"
    assert make["outputs"]["artifacts"][0] == {
        "name": "data", "path": "/tmp/kfdash/outputs/artifacts/data",
        "s3": {**S3, "region": "eu-west-1", "key": key}}
    args = make["container"]["args"]
    at = args.index("--output-artifact")
    assert args[at:at + 5] == ["--output-artifact", "data", "data", "system.Dataset@0.0.1",
                               f"s3://mlpipeline/{key}"]
    read = root["read-dataset"]
    assert read["arguments"]["artifacts"] == [
        {"name": "data", "from": "{{tasks.make-dataset.outputs.artifacts.data}}"}]
    assert arguments(read) == {"kfdash-metadata-data": "{{tasks.make-dataset.outputs."
                                                       "parameters.kfdash-executor-output}}"}
    assert set(read["dependencies"]) == {"count-run-2", "make-dataset"}
    step = step_of(workflow, read)
    assert step["inputs"]["artifacts"] == [
        {"name": "data", "path": "/tmp/kfdash/inputs/artifacts/data"}]
    args = step["container"]["args"]
    at = args.index("--input-artifact")
    assert args[at:at + 6] == ["--input-artifact", "data", "data", "system.Dataset@0.0.1",
                               "data", "{{inputs.parameters.kfdash-metadata-data}}"]


def test_it_translates_if_elif_else_into_when(kfp2_package):
    workflow = loaded_and_compiled(kfp2_package("branches"))
    root = tasks(workflow)
    assert root["condition-5"]["when"] == "{{tasks.number.outputs.parameters.Output}} == 5"
    assert root["condition-6"]["when"] == \
        "'{{tasks.echo-5.outputs.parameters.Output}}' == 'tails'"
    wrapper = root["condition-branches-1"]
    assert "when" not in wrapper and wrapper["dependencies"] == ["number"]
    # The branches read number's output from the wrapper's input: Argo reads only siblings.
    assert arguments(wrapper) == {"number-Output": "{{tasks.number.outputs.parameters.Output}}"}
    branches = tasks(workflow, wrapper["template"])
    value = "{{inputs.parameters.number-Output}}"
    assert {name: task["when"] for name, task in branches.items()} == {
        "condition-2": f"{value} > 3",
        "condition-3": f"!({value} > 3) && {value} > 1",
        "condition-4": f"!({value} > 3) && !({value} > 1)"}
    assert list(tasks(workflow, branches["condition-3"]["template"])) == ["echo-2"]


def test_it_wraps_a_loop_with_parallelism_and_collects_its_outputs(package):
    workflow = loaded_and_compiled(package(parallel_fan_in))
    root = tasks(workflow)
    loop = root["for-loop-1"]
    assert "withParam" not in loop and loop["dependencies"] == ["listing"]
    wrapper = templates(workflow)[loop["template"]]
    assert wrapper["parallelism"] == 2
    (looping,) = wrapper["dag"]["tasks"]
    assert looping["name"] == "for-loop-1"
    assert looping["withParam"] == "{{inputs.parameters.listing-Output}}"
    assert arguments(loop) == {"listing-Output": "{{tasks.listing.outputs.parameters.Output}}"}
    assert arguments(looping) == {"for-loop-1-item": "{{item}}"}
    iteration = templates(workflow)[looping["template"]]
    assert iteration["outputs"] == {"parameters": [{
        "name": "add-Output",
        "valueFrom": {"parameter": "{{tasks.add.outputs.parameters.Output}}"}}]}
    assert wrapper["outputs"] == {"parameters": [{
        "name": "add-Output",
        "valueFrom": {"parameter": "{{tasks.for-loop-1.outputs.parameters.add-Output}}"}}]}
    assert arguments(root["total"]) == {
        "values": "{{tasks.for-loop-1.outputs.parameters.add-Output}}"}
    assert root["total"]["dependencies"] == ["for-loop-1"]

    # Argo's aggregation as the tests' controller plays it: one list, in item order.
    def outputs(name: str, inputs: dict) -> dict:
        if name == "listing":
            return {"Output": json.dumps(list(range(4, 4 + int(inputs["count"]))))}
        if name == "add":
            return {"Output": str(int(inputs["a"]) + int(inputs["b"]))}
        return {"Output": str(sum(json.loads(inputs["values"])))}

    finished = ArgoSim(copy.deepcopy(workflow), outputs=outputs).run_all()
    nodes = finished["status"]["nodes"].values()
    assert finished["status"]["phase"] == "Succeeded"
    shown = sorted(n["displayName"] for n in nodes if n["displayName"].startswith("for-loop"))
    assert shown == ["for-loop-1", "for-loop-1", "for-loop-1(0:4)", "for-loop-1(1:5)",
                     "for-loop-1(2:6)"]
    (summed,) = [n for n in nodes if n["displayName"] == "total"]
    assert summed["inputs"]["parameters"] == [{"name": "values", "value": "[8, 10, 12]"}]


def test_it_threads_ancestor_outputs_through_nested_groups(package):
    workflow = loaded_and_compiled(package(nested))
    root = tasks(workflow)
    outer = root["condition-1"]
    assert outer["when"] == "{{tasks.number.outputs.parameters.Output}} > 1"
    assert arguments(outer) == {"number-Output": "{{tasks.number.outputs.parameters.Output}}"}
    inside = tasks(workflow, outer["template"])
    assert arguments(inside["add"]) == {"a": "{{inputs.parameters.number-Output}}", "b": "1"}
    loop = inside["for-loop-3"]
    assert loop["withItems"] == [10, 20] and loop["dependencies"] == ["add"]
    assert arguments(loop) == {
        "for-loop-3-item": "{{item}}",
        "add-Output": "{{tasks.add.outputs.parameters.Output}}",
        "number-Output": "{{inputs.parameters.number-Output}}"}
    iteration = tasks(workflow, loop["template"])
    assert arguments(iteration["add-2"]) == {"a": "{{inputs.parameters.add-Output}}",
                                             "b": "{{inputs.parameters.for-loop-3-item}}"}
    inner = iteration["condition-4"]
    assert inner["when"] == "{{inputs.parameters.for-loop-3-item}} > 15"
    assert arguments(tasks(workflow, inner["template"])["add-3"]) == {
        "a": "{{inputs.parameters.number-Output}}",
        "b": "{{inputs.parameters.for-loop-3-item}}"}

    def outputs(name: str, inputs: dict) -> dict:
        return {"Output": str(sum(int(v) for v in inputs.values()))}

    finished = ArgoSim(copy.deepcopy(workflow), outputs=outputs).run_all()
    assert finished["status"]["phase"] == "Succeeded"
    nodes = list(finished["status"]["nodes"].values())

    def inputs_of(display_name: str) -> list[dict]:
        return [{p["name"]: p["value"] for p in n["inputs"]["parameters"]}
                for n in nodes if n["displayName"] == display_name]

    assert inputs_of("add") == [{"a": "3", "b": "1"}]
    assert inputs_of("add-2") == [{"a": "4", "b": "10"}, {"a": "4", "b": "20"}]
    assert inputs_of("add-3") == [{"a": "3", "b": "20"}]  # item 10 skipped the inner branch
    assert sorted(n["phase"] for n in nodes if n["displayName"] == "condition-4") == [
        "Skipped", "Succeeded"]


def test_it_runs_the_exit_handler_task_whatever_happened(package):
    workflow = loaded_and_compiled(package(exit_pipeline))
    root = tasks(workflow)
    assert root["report"]["depends"] == ANY_OUTCOME
    assert json.loads(arguments(root["report"])["status"]) == {
        "state": "{{tasks.exit-handler-1.status}}",
        "pipelineJobResourceName": "{{workflow.name}}", "pipelineTaskName": "exit-handler-1",
        "error": {}}
    # Argo refuses depends and dependencies in one DAG: the siblings wait with depends.
    assert root["add"]["depends"] == "number" and "dependencies" not in root["add"]
    assert list(tasks(workflow, root["exit-handler-1"]["template"])) == ["boom"]
    report_step = step_of(workflow, root["report"])
    assert "initContainers" in report_step
    assert report_step["container"]["args"][4:8] == [
        "--parameter", "status", "TASK_FINAL_STATUS", "{{inputs.parameters.status}}"]


def test_it_retries_with_backoff(package):
    workflow = loaded_and_compiled(package(retries))
    root = tasks(workflow)
    assert step_of(workflow, root["add"])["retryStrategy"] == {
        "limit": "3", "retryPolicy": "Always",
        "backoff": {"duration": "10s", "factor": "2", "maxDuration": "3600s"}}
    assert step_of(workflow, root["number"])["retryStrategy"]["limit"] == "1"
    loaded = load(package(retries))
    loaded.spec.task("add").retry_policy["backoffFactor"] = 1.5
    with pytest.raises(ValueError, match=r"task 'add' retries with a backoff factor of 1\.5"):
        compile_spec(loaded.spec, loaded.document)


def test_it_runs_container_components_with_their_output_files(package):
    workflow = loaded_and_compiled(package(container_outputs))
    root = tasks(workflow)
    first = step_of(workflow, root["train"])
    assert "initContainers" not in first
    assert first["container"]["args"] == [
        "word={{inputs.parameters.word}}", "/tmp/kfdash/outputs/parameters/out",
        "/tmp/kfdash/outputs/artifacts/table", "--no"]
    assert first["outputs"]["parameters"] == [
        {"name": "out", "valueFrom": {"path": "/tmp/kfdash/outputs/parameters/out"}}]
    assert first["outputs"]["artifacts"][0]["path"] == "/tmp/kfdash/outputs/artifacts/table"
    assert first["container"]["volumeMounts"] == [
        {"name": "kfdash-outputs", "mountPath": "/tmp/kfdash/outputs/parameters",
         "subPath": "parameters"},
        {"name": "kfdash-outputs", "mountPath": "/tmp/kfdash/outputs/artifacts",
         "subPath": "artifacts"}]
    second = step_of(workflow, root["train-2"])
    assert second["container"]["args"][-2:] == ["--opt", "{{inputs.parameters.opt}}"]
    assert arguments(root["train-2"]) == {
        "word": "{{tasks.train.outputs.parameters.out}}", "opt": "fast"}
    uses = step_of(workflow, root["uses-data"])
    assert uses["container"]["args"] == ["/tmp/kfdash/inputs/artifacts/data"]
    # A launched step reading a container component's artifact: no metadata to pass on.
    assert arguments(root["read-dataset"]) == {"kfdash-metadata-data": "{}"}


def test_it_reads_imported_artifacts_from_their_uris(package):
    workflow = loaded_and_compiled(package(imports))
    assert json.loads(workflow["metadata"]["annotations"][IMPORTERS_ANNOTATION]) == [
        "importer", "importer-2", "importer-3", "importer-4", "importer-5"]
    root = tasks(workflow)
    assert not any(name.startswith("importer") for name in root)
    locations = {name: task["arguments"]["artifacts"][0] for name, task in root.items()}
    assert locations["read-dataset"] == {"name": "data", "s3": {**S3, "key": "data/x.csv"}}
    assert locations["read-dataset-2"] == {
        "name": "data", "s3": {**S3, "bucket": "other-bucket", "key": "y.csv"}}
    assert locations["read-dataset-3"] == {"name": "data",
                                           "http": {"url": "https://example.com/z.csv"}}
    assert locations["read-dataset-4"] == {
        "name": "data", "gcs": {"bucket": "gcs-bucket", "key": "path/w.csv"}}
    assert locations["uses-data"]["s3"]["key"] == "data/x.csv"
    assert all("dependencies" not in task for task in root.values())
    assert json.loads(arguments(root["read-dataset-3"])["kfdash-metadata-data"]) == {
        "artifact": [{"name": "artifact", "uri": "https://example.com/z.csv",
                      "metadata": {"origin": "outside"}}]}
    other = loaded_and_compiled(package(imports), source="minio://mlpipeline/a/b")
    assert tasks(other)["read-dataset"]["arguments"]["artifacts"][0]["s3"]["key"] == "a/b"


def test_it_sets_resources_gpus_and_env(package):
    workflow = loaded_and_compiled(package(resources))
    main = step_of(workflow, tasks(workflow)["add"])["container"]
    assert main["resources"] == {"limits": {"cpu": "2", "nvidia.com/gpu": "1"},
                                 "requests": {"memory": "1Gi"}}
    assert main["env"] == [{"name": "MODE", "value": "fast"}]


def test_it_picks_the_branch_that_ran_for_one_of(kfp2_package):
    workflow = loaded_and_compiled(kfp2_package("one_of"))
    root = tasks(workflow)
    assert arguments(root["add-3"])["a"] == \
        "{{tasks.condition-branches-1.outputs.parameters.one-of}}"
    around = templates(workflow)[root["condition-branches-1"]["template"]]
    assert around["outputs"]["parameters"] == [{"name": "one-of", "valueFrom": {"expression": (
        "tasks['condition-2'].status == 'Succeeded' ? "
        "tasks['condition-2'].outputs.parameters['add-Output'] : "
        "(tasks['condition-3'].outputs.parameters['add-2-Output'])")}}]


def test_it_compiles_the_engine_pipelines(kfp2_package):
    for name, parameters in {"loops": {"marker": "m"}, "fan_out": {"marker": "m"},
                             "retrying": {"counter": "a", "other_counter": "b"},
                             "artifacts_pipeline": {"source": "s3://mlpipeline/x"},
                             "pythons": {}, "failing": {},
                             "shell_step": {"script": "true"}}.items():
        workflow = loaded_and_compiled(kfp2_package(name), **parameters)
        root = tasks(workflow)
        assert root, name
    loops = loaded_and_compiled(kfp2_package("loops"), marker="m")
    root = tasks(loops)
    assert root["for-loop-2"]["withItems"] == [10, 20]
    assert root["for-loop-5"]["withItems"] == [{"word": "x"}, {"word": "y"}]
    assert arguments(root["for-loop-5"]) == {"for-loop-5-item-word": "{{item.word}}"}
    assert root["for-loop-6"]["withParam"] == "{{tasks.listing.outputs.parameters.Output}}"
    (looping,) = tasks(loops, root["for-loop-3"]["template"]).values()
    assert looping["withParam"] == "{{workflow.parameters.values}}"


@pytest.mark.parametrize(("pipeline", "parameters", "message"), [
    (collect_artifacts, {}, "collects the artifact 'data' of 'make-dataset' from every "
                            "iteration of a loop"),
    (nested_collect, {}, "from nested loops"),
    (imported_from_task, {}, "importer' takes 'uri' from a task_output"),
    (local_import, {}, "imports '/data/x.csv': Argo reads artifacts from s3://"),
    (input_artifact, {}, "reads the pipeline input artifact 'data'"),
    (one_of_artifacts, {}, "dsl.OneOf of artifacts"),
    (small, {"other": 1}, "no parameter 'other'"),
    (only_importers, {}, "group 'condition-1' holds only importers"),
])
def test_it_refuses_what_argo_cannot_run(package, pipeline, parameters, message):
    with pytest.raises(ValueError, match=message):
        loaded_and_compiled(package(pipeline), **parameters)


def test_it_refuses_a_condition_it_cannot_translate(kfp2_package):
    loaded = load(kfp2_package("branches"))
    group = next(g for g in loaded.spec.groups if g.id == "condition-5")
    group.condition = "size(inputs.parameter_values['pipelinechannel--number-Output']) > 1"
    with pytest.raises(ValueError, match="The group 'condition-5' has a condition Argo "
                                         "cannot express"):
        compile_spec(loaded.spec, loaded.document)


def test_it_refuses_missing_parameters_and_other_formats(kfp2_package):
    with pytest.raises(ValueError, match="No value for the parameter 'marker'"):
        loaded_and_compiled(kfp2_package("exit_handling"))
    loaded = load(kfp2_package("chain"))
    loaded.spec.format = "argo"
    with pytest.raises(ValueError, match="takes a KFP v2 pipeline"):
        compile_spec(loaded.spec, loaded.document)


def test_it_refuses_a_pipeline_workspace(kfp2_package):
    loaded = load(kfp2_package("shell_step"))
    document = copy.deepcopy(loaded.document)
    (executor,) = document["deploymentSpec"]["executors"].values()
    executor["container"]["args"] = ["ls {{$.workspace_path}}"]
    with pytest.raises(ValueError, match=r"The task 'shell' uses dsl\.WORKSPACE_PATH"):
        compile_spec(loaded.spec, document, script="true")
