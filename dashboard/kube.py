"""The Kubernetes API client, created once and lazily (never at import time).

Configuration comes from ``KUBECONFIG`` when set, else from the in-cluster
service account, else from ``~/.kube/config``.
"""

from __future__ import annotations

import threading

from django.conf import settings

_lock = threading.Lock()
_client = None


def api_client():
    """A shared ``kubernetes.client.ApiClient`` for the configured cluster."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = _load()
    return _client


def _load():
    from kubernetes import client, config

    configuration = client.Configuration()
    if settings.KUBECONFIG:
        config.load_kube_config(config_file=settings.KUBECONFIG, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def reset() -> None:
    """Forget the client (tests point kfdash at a new API server)."""
    global _client
    with _lock:
        _client = None


def error_message(exc) -> str:
    """The message of a Kubernetes API error, read from its Status body when it has one."""
    import json

    body = getattr(exc, "body", None)
    if body:
        try:
            return json.loads(body).get("message") or str(exc)
        except (ValueError, AttributeError):
            pass
    return getattr(exc, "reason", None) or str(exc)
