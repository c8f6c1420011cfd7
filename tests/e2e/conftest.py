"""Browser journeys through real Chromium (Playwright's sync API) against a real
kfdash server process (``kfdash_server`` from tests/conftest.py).

One browser per test session; every test gets fresh browser contexts (no shared
cookies). Every test in this folder is marked ``e2e``. When a test fails, a
screenshot of each page it opened is saved in its ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "correct horse battery staple"
HERE = Path(__file__).resolve().parent
_report_key = pytest.StashKey[dict]()

expect.set_options(timeout=5_000)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_report_key, {})[report.when] = report
    return report


# Package-scoped: Playwright's sync API keeps an event loop running in the main thread
# while it is open, and tests after the browser journeys run their own (asyncio.run).
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser: Browser, request, tmp_path: Path) -> Iterator[Callable[..., Page]]:
    """A factory of pages, each in a fresh browser context (its own cookies):
    ``new_page(viewport={"width": 375, "height": 740})``."""
    contexts = []
    pages: list[Page] = []

    def make(**context_options) -> Page:
        context_options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    reports = request.node.stash.get(_report_key, {})
    if any(report.failed for report in reports.values()):
        for number, page in enumerate(pages):
            if page.is_closed():
                continue
            path = tmp_path / f"failure-page{number}.png"
            try:
                page.screenshot(path=path, full_page=True)
                print(f"screenshot of {page.url}: {path}")
            except Exception as exc:  # a broken page must not hide the test's own failure
                print(f"no screenshot of page {number}: {exc}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


@pytest.fixture
def server(kfdash_server):
    """A fresh kfdash process with its own empty (migrated) database."""
    return kfdash_server()


@pytest.fixture
def create_users(server) -> Callable[..., None]:
    """``create_users("ana@example.com", ("root@example.com", "--superuser"), ...)``:
    local accounts with the e2e password, made by the server's ``create_user``
    command. The commands run side by side (each is a Django start-up)."""

    def create(*users: str | tuple[str, ...]) -> None:
        specs = [(user,) if isinstance(user, str) else user for user in users]
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            done = [pool.submit(server.manage, "create_user", email, "--password", PASSWORD,
                                *options) for email, *options in specs]
            for future in done:
                future.result()

    return create


@pytest.fixture
def log_in(server) -> Callable[..., None]:
    """Fill the login form as a user; the page ends where the login sends it."""

    def submit(page: Page, email: str, password: str = PASSWORD, *, go: bool = True) -> None:
        if go:
            page.goto(f"{server.url}/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("button", name="Log out")).to_be_visible()

    return submit
