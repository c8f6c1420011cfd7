"""OIDC login and logout end to end: a real kfdash server process and a real OpenID
provider process (oidc-provider-mock), with ``requests`` playing the browser.
A few in-process tests (stubbed discovery document) cover what the mock cannot
show: a provider without ``end_session_endpoint`` or with a query in it, session
renewal, and people already logged in while the provider is down."""

from __future__ import annotations

import html
import re
import socket
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from tests.auth.oidc_provider import closed_port_url, running_provider
from tests.servers import start_kfdash

CLIENT_ID = "kfdash"
OIDC_ENV = {"KFDASH_AUTH": "oidc", "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": "s3cret", "OIDC_VERIFY_KID": "False"}
MESSAGE = re.compile(r'<p class="message message-\w+">(.*?)</p>', re.S)
STALE = "did not match a login started here"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with running_provider(tmp_path_factory.mktemp("oidc-provider")) as provider:
        yield provider


@pytest.fixture(scope="module")
def server(provider, tmp_path_factory):
    """One kfdash server for the tests that need no settings of their own (each one
    logs in its own people, in its own browsers): a server per test costs ~1.5 s."""
    server = start_kfdash(tmp_path_factory.mktemp("kfdash"), **OIDC_ENV, OIDC_ISSUER=provider.url)
    yield server
    server.stop()


@pytest.fixture
def oidc_kfdash(kfdash_server, provider):
    """A kfdash server of its own, logging in through ``provider``."""

    def start(**env):
        return kfdash_server(**OIDC_ENV, OIDC_ISSUER=provider.url, **env)

    return start


# --- the browser's side ------------------------------------------------------------


def messages_on(page: requests.Response) -> list[str]:
    return [html.unescape(text).strip() for text in MESSAGE.findall(page.text)]


