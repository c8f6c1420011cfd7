"""What the base layout needs on every page: namespaces, navigation, links."""

from __future__ import annotations

from django.conf import settings

from dashboard import access, nav


def layout(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"auth_mode": settings.KFDASH_AUTH}
    current = getattr(request, "namespace", None)
    current_name = current.name if current else user.selected_namespace
    names = list(access.namespaces_for(user).values_list("name", flat=True))
    if current_name not in names:
        current_name = None
    return {
        "auth_mode": settings.KFDASH_AUTH,
        "namespace_names": names,
        "current_namespace": current_name,
        "nav_links": nav.links(current_name, request.path),
        "external_links": settings.KFDASH_EXTERNAL_LINKS,
    }
