"""The launcher for real: the container of a compiled step run as Argo would run it (its
placeholders substituted, the launcher copied where the init container puts it), with this
virtualenv's Python as the image's ``python3`` (it has kfp 2.17, like a component's image),
under a temporary root instead of /tmp/kfdash."""

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Output, OutputPath, PipelineTaskFinalStatus

from pipelines.engines import argo_compile_ports, argo_names, kfdash_launcher
from pipelines.engines.argo_compile import S3Repository, compile_v2_workflow
from pipelines.specs import load

LAUNCHER = Path(kfdash_launcher.__file__)
VENV_BIN = Path(sys.executable).parent  # python3 and pip, as in a component's image
REPOSITORY = S3Repository(endpoint="minio:9000", bucket="mlpipeline", insecure=True,
                          access_key_secret=("s3", "a"), secret_key_secret=("s3", "s"))
ARGO_VALUES = {"workflow.namespace": "team-a", "pod.name": "pod-1"}


@dsl.component(base_image="python:3.11")
def produce(text: str, times: int, data: Output[Dataset], metrics: Output[Metrics],
            shout: OutputPath(str)) -> str:
    with open(data.path, "w") as handle:
        handle.write(text * times)
    with open(shout, "w") as handle:
        handle.write(text.upper() + "!")
    data.metadata["length"] = len(text) * times
    metrics.log_metric("accuracy", 0.9)
    return text.upper()


@dsl.component(base_image="python:3.11")
def consume(data: Input[Dataset]) -> int:
    with open(data.path) as handle:
        return len(handle.read()) + data.metadata["length"]


@dsl.component(base_image="python:3.11")
def fail(msg: str):
    raise RuntimeError(msg)


@dsl.component(base_image="python:3.11")
def final(status: PipelineTaskFinalStatus) -> str:
    return f"{status.state} {status.pipeline_task_name} {status.error_code}"


@dsl.pipeline(name="launched")
def launched(text: str = "ab", times: int = 3):
    made = produce(text=text, times=times)
    consume(data=made.outputs["data"])
    with dsl.ExitHandler(final(), name="guarded"):
        fail(msg="failing on purpose")


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("launcher") / "launched.yaml"
    compiler.Compiler().compile(launched, str(path))
    loaded = load(path.read_bytes())
    return compile_v2_workflow(
        loaded.spec, loaded.document, run_id="0123456789abcdef", run_name="run",
        namespace="team-a", parameters={}, service_account="default-editor",
        repository=REPOSITORY, launcher_image="kfdash:test")


def step(workflow: dict, name: str) -> dict:
    """The template and DAG task of the task ``name`` (at the root or in a group)."""
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    for template in templates.values():
        for task in (template.get("dag") or {}).get("tasks", []):
            if task["name"] == name:
                return {"template": templates[task["template"]], "task": task}
    raise AssertionError(f"no task {name}")


def argo(text: str, values: dict) -> str:
    """Argo's substitution of {{...}} (it leaves the v2 placeholders it does not know)."""
    return re.sub(r"\{\{([^{}$]+)\}\}", lambda m: str(values.get(m.group(1), m.group(0))), text)


def environment(root: Path, mounts: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTEST"))}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", PIP_NO_INDEX="1",
               KFDASH_LAUNCHER_ROOT=str(root), KFDASH_LAUNCHER_MOUNTS=mounts)
    return env


def run_step(workflow: dict, name: str, folder: Path, parameters: dict,
             ) -> subprocess.CompletedProcess:
    """What the step's pod does: the init container's copy, then the main container."""
    found = step(workflow, name)
    init = found["template"]["initContainers"][0]
    assert init["command"][:2] == ["cp", argo_compile_ports.LAUNCHER_SOURCE]
    launcher_dir = folder / "kfdash"
    launcher_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(LAUNCHER, launcher_dir / "kfdash_launcher.py")
    container = found["template"]["container"]
    values = {**ARGO_VALUES, "workflow.name": workflow["metadata"]["name"],
              **{f"inputs.parameters.{k}": v for k, v in parameters.items()}}
    argv = [argo(part, values).replace(argo_compile_ports.LAUNCHER_DIR, str(launcher_dir), 1)
            if part == argo_compile_ports.LAUNCHER else argo(part, values)
            for part in [*container["command"], *container["args"]]]
    return subprocess.run(argv, env=environment(folder / "root"), capture_output=True,
                          text=True, timeout=60)


def read(root: Path, *parts: str) -> str:
    return root.joinpath(*parts).read_text()


