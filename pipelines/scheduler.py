"""The scheduler of recurring runs: every ``KFDASH_SCHEDULER_SECONDS`` it starts the runs
of the slots that came due (``RecurringRun.fire``). It runs inside each server process
(``make run`` needs nothing more) or alone (``manage.py run_scheduler``); several at once
are safe: a schedule's row is locked while it fires, and a slot's run is unique in the
database, so each slot gets exactly one run.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections

from pipelines.models import RecurringRun

log = logging.getLogger(__name__)


def tick(now: datetime) -> int:
    """Fire every enabled schedule whose next slot is due by ``now``; how many runs began.
    One schedule's failure is logged and does not stop the others."""
    started = 0
    due = RecurringRun.objects.filter(enabled=True, next_slot_at__lte=now).only("pk")
    for schedule in due:
        try:
            started += schedule.fire(now)
        except Exception:
            log.exception("the recurring run %s could not fire; it will be tried again",
                          schedule.pk)
    return started


def tick_safely(now: datetime) -> int:
    """One tick as the scheduler's thread takes it: any failure (a database busy or
    unreachable for a moment) is logged, and the next tick tries again."""
    try:
        close_old_connections()
        return tick(now)
    except Exception:
        log.exception("the scheduler failed; it will try again")
        return 0
    finally:
        close_old_connections()


class Scheduler(threading.Thread):
    def __init__(self, period: float | None = None) -> None:
        super().__init__(name="recurring-runs", daemon=True)
        self.period = period or settings.KFDASH_SCHEDULER_SECONDS
        self.stopping = threading.Event()

    def run(self) -> None:
        from django.utils import timezone

        while not self.stopping.wait(self.period):
            tick_safely(timezone.now())

    def stop(self) -> None:
        self.stopping.set()
