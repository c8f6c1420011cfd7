"""The run page in real Chromium, with runs whose steps change while the page is open.

First, rows committed by another process (a `manage.py shell`, as an engine in another
server process would; the server runs with Redis as its channel layer): nodes change
colour, a loop's iterations are picked, the step panel shows values and downloads, the
timeline and the state history follow. Then a real run of the local engine in a server as
`make run` starts it (in-memory layer): its step's log streams into the panel as it is
written, the loop's iterations run, and the log is kept afterwards."""

import time

import pytest
from kfp import compiler, dsl
from playwright.sync_api import Page, expect

from tests.e2e.test_journey_pipelines import click_node
from tests.e2e.test_layout import record_problems
from tests.pipelines.test_live_redis import MAKE_RUN, redis_url  # noqa: F401  (a fixture)

ANA = "ana@example.com"
NS = "ana-lab"

# Run in the server's `manage.py shell`: what an engine commits.
COMMIT = """
from pipelines.models import Run
run = Run.objects.get(pk={run_id!r})
changed = []
for node_id, fields in {tasks!r}.items():
    task = run.tasks.get(node_id=node_id)
    for name, value in fields.items():
        setattr(task, name, value)
    changed.append(task)
run.commit_changes(changed, **{run_fields!r})
"""


def commit(server, run_id: str, tasks: dict, **run_fields) -> None:
    server.manage("shell", "-c", COMMIT.format(run_id=run_id, tasks=tasks, run_fields=run_fields))


@pytest.fixture
def server(request, kfdash_server):
    """A kfdash server as `make run` starts it (in-memory channel layer); for a test that
    asks for ``redis_url`` too, one whose pages hear commits made by other processes."""
    if "redis_url" in request.fixturenames:
        return kfdash_server(CHANNEL_LAYER_URL=request.getfixturevalue("redis_url"))
    return kfdash_server()


def node_classes(page: Page, node_id: str) -> list[str]:
    return page.evaluate("(id) => window.pipelineGraph.getElementById(id).classes()", node_id)


def wait_for_js(page: Page, function: str, arg=None, timeout: float = 15.0) -> None:
    """Until the page's ``function(arg)`` is true. (Playwright's own wait_for_function
    builds its predicate with eval inside the page, which kfdash's CSP refuses; evaluate
    runs through the debugger protocol, which it does not govern.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function, arg):
        assert time.monotonic() < deadline, f"{function} stayed false for {timeout} s"
        time.sleep(0.05)


def expect_state(page: Page, node_id: str, state: str) -> None:
    wait_for_js(page, "([id, cls]) => window.pipelineGraph.getElementById(id).hasClass(cls)",
                [node_id, f"s-{state}"])


def node_label(page: Page, node_id: str) -> str:
    return page.evaluate("(id) => window.pipelineGraph.getElementById(id).data('label')", node_id)


def open_every_state_run(server, create_users, log_in, page: Page):
    """Ana's run with a task in every state (tests/pipelines/run_rows.py), open in ``page``
    once its graph is drawn: (run id, page, the page's problems as they come)."""
    create_users((ANA, "--namespace", NS))
    run_id = server.manage("shell", "-c", MAKE_RUN.format(ns=NS, email=ANA)).stdout.split()[-1]
    problems = record_problems(page)
    log_in(page, ANA)
    page.goto(f"{server.url}/ns/{NS}/runs/{run_id}/")
    expect(page.locator("[data-pipeline-graph][data-ready='true']")).to_be_attached(
        timeout=30_000)
    wait_for_js(page, "() => document.body.dataset.revision === '0'")
    return run_id, page, problems


def test_it_shows_a_run_changing_live(redis_url, server, create_users, new_page, log_in,  # noqa: F811
                                      tmp_path):
    wide = new_page(viewport={"width": 1440, "height": 1000})
    run_id, page, problems = open_every_state_run(server, create_users, log_in, wide)
    # Every node in its state's colour; the skipped condition took publish with it.
    for node, state in [("load-data", "SUCCEEDED"), ("train", "CACHED"),
                        ("evaluate", "RUNNING"), ("condition-1", "SKIPPED"),
                        ("publish", "SKIPPED"), ("for-loop-3", "RUNNING"),
                        ("notify", "FAILED")]:  # the loop shows its failed iteration
        assert f"s-{state}" in node_classes(page, node), node
    assert "iteration 6 of 8, 1 failed" in node_label(page, "for-loop-3")
    expect(page.locator("[data-run-progress]")).to_have_text("7 of 11 steps ended, 1 failed")
    page.screenshot(path=tmp_path / "run-graph.png")

    # The failed step's panel: its error, exit code, image and where it ran.
    click_node(page, "notify")
    panel = page.locator("[data-graph-panel]")
    expect(panel).to_contain_text("notify failed: exit code 1")
    expect(panel).to_contain_text("iteration 6")
    expect(panel).to_contain_text("would run in python:3.11; in local mode it ran on this host")
    # Another iteration, picked in the panel.
    panel.get_by_label("Iteration of for each in [a, b] (1 at a time)").select_option("2")
    expect_state(page, "notify", "SUCCEEDED")
    expect(panel.locator("[data-step-state]")).to_have_text("Succeeded")
    assert "iteration 3 of 8, 1 failed" in node_label(page, "for-loop-3")
    # The loop's own panel counts its iterations by state and steps through them.
    click_node(page, "for-loop-3")
    expect(panel.locator(".run-loop-counts")).to_have_text(
        "8 iterations: 1 pending, 1 running, 1 succeeded, 1 cached, 1 skipped, 1 failed, "
        "1 canceling, 1 canceled")
    panel.get_by_role("button", name="Next iteration").click()
    wait_for_js(page, "() => window.pipelineGraph.getElementById('for-loop-3')"
                      ".data('label').includes('iteration 4 of 8')")
    expect_state(page, "notify", "CACHED")
    panel.get_by_role("button", name="Follow the run").click()
    expect_state(page, "notify", "FAILED")

    # load-data's panel: values and a download of its dataset.
    click_node(page, "load-data")
    expect(panel.locator("h3")).to_have_text("load-data")
    expect(panel).to_contain_text("rows = 100")
    with page.expect_download() as download:
        panel.get_by_role("link", name="Download").first.click()
    assert download.value.suggested_filename == "data"
    page.screenshot(path=tmp_path / "run-panel.png")

    # The engine finishes evaluate in another process: its node turns green live.
    commit(server, run_id, {"evaluate": {"state": "SUCCEEDED", "exit_code": 0}})
    expect_state(page, "evaluate", "SUCCEEDED")
    expect(page.locator("[data-run-progress]")).to_have_text("8 of 11 steps ended, 1 failed")
    # ... then the run fails: the header says so and offers Retry instead of Terminate.
    commit(server, run_id, {}, state="FAILED", error="notify failed")
    expect(page.locator("h1 [data-run-state]")).to_have_text("Failed")
    expect(page.locator("[data-run-error]")).to_have_text("notify failed")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_role("button", name="Terminate")).to_be_hidden()

    # The timeline draws the started steps, coloured by state.
    page.get_by_role("tab", name="Timeline").click()
    bars = page.locator(".tl-row[data-state='SUCCEEDED'] .tl-bar")
    expect(bars.first).to_be_visible()
    assert page.locator(".tl-row").count() == 11
    page.screenshot(path=tmp_path / "run-timeline.png")
    # Details: the state history gained the failure.
    page.get_by_role("tab", name="Details").click()
    expect(page.locator("[data-run-history] tr").last).to_contain_text("Failed")
    expect(page.locator("[data-run-history] tr").last).to_contain_text("notify failed")
    # On a phone nothing is wider than the screen.
    page.set_viewport_size({"width": 375, "height": 740})
    for tab in ["Graph", "Timeline", "Parameters", "Spec", "Details"]:
        page.get_by_role("tab", name=tab).click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, tab
    page.screenshot(path=tmp_path / "run-phone.png", full_page=True)
    assert problems == []


