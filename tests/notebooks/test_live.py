"""The notebooks websocket: access-checked, current state first, then each change."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from dashboard.routing import websocket_urlpatterns
from notebooks.models import Notebook

pytestmark = pytest.mark.django_db(transaction=True)


def connect(user):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns),
                                         "/ws/ns/team-a/notebooks/")
    communicator.scope["user"] = user
    return communicator


def test_it_sends_the_current_state_then_changes(profile, viewer):
    notebook = Notebook.objects.create(profile=profile, name="nb", image="x", status="waiting")

    async def scenario():
        communicator = connect(viewer)
        assert (await communicator.connect())[0]
        first = await communicator.receive_json_from(timeout=2)
        assert (first["name"], first["status"]) == ("nb", "waiting")
        await database_sync_to_async(notebook.mark)("running", "")
        change = await communicator.receive_json_from(timeout=2)
        assert (change["type"], change["status"], change["status_label"]) == (
            "notebook", "running", "Running")
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_it_refuses_strangers(profile, stranger):
    async def scenario():
        connected, code = await connect(stranger).connect()
        assert not connected and code == 4403

    async_to_sync(scenario)()


def test_it_streams_a_servers_log_to_viewers(profile, viewer, stranger, settings):
    from pathlib import Path

    from notebooks.spawners import local

    log = Path(settings.DATA_DIR) / "nb-test.log"
    log.write_text("line 1\nline 2\n")
    Notebook.objects.create(profile=profile, name="nb", image="x", runtime={"log": str(log)})

    def connect_logs(user, name="nb"):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns),
                                             f"/ws/ns/team-a/notebooks/{name}/logs/")
        communicator.scope["user"] = user
        return communicator

    async def scenario():
        communicator = connect_logs(viewer)
        assert (await communicator.connect())[0]
        assert (await communicator.receive_json_from(timeout=2))["text"] == "line 1\nline 2\n"
        with open(log, "a") as handle:
            handle.write("line 3\n")
        news = await communicator.receive_json_from(timeout=2)
        assert news == {"type": "log", "text": "line 3\n"}
        await communicator.disconnect()
        for user, name in [(stranger, "nb"), (viewer, "missing")]:
            connected, code = await connect_logs(user, name).connect()
            assert not connected and code == 4403

    assert local.FOLLOW_INTERVAL < 1
    async_to_sync(scenario)()
