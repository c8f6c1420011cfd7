"""The Kubernetes client kfdash makes (dashboard/kube.py): an API server that accepts a
connection and never answers ends a call at the timeout, once, instead of holding the
request that made it."""

from __future__ import annotations

import socket
import threading
import time

import pytest


@pytest.fixture
def silent_api_server(tmp_path, settings):
    """A kubeconfig pointing at a listener that reads requests and never answers."""
    from dashboard import kube

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    config = tmp_path / "kubeconfig"
    config.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{listener.getsockname()[1]}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    settings.KUBECONFIG = str(config)
    kube.reset()
    yield accepted
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    listener.close()
    kube.reset()


def test_a_call_to_an_api_server_that_never_answers_ends_at_the_timeout(
        silent_api_server, monkeypatch):
    from kubernetes import client
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    from dashboard import kube

    monkeypatch.setattr(kube, "REQUEST_TIMEOUT", (1, 1))
    began = time.monotonic()
    with pytest.raises((ReadTimeoutError, MaxRetryError)):
        client.CoreV1Api(kube.api_client()).read_namespace("team-a")
    assert time.monotonic() - began < 3  # one wait, not four
    assert len(silent_api_server) == 1  # and not sent again


def test_a_streamed_call_sets_no_timeout_of_its_own(silent_api_server, monkeypatch):
    """Watches and log follows read their bodies as they come, for as long as they last."""
    from dashboard import kube

    class Sent(Exception):
        pass

    def request(*args, **kwargs):
        raise Sent(kwargs["_request_timeout"])

    api = kube.api_client()
    monkeypatch.setattr(api, "request", request)
    with pytest.raises(Sent) as streamed:
        api.call_api("/api/v1/namespaces", "GET", _preload_content=False)
    assert streamed.value.args == (None,)
    with pytest.raises(Sent) as read:
        api.call_api("/api/v1/namespaces", "GET")
    assert read.value.args == (kube.REQUEST_TIMEOUT,)
