"""The Kubernetes API client, created once and lazily (never at import time).

Configuration comes from ``KUBECONFIG`` when set, else from the in-cluster
service account, else from ``~/.kube/config``.
"""

from __future__ import annotations

import threading

from django.conf import settings

# Seconds to connect and to wait for an answer. Calls made while serving a page or an API
# call must not hold one of the few requests computed at once (KFDASH_REQUEST_CONCURRENCY)
# for as long as a hung API server likes; watches and log streams, whose bodies are read
# as they come (``_preload_content=False``), wait as long as they need.
REQUEST_TIMEOUT = (5, 30)

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
    from urllib3.util.retry import Retry

    configuration = client.Configuration()
    if settings.KUBECONFIG:
        config.load_kube_config(config_file=settings.KUBECONFIG, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    # A call that timed out is not sent again (urllib3 retries reads three times by default,
    # four waits in all); one that could not connect is, twice.
    configuration.retries = Retry(total=2, read=0)
    api = client.ApiClient(configuration)
    plain = api.call_api

    def call_api(*args, _request_timeout=None, _preload_content=True, **kwargs):
        if _request_timeout is None and _preload_content:
            _request_timeout = REQUEST_TIMEOUT
        return plain(*args, _request_timeout=_request_timeout,
                     _preload_content=_preload_content, **kwargs)

    api.call_api = call_api
    return api


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
