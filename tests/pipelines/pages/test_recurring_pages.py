"""The recurring runs pages: the list (a namespace's and an experiment's), a recurring run's
details with the runs it started, the form (create, edit, clone: the run form plus the
trigger) with its live preview, enable, disable and delete; every bad input refused next
to its input with nothing created; viewers read, strangers find nothing."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.models import Experiment, RecurringRun, Run
from pipelines.specs import load
from pipelines.triggers import Trigger
from tests.pipelines.pages.run_factory import make_run

LIST = "/ns/team-a/recurring/"
NEW = "/ns/team-a/recurring/new/"
PREVIEW = "/ns/team-a/recurring/preview/"
NOW = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def schedule_of(profile, by, version, name="nightly", trigger=None, **fields) -> RecurringRun:
    return RecurringRun.create(profile, by, name=name, version=version,
                               trigger=trigger or Trigger(cron="0 9 * * *"), **fields)


def page_of(schedule) -> str:
    return f"{LIST}{schedule.pk}/"


def form_values(version, **values) -> dict[str, str]:
    """What the form posts for ``version`` of hello-pipeline (None: no version chosen): a
    daily cron, then ``values`` (a parameter by its name)."""
    data = {"source": "version", "pipeline": str(version.pipeline_id) if version else "",
            "version": str(version.pk) if version else "",
            "parameters_of": f"version:{version.pk}" if version else "",
            "name": "nightly", "description": "", "experiment": "", "caching": "on",
            "trigger_type": "cron", "interval_count": "1", "interval_unit": "days",
            "cron": "0 9 * * *", "start_at": "", "end_at": "", "time_zone": "UTC",
            "max_concurrency": "10", "catchup": "on", "enabled": "on"}
    for name, value in values.items():
        data[name if name in data or name in ("latest", "refresh") else f"parameter-{name}"] = value
    return data


def slot_run(schedule, slot: datetime, state="SUCCEEDED", ago: float = 0) -> Run:
    """A run the schedule started for ``slot`` (made directly: execution is not the point)."""
    run = make_run(schedule.profile, f"{schedule.name} {slot:%H:%M}", state=state, ago=ago,
                   experiment=schedule.experiment, version=schedule.pipeline_version)
    Run.objects.filter(pk=run.pk).update(recurring_run=schedule, scheduled_at=slot)
    run.refresh_from_db()
    return run


# --- the list -----------------------------------------------------------------------------


def test_it_lists_the_recurring_runs_with_their_trigger_next_and_last_run(
        login, owner, viewer, profile, stored, clock):
    daily = schedule_of(profile, owner, stored, "daily")
    clock.shift(1)
    latest = RecurringRun.create(profile, owner, name="fresh", pipeline=stored.pipeline,
                                 trigger=Trigger(interval_seconds=7200))
    clock.shift(1)
    paused = schedule_of(profile, owner, stored, "paused", enabled=False)
    slot_run(daily, NOW - timedelta(days=1), state="FAILED", ago=86400)
    slot_run(daily, NOW - timedelta(days=2), ago=2 * 86400)
    page = login(owner).get(LIST)
    assert page.status_code == 200
    rows = {row.name: row for row in page.context["schedules"]}
    assert list(rows) == ["paused", "fresh", "daily"]  # newest first
    assert rows["daily"].last_run.state == "FAILED" and rows["fresh"].last_run is None
    html = page.content.decode()
    row = _row(html, daily)
    assert "At 09:00 (UTC)" in row and "2025-03-03 09:00 UTC" in row  # the next run
    assert f'href="/ns/team-a/pipelines/{stored.pipeline_id}/?version={stored.pk}"' in row
    assert "Failed" in row and 'role="switch" aria-checked="true"' in row
    assert f'href="{NEW}?clone={daily.pk}"' in row and f"{page_of(daily)}edit/" in row
    assert f"{page_of(daily)}delete/" in row
    row = _row(html, latest)
    assert "always the latest version of" in row and "every 2 hours" in row
    assert "2025-03-03 10:00 UTC" in row and "none yet" in row
    row = _row(html, paused)
    assert 'aria-checked="false"' in row and "(disabled)" in row
    # A viewer reads the same list without the switches and buttons.
    html = login(viewer).get(LIST).content.decode()
    assert "role=\"switch\"" not in html and "Edit" not in html and "Create recurring" not in html
    assert _row(html, daily) and "Enabled</span>" in _row(html, daily)


def _row(html: str, schedule) -> str:
    match = re.search(rf'<tr data-recurring="{schedule.pk}">.*?</tr>', html, re.S)
    return match.group(0) if match else ""


def test_it_filters_by_state_name_and_experiment_and_sorts_by_next_run(login, owner, profile,
                                                                      stored, clock):
    tuning = Experiment.create(profile, "tuning", owner)
    schedule_of(profile, owner, stored, "hourly", Trigger(cron="0 * * * *"))
    schedule_of(profile, owner, stored, "weekly", Trigger(cron="0 9 * * 2"), experiment=tuning)
    schedule_of(profile, owner, stored, "off", enabled=False)
    client = login(owner)

    def names(query: str) -> list[str]:
        return [s.name for s in client.get(LIST + query).context["schedules"]]

    assert names("?show=enabled&sort=next") == ["hourly", "weekly"]
    assert names("?sort=-next") == ["weekly", "hourly", "off"]  # no next run: last
    assert names("?show=disabled") == ["off"]
    assert names("?q=EEK") == ["weekly"]
    assert names(f"?experiment={tuning.pk}") == ["weekly"]
    assert client.get(LIST + "?experiment=00000000-0000-4000-8000-000000000000"
                      ).status_code == 404


@pytest.mark.parametrize("url", [LIST, "experiment"])
def test_its_lists_make_the_same_queries_however_many_rows(login, owner, profile, stored,
                                                          url):
    experiment = Experiment.default_for(profile, owner)
    target = f"/ns/team-a/experiments/{experiment.pk}/" if url == "experiment" else LIST
    client = login(owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(target).status_code == 200
        return len(queries)

    schedule = schedule_of(profile, owner, stored, "first")
    slot_run(schedule, NOW)
    few = count()
    for n in range(12):
        schedule = schedule_of(profile, owner, stored, f"s-{n}", Trigger(interval_seconds=60),
                               max_concurrency=3)
        slot_run(schedule, NOW)
        slot_run(schedule, NOW + timedelta(minutes=1))
    assert count() == few


# --- details ------------------------------------------------------------------------------


def test_it_shows_a_recurring_runs_details_and_the_runs_it_started(login, owner, profile,
                                                                   stored, clock):
    schedule = schedule_of(profile, owner, stored, "weekdays",
                           Trigger(cron="0 0 9 * * 1-5", time_zone="Europe/Paris"),
                           parameters={"rows": 7}, max_concurrency=2, catchup=False,
                           description="Retrain on fresh data.")
    started = slot_run(schedule, NOW - timedelta(days=3))
    other = make_run(profile, "by hand")
    page = login(owner).get(page_of(schedule))
    assert page.status_code == 200
    html = page.content.decode()
    assert "At 09:00, Monday through Friday (Europe/Paris)" in html
    assert re.findall(r'<time datetime="[^"]+">(\w{3} [\d-]+ [\d:]+ \w+)</time>', html) == [
        "Tue 2025-03-04 09:00:00 CET", "Wed 2025-03-05 09:00:00 CET",  # 09:00 in Paris was
        "Thu 2025-03-06 09:00:00 CET", "Fri 2025-03-07 09:00:00 CET",  # now (08:00 UTC)
        "Mon 2025-03-10 09:00:00 CET"]
    assert "<code>0 0 9 * * 1-5</code>" in html and "Retrain on fresh data." in html
    assert "only the latest missed slot runs" in html
    assert re.search(r'data-parameter="rows"><td><code>rows</code></td><td>\w+</td>'
                     r'<td><code class="run-value">7</code>', html)
    assert [run.pk for run in page.context["runs"]] == [started.pk]  # not "by hand"
    assert other.name not in html


def test_it_shows_why_kfdash_disabled_one_and_its_times_if_enabled(login, owner, profile,
                                                                  stored, clock):
    schedule = schedule_of(profile, owner, stored, "orphan")
    stored.pipeline.remove(owner)
    schedule.refresh_from_db()
    html = login(owner).get(page_of(schedule)).content.decode()
    assert "Disabled by kfdash: Its pipeline" in html and "was deleted." in html
    assert "If it were enabled now" in html and "Mon 2025-03-03 09:00:00 UTC" in html
    assert "deleted</span>" in html  # no pipeline to link to
    assert "None yet." in html


def test_a_run_it_started_says_so_on_its_page(login, owner, profile, stored):
    schedule = schedule_of(profile, owner, stored, "weekdays",
                           Trigger(cron="0 9 * * 1-5", time_zone="Europe/Paris"))
    run = slot_run(schedule, datetime(2025, 3, 3, 8, 0, tzinfo=UTC))
    html = login(owner).get(f"/ns/team-a/runs/{run.pk}/").content.decode()
    assert re.search(rf'Started by the recurring run <a href="{page_of(schedule)}">weekdays</a>'
                     r', slot <time [^>]+>2025-03-03 09:00:00 CET</time>', html)
    html = login(owner).get(f"/ns/team-a/runs/{make_run(profile, 'manual').pk}/"
                            ).content.decode()
    assert "Started by the recurring run" not in html


def test_the_experiment_and_pipeline_pages_lead_to_recurring_runs(login, owner, viewer,
                                                                  profile, stored):
    tuning = Experiment.create(profile, "tuning", owner)
    schedule = schedule_of(profile, owner, stored, "tuned", experiment=tuning)
    schedule_of(profile, owner, stored, "elsewhere")
    page = login(owner).get(f"/ns/team-a/experiments/{tuning.pk}/")
    assert [s.name for s in page.context["schedules"]] == ["tuned"]
    html = page.content.decode()
    assert _row(html, schedule) and f'href="{NEW}?experiment={tuning.pk}"' in html
    html = login(owner).get(f"/ns/team-a/pipelines/{stored.pipeline_id}/").content.decode()
    assert f'href="{NEW}?pipeline={stored.pipeline_id}&amp;version={stored.pk}"' in html
    html = login(viewer).get(f"/ns/team-a/pipelines/{stored.pipeline_id}/").content.decode()
    assert "Create recurring run" not in html


# --- the form -----------------------------------------------------------------------------


def test_its_form_is_the_run_form_plus_the_trigger(login, member, stored, clock):
    page = login(member).get(f"{NEW}?pipeline={stored.pipeline_id}&version={stored.pk}")
    assert page.status_code == 200
    form = page.context["form"]
    assert form.parameter_names == ["lr", "rows", "target"]
    assert form.initial["name"] == "hello-pipeline"
    html = page.content.decode()
    assert 'name="parameter-rows" value="100"' in html
    for name in ("trigger_type", "interval_count", "interval_unit", "cron", "start_at",
                 "end_at", "time_zone", "max_concurrency", "catchup", "enabled", "latest"):
        assert f'name="{name}"' in html, name
    assert 'name="max_concurrency" value="10"' in html
    assert '<option value="UTC" selected>UTC</option>' in html
    assert 'type="datetime-local"' in html
    # The preview as the page loads: the default trigger, once a day from now.
    assert "Every day" in html and "Tue 2025-03-04 08:00:00 UTC" in html


def test_it_creates_a_cron_recurring_run_in_a_time_zone(login, member, profile, stored, clock):
    tuning = Experiment.create(profile, "tuning", member)
    response = login(member).post(NEW, form_values(
        stored, rows="7", name="weekday mornings", cron=" 0 0 9 * *  1-5 ",
        time_zone="Europe/Paris", start_at="2025-03-04T00:00", end_at="2025-04-01T12:30",
        experiment=str(tuning.pk), max_concurrency="2", catchup="", caching=""))
    schedule = RecurringRun.objects.get()
    assert response.status_code == 302 and response["Location"] == page_of(schedule)
    assert (schedule.name, schedule.pipeline_version, schedule.experiment) == (
        "weekday mornings", stored, tuning)
    assert schedule.cron == "0 0 9 * * 1-5" and schedule.interval_seconds is None
    assert schedule.start_at == datetime(2025, 3, 3, 23, 0, tzinfo=UTC)  # midnight in Paris
    assert schedule.end_at == datetime(2025, 4, 1, 10, 30, tzinfo=UTC)  # summer time by then
    assert schedule.parameters == {"rows": 7, "lr": 0.1, "target": "prod"}
    assert (schedule.max_concurrency, schedule.catchup, schedule.caching) == (2, False, False)
    assert schedule.enabled and schedule.next_slot_at == datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
    assert schedule.created_by == member and not Run.objects.exists()


def test_it_creates_a_periodic_one_on_the_latest_version_disabled(clock, login, member, owner,
                                                                  stored, hello_package):
    clock.shift(60)
    newer = stored.pipeline.add_version(load(hello_package), owner, "v2")
    client = login(member)
    # Checked "always the latest version" while v1 shows: v2's parameters are shown first.
    response = client.post(NEW, form_values(stored, latest="on", refresh="1"))
    form = response.context["form"]
    assert form.reviewing and form.chosen_version == newer
    assert f'name="parameters_of" value="version:{newer.pk}"' in response.content.decode()
    response = client.post(NEW, form_values(
        newer, latest="on", trigger_type="periodic", interval_count="6", interval_unit="hours",
        cron="junk that is not used", enabled=""))
    schedule = RecurringRun.objects.get()
    assert response.status_code == 302
    assert schedule.latest and schedule.pipeline == stored.pipeline
    assert schedule.pipeline_version is None
    assert schedule.interval_seconds == 6 * 3600 and schedule.cron == ""
    assert not schedule.enabled and schedule.next_slot_at is None


BAD = {
    "invalid cron": ({"cron": "61 * * * *"}, "cron", "is not a cron expression"),
    "empty cron": ({"cron": " "}, "cron", "Write a cron expression"),
    "seven fields": ({"cron": "0 0 9 * * 1 2025"}, "cron", "is not a cron expression"),
    "interval 0": ({"trigger_type": "periodic", "interval_count": "0"}, "interval_count",
                   "The period must be at least 1 second"),
    "interval negative": ({"trigger_type": "periodic", "interval_count": "-2"},
                          "interval_count", "The period must be at least 1 second"),
    "interval not a number": ({"trigger_type": "periodic", "interval_count": "x"},
                              "interval_count", "Enter a whole number."),
    "end before start": ({"start_at": "2025-05-01T09:00", "end_at": "2025-04-01T09:00"},
                         "end_at", "The end must come after the start."),
    "end at start": ({"start_at": "2025-05-01T09:00", "end_at": "2025-05-01T09:00"},
                     "end_at", "The end must come after the start."),
    "bad date": ({"start_at": "someday"}, "start_at", "Enter a valid date/time."),
    "unknown zone": ({"time_zone": "Mars/Olympus"}, "time_zone", "Select a valid choice."),
    "max concurrency 0": ({"max_concurrency": "0"}, "max_concurrency",
                          "At least 1 run at a time."),
    "parameter of the wrong type": ({"rows": "many"}, "parameter-rows",
                                    "'rows' must be an integer"),
    "unknown parameter": ({"speed": "1"}, "__all__", "The pipeline has no parameter 'speed'"),
    "bad name": ({"name": "a\x07b"}, "name", "A recurring run name can't contain control"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_it_refuses_bad_input_next_to_its_input_and_creates_nothing(login, member, stored,
                                                                    case, clock):
    values, field, message = BAD[case]
    response = login(member).post(NEW, form_values(stored, **values))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not RecurringRun.objects.exists() and not Experiment.objects.exists()
    html = response.content.decode()
    assert 'class="field-error"' in html or 'class="form-error"' in html
    if field.startswith("parameter") or field in ("max_concurrency", "name", "__all__"):
        # The trigger was fine: the page shows its preview again, rendered here.
        assert "At 09:00 (UTC)" in html and "Mon 2025-03-03 09:00:00 UTC" in html


def test_it_edits_one_keeping_what_the_form_does_not_show(login, member, owner, profile,
                                                          stored, clock):
    schedule = schedule_of(profile, owner, stored, "nightly", parameters={"rows": 7},
                           service_account="trainer", pipeline_root="minio://bucket/root",
                           max_concurrency=3)
    slot_run(schedule, NOW - timedelta(days=1))
    client = login(member)
    page = client.get(f"{page_of(schedule)}edit/")
    form = page.context["form"]
    assert form["name"].value() == "nightly" and form["cron"].value() == "0 9 * * *"
    assert form["parameter-rows"].value() == "7" and form["max_concurrency"].value() == 3
    response = client.post(f"{page_of(schedule)}edit/", form_values(
        stored, name="twice a day", rows="8", trigger_type="periodic", interval_count="12",
        interval_unit="hours", start_at="2025-03-03T10:00", time_zone="Asia/Tokyo"))
    assert response.status_code == 302 and response["Location"] == page_of(schedule)
    schedule.refresh_from_db()
    assert schedule.name == "twice a day" and schedule.parameters["rows"] == 8
    assert schedule.interval_seconds == 12 * 3600 and schedule.cron == ""
    assert schedule.start_at == datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
    assert (schedule.service_account, schedule.pipeline_root) == ("trainer",
                                                                   "minio://bucket/root")
    assert RecurringRun.objects.count() == 1 and schedule.runs.count() == 1
    # A bad edit changes nothing.
    response = client.post(f"{page_of(schedule)}edit/", form_values(stored, cron="nope"))
    assert "cron" in response.context["form"].errors
    schedule.refresh_from_db()
    assert schedule.name == "twice a day"


def test_an_edit_can_disable_and_enable_it(login, member, owner, profile, stored, clock):
    schedule = schedule_of(profile, owner, stored)
    client = login(member)
    client.post(f"{page_of(schedule)}edit/", form_values(stored, enabled=""))
    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_slot_at is None
    client.post(f"{page_of(schedule)}edit/", form_values(stored))
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_slot_at == datetime(2025, 3, 3, 9, tzinfo=UTC)


def test_it_clones_one(login, member, owner, profile, stored, clock):
    schedule = schedule_of(profile, owner, stored, "nightly", parameters={"target": "dev"},
                           trigger=Trigger(interval_seconds=90 * 60, time_zone="Asia/Kolkata"),
                           enabled=False)
    client = login(member)
    page = client.get(f"{NEW}?clone={schedule.pk}")
    form = page.context["form"]
    assert form["name"].value() == "Clone of nightly" and form["enabled"].value() is True
    assert (form["interval_count"].value(), form["interval_unit"].value()) == (90, "minutes")
    assert form["time_zone"].value() == "Asia/Kolkata"
    assert form["parameter-target"].value() == "dev"
    html = page.content.decode()
    assert "Clone of nightly" in html
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("on" if v is True else "" if v in (None, False) else str(v))
            for k, v in data.items()}
    data["parameters_of"] = f"version:{stored.pk}"
    response = client.post(f"{NEW}?clone={schedule.pk}", data)
    assert response.status_code == 302, response.context["form"].errors
    clone = RecurringRun.objects.exclude(pk=schedule.pk).get()
    assert (clone.name, clone.interval_seconds, clone.time_zone, clone.parameters["target"],
            clone.enabled) == ("Clone of nightly", 5400, "Asia/Kolkata", "dev", True)


def test_it_edits_one_made_from_a_pipeline_file_keeping_the_file(login, member, owner, profile,
                                                                 hello_package, clock):
    schedule = RecurringRun.create(profile, owner, name="from a file",
                                   loaded=load(hello_package), trigger=Trigger(cron="0 9 * * *"))
    client = login(member)
    page = client.get(f"{page_of(schedule)}edit/")
    form = page.context["form"]
    assert form["source"].value() == "run" and form.parameter_names == ["lr", "rows", "target"]
    assert "The pipeline stored with from a file" in page.content.decode()
    data = form_values(None, rows="3", source="run", parameters_of=f"recurring:{schedule.pk}")
    response = client.post(f"{page_of(schedule)}edit/", data)
    assert response.status_code == 302, response.context["form"].errors
    schedule.refresh_from_db()
    assert schedule.document is not None and schedule.parameters["rows"] == 3
    assert schedule.name == "nightly"


# --- enable, disable, delete ------------------------------------------------------------------


def test_editors_disable_and_enable_it_from_the_list(login, member, owner, profile, stored,
                                                     clock):
    schedule = schedule_of(profile, owner, stored)
    client = login(member)
    response = client.post(f"{page_of(schedule)}disable/", {"next": f"{LIST}?show=enabled"})
    assert response.status_code == 302 and response["Location"] == f"{LIST}?show=enabled"
    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_slot_at is None
    clock.move_to(NOW + timedelta(hours=2))  # a pause is not caught up
    response = client.post(f"{page_of(schedule)}enable/", {"next": "https://evil.example/"})
    assert response["Location"] == page_of(schedule)  # only back to this site
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_slot_at == datetime(2025, 3, 4, 9, tzinfo=UTC)
    assert client.get(f"{page_of(schedule)}enable/").status_code == 405


def test_it_deletes_one_after_a_confirmation_keeping_its_runs(login, member, owner, profile,
                                                              stored):
    schedule = schedule_of(profile, owner, stored)
    run = slot_run(schedule, NOW)
    client = login(member)
    page = client.get(f"{page_of(schedule)}delete/")
    assert page.status_code == 200
    assert "The 1 run it started stays." in page.content.decode()
    assert RecurringRun.objects.exists()
    response = client.post(f"{page_of(schedule)}delete/")
    assert response.status_code == 302 and response["Location"] == LIST
    assert not RecurringRun.objects.exists()
    assert profile.activities.filter(
        message="member@example.com deleted the recurring run nightly").exists()
    run.refresh_from_db()
    assert run.recurring_run is None


# --- the preview ----------------------------------------------------------------------------


def test_its_preview_says_the_trigger_in_words_and_its_next_five_times(login, viewer, clock):
    client = login(viewer)
    answer = client.get(PREVIEW, {"trigger_type": "cron", "cron": "30 9 * * 1-5",
                                  "time_zone": "America/New_York"}).json()
    assert answer["description"] == "At 09:30, Monday through Friday (America/New_York)"
    assert [t["text"] for t in answer["times"]] == [
        "Mon 2025-03-03 09:30:00 EST", "Tue 2025-03-04 09:30:00 EST",
        "Wed 2025-03-05 09:30:00 EST", "Thu 2025-03-06 09:30:00 EST",
        "Fri 2025-03-07 09:30:00 EST"]
    assert answer["times"][0]["iso"] == "2025-03-03T14:30:00+00:00"
    answer = client.get(PREVIEW, {"trigger_type": "periodic", "interval_count": "2",
                                  "interval_unit": "weeks", "start_at": "2025-03-10T06:00",
                                  "time_zone": "UTC"}).json()
    assert answer["description"] == "every 2 weeks"
    assert answer["times"][0]["text"] == "Mon 2025-03-24 06:00:00 UTC"
    answer = client.get(PREVIEW, {"trigger_type": "cron", "cron": "0 9 * * *",
                                  "end_at": "2025-03-01T00:00", "time_zone": "UTC"}).json()
    assert answer["times"] == []


@pytest.mark.parametrize(("query", "message"), [
    ({"trigger_type": "cron", "cron": "every day"}, "“every day” is not a cron expression"),
    ({"trigger_type": "periodic", "interval_count": "0", "interval_unit": "days"},
     "The period must be at least 1 second and at most a year."),
    ({"trigger_type": "cron", "cron": "0 9 * * *", "start_at": "2025-05-01T00:00",
      "end_at": "2025-01-01T00:00"}, "The end must come after the start."),
    ({"trigger_type": "sometimes"}, "Select a valid choice."),
])
def test_its_preview_answers_bad_triggers_with_messages(login, viewer, query, message):
    response = login(viewer).get(PREVIEW, {"time_zone": "UTC", "interval_unit": "days",
                                           **query})
    assert response.status_code == 200 and "times" not in response.json()
    assert any(message in m for m in response.json()["errors"]), response.json()


# --- who may do what ------------------------------------------------------------------------


def test_a_viewer_reads_but_changes_nothing(login, viewer, owner, profile, stored):
    schedule = schedule_of(profile, owner, stored)
    client = login(viewer)
    for url in (LIST, page_of(schedule), f"{PREVIEW}?trigger_type=cron&cron=0+9+*+*+*"
                                         "&time_zone=UTC"):
        assert client.get(url).status_code == 200, url
    html = client.get(page_of(schedule)).content.decode()
    assert "Edit" not in html and "Delete" not in html and 'role="switch"' not in html
    for url in (NEW, f"{page_of(schedule)}edit/", f"{page_of(schedule)}delete/"):
        assert client.get(url).status_code == 403, url
    for url in (NEW, f"{page_of(schedule)}edit/", f"{page_of(schedule)}delete/",
                f"{page_of(schedule)}disable/", f"{page_of(schedule)}enable/"):
        assert client.post(url, form_values(stored)).status_code == 403, url
    schedule.refresh_from_db()
    assert schedule.enabled and RecurringRun.objects.count() == 1


def test_strangers_find_nothing_and_anonymous_callers_log_in(client, login, stranger, owner,
                                                             profile, stored):
    schedule = schedule_of(profile, owner, stored)
    urls = [LIST, NEW, PREVIEW, page_of(schedule), f"{page_of(schedule)}edit/",
            f"{page_of(schedule)}delete/", f"{page_of(schedule)}enable/",
            f"{page_of(schedule)}disable/", f"{NEW}?clone={schedule.pk}"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    stranger_client = login(stranger)
    for url in urls:
        assert stranger_client.get(url).status_code == 404, url
        assert stranger_client.post(url).status_code == 404, url
    # Another namespace's recurring run is not found from this one either.
    from dashboard.models import Profile

    Profile.register("team-b", stranger)
    assert stranger_client.get(f"/ns/team-b/recurring/{schedule.pk}/").status_code == 404
    assert stranger_client.get(f"/ns/team-b/recurring/new/?clone={schedule.pk}"
                               ).status_code == 404
    assert stranger_client.post(f"/ns/team-b/recurring/{schedule.pk}/disable/"
                                ).status_code == 404
    schedule.refresh_from_db()
    assert schedule.enabled
