"""Packages and helpers for the page tests: pipelines compiled here by the real kfp 2
compiler, once per session."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

# A real HTTP server on loopback for "upload from a URL", shared with the API tests.
from tests.pipelines.api.conftest import package_server  # noqa: F401


def _compile(tmp_path_factory, name: str) -> bytes:
    from tests.pipelines.pages.sample_pipelines import compiled

    return compiled(name, tmp_path_factory.mktemp("compiled"))


@pytest.fixture(scope="session")
def hello_package(tmp_path_factory) -> bytes:
    """KFP v2 IR of ``hello-pipeline``: 5 tasks, a condition and a loop."""
    return _compile(tmp_path_factory, "hello_pipeline")


@pytest.fixture(scope="session")
def big_package(tmp_path_factory) -> bytes:
    """KFP v2 IR of ``big-pipeline``: 50 tasks, a loop, a condition and an exit handler."""
    return _compile(tmp_path_factory, "big_pipeline")


def package_file(data: bytes, name: str = "pipeline.yaml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def stored(owner, profile, hello_package):
    """``hello-pipeline`` uploaded to team-a by its owner: its first version."""
    from pipelines.models import Pipeline
    from pipelines.specs import load

    return Pipeline.upload(profile, "hello-pipeline", load(hello_package), owner,
                           description="Load, train, evaluate; publish if good.")