def start_login(server, browser: requests.Session, path: str = "/login/") -> str:
    """kfdash's login page -> /oidc/authenticate/ -> the provider; returns the
    provider's authorize URL the browser is sent to."""
    page = browser.get(server.url + path, allow_redirects=False, timeout=10)
    assert page.status_code == 302, page.text
    assert page.headers["Location"].startswith("/oidc/authenticate/")
    start = browser.get(server.url + page.headers["Location"], allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    return start.headers["Location"]


def log_in(server, provider, sub: str, browser: requests.Session | None = None,
           path: str = "/login/") -> tuple[requests.Session, requests.Response]:
    """The whole code flow as ``sub``; returns the browser and kfdash's answer to
    the provider's redirect (not followed)."""
    browser = browser or requests.Session()
    authorize_url = start_login(server, browser, path)
    assert authorize_url.startswith(provider.authorize_endpoint + "?")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{server.url}/oidc/callback/"]
    assert query["code_challenge_method"] == ["S256"]  # PKCE
    back = provider.authorize(authorize_url, sub)
    assert back.startswith(f"{server.url}/oidc/callback/?"), back
    return browser, browser.get(back, allow_redirects=False, timeout=10)


def whoami(server, browser) -> requests.Response:
    return browser.get(f"{server.url}/api/v1/whoami", timeout=10)


def assert_logged_out(server, browser) -> None:
    response = whoami(server, browser)
    assert response.status_code in (401, 403), response.text
    assert response.json()["code"] in (16, 7)
    page = browser.get(f"{server.url}/tokens/", allow_redirects=False, timeout=10)
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login/")


def login_page_after(server, browser, refused: requests.Response) -> requests.Response:
    """A refused callback sends the browser to the login page, which must then show
    why (and not bounce the browser straight back to the provider)."""
    assert refused.status_code == 302, refused.text
    assert refused.headers["Location"] == "/login/"
    page = browser.get(server.url + "/login/", allow_redirects=False, timeout=10)
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    return page


def csrf_token(server, browser) -> str:
    page = browser.get(f"{server.url}/tokens/", timeout=10)
    assert page.status_code == 200
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


# --- login ---------------------------------------------------------------------------


def test_it_logs_in_through_the_provider_and_keys_the_user_by_lower_cased_email(
    server, provider
):
    provider.set_user("ana", email="Ana.Smith@Example.com", name="Ana Smith", groups=["ml-team"])

    browser, landing = log_in(server, provider, "ana")

    assert landing.status_code == 302 and landing.headers["Location"] == "/"
    home = browser.get(f"{server.url}/", allow_redirects=False, timeout=10)
    assert home.status_code == 302 and home.headers["Location"] == "/register/"
    assert browser.get(f"{server.url}/register/", timeout=10).status_code == 200
    me = whoami(server, browser)
    assert me.status_code == 200, me.text
    assert me.json() == {"email": "ana.smith@example.com", "name": "Ana Smith",
                         "is_cluster_admin": False, "groups": ["ml-team"], "namespaces": []}

    # Next login, the provider spells the email otherwise and the claims changed:
    # the same account, brought up to date.
    provider.set_user("ana", email="ANA.SMITH@example.COM", name="Ana S.",
                      groups=["ops", "ml-team"])
    again, landing = log_in(server, provider, "ana")
    assert landing.status_code == 302
    assert whoami(server, again).json() == {
        "email": "ana.smith@example.com", "name": "Ana S.", "is_cluster_admin": False,
        "groups": ["ml-team", "ops"], "namespaces": []}
    count = server.manage(
        "shell", "-c",
        "from dashboard.models import User; "
        "print(User.objects.filter(email__iexact='ana.smith@example.com').count())",
    )
    assert count.stdout.strip().splitlines()[-1] == "1"


def test_it_makes_members_of_admin_groups_cluster_admins_only_while_they_are(
    oidc_kfdash, provider
):
    server = oidc_kfdash(KFDASH_ADMIN_GROUPS="platform,kf-admins")
    provider.set_user("root", email="root@example.com", name="Root",
                      groups=["ml-team", "kf-admins"])

    first, _ = log_in(server, provider, "root")
    assert whoami(server, first).json()["is_cluster_admin"] is True

    provider.set_user("root", email="root@example.com", name="Root", groups=["ml-team"])
    second, _ = log_in(server, provider, "root")
    me = whoami(server, second).json()
    assert me["is_cluster_admin"] is False
    assert me["groups"] == ["ml-team"]
    # It is the account that lost the rights, so the earlier session lost them too.
    assert whoami(server, first).json()["is_cluster_admin"] is False


def test_it_returns_to_the_page_asked_for_but_never_to_another_site(server, provider):
    provider.set_user("nia", email="nia@example.com")

    _, landing = log_in(server, provider, "nia", path="/login/?next=/tokens/")
    assert landing.headers["Location"] == "/tokens/"

    _, landing = log_in(server, provider, "nia", path="/login/?next=https://evil.example/")
    assert landing.headers["Location"] == "/"


# --- logout --------------------------------------------------------------------------


def test_it_logs_out_of_kfdash_and_of_the_provider(server, provider):
    provider.set_user("leo", email="leo@example.com", name="Leo")
    browser, _ = log_in(server, provider, "leo")
    assert whoami(server, browser).status_code == 200
    old_session = browser.cookies["sessionid"]
    forged = browser.post(f"{server.url}/logout/", allow_redirects=False, timeout=10)
    assert forged.status_code == 403  # no CSRF token: a cross-site logout is refused
    assert whoami(server, browser).status_code == 200

    token = csrf_token(server, browser)
    out = browser.post(f"{server.url}/logout/", data={"csrfmiddlewaretoken": token},
                       allow_redirects=False, timeout=10)

    # The mock advertises end_session_endpoint: RP-initiated logout there.
    assert out.status_code == 302, out.text
    end_session = provider.metadata()["end_session_endpoint"]
    location = out.headers["Location"]
    assert location.startswith(end_session + "?"), location
    params = parse_qs(urlsplit(location).query)
    assert params["post_logout_redirect_uri"] == [f"{server.url}/login/"]
    assert params["client_id"] == [CLIENT_ID]
    hint = jwt.decode(params["id_token_hint"][0], options={"verify_signature": False})
    assert hint["sub"] == "leo" and CLIENT_ID in hint["aud"]
    assert hint["iss"] == provider.url

    # The provider ends its session and sends the browser back to kfdash's login page,
    # which says so instead of starting a new login at once.
    page = browser.get(location, timeout=10)
    assert page.status_code == 200 and "End Session" in page.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    back_to = html.unescape(re.search(r'name="redirect_uri" value="([^"]+)"', page.text).group(1))
    confirmed = browser.post(provider.url + action, data={"redirect_uri": back_to},
                             allow_redirects=False, timeout=10)
    assert confirmed.status_code == 302
    assert confirmed.headers["Location"] == f"{server.url}/login/"
    login = browser.get(confirmed.headers["Location"], allow_redirects=False, timeout=10)
    assert login.status_code == 200
    assert "You are logged out." in messages_on(login)

    # The session is gone: for this browser, and for anyone replaying its cookie.
    assert_logged_out(server, browser)
    replay = requests.Session()
    replay.cookies.set("sessionid", old_session)
    assert_logged_out(server, replay)


DISCOVERY = {  # a provider's discovery document, as a stub
    "issuer": "https://idp.example.com",
    "authorization_endpoint": "https://idp.example.com/auth",
    "token_endpoint": "https://idp.example.com/token",
    "userinfo_endpoint": "https://idp.example.com/userinfo",
    "jwks_uri": "https://idp.example.com/keys",
}

OIDC_SETTINGS = {
    "KFDASH_AUTH": "oidc",
    "AUTHENTICATION_BACKENDS": ["dashboard.auth.oidc.EmailOIDCBackend"],
    "OIDC_ISSUER": "https://idp.example.com",
    "OIDC_RP_CLIENT_ID": CLIENT_ID,
    "OIDC_TIMEOUT": 2,
}


@pytest.fixture
def oidc_mode(settings):
    """In-process OIDC mode (the provider is stubbed or absent per test)."""
    from dashboard.auth.oidc import forget_provider_metadata

    for name, value in OIDC_SETTINGS.items():
        setattr(settings, name, value)
    forget_provider_metadata()
    yield settings
    forget_provider_metadata()


@pytest.fixture
def oidc_client(oidc_mode, client, make_user):
    """The test client, logged in through the OIDC backend with an ID token kept."""
    user = make_user("ida@example.com")
    client.force_login(user, backend="dashboard.auth.oidc.EmailOIDCBackend")
    session = client.session
    session["oidc_id_token"] = "the.id.token"
    session["oidc_id_token_expiration"] = time.time() + 600
    session.save()
    return client


def test_it_sends_the_browser_to_an_advertised_end_session_endpoint(oidc_client, monkeypatch):
    monkeypatch.setattr("dashboard.auth.oidc.provider_metadata", lambda: {
        **DISCOVERY, "end_session_endpoint": "https://idp.example.com/logout?tenant=a"})

    out = oidc_client.post("/logout/")

    assert out.status_code == 302
    url = urlsplit(out["Location"])
    assert (url.scheme, url.netloc, url.path) == ("https", "idp.example.com", "/logout")
    # A query already in the endpoint is kept, not mangled.
    assert parse_qs(url.query) == {
        "tenant": ["a"],
        "post_logout_redirect_uri": ["http://testserver/login/"],
        "client_id": [CLIENT_ID],
        "id_token_hint": ["the.id.token"],
    }
    assert oidc_client.get("/api/v1/whoami").status_code in (401, 403)


def _unavailable():
    from dashboard.auth.oidc import ProviderUnavailable

    raise ProviderUnavailable("down")


@pytest.mark.parametrize("metadata", [
    lambda: DISCOVERY,
    _unavailable,
], ids=["no-end-session-endpoint", "provider-down"])
def test_it_sends_the_browser_to_the_login_page_without_an_end_session_endpoint(
    oidc_client, monkeypatch, metadata
):
    monkeypatch.setattr("dashboard.auth.oidc.provider_metadata", metadata)

    out = oidc_client.post("/logout/")

    assert out.status_code == 302 and urlsplit(out["Location"]).path == "/login/"
    login = oidc_client.get("/login/")
    assert login.status_code == 200  # not straight back to the provider
    assert "You are logged out." in [str(m) for m in login.context["messages"]]
    assert oidc_client.get("/api/v1/whoami").status_code in (401, 403)
    assert oidc_client.get("/tokens/")["Location"].startswith("/login/")


# --- refused logins ----------------------------------------------------------------


@pytest.mark.parametrize("victim_started_a_login", [False, True],
                         ids=["fresh-browser", "browser-mid-login"])
def test_it_refuses_a_callback_whose_state_it_did_not_issue(
    server, provider, victim_started_a_login
):
    provider.set_user("mallory", email="mallory@example.com")
    attacker = requests.Session()
    back = provider.authorize(start_login(server, attacker), "mallory")
    code = parse_qs(urlsplit(back).query)["code"][0]  # genuine and unused
    victim = requests.Session()
    if victim_started_a_login:
        start_login(server, victim)

    refused = victim.get(f"{server.url}/oidc/callback/?"
                         + urlencode({"code": code, "state": "forged-state"}),
                         allow_redirects=False, timeout=10)

    page = login_page_after(server, victim, refused)
    assert any(STALE in message for message in messages_on(page)), messages_on(page)
    assert_logged_out(server, victim)
    # The code itself was fine: refused for its state alone.
    landing = attacker.get(back, allow_redirects=False, timeout=10)
    assert landing.status_code == 302 and landing.headers["Location"] == "/"
    assert whoami(server, attacker).json()["email"] == "mallory@example.com"


def test_it_shows_the_providers_refusal_on_the_login_page(server, provider):
    browser = requests.Session()
    authorize_url = start_login(server, browser)

    back = provider.authorize(authorize_url, deny=True)  # the mock's Deny button

    assert parse_qs(urlsplit(back).query)["error"] == ["access_denied"]
    page = login_page_after(server, browser, browser.get(back, allow_redirects=False, timeout=10))
    assert "The identity provider refused the login: access_denied." in messages_on(page)
    assert_logged_out(server, browser)

    # The same, from a provider that sends the state back with its error.
    state = parse_qs(urlsplit(start_login(server, browser)).query)["state"][0]
    refused = browser.get(f"{server.url}/oidc/callback/?"
                          + urlencode({"error": "access_denied", "state": state}),
                          allow_redirects=False, timeout=10)
    page = login_page_after(server, browser, refused)
    assert "The identity provider refused the login: access_denied." in messages_on(page)
    assert_logged_out(server, browser)


def test_it_explains_a_login_without_an_email_or_of_a_deactivated_account(server, provider):
    provider.set_user("nomail", name="No Mail")  # the provider vouches for no email
    browser, refused = log_in(server, provider, "nomail")
    page = login_page_after(server, browser, refused)
    assert any("did not give a valid email address" in m for m in messages_on(page))
    assert_logged_out(server, browser)

    provider.set_user("gone", email="gone@example.com")
    log_in(server, provider, "gone")
    server.manage("shell", "-c", "from dashboard.models import User; "
                  "User.objects.filter(email='gone@example.com').update(is_active=False)")
    browser, refused = log_in(server, provider, "gone")
    page = login_page_after(server, browser, refused)
    assert any("deactivated" in m for m in messages_on(page))
    assert_logged_out(server, browser)


def test_it_explains_a_login_the_provider_will_not_complete(server, provider):
    browser = requests.Session()
    state = parse_qs(urlsplit(start_login(server, browser)).query)["state"][0]

    # The right state, but a code the provider never issued (or already redeemed):
    # its token endpoint answers 400.
    refused = browser.get(f"{server.url}/oidc/callback/?"
                          + urlencode({"code": "not-a-code", "state": state}),
                          allow_redirects=False, timeout=10)

    page = login_page_after(server, browser, refused)
    assert any("could not be completed" in m for m in messages_on(page)), messages_on(page)
    assert_logged_out(server, browser)


# --- a provider that is down -------------------------------------------------------


def test_it_starts_without_the_provider_and_explains_that_login_is_unavailable(kfdash_server):
    server = kfdash_server(**OIDC_ENV, OIDC_ISSUER=closed_port_url())

    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200
    page = requests.get(f"{server.url}/login/", timeout=30)  # -> /oidc/authenticate/

    assert page.status_code == 503
    assert page.url == f"{server.url}/oidc/authenticate/"
    assert any("identity provider cannot be reached" in m for m in messages_on(page))
    assert "Log in with single sign-on" in page.text  # the way to try again
    assert "Traceback" not in page.text and "Traceback" not in server.log()
    api = requests.get(f"{server.url}/api/v1/whoami", timeout=30,
                       headers={"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"})
    assert api.status_code == 401 and api.json()["code"] == 16


@pytest.fixture
def unresponsive_issuer():
    """A provider that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_it_answers_probes_at_once_while_the_provider_hangs(kfdash_server, unresponsive_issuer):
    server = kfdash_server(**OIDC_ENV, OIDC_ISSUER=unresponsive_issuer, OIDC_TIMEOUT="1")

    for path in ("/healthz", "/readyz"):
        started = time.monotonic()
        assert requests.get(server.url + path, timeout=5).status_code == 200
        assert time.monotonic() - started < 1, f"{path} waited for the provider"
    # Logging in waits for the provider at most OIDC_TIMEOUT, then explains.
    page = requests.get(f"{server.url}/login/", timeout=30)
    assert page.status_code == 503
    assert any("identity provider cannot be reached" in m for m in messages_on(page))


@pytest.mark.parametrize("renewal_due", [False, True], ids=["session-fresh", "renewal-due"])
def test_it_keeps_serving_logged_in_people_while_the_provider_is_down(
    oidc_client, oidc_mode, renewal_due
):
    # As after a restart of kfdash while the provider is down: nothing discovered yet.
    oidc_mode.OIDC_ISSUER = closed_port_url()
    if renewal_due:
        session = oidc_client.session
        session["oidc_id_token_expiration"] = 0
        session.save()

    me = oidc_client.get("/api/v1/whoami")
    assert me.status_code == 200 and me.json()["email"] == "ida@example.com"
    assert oidc_client.get("/tokens/").status_code == 200


def test_it_sends_a_session_due_for_renewal_back_to_the_provider(oidc_client, monkeypatch):
    monkeypatch.setattr("dashboard.auth.oidc.provider_metadata", lambda: DISCOVERY)
    session = oidc_client.session
    session["oidc_id_token_expiration"] = 0
    session.save()

    assert oidc_client.get("/api/v1/whoami").status_code == 200  # the API is exempt
    assert oidc_client.get("/healthz").status_code == 200
    page = oidc_client.get("/tokens/")

    assert page.status_code == 302
    url = urlsplit(page["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == DISCOVERY["authorization_endpoint"]
    query = parse_qs(url.query)
    assert query["prompt"] == ["none"] and query["client_id"] == [CLIENT_ID]