# A change committed without its events reaching anyone, as when the channel layer drops
# what a page fell too far behind on.
COMMIT_UNHEARD = """
from pipelines.models import Run, RunTask
run = Run.objects.get(pk={run_id!r})
RunTask.objects.filter(run=run, node_id="evaluate").update(state="SUCCEEDED",
                                                          revision=run.revision + 1)
Run.objects.filter(pk=run.pk).update(revision=run.revision + 1)
"""


def test_a_page_that_missed_events_loads_the_run_again(redis_url, server,  # noqa: F811
                                                        create_users, new_page, log_in):
    run_id, page, problems = open_every_state_run(server, create_users, log_in, new_page())
    server.manage("shell", "-c", COMMIT_UNHEARD.format(run_id=run_id))
    commit(server, run_id, {}, state="FAILED", error="notify failed")
    # Revision 2 came after 0: the page asked for the run again, and has revision 1 too.
    expect(page.locator("h1 [data-run-state]")).to_have_text("Failed")
    expect_state(page, "evaluate", "SUCCEEDED")
    wait_for_js(page, "() => document.body.dataset.revision === '2'")
    assert problems == []


# A pipeline slow enough to watch: a step that counts for three seconds, then a loop.
@dsl.component(base_image="python:3.11")
def count(n: int) -> int:
    import time

    for i in range(n):
        print(f"tick {i}", flush=True)
        time.sleep(0.5)
    return n


@dsl.pipeline(name="slow-pipeline")
def slow_pipeline(n: int = 6):
    first = count(n=n)
    with dsl.ParallelFor([1, 2]) as item:
        count(n=item).after(first)


def test_it_follows_a_real_run_of_the_local_engine(server, create_users, new_page, log_in,
                                                    tmp_path):
    from tests.e2e.test_journey_pipelines import upload

    out = tmp_path / "slow.yaml"
    compiler.Compiler().compile(slow_pipeline, str(out))
    create_users((ANA, "--namespace", NS))
    page = new_page(viewport={"width": 1440, "height": 1000})
    problems = record_problems(page)
    log_in(page, ANA)
    upload(page, server, out.read_bytes(), "slow.yaml")
    page.get_by_role("link", name="Create run").click()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("[data-pipeline-graph][data-ready='true']")).to_be_attached(
        timeout=30_000)
    # The first step runs while the page is open; its log streams into its panel.
    expect_state(page, "count", "RUNNING")
    click_node(page, "count")
    log = page.locator("[data-graph-panel] [data-step-log]")
    expect(log).to_contain_text("tick 1", timeout=15_000)
    expect(log).not_to_contain_text("tick 5")
    expect(log).to_contain_text("tick 5", timeout=15_000)
    expect_state(page, "count", "SUCCEEDED")
    expect(page.locator("[data-graph-panel] [data-step-state]")).to_have_text("Succeeded")
    # The loop's two iterations run and succeed; so does the run, with no reload.
    expect_state(page, "for-loop-2", "SUCCEEDED")
    expect(page.locator("h1 [data-run-state]")).to_have_text("Succeeded", timeout=30_000)
    assert "iteration 1 of 2" in node_label(page, "for-loop-2")
    # The log is kept: the panel shows it again, and it downloads as text.
    click_node(page, "count")
    expect(log).to_contain_text("tick 0")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the full log").click()
    assert "tick 5" in download.value.path().read_text()
    assert problems == []
