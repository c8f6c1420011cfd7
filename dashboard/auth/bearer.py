"""Bearer JWTs from the OIDC provider (Dex access or ID tokens), checked against its JWKS.

Lets scripts and notebooks call the API with a token the provider issued, as
Kubeflow does behind oauth2-proxy. Signature, issuer, audience and expiry are
all checked; a token without ``kid`` is tried against every key only when
``OIDC_VERIFY_KID`` is off (some providers, and test providers, omit it).
"""

from __future__ import annotations

import threading

import jwt
from django.conf import settings

from dashboard.auth.identity import user_for_identity, valid_email
from dashboard.auth.oidc import ProviderUnavailable, provider_metadata

_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_lock = threading.Lock()


class InvalidToken(Exception):
    """The token is not one this dashboard accepts; the message says why."""


def _jwks_client(uri: str) -> jwt.PyJWKClient:
    with _lock:
        client = _jwks_clients.get(uri)
        if client is None:
            client = jwt.PyJWKClient(
                uri, cache_keys=True, lifespan=3600, timeout=settings.OIDC_TIMEOUT
            )
            _jwks_clients[uri] = client
        return client


def _signing_keys(token: str, client: jwt.PyJWKClient) -> list:
    header = jwt.get_unverified_header(token)
    if header.get("kid"):
        return [client.get_signing_key_from_jwt(token).key]
    if settings.OIDC_VERIFY_KID:
        raise InvalidToken("The token names no signing key (kid).")
    # Every signing key of the provider, named or not: PyJWKClient.get_signing_keys()
    # leaves out keys without a kid, and providers that omit it in tokens may omit it
    # in their JWKS too.
    keys = [key.key for key in client.get_jwk_set().keys if key.public_key_use in ("sig", None)]
    if not keys:
        raise InvalidToken("The provider publishes no signing key.")
    return keys


def verify(token: str) -> dict:
    """The token's verified claims; raises ``InvalidToken`` with the reason otherwise."""
    if not settings.OIDC_ISSUER:
        raise InvalidToken("Unknown token.")
    try:
        metadata = provider_metadata()
        client = _jwks_client(metadata["jwks_uri"])
        keys = _signing_keys(token, client)
    except (ProviderUnavailable, KeyError, jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
        raise InvalidToken(f"The token could not be checked: {exc}") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"Malformed token: {exc}") from exc
    last_error: Exception | None = None
    for key in keys:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[settings.OIDC_RP_SIGN_ALGO],
                audience=settings.OIDC_API_AUDIENCES or None,
                issuer=metadata.get("issuer"),
                options={"require": ["exp", "iss", "aud"], "verify_aud": True},
                leeway=30,
            )
        except jwt.InvalidSignatureError as exc:
            last_error = exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from exc
    raise InvalidToken(f"Bad token signature: {last_error}")


def user_for_token(token: str):
    """The user a provider-issued token speaks for."""
    claims = verify(token)
    email = valid_email(claims.get("email", ""))
    if not email:
        raise InvalidToken("The token carries no email claim.")
    groups = claims.get("groups")
    user = user_for_identity(
        email, name=str(claims.get("name") or ""),
        groups=list(groups) if isinstance(groups, list) else None,
    )
    if user is None:
        raise InvalidToken("This account is deactivated.")
    return user
