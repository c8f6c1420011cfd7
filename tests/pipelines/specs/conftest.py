"""Real packages from the real compilers, compiled once per session: kfp 2 in this process,
kfp 1.8 in one subprocess of its own virtualenv (it is slow to import)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import pytest

from tests.kfp_sdks import run_kfp1

KFP1_SCRIPT = '''
import sys

from kfp import compiler, dsl
from kfp.compiler import main as dsl_compile
from kfp.components import OutputPath, func_to_container_op
from kubernetes.client import V1EnvVar


def step(name, *words, **kwargs):
    return dsl.ContainerOp(name=name, image="alpine", command=["echo"], arguments=list(words),
                           **kwargs)


DEMO = """
from kfp import dsl

@dsl.pipeline(name="demo", description="Two steps, one after the other.")
def demo():
    first = dsl.ContainerOp(name="step1", image="alpine", command=["echo", "one"])
    dsl.ContainerOp(name="step2", image="alpine", command=["echo", "two"]).after(first)
"""
with open("demo_src.py", "w") as handle:
    handle.write(DEMO)
sys.argv = ["dsl-compile", "--py", "demo_src.py", "--output", "demo-0.tar.gz"]
dsl_compile.main()  # what the dsl-compile command runs
compiler.Compiler().compile(sys.modules["demo_src"].demo, "demo.tar.gz")


@dsl.pipeline(name="demo-param")
def demo_param(msg: str = "hello"):
    step("say", msg)


compiler.Compiler().compile(demo_param, "demo_param.yaml")


def sum_sq(a: int, b: int) -> int:
    return a * a + b * b


sum_sq_op = func_to_container_op(sum_sq)


@dsl.pipeline(name="sum-sq", description="func_to_container_op")
def sum_sq_pipeline(a: int = 3, b: int = 4):
    first = sum_sq_op(a, b)
    sum_sq_op(first.output, 1)


compiler.Compiler().compile(sum_sq_pipeline, "sum_sq.tar.gz")


def lightweight(mlpipeline_ui_metadata: OutputPath(), mlpipeline_metrics: OutputPath()):
    open(mlpipeline_ui_metadata, "w").write("{}")
    open(mlpipeline_metrics, "w").write("{}")


@dsl.pipeline(name="metrics-v1")
def metrics_v1():
    report = step("report", "{}", output_artifact_paths={
        "mlpipeline-ui-metadata": "/mlpipeline-ui-metadata.json",
        "mlpipeline-metrics": "/mlpipeline-metrics.json"})
    report.set_retry(2)
    report.set_cpu_limit("1").set_memory_limit("1G")
    report.add_env_variable(V1EnvVar(name="MODE", value="fast"))
    report.execution_options.caching_strategy.max_cache_staleness = "P0D"
    func_to_container_op(lightweight)()


compiler.Compiler().compile(metrics_v1, "metrics_v1.yaml")


def gen() -> list:
    return [1, 2, 3]


gen_op = func_to_container_op(gen)


@dsl.pipeline(name="control-v1")
def control_v1(limit: int = 10):
    total = sum_sq_op(limit, 1)
    with dsl.Condition(total.output > 10):
        step("big", "big")
    with dsl.ParallelFor([1, 2, 3], parallelism=2) as item:
        step("each", item)
    generated = gen_op()
    with dsl.ParallelFor(generated.output) as value:
        step("each-generated", value)
    with dsl.ParallelFor([{"a": 1, "b": 2}]) as pair:
        step("each-pair", pair.a)


compiler.Compiler().compile(control_v1, "control_v1.yaml")


@dsl.pipeline(name="exit-v1")
def exit_v1():
    goodbye = step("goodbye", "bye")
    with dsl.ExitHandler(goodbye):
        step("work", "work")


compiler.Compiler().compile(exit_v1, "exit_v1.yaml")
'''


@pytest.fixture(scope="session")
def kfp2_packages(tmp_path_factory) -> Path:
    """dag.yaml, control.yaml, exit.yaml and dag.json from kfp 2's Compiler."""
    from kfp import compiler

    out = tmp_path_factory.mktemp("kfp2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dsl.Condition is deprecated, which is why it is here
        pipelines = importlib.import_module("tests.pipelines.specs.kfp2_pipelines")
        for name, pipeline in pipelines.PIPELINES.items():
            compiler.Compiler().compile(pipeline, str(out / f"{name}.yaml"))
        compiler.Compiler().compile(pipelines.dag_pipeline, str(out / "dag.json"))
    return out


@pytest.fixture(scope="session")
def kfp1_packages(tmp_path_factory) -> Path:
    """The kfp 1.8 packages of KFP_SCRIPT, compiled in one run of the kfp 1.8 virtualenv."""
    out = tmp_path_factory.mktemp("kfp1")
    run_kfp1(KFP1_SCRIPT, out)
    return out
