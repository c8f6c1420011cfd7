"""Pipelines for the page tests and the browser journey, written with the real kfp 2 SDK
(importing this module runs the pipeline functions, as @dsl.pipeline does)."""

from pathlib import Path

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

IMAGE = "python:3.11"


@dsl.component(base_image=IMAGE)
def load_data(rows: int, data: Output[Dataset]) -> int:
    return rows


@dsl.component(base_image=IMAGE)
def train(data: Input[Dataset], lr: float, model: Output[Model]) -> float:
    return lr


@dsl.component(base_image=IMAGE)
def evaluate(model: Input[Model], metrics: Output[Metrics]) -> float:
    return 0.9


@dsl.component(base_image=IMAGE)
def publish(score: float, target: str):
    print(score, target)


@dsl.component(base_image=IMAGE)
def notify(msg: str):
    print(msg)


@dsl.pipeline(name="hello-pipeline", description="Load, train, evaluate; publish if good.")
def hello_pipeline(rows: int = 100, lr: float = 0.1, target: str = "prod"):
    data = load_data(rows=rows)
    model = train(data=data.outputs["data"], lr=lr).set_retry(num_retries=2)
    score = evaluate(model=model.outputs["model"]).set_caching_options(False)
    with dsl.If(score.outputs["Output"] > 0.8, name="good-enough"):
        publish(score=score.outputs["Output"], target=target)
    with dsl.ParallelFor(["a", "b"], parallelism=1) as shard:
        notify(msg=shard)


@dsl.pipeline(name="big-pipeline", description="About fifty tasks, a loop and a condition.")
def big_pipeline(rows: int = 1000, lr: float = 0.05, target: str = "staging"):
    """Eight preprocessing chains of four steps, a sweep over learning rates, a condition
    that publishes the best, and a few reports: 50 tasks in all."""
    with dsl.ExitHandler(notify(msg="done").set_display_name("notify-done"), name="cleanup"):
        chains = []
        for i in range(8):
            step = load_data(rows=rows).set_display_name(f"load-{i}")
            for j in range(3):
                step = load_data(rows=step.outputs["Output"]).set_display_name(f"clean-{i}-{j}")
            chains.append(step)
        merged = load_data(rows=rows).set_display_name("merge").after(*chains)
        with dsl.ParallelFor([0.1, 0.01, 0.001, 0.0001], parallelism=2) as rate:
            trained = train(data=merged.outputs["data"], lr=rate)
            evaluate(model=trained.outputs["model"])
        final = train(data=merged.outputs["data"], lr=lr).set_display_name("train-final")
        score = evaluate(model=final.outputs["model"]).set_display_name("evaluate-final")
        with dsl.If(score.outputs["Output"] > 0.8, name="good-enough"):
            publish(score=score.outputs["Output"], target=target)
            for k in range(3):
                notify(msg=f"published {k}").set_display_name(f"announce-{k}")
        with dsl.Else():
            notify(msg="not good enough").set_display_name("warn")
        for k in range(7):
            notify(msg=f"report {k}").set_display_name(f"report-{k}").after(score)


def compiled(name: str, folder: Path) -> bytes:
    """The KFP v2 IR YAML the real compiler writes for the pipeline function ``name``."""
    out = folder / f"{name}.yaml"
    compiler.Compiler().compile(globals()[name], str(out))
    return out.read_bytes()
