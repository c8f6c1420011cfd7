"""View decorators that put dashboard/access.py in front of namespace pages."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required

from dashboard import access
from dashboard.choices import Role


def namespace_view(verb: Role = Role.VIEW):
    """Resolve the ``namespace`` URL argument to a Profile the user may ``verb`` in
    (else 404/403, or the login page for anonymous users) and remember it as the
    user's selected namespace. The view receives the Profile instead of the name."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, namespace: str, *args, **kwargs):
            profile = access.get_namespace(request.user, namespace, verb)
            request.namespace = profile
            request.user.remember_namespace(profile.name)
            return view(request, profile, *args, **kwargs)

        return wrapper

    return decorate
