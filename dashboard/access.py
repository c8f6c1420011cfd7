"""The one access policy: may this user do this verb in this namespace?

Every HTML view, API endpoint, websocket consumer and the notebook proxy asks
here. Verbs are the role names (``view`` < ``edit`` < ``admin``): a role allows
its own verb and those below it. Cluster admins (superusers) may do everything.
A user who may not *view* a namespace gets 404 for it and everything in it, so
that its existence is not revealed; one who may view but not act gets 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404

from dashboard.choices import Role
from dashboard.models import Contributor, Profile


def role_in(user, profile: Profile | str) -> Role | None:
    """The user's role in a namespace (a Profile or its name), or None."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_cluster_admin:
        return Role.ADMIN
    name = profile.name if isinstance(profile, Profile) else profile
    role = (
        Contributor.objects.filter(profile__name=name, email=user.email)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role else None


def can(user, verb: Role | str, profile: Profile | str) -> bool:
    role = role_in(user, profile)
    return role is not None and role.allows(verb)


def get_namespace(user, name: str, verb: Role | str = Role.VIEW) -> Profile:
    """The namespace ``name`` if ``user`` may do ``verb`` there; else 404 or 403.
    One query: every namespaced page and API call starts here."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        raise Http404("No such namespace.")
    profiles = Profile.objects.select_related("owner").filter(name=name)
    if not user.is_cluster_admin:
        profiles = profiles.annotate(caller_role=Subquery(Contributor.objects.filter(
            profile=OuterRef("pk"), email=user.email).values("role")[:1]))
    profile = profiles.first()
    role = None
    if profile is not None:
        role = Role.ADMIN if user.is_cluster_admin else (
            Role(profile.caller_role) if profile.caller_role else None)
    if profile is None or role is None:
        raise Http404("No such namespace.")
    if not role.allows(verb):
        raise PermissionDenied(f"You need the {Role(verb).label.lower()} role in {name}.")
    profile.role = role  # the caller's role, for templates and serializers
    return profile


def namespaces_for(user):
    """Every namespace the user may view, with ``role`` annotated for members."""
    return Profile.objects.visible_to(user)


def default_namespace(user) -> Profile | None:
    """The namespace a request that names none means: the one chosen last, else the first."""
    visible = namespaces_for(user)
    chosen = getattr(user, "selected_namespace", "")
    if chosen:
        profile = visible.filter(name=chosen).first()
        if profile is not None:
            return profile
    return visible.first()
