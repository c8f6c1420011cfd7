"""The run lists' websocket: access-checked; on connect the current state of the runs the
page shows and of runs created since it was rendered; then every committed run change."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from dashboard.routing import websocket_urlpatterns
from tests.pipelines.pages.run_factory import make_run

pytestmark = pytest.mark.django_db(transaction=True)


def connect(user, query: dict | None = None, namespace="team-a"):
    path = f"/ws/ns/{namespace}/runs/" + (f"?{urlencode(query)}" if query else "")
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    return communicator


@pytest.mark.parametrize("who", ["owner", "viewer", "cluster_admin"])
def test_it_catches_up_then_relays_each_committed_change(request, profile, who, make_user):
    user = request.getfixturevalue(who)
    shown = make_run(profile, "shown", state="RUNNING", took=1, ago=60)
    make_run(profile, "older, not shown", ago=50)
    rendered_at = timezone.now() - timedelta(seconds=30)
    shown.commit_changes(state="SUCCEEDED")  # changed after the page was rendered
    new = make_run(profile, "started elsewhere", state="PENDING", ago=10)
    from dashboard.models import Profile

    other = make_user("other@example.com")
    theirs = make_run(Profile.register("team-b", other), "theirs")

    async def scenario():
        communicator = connect(user, {"runs": f"{shown.pk},not-a-uuid",
                                      "since": rendered_at.isoformat()})
        connected, _ = await communicator.connect()
        assert connected
        caught_up = [await communicator.receive_json_from(timeout=2) for _ in range(2)]
        assert [(e["name"], e["state"], e["revision"]) for e in caught_up] == [
            ("started elsewhere", "PENDING", 0), ("shown", "SUCCEEDED", 1)]
        assert caught_up[0]["experiment_id"] == str(new.experiment_id)
        assert await communicator.receive_nothing(timeout=0.2)
        await database_sync_to_async(new.commit_changes)(state="RUNNING")
        await database_sync_to_async(theirs.commit_changes)(state="FAILED")
        event = await communicator.receive_json_from(timeout=2)
        assert (event["type"], event["run_id"], event["state"], event["revision"]) == (
            "run", str(new.pk), "RUNNING", 1)
        assert event["started_at"] and not event["finished_at"]
        assert await communicator.receive_nothing(timeout=0.3)  # not team-b's run
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_it_sends_nothing_to_catch_up_without_a_query(profile, member):
    make_run(profile, "a run")

    async def scenario():
        for query in (None, {"since": "yesterday", "runs": ""}, {"since": "2024-02-30T00:00Z"}):
            communicator = connect(member, query)
            connected, _ = await communicator.connect()
            assert connected and await communicator.receive_nothing(timeout=0.2), query
            await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("namespace", ["team-a", "no-such-namespace"])
def test_it_refuses_strangers_and_anonymous(profile, stranger, namespace):
    run = make_run(profile, "secret")

    async def scenario(user):
        communicator = connect(user, {"runs": str(run.pk)}, namespace)
        connected, code = await communicator.connect()
        assert not connected and code == 4403

    async_to_sync(scenario)(stranger)
    async_to_sync(scenario)(AnonymousUser())
