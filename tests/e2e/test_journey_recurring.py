"""Recurring runs in the browser: from a pipeline's page, fill the form with a cron and
watch the preview follow the typing (the trigger in words, its next 5 times, or what is
wrong), create it, find it in the list with its next run time, disable it, enable it."""

# No ``from __future__ import annotations``: kfp reads the component signatures' types.
import re

from kfp import compiler, dsl
from playwright.sync_api import Page, expect

ANA = "ana@example.com"
NS = "ana-lab"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NEXT_RUN = re.compile(r"^\d{4}-\d\d-\d\d 09:00 UTC$")


@dsl.component(base_image="python:3.11")
def refresh_model(rows: int) -> int:
    return rows


@dsl.pipeline(name="fresh-model", description="Retrains on the latest rows.")
def fresh_model(rows: int = 1000):
    refresh_model(rows=rows)


def nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def test_it_creates_a_recurring_run_with_a_live_preview_and_toggles_it(
        server, page, create_users, log_in, tmp_path):
    create_users((ANA, "--namespace", NS))
    package = tmp_path / "fresh-model.yaml"
    compiler.Compiler().compile(fresh_model, str(package))
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{page.url}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    log_in(page, ANA)

    nav(page).get_by_role("link", name="Recurring runs").click()
    expect(page.get_by_text("No recurring runs yet.")).to_be_visible()

    # Upload the pipeline; its page offers "Create recurring run" next to "Create run".
    nav(page).get_by_role("link", name="Pipelines").click()
    page.get_by_role("link", name="Upload pipeline").click()
    page.get_by_label("Pipeline file", exact=True).set_input_files(str(package))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", name="fresh-model", exact=True)).to_be_visible()
    page.get_by_role("link", name="Create recurring run").click()
    expect(page.get_by_role("heading", name="Create recurring run")).to_be_visible()
    expect(page.get_by_label("rows")).to_have_value("1000")

    # The preview as the page came: the default trigger, once a day.
    preview = page.locator("[data-preview]")
    expect(preview).to_contain_text("Every day")
    expect(preview.locator("li")).to_have_count(5)
    cron = page.get_by_label("Cron expression")
    expect(cron).to_be_hidden()  # a periodic trigger's inputs only
    page.get_by_label("Cron", exact=True).check()
    expect(cron).to_be_visible()
    expect(page.get_by_label("Every", exact=True)).to_be_hidden()

    # Typing: what is wrong, then the words and the next 5 times, without a reload.
    page.evaluate("window.stillTheSamePage = true")
    cron.fill("0 9 * *")
    expect(preview).to_contain_text("is not a cron expression")
    expect(preview.locator("li")).to_have_count(1)
    cron.press_sequentially(" 1-5", delay=20)
    expect(preview).to_contain_text("At 09:00, Monday through Friday (UTC)")
    times = preview.locator("li time")
    expect(times).to_have_count(5)
    expect(times.first).to_have_text(re.compile(r"^(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d "
                                                r"09:00:00 UTC$"))
    page.get_by_label("Time zone").select_option("Europe/Paris")
    expect(preview).to_contain_text("(Europe/Paris)")
    expect(times.first).to_have_text(re.compile(r"09:00:00 CES?T$"))
    page.get_by_label("Time zone").select_option("UTC")
    expect(preview).to_contain_text("(UTC)")
    assert page.evaluate("window.stillTheSamePage") is True

    # Nothing is created while anything is wrong: the error shows next to its input.
    page.get_by_label("Max concurrent runs").fill("0")
    page.get_by_label("Name", exact=True).fill("weekday mornings")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".field-error")).to_have_text("At least 1 run at a time.")
    expect(preview).to_contain_text("At 09:00, Monday through Friday (UTC)")  # kept
    page.get_by_label("Max concurrent runs").fill("2")
    page.screenshot(path=tmp_path / "recurring-form.png", full_page=True)
    page.get_by_role("button", name="Create").click()

    # Its page: the trigger in words and its next times.
    expect(page).to_have_url(re.compile(rf"/ns/{NS}/recurring/{UUID}/$"))
    expect(page.get_by_text("Created the recurring run weekday mornings.")).to_be_visible()
    expect(page.get_by_role("heading", name="weekday mornings")).to_be_visible()
    expect(page.locator(".recurring-times li")).to_have_count(5)
    page.screenshot(path=tmp_path / "recurring-detail.png", full_page=True)

    # The list: its next run time; disable, then enable it with its switch.
    nav(page).get_by_role("link", name="Recurring runs").click()
    row = page.locator("tr[data-recurring]",
                       has=page.get_by_role("link", name="weekday mornings", exact=True))
    expect(row.locator("[data-cell=next]")).to_have_text(NEXT_RUN)
    expect(row.locator("[data-cell=trigger]")).to_have_text(
        "At 09:00, Monday through Friday (UTC)")
    expect(row.locator("[data-cell=last]")).to_have_text("none yet")
    switch = page.get_by_role("switch", name="Enabled: weekday mornings")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(page.get_by_text("The recurring run weekday mornings is disabled.")).to_be_visible()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(row.locator("[data-cell=next]")).to_have_text(re.compile(r"\(disabled\)$"))
    page.get_by_role("link", name="Enabled", exact=True).click()  # the tab
    expect(row).to_have_count(0)
    page.get_by_role("link", name="Disabled", exact=True).click()
    switch.click()
    expect(page.get_by_text("The recurring run weekday mornings is enabled.")).to_be_visible()
    expect(row).to_have_count(0)  # back on the Disabled tab: no longer in it
    page.get_by_role("link", name="All", exact=True).click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(row.locator("[data-cell=next]")).to_have_text(NEXT_RUN)
    page.screenshot(path=tmp_path / "recurring-list.png", full_page=True)
    assert problems == []
