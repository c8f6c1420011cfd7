"""``KFDASH_AUTH=header``: the identity comes from a header set by a trusted proxy.

This is Kubeflow's set-up: Istio with oauth2-proxy (or Dex's authservice)
authenticates the person and forwards ``kubeflow-userid: <email>``. kfdash
refuses to start in this mode unless ``KFDASH_TRUSTED_PROXY=1`` (settings.py),
because anyone who can reach it directly could claim to be anyone.

No session is kept: every request carries the header, and a request without it
is anonymous, so logging out of the proxy logs out of kfdash.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from dashboard.auth.identity import user_for_identity, valid_email


def email_from_header(value: str | None) -> str | None:
    """The email in a header value, with the configured prefix (e.g. ``accounts.google.com:``)
    removed; None when absent or not an email."""
    if not value:
        return None
    prefix = settings.KFDASH_USERID_PREFIX
    if prefix:
        if not value.startswith(prefix):
            return None
        value = value[len(prefix):]
    return valid_email(value)


def user_from_headers(headers) -> object | None:
    """The user a trusted request speaks for, from a mapping of (case-insensitive) headers."""
    email = email_from_header(headers.get(settings.KFDASH_USERID_HEADER))
    return user_for_identity(email) if email else None


class TrustedHeaderMiddleware:
    """Sets ``request.user`` from the identity header in header mode; else does nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.KFDASH_AUTH == "header":
            from django.contrib.auth.models import AnonymousUser

            request.user = user_from_headers(request.headers) or AnonymousUser()
        return self.get_response(request)


class TrustedHeaderBackend(ModelBackend):
    """Header mode has no passwords: only ``get_user`` is needed from a backend."""

    def authenticate(self, request, **credentials):
        return None


class TrustedHeaderWebsocketMiddleware:
    """The websocket counterpart of ``TrustedHeaderMiddleware`` (ASGI, for Channels)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if settings.KFDASH_AUTH == "header":
            from channels.db import database_sync_to_async
            from django.contrib.auth.models import AnonymousUser

            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", [])}
            lowered = _LowerKeys(headers)
            user = await database_sync_to_async(user_from_headers)(lowered)
            scope = {**scope, "user": user or AnonymousUser()}
        return await self.inner(scope, receive, send)


class _LowerKeys(dict):
    def get(self, key, default=None):
        return super().get(key.lower(), default)
