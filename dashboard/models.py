"""Identity and namespaces: users, profiles (namespaces), contributors, API tokens, activity."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from dashboard import live
from dashboard.choices import Role

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Names Kubernetes and Kubeflow keep for themselves.
RESERVED_NAMESPACES = frozenset({"default", "kubeflow", "istio-system", "cert-manager", "auth"})
RESERVED_PREFIXES = ("kube-", "kubeflow-system")


def normalize_email(email: str) -> str:
    """Users are keyed by lower-cased email, as Kubeflow does."""
    return (email or "").strip().lower()


def validate_namespace_name(name: str) -> None:
    if len(name) > 63:
        raise ValidationError("A namespace name has at most 63 characters.", code="too_long")
    if not DNS1123_LABEL.match(name):
        raise ValidationError(
            "Use lower-case letters, digits and '-', starting and ending with a letter or "
            "digit (a DNS-1123 label).",
            code="invalid",
        )
    if name in RESERVED_NAMESPACES or name.startswith(RESERVED_PREFIXES):
        raise ValidationError(f"'{name}' is reserved for the system.", code="reserved")


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        email = normalize_email(email)
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=email, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email=normalize_email(email))


class User(AbstractUser):
    """A person, identified by email. Superusers are cluster admins."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150, blank=True)
    # Groups the identity provider reported at the last login (OIDC `groups` claim).
    idp_groups = models.JSONField(default=list, blank=True)
    # The namespace the top bar selected last, so the next visit lands there.
    selected_namespace = models.CharField(max_length=63, blank=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    @property
    def is_cluster_admin(self) -> bool:
        return self.is_active and self.is_superuser

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def remember_namespace(self, name: str) -> None:
        if self.selected_namespace != name:
            self.selected_namespace = name
            self.save(update_fields=["selected_namespace"])


class ProfileQuerySet(models.QuerySet):
    def visible_to(self, user) -> ProfileQuerySet:
        if not user.is_authenticated:
            return self.none()
        if user.is_cluster_admin:
            return self.all()
        return self.filter(contributors__email=user.email).distinct()


class Profile(models.Model):
    """A namespace: the unit of ownership and sharing, as Kubeflow's Profile."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_namespace_name])
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="owned_profiles")
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def register(cls, name: str, owner: User) -> Profile:
        """Create a namespace owned by ``owner``, in the database and in the backend.

        All or nothing: if the backend fails, the database rows are rolled back and
        the backend removes what it had made.
        """
        from dashboard.namespaces import get_backend

        validate_namespace_name(name)
        if not owner.is_cluster_admin and owner.owned_profiles.exists():
            raise ValidationError("You already own a namespace; ask a cluster admin for more.",
                                  code="limit")
        with transaction.atomic():
            if cls.objects.filter(name=name).exists():
                raise ValidationError(f"The namespace '{name}' is taken.", code="taken")
            profile = cls.objects.create(name=name, owner=owner)
            profile.contributors.create(email=owner.email, role=Role.ADMIN, added_by=owner)
            profile.record(owner, "created", f"{owner.email} created the namespace {name}", name)
            get_backend().create_namespace(profile)
        owner.remember_namespace(name)
        return profile

    def set_contributor(self, email: str, role: str, by: User) -> Contributor:
        """Give ``email`` a role here (adding them or changing their role)."""
        from dashboard.namespaces import get_backend

        email = normalize_email(email)
        if role not in Role.values:
            raise ValidationError(
                f"'{role}' is not a role; use one of {', '.join(Role.values)}.", code="role"
            )
        try:
            models.EmailField().clean(email, None)
        except ValidationError as exc:
            raise ValidationError(f"'{email}' is not an email address.", code="email") from exc
        if email == self.owner.email:
            raise ValidationError(f"{email} owns this namespace; their role can't change.",
                                  code="owner")
        if email == by.email and not by.is_cluster_admin:
            raise ValidationError("You can't change your own role.", code="self")
        with transaction.atomic():
            contributor, created = Contributor.objects.select_for_update().get_or_create(
                profile=self, email=email, defaults={"role": role, "added_by": by}
            )
            if not created and contributor.role == role:
                return contributor
            contributor.role = role
            contributor.save(update_fields=["role"])
            verb = "added" if created else "changed the role of"
            self.record(by, "contributor", f"{by.email} {verb} {email} as {role}", email)
            get_backend().grant(self, email, Role(role))
        return contributor

    def remove_contributor(self, email: str, by: User) -> None:
        from dashboard.namespaces import get_backend

        email = normalize_email(email)
        if email == self.owner.email:
            raise ValidationError(
                f"{email} owns this namespace and is its last owner; they can't be removed.",
                code="owner",
            )
        with transaction.atomic():
            deleted, _ = self.contributors.filter(email=email).delete()
            if not deleted:
                raise ValidationError(f"{email} is not a contributor here.", code="missing")
            self.record(by, "contributor", f"{by.email} removed {email}", email)
            get_backend().revoke(self, email)

    def record(self, actor: User | None, verb: str, message: str, target: str = "") -> Activity:
        """Add a line to the activity feed and push it to open pages once committed."""
        activity = self.activities.create(actor=actor, verb=verb, message=message, target=target)
        live.publish_on_commit(live.activity_group(self.name), live.activity_event(activity))
        return activity

    @staticmethod
    def name_for_email(email: str) -> str:
        """Propose a free DNS-1123 namespace name derived from an email address."""
        base = re.sub(r"[^a-z0-9-]", "-", normalize_email(email))
        base = re.sub(r"-{2,}", "-", base).strip("-")[:63].strip("-") or "user"
        if base in RESERVED_NAMESPACES or base.startswith(RESERVED_PREFIXES):
            base = f"user-{base}"[:63].strip("-")
        candidate, n = base, 1
        while Profile.objects.filter(name=candidate).exists():
            n += 1
            suffix = f"-{n}"
            candidate = base[: 63 - len(suffix)].strip("-") + suffix
        return candidate


class Contributor(models.Model):
    """Someone's role in a namespace. The owner is the one admin who can't be removed.

    Keyed by email rather than by user, so people can be added before their first
    login (as KFAM's RoleBindings name users by email).
    """

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="contributors")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices)
    added_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "email"], name="one_role_per_person"),
        ]
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return f"{self.email} ({self.role}) in {self.profile_id}"

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    @property
    def is_owner(self) -> bool:
        return self.email == self.profile.owner.email


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once.

    The tokens are 256 random bits, so a fast hash is enough: there is nothing to
    brute-force, and lookups stay a single indexed query per API request.
    """

    PREFIX = "kfd_"
    LAST_USED_RESOLUTION = timedelta(minutes=1)

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        """Create a token for ``user``; returns the row and the secret, shown only now."""
        secret = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, digest=cls.digest_of(secret), hint=secret[:10]
        )
        return token, secret

    @classmethod
    def authenticate(cls, secret: str) -> ApiToken | None:
        token = (
            cls.objects.active().select_related("user").filter(digest=cls.digest_of(secret)).first()
        )
        if token:
            token.mark_used()
        return token

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def mark_used(self) -> None:
        """Record use, at most once a minute so API calls don't each write a row."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= self.LAST_USED_RESOLUTION:
            self.last_used_at = now
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class Activity(models.Model):
    """One line of a namespace's activity feed ("ana added bob as edit")."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    verb = models.CharField(max_length=40)
    target = models.CharField(max_length=255, blank=True)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["profile", "-created_at"])]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return self.message
