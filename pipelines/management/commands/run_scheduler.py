"""Run the scheduler of recurring runs on its own (server processes run one already,
unless KFDASH_SCHEDULER=off)."""

from django.core.management.base import BaseCommand

from pipelines.scheduler import Scheduler


class Command(BaseCommand):
    help = "Start the runs of recurring runs as their slots come due, until interrupted."

    def handle(self, **options):
        scheduler = Scheduler()
        self.stdout.write(f"Scheduling recurring runs every {scheduler.period} s (Ctrl-C "
                          "stops).")
        try:
            scheduler.run()
        except KeyboardInterrupt:
            scheduler.stop()
