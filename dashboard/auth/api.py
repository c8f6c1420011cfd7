"""How API clients prove who they are (DRF authentication classes).

In order: a personal API token (``Bearer kfd_…``), a provider-issued JWT
(``Bearer eyJ…``, OIDC mode), the trusted identity header (header mode), and
the browser session with CSRF enforced. The real ``kfp.Client`` sends no CSRF
token, so scripts use a bearer token (or the header behind the proxy).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import authentication, exceptions

from dashboard.auth import bearer
from dashboard.auth.header import user_from_headers
from dashboard.models import ApiToken


def _bearer(request) -> str | None:
    parts = authentication.get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode()
    except UnicodeDecodeError as exc:
        raise exceptions.AuthenticationFailed("Malformed bearer token.") from exc


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = _bearer(request)
        if not secret or not secret.startswith(ApiToken.PREFIX):
            return None
        token = ApiToken.authenticate(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="kfdash"'


class OIDCBearerAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = _bearer(request)
        if not secret or secret.startswith(ApiToken.PREFIX):
            return None
        try:
            return bearer.user_for_token(secret), secret
        except bearer.InvalidToken as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc


class TrustedHeaderAuthentication(authentication.BaseAuthentication):
    """Header mode. The proxy authenticates browsers by cookie, so a cross-site page
    could make a browser send a forged POST through it; refuse writes whose
    ``Origin`` is another site (browsers always send Origin on those)."""

    def authenticate(self, request):
        if settings.KFDASH_AUTH != "header":
            return None
        user = user_from_headers(request.headers)
        if user is None:
            return None
        origin = request.headers.get("Origin")
        unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
        if unsafe and origin and urlsplit(origin).netloc != request.get_host():
            raise exceptions.PermissionDenied("Cross-site request refused.")
        return user, None


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """The browser's session; DRF enforces CSRF for it on unsafe methods."""

    def authenticate(self, request):
        if settings.KFDASH_AUTH == "header":
            return None  # identity only ever comes from the header in this mode
        return super().authenticate(request)
