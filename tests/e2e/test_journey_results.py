"""Run results in real Chromium: real runs of pipelines compiled by the real kfp SDKs
execute on the local engine, then the run's outputs are drawn (ROC curve with its AUC,
confusion matrix with a row-normalized view, metrics, markdown without its script, and an
HTML output that cannot read the dashboard's cookie nor its page), in the "Run output" tab
and in a step's panel; two runs are compared (differences only, overlaid ROC curves, the
parallel-coordinates plot)."""

import re

from kfp import compiler, dsl
from kfp.dsl import ClassificationMetrics, Metrics, Output
from playwright.sync_api import Page, expect

from tests.e2e.test_journey_pipelines import click_node, upload
from tests.e2e.test_layout import record_problems
from tests.pipelines.visualizations.pipelines import kfp1_package, kfp2_package

ANA = "ana@example.com"
NS = "ana-lab"


def start_run(page: Page, server, package: bytes, filename: str, **parameters) -> str:
    """Upload ``package``, start a run of it with ``parameters``; wait until it succeeded.
    Returns the run page's URL."""
    upload(page, server, package, filename)
    page.get_by_role("link", name="Create run").click()
    for name, value in parameters.items():
        page.locator(f"[data-parameter={name}] input").fill(str(value))
    page.get_by_role("button", name="Start").click()
    expect(page.locator("h1 [data-run-state]")).to_have_text("Succeeded", timeout=90_000)
    return page.url.split("#")[0]


def open_outputs(page: Page) -> None:
    page.get_by_role("tab", name="Run output").click()
    expect(page.locator("[data-run-outputs]")).to_be_attached(timeout=10_000)


def test_it_draws_a_v2_runs_outputs_and_keeps_html_in_a_sandbox(server, create_users,
                                                                 new_page, log_in, tmp_path):
    create_users((ANA, "--namespace", NS))
    page = new_page(viewport={"width": 1440, "height": 1000})
    problems = record_problems(page)
    log_in(page, ANA)
    start_run(page, server, kfp2_package(), "visualizations_v2.yaml")
    open_outputs(page)
    roc = page.locator("[data-viz-kind=roc]")
    expect(roc.locator("[data-viz-chart][data-drawn=true]")).to_be_attached(timeout=20_000)
    # AUC of the logged curve (0,0) (0,.5) (.1,.8) (.3,.9) (1,1) by the trapezoid rule.
    expect(roc.locator("[data-viz-auc]")).to_have_text("0.9000")
    assert roc.locator(".scatterlayer .trace").count() == 2  # the curve and chance
    matrix = page.locator("[data-viz-kind=confusion_matrix]")
    chart = matrix.locator("[data-viz-chart]")
    expect(chart).to_have_attribute("data-drawn", "true")
    cells = chart.locator("text.textpoint, .hm text, text")
    expect(cells.filter(has_text=re.compile(r"^9$")).first).to_be_visible()
    matrix.get_by_label("Row-normalized").check()
    expect(chart).to_have_attribute("data-normalized", "true")
    expect(chart.locator("text").filter(has_text="0.80").first).to_be_visible()
    metrics = page.locator("[data-viz-kind=metrics]")
    expect(metrics.locator("[data-viz-metric=accuracy]")).to_contain_text("0.85")
    # Markdown: rendered, its <script> shown as text and never run.
    markdown = page.locator("[data-viz-kind=markdown] .viz-markdown")
    expect(markdown.locator("h1")).to_have_text("Notes")
    expect(markdown.locator("strong")).to_have_text("good")
    assert markdown.locator("script").count() == 0
    # HTML: it runs in its sandbox, but cannot read the cookie nor the page around it.
    frame = page.frame_locator("[data-viz-kind=html] iframe")
    expect(frame.locator("h1")).to_have_text("Evaluation report", timeout=10_000)
    expect(frame.locator("#cookie")).to_have_text(re.compile(r"^cookie blocked"))
    expect(frame.locator("#parent")).to_have_text(re.compile(r"^parent blocked"))
    assert page.context.cookies()[0]["value"]  # there was a session cookie to steal
    expect(page.locator("[data-viz-kind=dataset] table")).to_contain_text("feature")
    expect(page.locator("[data-viz-kind=model]")).to_contain_text("weights.bin")
    page.screenshot(path=tmp_path / "run-output-v2.png", full_page=True)
    # The step's panel draws its own outputs.
    page.get_by_role("tab", name="Graph").click()
    expect(page.locator("[data-pipeline-graph][data-ready='true']")).to_be_attached()
    click_node(page, "evaluate")
    panel = page.locator("[data-graph-panel]")
    expect(panel.locator("[data-viz-kind=roc] [data-viz-chart][data-drawn=true]")) \
        .to_be_attached(timeout=20_000)
    expect(panel.locator("[data-viz-kind=confusion_matrix] [data-viz-chart]")) \
        .to_have_attribute("data-drawn", "true")
    page.screenshot(path=tmp_path / "step-panel.png")
    # The namespace's artifacts: the classification output's page draws it too, and says
    # which step made it.
    page.get_by_role("link", name="Artifacts").click()
    expect(page.locator("main")).to_contain_text("system.ClassificationMetrics")
    page.get_by_role("link", name="classification", exact=True).click()
    expect(page.locator("[data-viz-kind=roc] [data-viz-chart]")).to_have_attribute(
        "data-drawn", "true", timeout=20_000)
    expect(page.locator("main")).to_contain_text("evaluate")
    assert problems == []


