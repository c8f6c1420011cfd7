"""The activity websocket: access-checked, and pushes committed changes."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from dashboard.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


def connect(user, namespace="team-a"):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns),
                                         f"/ws/ns/{namespace}/activity/")
    communicator.scope["user"] = user
    return communicator


@pytest.mark.parametrize("who", ["owner", "member", "viewer", "cluster_admin"])
def test_it_pushes_new_activity_to_members(request, profile, owner, who):
    user = request.getfixturevalue(who)

    async def scenario():
        communicator = connect(user)
        connected, _ = await communicator.connect()
        assert connected
        await database_sync_to_async(profile.record)(owner, "note", "something happened")
        event = await communicator.receive_json_from(timeout=2)
        assert event["type"] == "activity" and event["message"] == "something happened"
        assert event["actor"] == "owner@example.com"
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("namespace", ["team-a", "no-such-namespace"])
def test_it_refuses_strangers_and_anonymous(profile, stranger, namespace):
    async def scenario(user):
        communicator = connect(user, namespace)
        connected, code = await communicator.connect()
        assert not connected and code == 4403

    async_to_sync(scenario)(stranger)
    async_to_sync(scenario)(AnonymousUser())
