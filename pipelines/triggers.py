"""When a recurring run fires: a cron expression (KFP's six fields with seconds first, as
robfig/cron reads them, or the usual five) or a fixed period, within an optional start and
end, in a time zone. Pure functions of time, so the scheduler's tests can move a clock.

Slots follow KFP's ScheduledWorkflow controller: a periodic schedule fires ``interval``
after its anchor (its start, or when it was enabled) and every ``interval`` after that; a
cron schedule fires at each time its expression matches after the anchor.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cron_descriptor import FormatException, Options, get_description
from croniter import croniter
from croniter.croniter import CroniterError
from django.core.exceptions import ValidationError

MAX_INTERVAL = 366 * 24 * 3600  # a year: longer periods are a cron's job
PREVIEW = 5  # the next times a form shows


@dataclass(frozen=True)
class Trigger:
    cron: str = ""
    interval_seconds: int | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if bool(self.cron) == (self.interval_seconds is not None):
            errors["trigger"] = "Give either a cron expression or a period, not both."
        if self.cron and not _valid_cron(self.cron):
            errors["cron"] = (f"“{self.cron}” is not a cron expression: five fields (minute "
                              "hour day month weekday) or six with seconds first, as KFP "
                              "takes them.")
        if self.interval_seconds is not None and not 0 < self.interval_seconds <= MAX_INTERVAL:
            errors["interval_seconds"] = ("The period must be at least 1 second and at most "
                                          "a year.")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            errors["end_at"] = "The end must come after the start."
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = f"“{self.time_zone}” is not a time zone."
        if errors:
            raise ValidationError(errors)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def with_seconds(self) -> bool:
        return len(self.cron.split()) == 6

    def first_slot(self, anchor: datetime) -> datetime | None:
        """The first slot after ``anchor`` (and not before the start)."""
        if self.start_at and anchor < self.start_at:
            anchor = self.start_at - timedelta(microseconds=1) if self.cron else self.start_at
        return self.next_slot(anchor)

    def next_slot(self, after: datetime) -> datetime | None:
        """The slot after ``after``; None past the end."""
        if self.cron:
            found = croniter(self.cron, after.astimezone(self.zone),
                             second_at_beginning=self.with_seconds).get_next(datetime)
        else:
            found = after + timedelta(seconds=self.interval_seconds)
        found = found.astimezone(UTC)
        return None if self.end_at and found > self.end_at else found

    def slots(self, first: datetime, until: datetime, limit: int) -> list[datetime]:
        """The slots from ``first`` up to ``until`` (both included), at most ``limit``."""
        found: list[datetime] = []
        slot: datetime | None = first
        while slot is not None and slot <= until and len(found) < limit:
            found.append(slot)
            slot = self.next_slot(slot)
        return found

    def preview(self, now: datetime, count: int = PREVIEW) -> list[datetime]:
        """The next ``count`` times it would fire from ``now``."""
        times: list[datetime] = []
        slot = self.first_slot(now)
        while slot is not None and len(times) < count:
            times.append(slot)
            slot = self.next_slot(slot)
        return times

    def describe(self) -> str:
        """In words: "every 2 hours", "At 09:00 AM, Monday through Friday (UTC)"."""
        if self.interval_seconds is not None:
            return f"every {period_text(self.interval_seconds)}"
        options = Options()
        options.use_24hour_time_format = True
        try:
            text = get_description(self.cron, options)
        except FormatException:
            text = self.cron
        return f"{text} ({self.time_zone})"


def period_text(seconds: int) -> str:
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}s" if count != 1 else unit
    return f"{seconds} seconds" if seconds != 1 else "second"


def _valid_cron(text: str) -> bool:
    fields = text.split()
    if len(fields) not in (5, 6):
        return False
    try:
        return croniter.is_valid(text, second_at_beginning=len(fields) == 6)
    except (CroniterError, ValueError):
        return False
