"""A notebook server from the form to JupyterLab and back: live progress and status,
Connect through kfdash's proxy, Stop."""

from __future__ import annotations

import re

from playwright.sync_api import expect

ANA = "ana@example.com"
NS = "ana-lab"


def test_it_spawns_connects_to_and_stops_a_notebook(server, new_page, create_users, log_in):
    create_users((ANA, "--namespace", NS))
    page = new_page()
    log_in(page, ANA)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Notebooks").click()
    expect(page.get_by_text("No notebook servers yet.")).to_be_visible()
    page.get_by_role("link", name="New notebook").click()

    # A bad value is shown on its field and nothing is created.
    page.get_by_label("Name", exact=True).fill("lab")
    page.get_by_label("Memory", exact=True).fill("lots")
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_text("not a memory quantity")).to_be_visible()
    page.get_by_label("Memory", exact=True).fill("1Gi")
    page.get_by_role("button", name="Launch").click()

    # The details page shows the spawn progress live, then Running and Connect.
    expect(page).to_have_url(f"{server.url}/ns/{NS}/notebooks/lab/")
    header = page.locator("[data-notebook='lab']")
    expect(header.locator("[data-status]")).to_have_attribute("data-status", "running",
                                                              timeout=90_000)
    expect(header.locator("[data-progress]")).to_contain_text("waiting for server to answer")
    # The server's log streams into the page.
    expect(page.locator("[data-live-log]")).to_contain_text("is running at", timeout=30_000)
    connect = header.get_by_role("link", name="Connect")
    expect(connect).to_be_visible()

    # Connect opens JupyterLab through the proxy, in a new tab.
    with page.context.expect_page() as opened:
        connect.click()
    lab = opened.value
    expect(lab).to_have_url(re.compile(rf"{re.escape(server.url)}/notebook/{NS}/lab/"))
    expect(lab.locator("#jp-main-dock-panel")).to_be_attached(timeout=60_000)
    lab.close()

    # The list shows it running; after Stop the status turns Stopped live.
    page.goto(f"{server.url}/ns/{NS}/notebooks/")
    row = page.locator("tr[data-notebook='lab']")
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    row.get_by_role("button", name="Stop").click()
    expect(page.locator("tr[data-notebook='lab'] [data-status]")).to_have_attribute(
        "data-status", "stopped", timeout=30_000)
    page.goto(f"{server.url}/ns/{NS}/notebooks/")
    expect(page.locator("tr[data-notebook='lab'] [data-status]")).to_have_attribute(
        "data-status", "stopped")
    expect(page.locator("tr[data-notebook='lab']").get_by_role("button", name="Start")) \
        .to_be_visible()
