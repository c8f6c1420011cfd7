"""Real runs on the real local engine: pipelines compiled by the real kfp 2 SDK (in this
process) and kfp 1.8 (in its own virtualenv), started with ``Run.start``, executed as
processes on this host, waited for through the database."""

from __future__ import annotations

import importlib
import time
import warnings
from pathlib import Path

import pytest
from django.db import OperationalError

from pipelines.choices import FINISHED
from tests.kfp_sdks import KFP1_COMPONENTS, run_kfp1

KFP1_SCRIPT = KFP1_COMPONENTS + r'''
import json


@dsl.pipeline(name="sum-sq")
def sum_sq_pipeline(a: int = 3, b: int = 4):
    first = sum_sq_op(a, b)
    second = sum_sq_op(first.output, 1)
    sh("show", 'echo "$0 {{workflow.namespace}} {{workflow.uid}}" > /tmp/outputs/show/data',
       arguments=[second.output], file_outputs={"shown": "/tmp/outputs/show/data"})


@dsl.pipeline(name="same-path")
def same_path_pipeline():
    paths = {"out": "/tmp/outputs/out/data", "root": "/written-at-root.txt"}
    script = ("echo {0} > /tmp/outputs/out/data; echo {0} > /written-at-root.txt; "
              "sleep 0.4; cat /tmp/outputs/out/data /written-at-root.txt")
    left = sh("left", script.format("left"), file_outputs=paths)
    right = sh("right", script.format("right"), file_outputs=paths)
    sh("join", 'test "$0 $1 $2 $3" = "left left right right"',
       arguments=[left.outputs["out"], left.outputs["root"], right.outputs["out"],
                  right.outputs["root"]])


@dsl.pipeline(name="control-v1")
def control_v1(limit: int = 10):
    total = sum_sq_op(limit, 1)
    with dsl.Condition(total.output > 10):
        sh("big", "echo big")
    with dsl.Condition(total.output < 10):
        sh("small", "echo small")
    with dsl.ParallelFor([1, 2, 3], parallelism=2) as item:
        sh("each", "echo each $0", arguments=[item])
    generated = gen_op(2)
    with dsl.ParallelFor(generated.output) as value:
        sh("each-generated", 'echo "got $0" > /tmp/outputs/v/data', arguments=[value],
           file_outputs={"v": "/tmp/outputs/v/data"})
    with dsl.ParallelFor([{"a": "first", "b": 2}]) as pair:
        sh("each-pair", "echo pair $0", arguments=[pair.a])


@dsl.pipeline(name="exit-v1")
def exit_v1(counter: str = ""):
    goodbye = sh("goodbye", 'echo "bye {{workflow.status}}"')
    with dsl.ExitHandler(goodbye):
        flaky = sh("flaky", 'n=$(cat "$0" 2>/dev/null || echo 0); echo $((n + 1)) > "$0"; '
                            'test "$n" -ge 1', arguments=[counter])
        flaky.set_retry(2)
        sh("work", "echo failing on purpose; exit 3").after(flaky)


@dsl.pipeline(name="metrics-v1")
def metrics_v1():
    metrics = json.dumps({"metrics": [
        {"name": "accuracy-score", "numberValue": 0.85, "format": "PERCENTAGE"},
        {"name": "roc-auc", "numberValue": 0.91, "format": "RAW"}]})
    ui = json.dumps({"version": 1, "outputs": [
        {"type": "markdown", "storage": "inline", "source": "# report"}]})
    report = sh("report", f"echo '{metrics}' > /mlpipeline-metrics.json; "
                          f"echo '{ui}' > /mlpipeline-ui-metadata.json; "
                          "echo '# report' > /tmp/outputs/text/data",
                output_artifact_paths={"mlpipeline-ui-metadata": "/mlpipeline-ui-metadata.json",
                                       "mlpipeline-metrics": "/mlpipeline-metrics.json"},
                file_outputs={"text": "/tmp/outputs/text/data"})
    sh("reader", 'test "$(cat /tmp/inputs/text/data)" = "# report"',
       artifact_argument_paths=[dsl.InputArgumentPath(report.outputs["text"],
                                                      path="/tmp/inputs/text/data")])


for name, pipeline in {"sum_sq": sum_sq_pipeline, "same_path": same_path_pipeline,
                       "control_v1": control_v1, "exit_v1": exit_v1,
                       "metrics_v1": metrics_v1}.items():
    compiler.Compiler().compile(pipeline, f"{name}.yaml")
'''


