"""Runs in the browser: upload a small pipeline, create a run with a parameter, land on the
run's page, watch the runs list change state live (the local engine really runs the
steps), see a run started elsewhere announced, archive from the list, and follow the
links the kfp SDK prints (the KFP UI's hash routes)."""

# No ``from __future__ import annotations``: kfp reads the component signatures' types.
import re

from kfp import compiler, dsl
from playwright.sync_api import Page, expect

ANA = "ana@example.com"
NS = "ana-lab"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RUN_DONE = 90_000  # ms: a two-step run, the first step sleeping a few seconds


@dsl.component(base_image="python:3.11")
def pause(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@dsl.component(base_image="python:3.11")
def report(message: str, waited: float):
    print(message, waited)


@dsl.pipeline(name="slow-hello", description="Waits, then says so.")
def slow_hello(seconds: float = 0.5, message: str = "hello"):
    waited = pause(seconds=seconds)
    report(message=message, waited=waited.output)


def nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def run_row(page: Page, name: str):
    return page.locator("tr[data-run]", has=page.get_by_role("link", name=name, exact=True))


def test_it_creates_a_run_and_watches_it_live_in_the_list(server, new_page, create_users,
                                                          log_in, tmp_path):
    create_users((ANA, "--namespace", NS))
    package = tmp_path / "slow-hello.yaml"
    compiler.Compiler().compile(slow_hello, str(package))
    page = new_page()
    problems: list[str] = []  # console errors and uncaught exceptions on the runs pages
    page.on("console", lambda m: problems.append(f"{page.url}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    log_in(page, ANA)

    nav(page).get_by_role("link", name="Runs", exact=True).click()
    expect(page.get_by_text("No runs yet.")).to_be_visible()

    # Upload the pipeline; its page offers "Create run".
    nav(page).get_by_role("link", name="Pipelines").click()
    page.get_by_role("link", name="Upload pipeline").click()
    page.get_by_label("Pipeline file", exact=True).set_input_files(str(package))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", name="slow-hello", exact=True)).to_be_visible()
    pipeline_url = page.url
    page.get_by_role("link", name="Create run").click()

    # Choosing another pipeline, or a file, shows its parameters (run-form.js asks the server).
    pipeline_select = page.get_by_label("Pipeline", exact=True)
    pipeline_select.select_option(label="Choose a pipeline…")
    expect(page.get_by_text("Choose a pipeline to see its parameters.")).to_be_visible()
    page.get_by_label("A pipeline file").check()
    expect(page.get_by_label("Pipeline file", exact=True)).to_be_visible()
    expect(pipeline_select).to_be_hidden()
    page.get_by_label("Pipeline file", exact=True).set_input_files(str(package))
    expect(page.get_by_text("Using the file chosen before (slow-hello)")).to_be_visible()
    expect(page.get_by_label("seconds")).to_have_value("0.5")
    page.get_by_label("A pipeline version").check()
    expect(pipeline_select).to_be_visible()
    pipeline_select.select_option(label="slow-hello")
    expect(page.get_by_label("Version", exact=True)).to_be_visible()

    # One typed input per parameter, with its default; a wrong type is refused on its input.
    seconds = page.get_by_label("seconds")
    expect(seconds).to_have_value("0.5")
    expect(page.get_by_label("message")).to_have_value("hello")
    expect(page.get_by_label("Run name")).to_have_value(re.compile(r"^slow-hello \d{4}-"))
    seconds.fill("soon")
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".field-error")).to_have_text("'seconds' must be a number, not 'soon'.")
    page.get_by_label("seconds").fill("5")
    page.get_by_label("message").fill("from the browser")
    page.get_by_label("Run name").fill("first run")
    page.screenshot(path=tmp_path / "run-form.png", full_page=True)
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(rf"/ns/{NS}/runs/({UUID})/$"))
    run_id = re.search(UUID, page.url).group(0)

    # The runs list: the state changes live, without reloading the page.
    nav(page).get_by_role("link", name="Runs", exact=True).click()
    row = run_row(page, "first run")
    expect(row).to_be_visible()
    expect(row.locator(".runs-state-label")).to_have_text(re.compile("Pending|Running"))
    page.evaluate("window.stillTheSamePage = true")
    expect(row.locator(".runs-state-label")).to_have_text("Succeeded", timeout=RUN_DONE)
    assert page.evaluate("window.stillTheSamePage") is True
    expect(row.locator("[data-cell=duration]")).to_have_text(re.compile(r"^\d+\.\d s$"))
    expect(row).to_contain_text("slow-hello")
    expect(row).to_contain_text("Default")
    page.screenshot(path=tmp_path / "runs-list.png", full_page=True)

    # A run started elsewhere (a clone, in another tab) is announced, then shown.
    other = page.context.new_page()
    other.goto(f"{server.url}/ns/{NS}/runs/new/?clone={run_id}")
    expect(other.get_by_label("message")).to_have_value("from the browser")
    other.get_by_label("Run name").fill("second run")
    other.get_by_role("button", name="Start").click()
    expect(other).to_have_url(re.compile(rf"/ns/{NS}/runs/{UUID}/$"))
    notice = page.locator("[data-runs-notice]")
    expect(notice).to_contain_text("1 new run since this page was loaded.")
    notice.get_by_role("link", name="Show").click()
    expect(run_row(page, "second run")).to_be_visible()
    expect(run_row(page, "second run").locator(".runs-state-label")).to_have_text(
        "Succeeded", timeout=RUN_DONE)

    # Bulk archive: the buttons wait for a checked row.
    archive = page.get_by_role("button", name="Archive")
    expect(archive).to_be_disabled()
    page.get_by_label("Check second run").check()
    expect(page.locator("[data-checked-count]")).to_have_text("1 checked")
    archive.click()
    expect(page.get_by_text("1 run archived.")).to_be_visible()
    expect(run_row(page, "second run")).to_have_count(0)
    page.get_by_role("link", name="Archived").click()
    expect(run_row(page, "second run")).to_be_visible()

    # The experiments list shows the Default experiment's latest runs' states.
    nav(page).get_by_role("link", name="Experiments").click()
    expect(page.locator("tr[data-experiment='Default'] .runs-latest .s-SUCCEEDED")
           ).to_have_count(1)
    page.screenshot(path=tmp_path / "experiments.png", full_page=True)
    experiment_url = page.get_by_role("link", name="Default", exact=True).get_attribute("href")
    # (The run's own page is another module's; its console is its tests' business.)
    assert [p for p in problems if not re.search(rf"/runs/{UUID}/", p.split(": ")[0])] == []

    # The links kfp.Client prints open the matching pages.
    page.goto(f"{server.url}/#/runs/details/{run_id}")
    expect(page).to_have_url(f"{server.url}/ns/{NS}/runs/{run_id}/")
    experiment_id = re.search(UUID, experiment_url).group(0)
    page.goto(f"{server.url}/#/experiments/details/{experiment_id}")
    expect(page).to_have_url(f"{server.url}{experiment_url}")
    pipeline_id = re.search(rf"/pipelines/({UUID})/", pipeline_url).group(1)
    page.goto(f"{server.url}/#/pipelines/details/{pipeline_id}")
    expect(page).to_have_url(f"{server.url}/ns/{NS}/pipelines/{pipeline_id}/")
    expect(page.get_by_role("heading", name="slow-hello", exact=True)).to_be_visible()

    # Someone not logged in goes through the login page and lands on the run.
    stranger = new_page()
    stranger.goto(f"{server.url}/#/runs/details/{run_id}")
    expect(stranger).to_have_url(re.compile(r"/login/\?next="))
    log_in(stranger, ANA, go=False)
    expect(stranger).to_have_url(f"{server.url}/ns/{NS}/runs/{run_id}/")
