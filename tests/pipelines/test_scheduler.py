"""The scheduler of recurring runs, on a clock the tests move (time-machine): periodic and
cron slots, catch-up both ways, the concurrency limit, the end date, a deleted version,
and schedulers racing for the same slots (one run each, guaranteed by the database).

Runs are started but not executed here (the engine is not what these tests are about):
the real end-to-end test with the local engine is tests/pipelines/test_recurring_live.py.
"""

# No "from __future__ import annotations": kfp reads the component's annotations.
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from kfp import compiler, dsl

from pipelines.models import Pipeline, RecurringRun, Run
from pipelines.scheduler import tick, tick_safely
from pipelines.specs import load
from pipelines.triggers import Trigger

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday, in Paris's winter time


@dsl.component(base_image="python:3.11")
def say(word: str) -> str:
    return word


@dsl.pipeline(name="nightly")
def nightly(word: str = "hello"):
    say(word=word)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("scheduler") / "nightly.yaml"
    compiler.Compiler().compile(nightly, str(path))
    return path.read_bytes()


@pytest.fixture
def version(profile, owner, package):
    return Pipeline.upload(profile, "nightly", load(package), owner)


@pytest.fixture(autouse=True)
def not_executed(monkeypatch):
    """Runs are created and committed as the scheduler makes them, not handed to the
    engine."""
    monkeypatch.setattr("pipelines.models.runs._submit", lambda run: None)


def schedule(profile, owner, version, **options) -> RecurringRun:
    trigger = options.pop("trigger", Trigger(interval_seconds=60))
    with time_machine.travel(options.pop("at", T0), tick=False):
        return RecurringRun.create(profile, owner, name="every minute", trigger=trigger,
                                   version=version, **options)


def slots(recurring: RecurringRun) -> list[datetime]:
    return sorted(Run.objects.filter(recurring_run=recurring).values_list("scheduled_at",
                                                                          flat=True))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_period_fires_one_period_after_its_anchor_then_every_period(db, profile, owner,
                                                                       version):
    every = schedule(profile, owner, version, parameters={"word": "hi"})
    assert every.next_slot_at == at(60)
    assert tick(at(59)) == 0
    assert tick(at(60)) == 1
    run = Run.objects.get(recurring_run=every)
    assert run.scheduled_at == at(60) and run.parameters == {"word": "hi"}
    assert run.name == "every minute 2026-03-02 08:01:00"
    assert run.pipeline_version == version and run.state == "PENDING"
    assert tick(at(61)) == 0  # that slot is done
    assert tick(at(120)) == 1
    assert slots(every) == [at(60), at(120)]
    every.refresh_from_db()
    assert (every.last_slot_at, every.next_slot_at) == (at(120), at(180))


def test_with_catch_up_every_missed_slot_runs(db, profile, owner, version):
    every = schedule(profile, owner, version)
    assert tick(at(5 * 60 + 30)) == 5  # the scheduler was down for five minutes
    assert slots(every) == [at(60 * n) for n in range(1, 6)]


def test_without_catch_up_only_the_latest_missed_slot_runs(db, profile, owner, version):
    every = schedule(profile, owner, version, catchup=False)
    assert tick(at(5 * 60 + 30)) == 1
    assert slots(every) == [at(300)]
    every.refresh_from_db()
    assert every.next_slot_at == at(360)


def test_no_more_runs_than_its_concurrency_limit_run_at_once(db, profile, owner, version):
    every = schedule(profile, owner, version, max_concurrency=2)
    assert tick(at(5 * 60)) == 2
    every.refresh_from_db()
    assert every.next_slot_at == at(180)  # the slots left wait for room
    assert tick(at(5 * 60 + 1)) == 0
    Run.objects.filter(scheduled_at=at(60)).update(state="SUCCEEDED")
    assert tick(at(5 * 60 + 2)) == 1
    assert slots(every) == [at(60), at(120), at(180)]


def test_it_stops_at_its_end(db, profile, owner, version):
    every = schedule(profile, owner, version, trigger=Trigger(interval_seconds=60,
                                                              end_at=at(150)))
    assert tick(at(600)) == 2
    every.refresh_from_db()
    assert every.next_slot_at is None
    assert tick(at(6000)) == 0
    assert slots(every) == [at(60), at(120)]


