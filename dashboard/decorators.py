"""View decorators that put dashboard/access.py in front of namespace pages."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_http_methods

from dashboard import access
from dashboard.choices import Role

SAFE_METHODS = ("GET", "HEAD")


def namespace_view(verb: Role = Role.VIEW, methods: tuple[str, ...] | None = None):
    """Resolve the ``namespace`` URL argument to a Profile the user may ``verb`` in
    (else 404/403, or the login page for anonymous users) and remember it as the
    user's selected namespace. The view receives the Profile instead of the name.

    A page that only needs ``view`` only reads, so it answers GET and HEAD and nothing
    else (405), unless ``methods`` says otherwise: what a viewer may do is look."""
    if methods is None and verb == Role.VIEW:
        methods = SAFE_METHODS

    def decorate(view):
        # Checked after access, so that strangers learn nothing from a 405 either.
        answer = require_http_methods(methods)(view) if methods else view

        @login_required
        @wraps(view)
        def wrapper(request, namespace: str, *args, **kwargs):
            profile = access.get_namespace(request.user, namespace, verb)
            request.namespace = profile
            request.user.remember_namespace(profile.name)
            return answer(request, profile, *args, **kwargs)

        return wrapper

    return decorate
