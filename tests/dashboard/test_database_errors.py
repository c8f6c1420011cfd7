"""A database that cannot answer (locked, unreachable) is a 503 with Retry-After, for the
API (the KFP error body) and for pages; other database errors stay errors.
tests/test_faults.py locks a live server's SQLite file for real."""

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError

from dashboard.models import ApiToken


def _failing(monkeypatch, error: Exception) -> None:
    def fail(self):
        raise error

    monkeypatch.setattr(ApiToken, "mark_used", fail)


@pytest.mark.parametrize("error", [OperationalError("database is locked"),
                                   InterfaceError("connection already closed")])
def test_it_answers_the_api_503_when_the_database_cannot_answer(api, owner, monkeypatch,
                                                                error):
    client = api(owner)
    _failing(monkeypatch, error)
    response = client.get("/apis/v2beta1/experiments")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == 14  # UNAVAILABLE
    assert "try again" in response.json()["message"]


def test_it_answers_a_page_503_when_the_database_cannot_answer(login, owner, monkeypatch):
    client = login(owner)

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr("dashboard.views.tokens.ApiToken.issue", locked)
    response = client.post("/tokens/", {"name": "laptop"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"try again" in response.content.lower()


def test_it_leaves_other_database_errors_alone(api, owner, monkeypatch):
    client = api(owner)
    client.raise_request_exception = True
    _failing(monkeypatch, IntegrityError("a bug, not an outage"))
    with pytest.raises(IntegrityError):
        client.get("/apis/v2beta1/experiments")
