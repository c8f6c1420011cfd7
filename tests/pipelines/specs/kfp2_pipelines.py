"""Pipelines written with the real kfp 2 SDK, covering what its compiler emits; conftest.py
compiles them once per session. Importing this module runs the pipeline functions (that is
how ``@dsl.pipeline`` works), so it is imported only by that fixture."""

from kfp import dsl
from kfp.dsl import (
    HTML,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
    PipelineTaskFinalStatus,
)

IMAGE = "python:3.11"


@dsl.component(base_image=IMAGE)
def make_data(rows: int, data: Output[Dataset]) -> str:
    return str(rows)


@dsl.component(base_image=IMAGE)
def train(data: Input[Dataset], lr: float, model: Output[Model]) -> float:
    return lr


@dsl.component(base_image=IMAGE)
def evaluate(model: Input[Model], metrics: Output[Metrics], roc: Output[ClassificationMetrics],
             report: Output[HTML], notes: Output[Markdown]):
    metrics.log_metric("accuracy", 0.9)


@dsl.component(base_image=IMAGE)
def echo(msg: str):
    print(msg)


@dsl.component(base_image=IMAGE)
def number() -> int:
    return 5


@dsl.component(base_image=IMAGE)
def numbers() -> list:
    return [1, 2]


@dsl.component(base_image=IMAGE)
def square(x: int) -> int:
    return x * x


@dsl.component(base_image=IMAGE)
def total(values: list) -> int:
    return sum(values)


@dsl.component(base_image=IMAGE)
def report_status(status: PipelineTaskFinalStatus):
    print(status.state)


@dsl.pipeline(name="dag-pipeline", description="Parameters of every type, Dataset to Model.")
def dag_pipeline(required: str, text: str = "hi", count: int = 3, rate: float = 0.5,
                 flag: bool = True, items: list = [1, 2], options: dict = {"a": 1}):  # noqa: B006
    data = make_data(rows=count).set_caching_options(False)
    trained = train(data=data.outputs["data"], lr=rate)
    trained.set_retry(num_retries=3, backoff_duration="10s", backoff_factor=2.0)
    trained.set_cpu_limit("2").set_memory_limit("1G").set_cpu_request("1")
    trained.set_memory_request("500M").set_env_variable("MODE", "fast")
    evaluate(model=trained.outputs["model"]).after(data)
    echo(msg=text).set_display_name("Say it")


@dsl.pipeline(name="control-pipeline")
def control_pipeline(values: list = [1, 2, 3], threshold: int = 2):  # noqa: B006
    n = number()
    with dsl.If(n.output > 3, name="big"):
        echo(msg="big")
    with dsl.Elif(n.output > 1):
        echo(msg="medium")
    with dsl.Else():
        echo(msg="small")
    with dsl.Condition(n.output == 5):
        echo(msg="five")
    # a loop in a loop, and a condition in that
    with dsl.ParallelFor(values, parallelism=2), dsl.ParallelFor(["a", "b"]) as letter, \
            dsl.If(n.output > threshold):
        echo(msg=letter)
    with dsl.ParallelFor([{"label": "x"}, {"label": "y"}]) as pair:
        echo(msg=pair.label)
    produced = numbers()
    with dsl.ParallelFor(produced.output) as item:
        echo(msg=item)
        counted = number()
    total(values=dsl.Collected(counted.output))


@dsl.pipeline(name="inner-pipeline")
def inner_pipeline(msg: str) -> int:
    echo(msg=msg)
    return number().output


@dsl.pipeline(name="branchy")
def branchy() -> int:
    n = number()
    with dsl.If(n.output > 3):
        big = square(x=n.output)
    with dsl.Else():
        small = number()
    return dsl.OneOf(big.output, small.output)


@dsl.pipeline(name="exit-pipeline")
def exit_pipeline(greeting: str = "hello"):
    final = report_status()
    with dsl.ExitHandler(final, name="cleanup"):
        first = inner_pipeline(msg=greeting)
        inner_pipeline(msg="again")
        chosen = branchy()
        square(x=first.output)
        square(x=chosen.output)
        echo(msg=f"{greeting}, world")


@dsl.container_component
def shout(word: str):
    return dsl.ContainerSpec(image="alpine", command=["echo"], args=[word])


@dsl.pipeline(name="extras")
def extras_pipeline():
    imported = dsl.importer(artifact_uri="gs://bucket/data.csv", artifact_class=Dataset,
                            reimport=False)
    trained = train(data=imported.output, lr=0.1)
    trained.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    shout(word="hey").ignore_upstream_failure()


PIPELINES = {
    "dag": dag_pipeline,
    "control": control_pipeline,
    "exit": exit_pipeline,
    "extras": extras_pipeline,
}
