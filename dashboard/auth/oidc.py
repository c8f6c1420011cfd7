"""``KFDASH_AUTH=oidc``: log in through an OpenID Connect provider (Dex in production).

mozilla-django-oidc does the code flow. kfdash adds what it lacks: endpoints
read from the issuer's discovery document (so only ``OIDC_ISSUER`` is set),
users keyed by email with the provider's groups remembered, a clear message for
a callback that does not match a login started here, and a logout that also
ends the provider's session when it offers ``end_session_endpoint``.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.middleware import SessionRefresh
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from dashboard.auth.identity import user_for_identity, valid_email

log = logging.getLogger(__name__)

DISCOVERY_TTL = 3600.0
_discovery: dict[str, tuple[float, dict]] = {}
_discovery_lock = threading.Lock()


class ProviderUnavailable(ImproperlyConfigured):
    """The provider's discovery document could not be read."""


def provider_metadata() -> dict:
    """The issuer's discovery document, fetched on first use and kept for an hour."""
    issuer = settings.OIDC_ISSUER
    if not issuer:
        raise ProviderUnavailable("OIDC_ISSUER is not set.")
    now = time.monotonic()
    with _discovery_lock:
        cached = _discovery.get(issuer)
        if cached and now - cached[0] < DISCOVERY_TTL:
            return cached[1]
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        metadata = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"Could not read {url}: {exc}") from exc
    if metadata.get("issuer", "").rstrip("/") != issuer:
        raise ProviderUnavailable(
            f"{url} names the issuer {metadata.get('issuer')!r}, not {issuer!r}."
        )
    with _discovery_lock:
        _discovery[issuer] = (now, metadata)
    return metadata


def forget_provider_metadata() -> None:
    with _discovery_lock:
        _discovery.clear()


# mozilla-django-oidc setting -> discovery document key
_DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def oidc_setting(attr: str, *default):
    """A mozilla-django-oidc setting; endpoints come from discovery unless set explicitly."""
    if attr in _DISCOVERED and not getattr(settings, attr, None):
        return provider_metadata().get(_DISCOVERED[attr], *default)
    return import_from_settings(attr, *default)


def _require_oidc_mode() -> None:
    if settings.KFDASH_AUTH != "oidc":
        raise Http404("OIDC login is not enabled.")


class EmailOIDCBackend(OIDCAuthenticationBackend):
    """Users keyed by lower-cased email; name and groups refreshed at each login."""

    get_settings = staticmethod(oidc_setting)

    def verify_claims(self, claims) -> bool:
        return valid_email(claims.get("email", "")) is not None

    def get_or_create_user(self, access_token, id_token, payload):
        # The ID token's claims first, then userinfo's: Dex puts groups in the ID token.
        claims = {**payload, **self.get_userinfo(access_token, id_token, payload)}
        if not self.verify_claims(claims):
            raise SuspiciousOperation("The provider did not give a valid email address.")
        groups = claims.get("groups")
        return user_for_identity(
            valid_email(claims["email"]),
            name=str(claims.get("name") or ""),
            groups=list(groups) if isinstance(groups, list) else [],
        )


class AuthenticateView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        _require_oidc_mode()
        super().__init__(*args, **kwargs)


class CallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    def get(self, request):
        _require_oidc_mode()
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            log.warning("OIDC callback refused: %s", exc)
            messages.error(
                request,
                "That login answer did not match a login started here (it may be stale "
                "or forged). Please log in again.",
            )
            return self.login_failure()

    def login_failure(self):
        if self.request.GET.get("error"):
            messages.error(
                self.request,
                f"The identity provider refused the login: {self.request.GET['error']}.",
            )
        return super().login_failure()


def provider_logout_url(request) -> str:
    """Where to send the browser after logging out of kfdash: the provider's
    ``end_session_endpoint`` (RP-initiated logout) when it has one, else the login page."""
    back = request.build_absolute_uri(reverse("login"))
    try:
        endpoint = provider_metadata().get("end_session_endpoint")
    except ProviderUnavailable:
        endpoint = None
    if not endpoint:
        return back
    params = {"post_logout_redirect_uri": back, "client_id": settings.OIDC_RP_CLIENT_ID}
    id_token = request.session.get("oidc_id_token")
    if id_token:
        params["id_token_hint"] = id_token
    return f"{endpoint}?{urlencode(params)}"


class _SessionRefresh(SessionRefresh):
    get_settings = staticmethod(oidc_setting)


class RefreshSessionMiddleware:
    """In OIDC mode, send browsers back to the provider (silently, ``prompt=none``)
    once their ID token is older than ``OIDC_RENEW_SECONDS``, so people removed
    at the provider lose access. Built on first use, so a provider that is down
    at start-up does not stop kfdash from starting."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._refresh: _SessionRefresh | None = None

    def __call__(self, request):
        if settings.KFDASH_AUTH == "oidc":
            try:
                if self._refresh is None:
                    self._refresh = _SessionRefresh(self.get_response)
                response = self._refresh.process_request(request)
            except ProviderUnavailable as exc:
                log.warning("OIDC session refresh skipped: %s", exc)
                response = None
            if response is not None:
                return response
        return self.get_response(request)
