"""Provider-issued JWTs as API credentials (``Authorization: Bearer <JWT>``), end to
end: a real kfdash server checks tokens of a real oidc-provider-mock process
against its JWKS. Every refused token is refused for its own fault, which the
error message names, so a check that stopped working cannot hide behind another."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.auth.oidc_provider import running_provider
from tests.servers import start_kfdash

CLIENT_ID = "kfdash"
CLIENT_SECRET = "kfdash-client-secret-for-the-tests"
OIDC_ENV = {"KFDASH_AUTH": "oidc", "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_VERIFY_KID": "False"}


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with running_provider(tmp_path_factory.mktemp("oidc-provider")) as provider:
        provider.set_user("bob", email="Bob.Jones@Example.com", name="Bob Jones",
                          groups=["ml-team"])
        yield provider


@pytest.fixture(scope="module")
def server(provider, tmp_path_factory):
    """One kfdash server for the module: these tests only read."""
    server = start_kfdash(tmp_path_factory.mktemp("kfdash"), **OIDC_ENV, OIDC_ISSUER=provider.url)
    yield server
    server.stop()


def call(server, token: str, method: str = "GET", path: str = "/api/v1/whoami", **kwargs):
    return requests.request(method, server.url + path, timeout=10,
                            headers={"Authorization": f"Bearer {token}"}, **kwargs)


def assert_refused(response: requests.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == 16  # gRPC UNAUTHENTICATED, as the KFP server says it
    assert body["error"] == body["message"] and body["details"] == []
    assert reason.lower() in body["error"].lower(), body


def claims(provider, **overrides) -> dict:
    """Claims a token from ``provider`` for bob would carry."""
    now = int(time.time())
    return {"iss": provider.url, "aud": [CLIENT_ID], "sub": "bob", "email": "bob.jones@example.com",
            "iat": now, "exp": now + 600, **overrides}


def another_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_it_accepts_an_id_token_from_the_provider(provider, server):
    token = provider.id_token("bob", client_id=CLIENT_ID)
    assert "kid" not in jwt.get_unverified_header(token)  # checked against every key

    me = call(server, token)

    assert me.status_code == 200, me.text
    assert me.json() == {"email": "bob.jones@example.com", "name": "Bob Jones",
                         "is_cluster_admin": False, "groups": ["ml-team"], "namespaces": []}


def test_it_refuses_a_token_of_the_provider_issued_under_another_name(provider, server):
    port = provider.url.rsplit(":", 1)[1]
    # The mock names itself after the Host it is reached at.
    token = provider.id_token("bob", client_id=CLIENT_ID, host=f"localhost:{port}")
    assert jwt.decode(token, options={"verify_signature": False})["iss"] != provider.url

    assert_refused(call(server, token), "issuer")


def test_it_refuses_a_token_of_the_provider_meant_for_another_client(provider, server):
    token = provider.id_token("bob", client_id="another-app")

    assert_refused(call(server, token), "audience")


def test_it_refuses_an_expired_token_of_the_provider(kfdash_server, tmp_path):
    with running_provider(tmp_path / "expiring", token_max_age=-120) as expiring:
        expiring.set_user("bob", email="bob@example.com")
        server = kfdash_server(**OIDC_ENV, OIDC_ISSUER=expiring.url)
        token = expiring.id_token("bob", client_id=CLIENT_ID)
        assert jwt.decode(token, options={"verify_signature": False})["exp"] < time.time() - 60

        assert_refused(call(server, token), "expired")


def _forge(kind: str, provider) -> str:
    if kind == "another-key":
        return jwt.encode(claims(provider), another_key(), algorithm="RS256")
    if kind == "another-key-under-the-providers-kid":
        kid = requests.get(provider.metadata()["jwks_uri"], timeout=5).json()["keys"][0]["kid"]
        return jwt.encode(claims(provider), another_key(), algorithm="RS256",
                          headers={"kid": kid})
    if kind == "unsigned":
        return jwt.encode(claims(provider), None, algorithm="none")
    if kind == "hs256-with-the-client-secret":
        return jwt.encode(claims(provider), CLIENT_SECRET, algorithm="HS256")
    if kind == "not-a-jwt":
        return "not-a-jwt"
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "reason"), [
    ("another-key", "signature"),
    ("another-key-under-the-providers-kid", "signature"),
    ("unsigned", "alg"),
    ("hs256-with-the-client-secret", "alg"),
    ("not-a-jwt", "malformed"),
])
def test_it_refuses_a_token_the_provider_did_not_sign(provider, server, kind, reason):
    assert_refused(call(server, _forge(kind, provider)), reason)


def test_it_refuses_unknown_and_revoked_kfdash_api_tokens(provider, server):
    assert_refused(call(server, "kfd_nonsense"), "invalid or revoked api token")

    # A real personal token, made with the provider's token, works until revoked.
    id_token = provider.id_token("bob", client_id=CLIENT_ID)
    made = call(server, id_token, "POST", "/api/v1/tokens", json={"name": "laptop"})
    assert made.status_code == 201, made.text
    secret, token_id = made.json()["token"], made.json()["id"]
    assert secret.startswith("kfd_")
    assert call(server, secret).json()["email"] == "bob.jones@example.com"
    revoked = call(server, secret, "DELETE", f"/api/v1/tokens/{token_id}")
    assert revoked.status_code == 204, revoked.text

    assert_refused(call(server, secret), "invalid or revoked api token")


def test_it_checks_tokens_without_kid_against_a_jwks_without_kid(settings, monkeypatch):
    """Providers that leave ``kid`` out of their tokens may leave it out of their
    JWKS too; the signature is still checked against the keys (in process: the mock
    always names its key)."""
    from dashboard.auth import bearer

    issuer = "https://idp.example.com"
    settings.OIDC_ISSUER = issuer
    settings.OIDC_VERIFY_KID = False
    settings.OIDC_API_AUDIENCES = [CLIENT_ID]
    key = another_key()
    jwks = {"keys": [{**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True),
                      "use": "sig"}]}
    monkeypatch.setattr("dashboard.auth.bearer.provider_metadata",
                        lambda: {"issuer": issuer, "jwks_uri": f"{issuer}/keys"})
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda self: jwks)
    monkeypatch.setattr(bearer, "_jwks_clients", {})
    now = int(time.time())
    good = {"iss": issuer, "aud": CLIENT_ID, "email": "kim@example.com", "exp": now + 60}

    assert bearer.verify(jwt.encode(good, key, algorithm="RS256"))["email"] == "kim@example.com"
    with pytest.raises(bearer.InvalidToken, match="signature"):
        bearer.verify(jwt.encode(good, another_key(), algorithm="RS256"))
