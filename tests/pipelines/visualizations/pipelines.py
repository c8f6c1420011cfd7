"""Two real pipelines whose steps write every kind of output kfdash visualizes, and plain
functions that start them on the local engine and wait for them: the tests of this folder
use them, and so can the browser journeys (``start_kfp2_run(profile, user)``).

``visualizations-v2`` (kfp 2, compiled here): ``log_metric``, ``log_roc_curve``,
``log_confusion_matrix``, an ``Output[HTML]`` page, an ``Output[Markdown]``, a CSV
``Output[Dataset]`` and an ``Output[Model]`` folder.

``visualizations-v1`` (kfp 1.8, compiled in its own virtualenv): a lightweight step writing
``mlpipeline-ui-metadata`` (an inline ROC, an ROC from a 3001-point CSV it also declares as
an output, a confusion matrix, a table, inline and file markdown, a web-app, a tensorboard)
and ``mlpipeline-metrics``; a ContainerOp step whose ROC names a bucket kfdash cannot read.
"""

# No ``from __future__ import annotations``: kfp reads the components' annotations.
import functools
import tempfile
import warnings
from pathlib import Path

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Markdown, Metrics, Model, Output

IMAGE = "python:3.11"

# --- kfp 2 ------------------------------------------------------------------------------

V2_ROC = {"fpr": [0.0, 0.0, 0.1, 0.3, 1.0], "tpr": [0.0, 0.5, 0.8, 0.9, 1.0],
          "thresholds": [1.0, 0.9, 0.6, 0.3, 0.0]}
V2_LABELS = ["cat", "dog", "bird"]
V2_MATRIX = [[8, 1, 1], [2, 7, 1], [0, 1, 9]]
# What the HTML output's script does: reading the dashboard's cookie or its parent page
# must fail in the sandbox; the page says what happened.
HTML_MARKER = "Evaluation report"


@dsl.component(base_image=IMAGE)
def evaluate(metrics: Output[Metrics], classification: Output[ClassificationMetrics]):
    metrics.log_metric("accuracy", 0.85)
    metrics.log_metric("samples", 120)
    classification.log_roc_curve(fpr=[0.0, 0.0, 0.1, 0.3, 1.0], tpr=[0.0, 0.5, 0.8, 0.9, 1.0],
                                 threshold=[1.0, 0.9, 0.6, 0.3, 0.0])
    classification.log_confusion_matrix(["cat", "dog", "bird"],
                                        [[8, 1, 1], [2, 7, 1], [0, 1, 9]])


@dsl.component(base_image=IMAGE)
def report(page: Output[HTML], notes: Output[Markdown]):
    with open(page.path, "w") as handle:
        handle.write(
            "<!doctype html><html><head><title>report</title></head><body>"
            "<h1>Evaluation report</h1><p id='cookie'>the script did not run</p>"
            "<p id='parent'></p><script>"
            "var c = document.getElementById('cookie'), p = document.getElementById('parent');"
            "try { c.textContent = 'cookie: [' + document.cookie + ']'; }"
            " catch (e) { c.textContent = 'cookie blocked: ' + e.name; }"
            "try { p.textContent = 'parent: ' + window.parent.document.title; }"
            " catch (e) { p.textContent = 'parent blocked: ' + e.name; }"
            "</script></body></html>")
    with open(notes.path, "w") as handle:
        handle.write("# Notes\n\nThe model is **good**.\n\n<script>alert('markdown')</script>\n")


@dsl.component(base_image=IMAGE)
def make_data(data: Output[Dataset], model: Output[Model]):
    import os

    with open(data.path, "w") as handle:
        handle.write("id,feature,label\n")
        for i in range(30):
            handle.write(f"{i},{i * 0.5},{'cat' if i % 2 else 'dog'}\n")
    os.makedirs(os.path.join(model.path, "assets"), exist_ok=True)
    with open(os.path.join(model.path, "weights.bin"), "wb") as handle:
        handle.write(bytes(range(256)) * 4)
    with open(os.path.join(model.path, "config.json"), "w") as handle:
        handle.write('{"layers": 2}')
    with open(os.path.join(model.path, "assets", "vocab.txt"), "w") as handle:
        handle.write("cat\ndog\n")


@dsl.pipeline(name="visualizations-v2")
def visualizations_v2():
    evaluate()
    report()
    make_data()


# --- kfp 1.8 ----------------------------------------------------------------------------

