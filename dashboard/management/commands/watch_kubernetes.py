"""Run the cluster watchers on their own: Workflows (runs), Notebooks and Warning events,
recorded into the database and pushed to open pages. Server processes in kubernetes mode
run them already; this is for deployments that keep them in a process of their own."""

import threading

from django.core.management.base import BaseCommand, CommandError

from dashboard import watchers


class Command(BaseCommand):
    help = "Watch the cluster's Workflows, Notebooks and events until interrupted."

    def handle(self, **options):
        from django.conf import settings

        if settings.KFDASH_PLATFORM != "kubernetes":
            raise CommandError("KFDASH_PLATFORM is not kubernetes: there is no cluster to "
                               "watch.")
        running = watchers.start()
        self.stdout.write("Watching the cluster while this process holds the leader Lease "
                          "(Ctrl-C stops).")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            running.stop()
