"""A strict fake Kubernetes API server for tests: real HTTP on loopback, in-memory state.

It is the one sanctioned stand-in for a cluster: the official ``kubernetes`` client talks to it
unchanged, so code under test exercises its real HTTP, (de)serialisation and error paths.
"""

from tests.fakekube.server import (
    ApiError,
    FakeKubeServer,
    RecordedRequest,
    ResourceType,
    configure_kubernetes_for,
    kubeconfig_dict,
)

__all__ = [
    "ApiError",
    "FakeKubeServer",
    "RecordedRequest",
    "ResourceType",
    "configure_kubernetes_for",
    "kubeconfig_dict",
]
