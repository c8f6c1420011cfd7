"""pytest fixtures for the fake Kubernetes API server.

Registered by the project's ``tests/conftest.py`` with
``pytest_plugins = ["tests.fakekube.plugin"]``.

``fake_kube`` is function-scoped: a fresh server per test costs about a millisecond (the costly
part, compiled validation schemas, is cached for the whole process), and a fresh server means no
state, watch or injected failure can leak between tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.fakekube.server import FakeKubeServer, configure_kubernetes_for

__all__ = ["configure_kubernetes_for", "fake_kube", "kube_client"]


@pytest.fixture
def fake_kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeServer]:
    """A started, empty cluster (plus the system namespaces a real one has).

    Its kubeconfig is written to ``fake_kube.kubeconfig_path`` and ``KUBECONFIG`` points at it for
    the test, so code that loads configuration lazily finds the fake.  The test fails if the fake
    hit an unexpected internal error, since that means a result the test saw was not trustworthy.
    """
    server = FakeKubeServer().start()
    try:
        path = configure_kubernetes_for(server, tmp_path / "fakekube.kubeconfig")
        monkeypatch.setenv("KUBECONFIG", str(path))
        yield server
    finally:
        server.stop()
    if server.errors:
        pytest.fail("fake kube-apiserver internal errors:\n" + "\n".join(server.errors))


@pytest.fixture
def kube_client(fake_kube: FakeKubeServer) -> Iterator[client.ApiClient]:
    """An official ``ApiClient`` pointed at ``fake_kube`` (plain HTTP, no auth)."""
    configuration = client.Configuration(host=fake_kube.url)
    api_client = client.ApiClient(configuration)
    try:
        yield api_client
    finally:
        api_client.close()
