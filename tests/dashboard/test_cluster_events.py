"""Warning events of the cluster reach the namespace's activity feed, once each, through
a watch of the fake API server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from dashboard import kube
from dashboard.cluster_events import EventWatcher
from dashboard.models import Activity

pytestmark = pytest.mark.django_db(transaction=True)


def event(name: str, kind: str = "Warning", when: datetime | None = None,
          namespace: str = "team-a", count: int = 1) -> dict:
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": f"{name}-pod", "namespace": namespace},
            "reason": "FailedScheduling", "message": "0/3 nodes are available: Insufficient cpu.",
            "type": kind, "count": count, "firstTimestamp": stamp, "lastTimestamp": stamp}


def feed(profile) -> list[str]:
    for _ in range(50):  # SQLite's in-memory test database: a watcher write may hold it
        try:
            return list(Activity.objects.filter(profile=profile, verb="cluster")
                        .values_list("message", flat=True))
        except Exception:
            time.sleep(0.02)
    raise AssertionError("the database stayed locked")


def wait_for(condition, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_warning_events_after_the_start_reach_the_feed_once(fake_kube, settings, profile):
    settings.KUBECONFIG = str(fake_kube.kubeconfig_path)
    kube.reset()
    fake_kube.put_object(event("old", when=datetime.now(UTC) - timedelta(hours=1)), "events")
    watcher = EventWatcher()
    watcher.retry_seconds = 0.05
    watcher.start()
    try:
        wait_for(lambda: watcher.lists == 1, "the first list")
        fake_kube.put_object(event("pending"), "events")
        fake_kube.put_object(event("calm", kind="Normal"), "events")
        fake_kube.put_object(event("elsewhere", namespace="kube-system"), "events")
        wait_for(lambda: feed(profile), "the event in the feed")
        fake_kube.put_object(event("pending", count=2), "events")  # the same, again
        fake_kube.compact()  # and a relist sees it once more
        fake_kube._httpd.close_connections()
        wait_for(lambda: watcher.lists >= 2, "a relist")
        fake_kube.put_object(event("later"), "events")
        wait_for(lambda: len(feed(profile)) == 2, "the second event")
    finally:
        watcher.stop()
        watcher.join(5)
        kube.reset()
    assert sorted(feed(profile)) == [
        "Pod later-pod: FailedScheduling: 0/3 nodes are available: Insufficient cpu.",
        "Pod pending-pod: FailedScheduling: 0/3 nodes are available: Insufficient cpu."]


def test_an_event_whose_recording_failed_is_recorded_when_applied_again(profile, monkeypatch):
    """ListWatch applies an event again after a database error: it must not be taken for
    one already recorded then."""
    from django.db import OperationalError

    from dashboard.models import Profile

    record, calls = Profile.record, []

    def locked_once(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("database table is locked")
        return record(self, *args, **kwargs)

    monkeypatch.setattr(Profile, "record", locked_once)
    watcher = EventWatcher()
    added = {"type": "ADDED", "object": event("pending")}
    with pytest.raises(OperationalError):
        watcher.apply(added)
    watcher.apply(added)
    watcher.apply({"type": "MODIFIED", "object": event("pending", count=2)})  # a repeat
    assert feed(profile) == [
        "Pod pending-pod: FailedScheduling: 0/3 nodes are available: Insufficient cpu."]