@pytest.fixture(scope="session")
def kfp2_package(tmp_path_factory):
    """``kfp2_package("chain")``: the IR of a pipeline of engine_pipelines.py."""
    from kfp import compiler

    out = tmp_path_factory.mktemp("engine-kfp2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the default base image's FutureWarning
        module = importlib.import_module("tests.pipelines.engine.engine_pipelines")

    def package(name: str) -> bytes:
        path = out / f"{name}.yaml"
        if not path.exists():
            compiler.Compiler().compile(getattr(module, name), str(path))
        return path.read_bytes()

    return package


@pytest.fixture(scope="session")
def kfp1_packages(tmp_path_factory) -> Path:
    """The kfp 1.8 packages of KFP1_SCRIPT, compiled in one run of its virtualenv."""
    out = tmp_path_factory.mktemp("engine-kfp1")
    run_kfp1(KFP1_SCRIPT, out)
    return out


@pytest.fixture
def engine(settings):
    """The local engine, with quick kill grace; every run still going is stopped after the
    test (before its database is emptied)."""
    from pipelines.engines import engine as configured

    settings.KFDASH_STEP_KILL_GRACE = 1.0
    local = configured()
    yield local
    local.stop_runs(grace=2.0)


@pytest.fixture
def start_run(engine, owner, profile):
    """``start_run(package_bytes, caching=None, **parameters)``: a run, started."""
    from pipelines.models import Run
    from pipelines.specs import load

    def start(package: bytes, caching: bool | None = None, name: str = "test run",
              **parameters) -> Run:
        return Run.start(profile, owner, name=name, loaded=load(package),
                         parameters=parameters, caching=caching)

    return start


@pytest.fixture
def argo_cluster(fake_kube, settings, profile):
    """kubernetes mode against the fake API server: the profile's namespace, every Workflow
    checked by validate_workflow as it is created or replaced, and the Workflow watcher
    recording into the runs (a test plays Argo with ``tests.pipelines.argo_sim.Controller``)."""
    from dashboard import kube
    from pipelines.engines import argo_watch
    from pipelines.engines.argo_manifests import validate_workflow

    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KUBECONFIG = str(fake_kube.kubeconfig_path)
    kube.reset()
    if fake_kube.get_object("namespaces", profile.name) is None:
        fake_kube.put_object({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": profile.name}}, "namespaces")
    fake_kube.register_validator("argoproj.io", "Workflow", validate_workflow)
    watcher = argo_watch.WorkflowWatcher()
    watcher.retry_seconds = 0.05
    watcher.watch_seconds = 2
    watcher.start()
    try:
        wait_until(lambda: any(q.get("watch") for _, _, q in fake_kube.requests),
                   what="the watcher watching")
        yield fake_kube
    finally:
        watcher.stop()
        watcher.join(5)
        kube.reset()


def retrying(read):
    """``read()``, again while SQLite's shared in-memory test database says another
    connection (an engine thread) holds a table."""
    for attempt in range(50):
        try:
            return read()
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02)
    raise AssertionError("unreachable")


def wait_for(run, states=FINISHED, timeout: float = 30.0):
    """The run once its state is one of ``states`` (reloaded from the database)."""
    deadline = time.monotonic() + timeout
    while True:
        retrying(run.refresh_from_db)
        if run.state in states:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"the run is still {run.state} after {timeout} s")
        time.sleep(0.02)


def wait_until(condition, timeout: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while not retrying(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def tasks_of(run) -> dict:
    """node id -> RunTask."""
    return retrying(lambda: {task.node_id: task for task in run.tasks.all()})
