"""Issue a personal API token from the command line (for scripts and CI)."""

from django.core.management.base import BaseCommand, CommandError

from dashboard.models import ApiToken, User, normalize_email


class Command(BaseCommand):
    help = "Create an API token for a user; the token is the last line printed."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")

    def handle(self, email, name, **options):
        user = User.objects.filter(email=normalize_email(email), is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {email}.")
        _, secret = ApiToken.issue(user, name)
        self.stdout.write(f"Created token '{name}' for {user.email}; it is shown only once:")
        self.stdout.write(secret)
