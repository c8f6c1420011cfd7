"""The base layout: self-contained (no other host is ever contacted), a left nav that
marks the current section, a menu button on phones, and no console errors."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

ANA = "ana@example.com"
ANA_NS = "ana-example-com"
SHOTS = Path("/tmp/kfdash-shots")


def nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def record_problems(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page, with the URL they happened on."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(
        f"{page.url}: console.{message.type}: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: uncaught: {error}"))
    return problems


def test_it_loads_everything_from_its_own_server_without_console_errors(
        server, page, create_users, log_in):
    create_users(ANA, "bob@example.com")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda socket: requested.append(socket.url))
    problems = record_problems(page)

    log_in(page, ANA)
    expect(page).to_have_url(f"{server.url}/register/")
    page.get_by_role("button", name="Create namespace").click()
    expect(page).to_have_url(f"{server.url}/ns/{ANA_NS}/")

    nav(page).get_by_role("link", name="Contributors").click()
    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("cell", name="bob@example.com", exact=True)).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "contributors.png")

    with page.expect_response(re.compile(r"/activities\?")):  # its websocket is open
        nav(page).get_by_role("link", name="Home").click()
    expect(page.locator("[data-live-feed] li")).to_have_count(2)
    page.screenshot(path=SHOTS / "home.png")

    nav(page).get_by_role("link", name="API tokens").click()
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("New token")).to_have_value(re.compile("^kfd_"))
    page.get_by_role("link", name=ANA).click()  # the user chip: their namespaces
    expect(page.get_by_role("heading", name="Your namespaces")).to_be_visible()
    page.wait_for_load_state("networkidle")  # nothing still on its way goes unrecorded

    assert problems == []
    origins = {f"{scheme}{server.url.removeprefix('http')}" for scheme in ("http", "ws")}
    foreign = [url for url in requested if not url.startswith(tuple(o + "/" for o in origins))]
    assert foreign == []
    # The recording did see the pages, their assets and the live feed's socket.
    for part in ("/static/css/kfdash.css", "/static/js/layout.js", "/static/js/activity.js",
                 "/static/js/live.js", "/static/img/icons.svg", f"/ws/ns/{ANA_NS}/activity/"):
        assert any(part in url for url in requested), part


def test_it_marks_the_current_section_in_the_left_nav(server, page, create_users, log_in):
    create_users((ANA, "--namespace", ANA_NS))
    log_in(page, ANA)
    expected = {
        "Home": f"/ns/{ANA_NS}/",
        "Notebooks": f"/ns/{ANA_NS}/notebooks/",
        "Volumes": f"/ns/{ANA_NS}/volumes/",
        "Pipelines": f"/ns/{ANA_NS}/pipelines/",
        "Experiments": f"/ns/{ANA_NS}/experiments/",
        "Runs": f"/ns/{ANA_NS}/runs/",
        "Recurring runs": f"/ns/{ANA_NS}/recurring/",
        "Artifacts": f"/ns/{ANA_NS}/artifacts/",
        "Contributors": f"/ns/{ANA_NS}/contributors/",
        "API tokens": "/tokens/",
    }
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()  # wide screen: no button
    for current, path in expected.items():
        page.goto(f"{server.url}{path}")
        links = nav(page).get_by_role("link")
        expect(links).to_have_text(list(expected))
        for label, href in expected.items():
            link = nav(page).get_by_role("link", name=label, exact=True)
            expect(link).to_have_attribute("href", href)
            if label == current:
                expect(link).to_have_attribute("aria-current", "page")
            else:
                expect(link).not_to_have_attribute("aria-current", re.compile(".*"))
        expect(nav(page).locator("[aria-current]")).to_have_count(1)


def test_it_opens_the_nav_from_the_menu_button_on_a_phone(
        server, new_page, create_users, log_in):
    create_users((ANA, "--namespace", ANA_NS))
    page = new_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    problems = record_problems(page)
    log_in(page, ANA)
    expect(page).to_have_url(f"{server.url}/ns/{ANA_NS}/")

    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    contributors = nav(page).get_by_role("link", name="Contributors")
    expect(contributors).not_to_be_in_viewport()  # the nav waits off-screen
    # Nothing sticks out sideways at phone width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav(page)).to_be_in_viewport(ratio=1)  # slid in all the way
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "mobile-nav-open.png")
    contributors.click()
    expect(page).to_have_url(f"{server.url}/ns/{ANA_NS}/contributors/")
    expect(page.get_by_role("heading", name="Contributors", level=1)).to_be_in_viewport()

    menu.click()
    expect(nav(page)).to_be_in_viewport(ratio=1)
    menu.click()  # and closes it again
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav(page).get_by_role("link", name="Home")).not_to_be_in_viewport()
    assert problems == []
