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


def test_it_answers_503_when_saving_the_session_after_the_view_fails(owner, client,
                                                                      monkeypatch):
    """Saving the session happens in the middleware, after the view, where the view's
    error handling cannot see it: handler500 answers it."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client

    from tests.conftest import PASSWORD

    create = SessionStore.save

    def locked_after_login(self, must_create=False):
        if must_create:  # the new session of the login itself, inside the view
            return create(self, must_create=True)
        raise OperationalError("database is locked")

    browser = Client(raise_request_exception=False)
    monkeypatch.setattr(SessionStore, "save", locked_after_login)
    response = browser.post("/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"try again" in response.content.lower()


def test_an_unexpected_api_error_is_the_apis_error_body(api, owner, monkeypatch):
    client = api(owner)
    client.raise_request_exception = False
    _failing(monkeypatch, IntegrityError("a bug, not an outage"))
    response = client.get("/apis/v2beta1/experiments")
    assert response.status_code == 500
    assert response.json()["code"] == 13  # INTERNAL
    assert "logged" in response.json()["message"]