def test_it_runs_a_python_component_and_reports_its_outputs(workflow, tmp_path):
    done = run_step(workflow, "produce", tmp_path, {"text": "ab", "times": "3"})
    assert done.returncode == 0, done.stderr
    root = tmp_path / "root"
    assert read(root, "outputs", "parameters", "Output") == "AB"
    assert read(root, "outputs", "parameters", "shout") == "AB!"  # written by the component
    assert read(root, "outputs", "artifacts", "data") == "ababab"
    # KFP lets a Metrics artifact stay unwritten: Argo still finds a file to store.
    assert read(root, "outputs", "artifacts", "metrics") == ""
    prefix = f"s3://mlpipeline/artifacts/team-a/{workflow['metadata']['name']}/pod-1"
    assert json.loads(read(root, "outputs", "parameters", argo_names.EXECUTOR_OUTPUT)) == {
        "data": [{"name": "data", "uri": f"{prefix}/data.tgz", "metadata": {"length": 6}}],
        "metrics": [{"name": "metrics", "uri": f"{prefix}/metrics.tgz",
                     "metadata": {"accuracy": 0.9}}]}

    # The consumer, as Argo starts it: the artifact placed, the producer's report passed on.
    consumer = tmp_path / "consumer"
    placed = consumer / "root" / "inputs" / "artifacts" / "data"
    placed.parent.mkdir(parents=True)
    placed.write_text("ababab")
    report = read(root, "outputs", "parameters", argo_names.EXECUTOR_OUTPUT)
    assert step(workflow, "consume")["task"]["arguments"]["parameters"][0]["name"] == \
        "kfdash-metadata-data"
    done = run_step(workflow, "consume", consumer, {"kfdash-metadata-data": report})
    assert done.returncode == 0, done.stderr
    assert read(consumer / "root", "outputs", "parameters", "Output") == "12"


def test_it_passes_a_failing_components_status_on(workflow, tmp_path):
    done = run_step(workflow, "fail", tmp_path, {"msg": "failing on purpose"})
    assert done.returncode == 1
    assert "RuntimeError: failing on purpose" in done.stderr
    assert "kfdash_launcher: the program exited with status 1" in done.stderr
    assert read(tmp_path / "root", "outputs", "parameters", argo_names.EXECUTOR_OUTPUT) == "{}"

    # The exit handler's task gets the group's final state from Argo's phase.
    status = step(workflow, "final")["task"]["arguments"]["parameters"][0]["value"]
    failed = argo(status, {"tasks.exit-handler-1.status": "Failed", "workflow.name": "wf"})
    done = run_step(workflow, "final", tmp_path / "final", {"status": failed})
    assert done.returncode == 0, done.stderr
    assert read(tmp_path / "final" / "root", "outputs", "parameters", "Output") == \
        "FAILED exit-handler-1 2"


def launcher(args: list[str], root: Path, mounts: str = "", **kwargs):
    return subprocess.run([sys.executable, str(LAUNCHER), *args], env=environment(root, mounts),
                          capture_output=True, text=True, timeout=30, **kwargs)


