"""healthz: what every kfp.Client() calls first, on both prefixes, without authentication."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.mark.parametrize("url, body", [
    ("/apis/v2beta1/healthz", {"multi_user": True, "pipeline_store": "database"}),
    ("/apis/v1beta1/healthz", {"multi_user": True}),
])
def test_it_answers_anyone_even_with_a_bad_token(db, url, body):
    assert APIClient().get(url).json() == body
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer kfd_not-a-real-token")
    response = client.get(url, CONTENT_TYPE="application/json")
    assert response.status_code == 200 and response.json() == body
