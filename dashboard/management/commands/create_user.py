"""Create or update a local account, and optionally its namespace."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from dashboard.models import Profile, User, normalize_email


class Command(BaseCommand):
    help = "Create (or update) a user; with --namespace, also the namespace they own."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--password", help="Set this password (else none: OIDC/header login).")
        parser.add_argument("--namespace", help="Create this namespace owned by the user.")
        parser.add_argument("--superuser", action="store_true", help="Make a cluster admin.")
        parser.add_argument("--name", default="", help="Display name.")

    def handle(self, email, password, namespace, superuser, name, **options):
        email = normalize_email(email)
        user, created = User.objects.get_or_create(email=email)
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        if superuser:
            user.is_superuser = user.is_staff = True
        if name:
            user.name = name
        user.is_active = True
        user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} user {email}")
        if namespace:
            existing = Profile.objects.filter(name=namespace).first()
            if existing and existing.owner_id != user.pk:
                raise CommandError(f"The namespace {namespace} belongs to {existing.owner}.")
            if not existing:
                try:
                    Profile.register(namespace, user)
                except ValidationError as exc:
                    raise CommandError(" ".join(exc.messages)) from exc
                self.stdout.write(f"Created namespace {namespace}")