@pytest.mark.parametrize(("args", "message"), [
    (["--parameter", "n", "NUMBER_INTEGER", "abc", "--", "true"],
     "the parameter 'n' should be NUMBER_INTEGER, not 'abc'"),
    (["--parameter", "n", "NUMBER", "1", "--", "true"], "--parameter n: unknown type 'NUMBER'"),
    (["--verbose", "--", "true"], "unknown option '--verbose'"),
    (["--parameter", "n", "STRING"], "--parameter takes 3 values, got 2"),
    (["--parameter", "n", "STRING", "x"], "no program"),
    (["--output-parameter", "x", "../x", "STRING", "--", "true"], "'../x' is not a file name"),
    (["--", "echo", "{{$.pipeline_job_name}}"], "no value for the placeholder"),
    (["--cache-key-of", "{not json", "--"], "--cache-key-of takes the component as JSON"),
    (["--cache-key-of", "{}", "--input-artifact", "d", "d", "system.Dataset", "data", "{}",
      "--"], "--input-artifact d: its producer reported no URI"),
])
def test_it_refuses_bad_arguments_clearly(tmp_path, args, message):
    done = launcher(args, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("kfdash_launcher: error: ") and message in done.stderr


def test_its_cache_key_is_kfdashs_for_the_same_inputs(tmp_path):
    """``--cache-key-of`` in a pod and ``caching.key`` at submit give one key: parameters
    typed from Argo's text, an artifact known by the URI its producer reported."""
    from pipelines.engines import caching

    component = {"component": {"executorLabel": "exec-train"},
                 "executor": {"container": {"image": "python:3.11", "command": ["train"]}}}
    uri = "s3://mlpipeline/artifacts/team-a/wf/pod-7/data.tgz"
    report = json.dumps({"data": [{"name": "data", "uri": uri, "metadata": {"rows": 3}}]})
    done = launcher(["--cache-key-of", json.dumps(component),
                     "--parameter", "epochs", "NUMBER_INTEGER", "3",
                     "--parameter", "rate", "NUMBER_DOUBLE", "0.5",
                     "--parameter", "names", "LIST", '["a","b"]',
                     "--parameter", "fast", "BOOLEAN", "true",
                     "--input-artifact", "data", "data", "system.Dataset@0.0.1", "data", report,
                     "--"], tmp_path)
    assert done.returncode == 0, done.stderr
    key = (tmp_path / "outputs" / "parameters" / kfdash_launcher.CACHE_KEY).read_text()
    assert key == caching.key(component, {"epochs": 3, "rate": 0.5, "names": ["a", "b"],
                                          "fast": True}, {"data": [{"uri": uri}]})
    assert f"kfdash_launcher: cache key {key}" in done.stderr


def test_it_fails_a_step_that_did_not_write_an_output_parameter(tmp_path):
    done = launcher(["--output-parameter", "x", "x", "STRING", "--", "true"], tmp_path)
    assert done.returncode == 1
    assert "did not write its output parameter 'x'" in done.stderr


PROGRAM = """
import json, os, sys
executor, path, uuid = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
mounts = os.environ["KFDASH_LAUNCHER_MOUNTS"]
source = executor["inputs"]["artifacts"]["src"]["artifacts"][0]
assert path == mounts + "/s3/" + source["uri"][len("s3://"):], path
assert os.path.islink(path) and open(path).read() == "rows"
target = executor["outputs"]["artifacts"]["dst"]["artifacts"][0]
os.makedirs(mounts + "/s3/" + target["uri"][len("s3://"):])
with open(mounts + "/s3/" + target["uri"][len("s3://"):] + "/model.bin", "w") as handle:
    handle.write(source["metadata"]["kind"] + " " + uuid)
with open(executor["outputs"]["outputFile"], "w") as handle:
    json.dump({"parameterValues": {"n": 5, "s": "text"}, "artifacts": {"dst": {"artifacts": [
        {"name": "dst", "uri": target["uri"], "metadata": {"size": 1}}]}}}, handle)
"""


def test_it_lines_remote_uris_up_with_argos_paths(tmp_path):
    """The executor reads and writes an artifact at its URI's mount path (/s3/…): the input
    is linked to where Argo put it, the output moved to where Argo collects it."""
    root, mounts = tmp_path / "root", tmp_path / "mounts"
    (root / "inputs" / "artifacts").mkdir(parents=True)
    (root / "inputs" / "artifacts" / "src").write_text("rows")
    report = json.dumps({"data": [{"name": "data", "uri": "s3://b/in/data.tgz",
                                   "metadata": {"kind": "table"}}]})
    done = launcher([
        "--input-artifact", "src", "src", "system.Dataset@0.0.1", "data", report,
        "--output-artifact", "dst", "dst", "system.Model@0.0.1", "s3://b/out/dst.tgz",
        "--output-parameter", "n", "n", "NUMBER_INTEGER",
        "--output-parameter", "s", "s", "STRING",
        "--context", "pipeline_task_uuid", "pod-7",
        "--", sys.executable, "-c", PROGRAM, "{{$}}", "{{$.inputs.artifacts['src'].path}}",
        "{{$.pipeline_task_uuid}}"], root, mounts=str(mounts))
    assert done.returncode == 0, done.stderr
    assert read(root, "outputs", "artifacts", "dst", "model.bin") == "table pod-7"
    assert not (mounts / "s3" / "b" / "out" / "dst.tgz").exists()
    assert read(root, "outputs", "parameters", "n") == "5"
    assert read(root, "outputs", "parameters", "s") == "text"
    assert json.loads(read(root, "outputs", "parameters", argo_names.EXECUTOR_OUTPUT)) == {
        "dst": [{"name": "dst", "uri": "s3://b/out/dst.tgz", "metadata": {"size": 1}}]}


def test_it_forwards_signals_and_passes_the_exit_status_on(tmp_path):
    ready = tmp_path / "ready"
    program = (f"import signal, sys, time, pathlib\n"
               f"signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
               f"pathlib.Path({str(ready)!r}).touch()\n"
               f"time.sleep(30)\n")
    process = subprocess.Popen([sys.executable, str(LAUNCHER), "--", sys.executable, "-c",
                                program], env=environment(tmp_path / "root"),
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 3
    assert "exited with status 3" in process.stderr.read()


def test_it_is_a_python_3_8_script_of_the_standard_library():
    source = LAUNCHER.read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    assert kfdash_launcher.EXECUTOR_OUTPUT == argo_names.EXECUTOR_OUTPUT
    assert argo_compile_ports.ROOT == kfdash_launcher.ROOT
