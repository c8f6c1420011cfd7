"""Journeys through namespaces: first login and registration, contributors, the live
activity feed, the namespace selector, API tokens, and who may not see what."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import Page, expect

ANA = "ana@example.com"
ANA_NS = "ana-example-com"


def nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def feed(page: Page):
    return page.locator("[data-live-feed]")


def contributor_row(page: Page, email: str):
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=re.compile(
        rf"^{re.escape(email)}\b")))


def test_it_registers_a_namespace_and_manages_its_contributors(
        server, page, create_users, log_in):
    create_users(ANA, "bob@example.com")

    # First login without a namespace: registration, with a name proposed from the email.
    log_in(page, ANA)
    expect(page).to_have_url(f"{server.url}/register/")
    name = page.get_by_label("Namespace name")
    expect(name).to_have_value(ANA_NS)

    # An invalid name is refused on its field, and nothing is created.
    name.fill("Bad_Name!")
    page.get_by_role("button", name="Create namespace").click()
    expect(page.locator(".has-error .field-error")).to_contain_text("DNS-1123")
    expect(name).to_have_value("Bad_Name!")
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/register/")  # still no namespace to land in
    expect(name).to_have_value(ANA_NS)

    # The proposed name: the new namespace's home, its creation in the feed.
    page.get_by_role("button", name="Create namespace").click()
    expect(page).to_have_url(f"{server.url}/ns/{ANA_NS}/")
    expect(page.get_by_role("heading", name=ANA_NS, level=1)).to_be_visible()
    expect(feed(page).get_by_text(f"{ANA} created the namespace {ANA_NS}")).to_be_visible()
    expect(page.get_by_label("Namespace")).to_have_value(ANA_NS)

    # Contributors, from the left nav: the owner is listed and can't be removed.
    nav(page).get_by_role("link", name="Contributors").click()
    expect(page).to_have_url(f"{server.url}/ns/{ANA_NS}/contributors/")
    expect(contributor_row(page, ANA)).to_contain_text("owner")
    expect(contributor_row(page, ANA).get_by_role("button")).to_have_count(0)

    # Add bob as a viewer.
    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_label("Role").select_option("view")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"bob@example.com now has the view role in {ANA_NS}.")
    bob = contributor_row(page, "bob@example.com")
    expect(bob).to_contain_text("View")
    expect(page.get_by_label("Email")).to_have_value("")  # the form is fresh again

    # An invalid email is refused on its field; the table does not change.
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".has-error .field-error")).to_have_text("Enter a valid email address.")
    expect(page.get_by_label("Email")).to_have_value("not-an-email")
    expect(page.locator("tbody tr")).to_have_count(2)

    # Removing asks first: dismissing keeps bob, accepting removes him.
    remove = page.get_by_role("button", name="Remove bob@example.com")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, accept=False))
    remove.click()
    page.evaluate("1")  # a round trip: a submission would have started by now
    assert questions == [f"Remove bob@example.com from {ANA_NS}?"]
    assert posts == []
    expect(bob).to_be_visible()

    page.once("dialog", lambda d: answer(d, accept=True))
    remove.click()
    expect(page.get_by_role("status")).to_contain_text("bob@example.com no longer has access.")
    expect(bob).to_have_count(0)
    expect(contributor_row(page, ANA)).to_be_visible()
    assert len(questions) == 2

    # Both changes are in the namespace's feed.
    nav(page).get_by_role("link", name="Home").click()
    expect(feed(page).get_by_text(f"{ANA} added bob@example.com as view")).to_be_visible()
    expect(feed(page).get_by_text(f"{ANA} removed bob@example.com")).to_be_visible()
    expect(feed(page).locator("li").first).to_have_text(re.compile(r"removed bob@example\.com"))


def test_it_shows_new_activity_live_without_reloading(server, new_page, create_users, log_in):
    create_users((ANA, "--namespace", ANA_NS), ("root@example.com", "--superuser"))

    ana = new_page()
    log_in(ana, ANA)
    expect(ana).to_have_url(f"{server.url}/ns/{ANA_NS}/")
    # The page catches up over the API once its websocket is open: after that, new
    # lines can only come through the socket.
    with ana.expect_response(re.compile(rf"/api/v1/namespaces/{ANA_NS}/activities")) as caught:
        ana.reload()
    assert caught.value.ok
    expect(feed(ana).get_by_text(f"{ANA} created the namespace {ANA_NS}")).to_be_visible()
    ana.evaluate("window.__notReloaded = true")

    admin = new_page()
    log_in(admin, "root@example.com")
    expect(admin.get_by_text("cluster admin")).to_be_visible()
    admin.goto(f"{server.url}/ns/{ANA_NS}/contributors/")
    admin.get_by_label("Email").fill("carol@example.com")
    admin.get_by_label("Role").select_option("edit")
    admin.get_by_role("button", name="Save").click()
    expect(contributor_row(admin, "carol@example.com")).to_contain_text("Edit")

    line = feed(ana).locator(
        "li.feed-new", has_text="root@example.com added carol@example.com as edit")
    expect(line).to_be_visible(timeout=5000)
    expect(feed(ana).locator("li").first).to_contain_text("added carol@example.com")
    expect(line.locator("time")).to_have_text("just now")
    assert ana.evaluate("window.__notReloaded") is True
    expect(feed(ana).get_by_text(f"{ANA} created the namespace {ANA_NS}")).to_be_visible()
    expect(feed(ana).locator("li")).to_have_count(2)  # the socket and catch-up don't duplicate


def test_it_switches_namespace_with_the_selector_and_remembers_it(
        server, page, create_users, log_in):
    create_users((ANA, "--namespace", ANA_NS), ("bob@example.com", "--namespace", "bob-space"))
    token = server.manage("create_token", ANA).stdout.strip().splitlines()[-1]
    added = requests.post(f"{server.url}/api/v1/namespaces/{ANA_NS}/contributors",
                          json={"email": "bob@example.com", "role": "view"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert added.status_code == 201, added.text

    log_in(page, "bob@example.com")
    expect(page).to_have_url(f"{server.url}/ns/bob-space/")
    page.goto(f"{server.url}/ns/bob-space/contributors/")
    selector = page.get_by_label("Namespace")
    expect(selector).to_have_value("bob-space")
    expect(selector.locator("option")).to_have_text(["ana-example-com", "bob-space"])
    # In his own namespace bob manages contributors.
    expect(page.get_by_role("heading", name="Add a contributor or change a role")).to_be_visible()

    with page.expect_navigation(url=f"{server.url}/ns/{ANA_NS}/contributors/"):
        selector.select_option(ANA_NS)
    expect(page.get_by_label("Namespace")).to_have_value(ANA_NS)
    expect(contributor_row(page, "bob@example.com")).to_contain_text("View")
    # A viewer sees the contributors but can't change them.
    expect(page.get_by_role("heading", name="Add a contributor or change a role")).to_have_count(0)
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    expect(page.get_by_role("textbox", name="Email")).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.url}/login/")
    log_in(page, "bob@example.com")
    expect(page).to_have_url(f"{server.url}/ns/{ANA_NS}/")
    expect(page.get_by_label("Namespace")).to_have_value(ANA_NS)
    expect(page.get_by_text("your role: View")).to_be_visible()


def test_it_creates_uses_and_revokes_an_api_token(server, page, create_users, log_in):
    create_users((ANA, "--namespace", ANA_NS))
    whoami = f"{server.url}/api/v1/whoami"

    log_in(page, ANA)
    nav(page).get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(f"{server.url}/tokens/")
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    page.get_by_label("Token name").fill("ci")
    page.get_by_role("button", name="Create token").click()

    expect(page.get_by_role("heading", name="Your new token")).to_be_visible()
    secret = page.get_by_label("New token").input_value()
    assert secret.startswith("kfd_") and len(secret) > 40
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="ci", exact=True))
    expect(row).to_contain_text("never")
    expect(row).to_contain_text(secret[:10])
    expect(page.get_by_label("Token name")).to_have_value("")

    response = requests.get(whoami, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == ANA
    assert [ns["name"] for ns in response.json()["namespaces"]] == [ANA_NS]

    # Shown once: reloading shows the token's row, not its secret, and does not post the
    # form again (which would make a second token).
    page.reload()
    expect(page).to_have_url(f"{server.url}/tokens/")
    expect(page.get_by_role("heading", name="Your new token")).to_have_count(0)
    expect(page.get_by_label("New token")).to_have_count(0)
    assert secret not in page.content()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"(just now|ago)$"))
    expect(row.locator("td").nth(3)).not_to_contain_text("never")
    expect(row).to_contain_text("active")

    questions = []
    page.once("dialog", lambda d: (questions.append(d.message), d.accept()))
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("The token 'ci' is revoked.")
    assert questions == ["Revoke the token 'ci'? Anything using it stops working."]
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)

    response = requests.get(whoami, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert response.status_code == 401, response.text


def test_it_hides_a_namespace_from_strangers_and_sends_anonymous_visitors_to_log_in(
        server, new_page, create_users, log_in):
    create_users((ANA, "--namespace", ANA_NS), "carl@example.com")

    stranger = new_page()
    log_in(stranger, "carl@example.com")
    expect(stranger).to_have_url(f"{server.url}/register/")
    for path in (f"/ns/{ANA_NS}/", f"/ns/{ANA_NS}/contributors/", "/ns/no-such-namespace/"):
        response = stranger.goto(f"{server.url}{path}")
        assert response.status == 404, path
        expect(stranger.get_by_role("heading", name="Not found")).to_be_visible()
        expect(stranger.get_by_role("main")).not_to_contain_text(ANA_NS)
    expect(stranger.get_by_role("link", name="Back to your namespace")).to_be_visible()

    anonymous = new_page()
    anonymous.goto(f"{server.url}/ns/{ANA_NS}/")
    expect(anonymous).to_have_url(f"{server.url}/login/?next=/ns/{ANA_NS}/")
    expect(anonymous.get_by_role("heading", name="Log in to kfdash")).to_be_visible()
    # Logging in from there goes on to the page asked for.
    log_in(anonymous, ANA, go=False)
    expect(anonymous).to_have_url(f"{server.url}/ns/{ANA_NS}/")