V1_ROC_POINTS = 3001  # tpr = min(1, 2 fpr) on an even grid: the exact AUC is 0.75
V1_SCRIPT = r'''
import json

from kfp import compiler, dsl
from kfp.components import OutputPath, func_to_container_op


def evaluate(roc_csv_path: OutputPath("CSV"), notes_path: OutputPath("Markdown"),
             mlpipeline_ui_metadata_path: OutputPath(), mlpipeline_metrics_path: OutputPath()):
    import json

    points = 3001
    with open(roc_csv_path, "w") as handle:
        for i in range(points):
            fpr = i / (points - 1)
            handle.write(f"{fpr},{min(1.0, 2 * fpr)},{1 - fpr}\n")
    with open(notes_path, "w") as handle:
        handle.write("## Notes from a file\n\n<script>alert('x')</script> *fine*\n")
    roc_schema = [{"name": "fpr", "type": "NUMBER"}, {"name": "tpr", "type": "NUMBER"},
                  {"name": "thresholds", "type": "NUMBER"}]
    outputs = [
        {"type": "roc", "format": "csv", "storage": "inline", "schema": roc_schema,
         "source": "0.0,0.0,1.0\n0.1,0.8,0.5\n1.0,1.0,0.0\n"},
        {"type": "roc", "format": "csv", "schema": roc_schema, "source": roc_csv_path},
        {"type": "confusion_matrix", "format": "csv", "storage": "inline",
         "labels": ["cat", "dog"],
         "schema": [{"name": "target", "type": "CATEGORY"},
                    {"name": "predicted", "type": "CATEGORY"},
                    {"name": "count", "type": "NUMBER"}],
         "source": "cat,cat,8\ncat,dog,2\ndog,cat,1\ndog,dog,9\n"},
        {"type": "table", "format": "csv", "storage": "inline", "header": ["model", "accuracy"],
         "source": "tree,0.81\nforest,0.85\n"},
        {"type": "markdown", "storage": "inline", "source": "# Eval\nacc **0.85**"},
        {"type": "markdown", "source": notes_path},
        {"type": "web-app", "storage": "inline",
         "source": "<html><body><h1>Web app</h1><script>document.body.append('ran')</script>"
                   "</body></html>"},
        {"type": "tensorboard", "source": "gs://bucket/logs/run-1"},
    ]
    with open(mlpipeline_ui_metadata_path, "w") as handle:
        json.dump({"version": 1, "outputs": outputs}, handle)
    with open(mlpipeline_metrics_path, "w") as handle:
        json.dump({"metrics": [
            {"name": "accuracy-score", "numberValue": 0.85, "format": "PERCENTAGE"},
            {"name": "roc-auc", "numberValue": 0.91, "format": "RAW"}]}, handle)


evaluate_op = func_to_container_op(evaluate, base_image="python:3.11")


@dsl.pipeline(name="visualizations-v1")
def visualizations_v1():
    evaluate_op()
    ui = json.dumps({"version": 1, "outputs": [
        {"type": "roc", "format": "csv", "source": "gs://bucket/roc.csv"},
        {"type": "markdown", "storage": "inline", "source": "summary **done**"}]})
    dsl.ContainerOp(
        name="summary", image="alpine", command=["sh", "-c"],
        arguments=[f"echo '{ui}' > /mlpipeline-ui-metadata.json"],
        output_artifact_paths={"mlpipeline-ui-metadata": "/mlpipeline-ui-metadata.json"})


compiler.Compiler().compile(visualizations_v1, "visualizations_v1.yaml")
'''
V1_TASKS = ("evaluate", "summary")


@functools.cache
def kfp2_package() -> bytes:
    from kfp import compiler

    path = Path(tempfile.mkdtemp(prefix="viz-v2-")) / "visualizations_v2.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the default base image's FutureWarning
        compiler.Compiler().compile(visualizations_v2, str(path))
    return path.read_bytes()


@functools.cache
def kfp1_package() -> bytes:
    from tests.kfp_sdks import run_kfp1

    folder = Path(tempfile.mkdtemp(prefix="viz-v1-"))
    run_kfp1(V1_SCRIPT, folder)
    return (folder / "visualizations_v1.yaml").read_bytes()


def start_kfp2_run(profile, user, name: str = "visualizations v2", timeout: float = 120):
    """The v2 run, started as ``user`` in ``profile`` and finished."""
    return _finished(_start(profile, user, kfp2_package(), name), timeout)


def start_kfp1_run(profile, user, name: str = "visualizations v1", timeout: float = 120):
    """The v1 run, started as ``user`` in ``profile`` and finished."""
    return _finished(_start(profile, user, kfp1_package(), name), timeout)


def _start(profile, user, package: bytes, name: str):
    from pipelines.models import Run
    from pipelines.specs import load

    return Run.start(profile, user, name=name, loaded=load(package), caching=False)


def _finished(run, timeout: float):
    from tests.pipelines.engine.conftest import wait_for

    return wait_for(run, timeout=timeout)