def test_a_start_in_the_future_is_its_anchor(db, profile, owner, version):
    every = schedule(profile, owner, version, trigger=Trigger(interval_seconds=3600,
                                                              start_at=at(86400)))
    assert every.next_slot_at == at(86400 + 3600)
    assert tick(at(86400)) == 0


def test_a_cron_with_seconds_fires_in_its_time_zone(db, profile, owner, version):
    """KFP's six fields: 09:00:00 Paris time, weekdays (robfig/cron: 1-5 is Mon-Fri)."""
    daily = schedule(profile, owner, version,
                     trigger=Trigger(cron="0 0 9 * * 1-5", time_zone="Europe/Paris"))
    # T0 is 09:00 in Paris exactly: the first slot is the next one, Tuesday 09:00.
    assert daily.next_slot_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert tick(datetime(2026, 3, 9, 12, 0, tzinfo=UTC)) == 5  # Tue..Fri, and Monday
    assert [s.isoformat() for s in slots(daily)][-1] == "2026-03-09T08:00:00+00:00"
    assert daily.trigger.describe() == "At 09:00, Monday through Friday (Europe/Paris)"


def test_five_fields_are_a_cron_without_seconds(db, profile, owner, version):
    quarter = schedule(profile, owner, version, trigger=Trigger(cron="*/15 * * * *"))
    assert quarter.next_slot_at == at(15 * 60)
    assert Trigger(interval_seconds=7200).describe() == "every 2 hours"


@pytest.mark.parametrize("fields, key", [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "* * *"}, "cron"),
    ({"interval_seconds": 0}, "interval_seconds"),
    ({"interval_seconds": -5}, "interval_seconds"),
    ({"interval_seconds": 60, "start_at": at(100), "end_at": at(50)}, "end_at"),
    ({"cron": "* * * * *", "interval_seconds": 60}, "trigger"),
    ({"interval_seconds": 60, "time_zone": "Mars/Olympus"}, "time_zone"),
])
def test_a_bad_trigger_is_refused_with_the_field_it_concerns(fields, key):
    with pytest.raises(ValidationError) as refused:
        Trigger(**fields)
    assert key in refused.value.message_dict


def test_bad_settings_create_nothing(db, profile, owner, version):
    with pytest.raises(ValidationError) as refused:
        schedule(profile, owner, version, max_concurrency=0)
    assert "max_concurrency" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        schedule(profile, owner, version, parameters={"word": "x", "other": 1})
    assert RecurringRun.objects.count() == 0


def test_disabling_stops_it_and_enabling_counts_from_then(db, profile, owner, version):
    every = schedule(profile, owner, version)
    with time_machine.travel(at(30), tick=False):
        every.set_enabled(False, owner)
    assert tick(at(600)) == 0
    with time_machine.travel(at(1000), tick=False):
        every.set_enabled(True, owner)
    assert every.next_slot_at == at(1060)  # the pause is not caught up
    assert tick(at(1060)) == 1


def test_deleting_its_version_disables_it_with_the_reason(db, profile, owner, version):
    every = schedule(profile, owner, version)
    version.delete()
    every.refresh_from_db()
    assert not every.enabled and every.next_slot_at is None
    assert every.disabled_reason == "Its pipeline version nightly was deleted."
    assert tick(at(600)) == 0


def test_always_the_latest_version_runs_the_newest(db, profile, owner, version, package):
    every = schedule(profile, owner, None, pipeline=version.pipeline)
    assert every.latest and every.pipeline_version is None
    newer = version.pipeline.add_version(load(package), owner, name="v2")
    tick(at(60))
    assert Run.objects.get(recurring_run=every).pipeline_version == newer
    version.pipeline.remove(owner)  # no pipeline, no latest version: it stops, saying why
    every.refresh_from_db()
    assert not every.enabled and every.disabled_reason == "Its pipeline nightly was deleted."


@pytest.mark.django_db(transaction=True)
def test_schedulers_racing_for_the_same_slots_start_one_run_each(profile, owner, version):
    every = schedule(profile, owner, version, max_concurrency=100)
    now = at(20 * 60)
    start = threading.Barrier(3)

    def scheduler():
        from django.db import connection

        start.wait()
        try:
            for _ in range(40):  # a slot lost to a lock is taken at a later tick
                tick_safely(now)
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert slots(every) == [at(60 * n) for n in range(1, 21)]  # each slot once, none lost
    # And the database itself refuses a second run of a slot.
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        Run.start(profile, owner, name="again", version=version, recurring_run=every,
                  scheduled_at=at(60))
