"""Fill a namespace with many realistic runs, quickly, for a demo or a benchmark."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Bulk-insert N finished runs of a 3-task pipeline (three parameters, three tasks, "
            "three metrics each, created five minutes apart up to now) into a namespace, "
            "creating the namespace and its owner if needed. Running it again adds N more.")

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=1000, help="how many (default 1000)")
        parser.add_argument("--namespace", default="demo", help="default: demo")
        parser.add_argument(
            "--owner", metavar="EMAIL",
            help="who makes the runs; a new namespace is theirs (default: an existing "
                 "namespace's owner, else NAMESPACE@example.com, created without a password)")

    def handle(self, runs, namespace, owner, **options):
        from pipelines import demo  # imports kfp: only when seeding

        if runs < 1:
            raise CommandError("--runs must be at least 1.")
        try:
            profile, user, made = demo.namespace_for(namespace, owner)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if made:
            self.stdout.write(f"Created {' and '.join(made)}.")
        seeded = demo.seed_runs(profile, user, runs)
        states = ", ".join(f"{count:,} {state.lower()}"
                           for state, count in seeded.states.most_common())
        self.stdout.write(
            f"Added {seeded.runs:,} runs ({states}; {seeded.archived:,} archived) with "
            f"{seeded.tasks:,} tasks and {seeded.metrics:,} metrics to the namespace "
            f"{profile.name} (now {seeded.first + seeded.runs:,} runs), made by {user.email}, "
            f"in {seeded.seconds:.1f} s.")