def test_it_draws_a_v1_runs_ui_metadata(server, create_users, new_page, log_in):
    create_users((ANA, "--namespace", NS))
    page = new_page(viewport={"width": 1440, "height": 1000})
    problems = record_problems(page)
    log_in(page, ANA)
    start_run(page, server, kfp1_package(), "visualizations_v1.yaml")
    open_outputs(page)
    rocs = page.locator("[data-viz-kind=roc] [data-viz-chart]")
    expect(rocs.first).to_have_attribute("data-drawn", "true", timeout=20_000)
    expect(rocs.nth(1)).to_have_attribute("data-drawn", "true")
    # The 3001-point curve from a file: drawn with fewer points, its AUC exact.
    expect(page.locator("[data-viz-kind=roc]").filter(has_text="3001 points")
           .locator("[data-viz-auc]")).to_have_text("0.7500")
    expect(page.locator("[data-viz-kind=confusion_matrix] [data-viz-chart]")) \
        .to_have_attribute("data-drawn", "true")
    expect(page.locator("[data-viz-kind=table]")).to_contain_text("forest")
    expect(page.locator("[data-viz-kind=tensorboard]")).to_contain_text("not supported here")
    expect(page.locator("[data-viz-kind=metrics]")).to_contain_text("accuracy-score")
    # A source kfdash cannot read says so on its card; the others are unaffected.
    expect(page.locator(".viz-error").filter(has_text="gs://bucket/roc.csv")).to_be_visible()
    frame = page.frame_locator("[data-viz-kind=html] iframe")
    expect(frame.locator("h1")).to_have_text("Web app", timeout=10_000)
    assert problems == []


@dsl.component(base_image="python:3.11")
def train(c: float, epochs: int, metrics: Output[Metrics],
          classification: Output[ClassificationMetrics]):
    """A stand-in model whose quality depends on ``c``: its ROC bends with it."""
    steps = [i / 10 for i in range(11)]
    tpr = [min(1.0, f ** (1 / (1 + c))) for f in steps]
    metrics.log_metric("accuracy", round(0.5 + c / 10, 3))
    metrics.log_metric("epochs-run", epochs)
    classification.log_roc_curve(fpr=steps, tpr=tpr, threshold=[1 - f for f in steps])
    classification.log_confusion_matrix(["no", "yes"], [[int(10 * c), 3], [2, 9]])


@dsl.pipeline(name="tuned")
def tuned(c: float = 1.0, epochs: int = 3):
    train(c=c, epochs=epochs)


def test_it_compares_two_runs(server, create_users, new_page, log_in, tmp_path):
    out = tmp_path / "tuned.yaml"
    compiler.Compiler().compile(tuned, str(out))
    create_users((ANA, "--namespace", NS))
    page = new_page(viewport={"width": 1440, "height": 1000})
    problems = record_problems(page)
    log_in(page, ANA)
    start_run(page, server, out.read_bytes(), "tuned.yaml", c="0.5")
    page.get_by_role("link", name="Clone").click()
    page.locator("[data-parameter=c] input").fill("2")
    page.get_by_label("Run name").fill("strong")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("h1 [data-run-state]")).to_have_text("Succeeded", timeout=90_000)
    page.goto(f"{server.url}/ns/{NS}/runs/")
    compare = page.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    boxes = page.locator("input[name=runs]")
    boxes.nth(0).check()
    expect(compare).to_be_disabled()  # one run is not a comparison
    boxes.nth(1).check()
    expect(compare).to_be_enabled()
    compare.click()
    expect(page).to_have_url(re.compile(r"/runs/compare/\?runs=[0-9a-f-]{36},[0-9a-f-]{36}$"))
    # Parameters and metrics side by side; "differences only" hides what agrees.
    epochs = page.locator("tr[data-compare-row=epochs]")
    expect(page.locator("tr[data-compare-row=c]")).to_contain_text("0.5")
    expect(epochs).to_be_visible()
    page.get_by_label("Show differences only").check()
    expect(epochs).to_be_hidden()
    expect(page.locator("tr[data-compare-row=accuracy]")).to_be_visible()
    # One ROC curve per run, with a legend; the parameters against the chosen metric.
    overlay = page.locator("[data-roc-overlay]")
    expect(overlay).to_have_attribute("data-drawn", "true", timeout=20_000)
    assert overlay.locator(".scatterlayer .trace").count() == 3  # two runs and chance
    expect(overlay.locator(".legend")).to_contain_text("strong")
    parallel = page.locator("[data-parallel-chart]")
    expect(parallel).to_have_attribute("data-drawn", "true")
    expect(parallel).to_have_attribute("data-metric", "accuracy")
    expect(parallel.locator(".parcoords")).to_be_attached()
    page.locator("[data-parallel-metric]").select_option("epochs-run")
    expect(parallel).to_have_attribute("data-metric", "epochs-run")
    assert page.locator(".compare-matrix [data-viz-chart][data-drawn=true]").count() == 2
    page.screenshot(path=tmp_path / "compare.png", full_page=True)
    # The URL can be shared with a colleague who may view the namespace.
    shared = page.url
    other = new_page()
    create_users(("bob@example.com",))
    log_in(other, "bob@example.com")
    assert other.goto(shared).status == 404  # bob is not a contributor yet
    server.manage("shell", "-c", (
        "from dashboard.models import Profile; "
        f"p = Profile.objects.get(name={NS!r}); "
        "p.set_contributor('bob@example.com', 'view', p.owner)"))
    assert other.goto(shared).status == 200
    expect(other.locator("[data-roc-overlay]")).to_have_attribute("data-drawn", "true",
                                                                  timeout=20_000)
    assert problems == []
