"""First start: with no user at all, create an admin and print its password once."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from dashboard.models import User


class Command(BaseCommand):
    help = "Create the first admin account if there is no user yet (run by `make run`)."

    def handle(self, **options):
        if User.objects.exists():
            return
        email = settings.KFDASH_ADMIN_EMAIL
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(email, password)
        bar = "=" * 72
        self.stdout.write(
            f"\n{bar}\n"
            f"  kfdash created its first admin account (shown only this once):\n"
            f"    email:    {email}\n"
            f"    password: {password}\n"
            f"  Change it with:  .venv/bin/python manage.py changepassword {email}\n"
            f"  or:              .venv/bin/python manage.py create_user {email} --password NEW\n"
            f"{bar}\n"
        )
