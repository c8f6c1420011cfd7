"""Users from external identities (OIDC claims, a trusted header), keyed by email."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from dashboard.models import User, normalize_email


def valid_email(value: str) -> str | None:
    email = normalize_email(value)
    try:
        validate_email(email)
    except ValidationError:
        return None
    return email


def user_for_identity(email: str, name: str = "", groups: list[str] | None = None) -> User | None:
    """The active user with this email, created on first sight; None if deactivated.

    ``groups`` (from the identity provider) are remembered, and members of
    ``KFDASH_ADMIN_GROUPS`` become cluster admins while they stay members.
    """
    user, created = User.objects.get_or_create(email=email, defaults={"name": name})
    if not user.is_active:
        return None
    changed = []
    if name and user.name != name:
        user.name, changed = name, [*changed, "name"]
    if groups is not None:
        groups = sorted({str(g) for g in groups})
        if user.idp_groups != groups:
            user.idp_groups, changed = groups, [*changed, "idp_groups"]
        admin = bool(set(groups) & set(settings.KFDASH_ADMIN_GROUPS))
        if settings.KFDASH_ADMIN_GROUPS and user.is_superuser != admin:
            user.is_superuser = user.is_staff = admin
            changed += ["is_superuser", "is_staff"]
    if created:
        user.set_unusable_password()
        changed.append("password")
    if changed:
        user.save(update_fields=changed)
    return user
