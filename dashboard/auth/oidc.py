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
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.generic import View
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


def provider_unavailable(request, exc: Exception):
    """The login page, explaining that the provider cannot be reached (503)."""
    log.warning("OIDC provider unavailable: %s", exc)
    messages.error(
        request,
        "The identity provider cannot be reached, so logging in is not possible right "
        "now. Please try again in a moment.",
    )
    return render(request, "registration/login_oidc.html", status=503)


class EmailOIDCBackend(OIDCAuthenticationBackend):
    """Users keyed by lower-cased email; name and groups refreshed at each login."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        # Django builds the backend on every request of a logged-in user, only to load
        # the user (get_user). The parent reads the provider's endpoints here, which
        # made every page fail while the provider was down: they are read when a
        # login is completed instead (authenticate).
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or not request.GET.get("code"):
            return None  # not a provider's answer: nothing to ask the provider
        super().__init__()  # the endpoints, from the discovery document
        return super().authenticate(request, **kwargs)

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

    def __init__(self, **kwargs):
        # The parent reads the provider's endpoints here, where a provider that is
        # down can only end in a 500; get() reads them and explains instead.
        View.__init__(self, **kwargs)

    def get(self, request):
        _require_oidc_mode()
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except ProviderUnavailable as exc:
            return provider_unavailable(request, exc)
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        return super().get(request)


STALE_ANSWER = (
    "That login answer did not match a login started here (it may be stale or forged). "
    "Please log in again."
)


class CallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer. Every failure leaves a message for the login page, which
    then shows it instead of sending the browser straight back to the provider."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request):
        _require_oidc_mode()
        states = request.session.get("oidc_states")
        if not request.GET.get("error") and request.GET.get("state") not in (
            states if isinstance(states, dict) else {}
        ):
            log.warning("OIDC callback refused: its state was not issued to this browser")
            return self._fail(STALE_ANSWER)
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            log.warning("OIDC callback refused: %s", exc)
            return self._fail(STALE_ANSWER)
        except (ProviderUnavailable, requests.RequestException) as exc:
            log.warning("OIDC login could not be completed: %s", exc)
            return self._fail(
                "The login could not be completed with the identity provider (it may be "
                "unavailable, or the login link was already used). Please log in again."
            )

    def login_failure(self):
        """The parent's failures: the provider's error, or no active user came of it."""
        if self.request.GET.get("error"):
            return self._fail(
                f"The identity provider refused the login: {self.request.GET['error']}."
            )
        if not self.request.GET.get("code"):
            return self._fail(STALE_ANSWER)
        return self._fail(
            "The identity provider did not give a valid email address, or this account "
            "is deactivated in kfdash."
        )

    def _fail(self, message: str):
        messages.error(self.request, message)
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
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


class _SessionRefresh(SessionRefresh):
    """mozilla-django-oidc's refresher, reading the provider's authorization endpoint
    only when a session is due for renewal, not on every request (probes included)."""

    @staticmethod
    def get_settings(attr, *default):
        if attr in _DISCOVERED and not getattr(settings, attr, None):
            return None  # discovered in process_request, when needed
        return import_from_settings(attr, *default)

    def process_request(self, request):
        expiration = request.session.get("oidc_id_token_expiration", 0)
        if not self.is_refreshable_url(request) or expiration > time.time():
            return None
        self.OIDC_OP_AUTHORIZATION_ENDPOINT = oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        return super().process_request(request)


class RefreshSessionMiddleware:
    """In OIDC mode, send browsers back to the provider (silently, ``prompt=none``)
    once their ID token is older than ``OIDC_RENEW_SECONDS``, so people removed
    at the provider lose access. The provider is asked only when a session is due
    for renewal, so one that is down neither stops kfdash from starting nor slows
    its other requests (probes included)."""

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
