"""A real OpenID Connect provider for the OIDC tests: oidc-provider-mock, run as its
own process (its CLI, ``python -m oidc_provider_mock``) on a free loopback port.

What the mock does, from its source (0.3.x):

* The issuer is the URL it is reached at (``http://127.0.0.1:<port>``); any client
  id and secret are accepted, any redirect URI too (no registration needed).
* ``PUT /users/<sub>`` with a JSON object stores that subject's claims (email,
  name, groups...). Non-standard claims such as ``groups`` go into the ID token
  and userinfo whatever the scopes.
* Its authorize page is a form: POSTing ``sub`` to the authorize URL (same query)
  answers with a redirect to the client's redirect URI with ``code`` and ``state``;
  POSTing ``action=deny`` answers with ``error=access_denied``.
* ID tokens are RS256, signed with a key generated at start, without ``kid``
  in their header (its JWKS does name the key). ``--token-max-age`` sets their
  lifetime (negative: already expired when issued).
* It advertises ``end_session_endpoint`` (a form that, confirmed, redirects to
  ``post_logout_redirect_uri``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import requests

from tests.servers import ROOT, free_port, stop_process


@dataclass
class OIDCProvider:
    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/oauth2/token"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.url}/oauth2/authorize"

    def metadata(self) -> dict:
        response = requests.get(f"{self.url}/.well-known/openid-configuration", timeout=5)
        response.raise_for_status()
        return response.json()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def set_user(self, sub: str, **claims) -> None:
        """Store the claims the provider gives for ``sub`` (replacing earlier ones)."""
        response = requests.put(f"{self.url}/users/{quote(sub, safe='')}", json=claims, timeout=5)
        assert response.status_code == 204, response.text

    def authorize(self, authorize_url: str, sub: str | None = None, *, deny: bool = False,
                  session: requests.Session | None = None) -> str:
        """Answer the provider's authorize form as a person would: log in as ``sub``
        (or press Deny). Returns where the provider sends the browser back to."""
        http = session or requests
        page = http.get(authorize_url, timeout=5)
        assert page.status_code == 200, page.text
        assert 'name="sub"' in page.text, page.text  # the mock's login form
        data = {"action": "deny"} if deny else {"sub": sub}
        # The form has no action attribute: it posts back to the page's own URL.
        answer = http.post(authorize_url, data=data, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    def id_token(self, sub: str, *, client_id: str, host: str | None = None,
                 scope: str = "openid email profile") -> str:
        """An ID token for ``sub``, got through a code flow of our own (any client id
        and redirect URI are welcome). ``host`` changes the Host header the token
        endpoint sees, and so the issuer it writes into the token."""
        redirect_uri = "http://127.0.0.1:9/callback"
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                 "scope": scope, "state": "s", "nonce": "n"}
        authorize_url = requests.Request("GET", self.authorize_endpoint, params=query).prepare().url
        back = self.authorize(authorize_url, sub)
        code = parse_qs(urlsplit(back).query)["code"][0]
        response = requests.post(
            self.token_endpoint,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                  "client_id": client_id, "client_secret": "whatever"},
            headers={"Host": host} if host else {},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return response.json()["id_token"]

    def stop(self) -> None:
        stop_process(self.process)


def start_provider(log_dir: Path, *, token_max_age: int | None = None,
                   attempts: int = 3) -> OIDCProvider:
    """Start oidc-provider-mock on a free port and wait for its discovery document."""
    log_dir.mkdir(parents=True, exist_ok=True)
    last_log = ""
    for attempt in range(attempts):
        port = free_port()
        args = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1",
                "--port", str(port)]
        if token_max_age is not None:
            args.append(f"--token-max-age={token_max_age}")
        log_path = log_dir / f"oidc-provider-{port}.log"
        env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        with open(log_path, "w") as log:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        provider = OIDCProvider(url=f"http://127.0.0.1:{port}", process=process,
                                log_path=log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if provider.metadata().get("issuer") == provider.url:
                    return provider
            except (requests.ConnectionError, requests.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        provider.stop()
        last_log = provider.log()
        if "address already in use" not in last_log.lower() or attempt == attempts - 1:
            break  # only a lost race for the port is worth another try
    raise RuntimeError(f"oidc-provider-mock did not start:\n{last_log}")


@contextmanager
def running_provider(log_dir: Path, **options) -> Iterator[OIDCProvider]:
    provider = start_provider(log_dir, **options)
    try:
        yield provider
    finally:
        provider.stop()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (a provider that is down)."""
    return f"http://127.0.0.1:{free_port()}"
