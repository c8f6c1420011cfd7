"""Idle culling against a real JupyterLab: activity read from its API, busy kernels
keep it alive, idle servers stop with the reason and keep their workspace."""

import json
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from websockets.sync.client import connect

from dashboard.models import Activity
from notebooks import culling, tasks
from notebooks.models import Notebook, Volume
from notebooks.spawners.local import LocalProcessSpawner, stop_all


@pytest.fixture
def server(profile, owner, settings, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(tasks, "in_background", lambda work, *args: work(*args))
    workspace = Volume.objects.create(profile=profile, name="ws")
    notebook = Notebook.objects.create(profile=profile, name="nb", image="x", cpu="0.5",
                                       memory="1Gi", workspace=workspace, created_by=owner)
    LocalProcessSpawner(notebook).start(lambda message: None)
    notebook.refresh_from_db()
    yield notebook
    stop_all(settings.DATA_DIR)


def api(notebook, method, path, **kwargs):
    endpoint = LocalProcessSpawner(notebook).endpoint()
    return requests.request(method, f"{endpoint.url}{notebook.base_url}api/{path}",
                            headers={"Authorization": f"token {endpoint.token}"}, timeout=10,
                            **kwargs)


def test_it_records_activity_and_leaves_servers_alone_when_culling_is_off(server):
    assert culling.check(timezone.now() + timedelta(days=2)) == []
    server.refresh_from_db()
    assert server.last_activity is not None
    assert server.status == "running"


def test_it_stops_an_idle_server_and_keeps_its_workspace(server, settings,
                                                        django_capture_on_commit_callbacks):
    settings.KFDASH_CULL_IDLE_SECONDS = 600
    assert culling.check() == []  # just started: not idle
    with django_capture_on_commit_callbacks(execute=True):
        assert culling.check(timezone.now() + timedelta(minutes=30)) == ["team-a/nb"]
    server.refresh_from_db()
    assert server.stopped and server.status == "stopped"
    assert "culled after" in server.status_message
    assert server.workspace.local_path.is_dir()
    assert Activity.objects.filter(message__contains="idle notebook nb was stopped").exists()


def test_it_keeps_a_server_whose_kernel_is_busy(server, settings):
    settings.KFDASH_CULL_IDLE_SECONDS = 600
    kernel = api(server, "POST", "kernels", json={"name": "python3"}).json()
    endpoint = LocalProcessSpawner(server).endpoint()
    url = (f"ws://127.0.0.1:{endpoint.url.rsplit(':', 1)[1]}{server.base_url}api/kernels/"
           f"{kernel['id']}/channels")
    with connect(url, additional_headers={"Authorization": f"token {endpoint.token}"}) as ws:
        message_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": message_id, "msg_type": "execute_request", "username": "t",
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": "import time; time.sleep(20)", "silent": False}}))
        for _ in range(50):  # wait until the kernel says it is busy with our request
            reply = json.loads(ws.recv(timeout=10))
            if reply.get("msg_type") == "status" and \
                    reply["content"]["execution_state"] == "busy" and \
                    reply["parent_header"].get("msg_id") == message_id:
                break
        later = timezone.now() + timedelta(hours=3)
        assert culling.check(later) == []
        server.refresh_from_db()
        assert server.last_activity == later and server.status == "running"
    api(server, "POST", f"kernels/{kernel['id']}/interrupt")
