"""Kubernetes mode: Warning events in the namespaces of kfdash's profiles go to each
namespace's activity feed (a step's pod that cannot be scheduled, an image that cannot be
pulled, a volume that cannot be mounted), as they happen.

Events are watched across namespaces (type=Warning only). The API server repeats an event
by bumping its count, and a relist returns every event it still keeps, so an event is
recorded once: when it is first seen, and only if it happened after the watcher started.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from django.utils import timezone

from dashboard import kube
from dashboard.kube_watch import ListWatch
from dashboard.models import Profile

REMEMBERED = 10_000  # event uids kept to tell new events from repeats
VERB = "cluster"


def event_time(event: dict) -> datetime | None:
    from pipelines.engines.argo_status import parse_time

    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        when = parse_time(event.get(key))
        if when is not None:
            return when
    return parse_time((event.get("metadata") or {}).get("creationTimestamp"))


def describe(event: dict) -> str:
    involved = event.get("involvedObject") or {}
    what = f"{involved.get('kind', 'Object')} {involved.get('name', '')}".strip()
    return f"{what}: {event.get('reason', 'Warning')}: {event.get('message', '')}"[:500]


class EventWatcher(ListWatch):
    what = "event"

    def __init__(self) -> None:
        super().__init__()
        # Events carry whole seconds: one of this very second counts as new.
        self.since = timezone.now().replace(microsecond=0)
        self.seen: OrderedDict[str, None] = OrderedDict()

    def lister(self):
        from kubernetes import client

        api = client.CoreV1Api(kube.api_client())
        return api.list_event_for_all_namespaces, (), {"field_selector": "type=Warning"}

    def apply(self, event: dict) -> None:
        if event.get("type") == "DELETED":
            return
        obj = event.get("object") or {}
        metadata = obj.get("metadata") or {}
        uid = metadata.get("uid") or f"{metadata.get('namespace')}/{metadata.get('name')}"
        if uid in self.seen:
            return
        when = event_time(obj)
        if when is None or when >= self.since:
            profile = Profile.objects.filter(name=metadata.get("namespace")).first()
            if profile is not None:
                involved = (obj.get("involvedObject") or {}).get("name", "")
                profile.record(None, VERB, describe(obj), involved[:255])
        # Remembered once recorded: ListWatch applies an event again after a database
        # error, and it must not find it already "seen" then.
        self.seen[uid] = None
        while len(self.seen) > REMEMBERED:
            self.seen.popitem(last=False)
