"""KFDASH_AUTH=header: identity from the trusted proxy's ``kubeflow-userid`` header."""

import subprocess
import sys

import pytest
from django.test import Client
from rest_framework.test import APIClient

from dashboard.models import User
from tests.servers import ROOT, server_env


@pytest.fixture
def header_mode(settings):
    settings.KFDASH_AUTH = "header"
    settings.KFDASH_TRUSTED_PROXY = True
    return settings


def test_it_takes_the_identity_from_the_header(header_mode, member):
    client = Client(headers={"kubeflow-userid": "Member@Example.com"})
    assert client.get("/ns/team-a/").status_code == 200


def test_it_creates_users_on_first_sight(header_mode, db):
    client = APIClient(headers={"kubeflow-userid": "new@example.com"})
    assert client.get("/api/v1/whoami").json()["email"] == "new@example.com"
    assert User.objects.filter(email="new@example.com").exists()
    assert not User.objects.get(email="new@example.com").has_usable_password()


def test_it_strips_the_configured_prefix(header_mode, member):
    header_mode.KFDASH_USERID_PREFIX = "accounts.google.com:"
    ok = APIClient(headers={"kubeflow-userid": "accounts.google.com:member@example.com"})
    assert ok.get("/api/v1/whoami").status_code == 200
    missing_prefix = APIClient(headers={"kubeflow-userid": "member@example.com"})
    assert missing_prefix.get("/api/v1/whoami").status_code == 401


def test_it_uses_the_configured_header_name(header_mode, member):
    header_mode.KFDASH_USERID_HEADER = "x-auth-request-email"
    assert APIClient(headers={"x-auth-request-email": "member@example.com"}).get(
        "/api/v1/whoami").status_code == 200
    assert APIClient(headers={"kubeflow-userid": "member@example.com"}).get(
        "/api/v1/whoami").status_code == 401


def test_it_treats_requests_without_the_header_as_anonymous(header_mode, member):
    client = Client()
    client.force_login(member)  # a session from another mode counts for nothing here
    response = client.get("/ns/team-a/")
    assert response.status_code == 302
    assert client.get("/login/").status_code == 401


def test_it_refuses_values_that_are_not_emails(header_mode, db):
    client = APIClient(headers={"kubeflow-userid": "system:serviceaccount:x"})
    assert client.get("/api/v1/whoami").status_code == 401
    assert not User.objects.exists()


def test_it_refuses_deactivated_users(header_mode, member):
    member.is_active = False
    member.save()
    client = APIClient(headers={"kubeflow-userid": member.email})
    assert client.get("/api/v1/whoami").status_code == 401


def test_it_lets_api_clients_post_without_csrf(header_mode, owner, profile):
    client = APIClient(enforce_csrf_checks=True, headers={"kubeflow-userid": owner.email})
    response = client.post("/api/v1/namespaces/team-a/contributors",
                           {"email": "x@example.com", "role": "view"}, format="json")
    assert response.status_code == 201


def test_it_refuses_cross_site_writes(header_mode, owner, profile):
    client = APIClient(headers={"kubeflow-userid": owner.email, "origin": "https://evil.example"})
    response = client.post("/api/v1/namespaces/team-a/contributors",
                           {"email": "x@example.com", "role": "view"}, format="json")
    assert response.status_code == 403
    assert not profile.contributors.filter(email="x@example.com").exists()


def test_it_keeps_strangers_out(header_mode, stranger, profile):
    client = Client(headers={"kubeflow-userid": stranger.email})
    assert client.get("/ns/team-a/").status_code == 404


def test_it_refuses_to_start_without_a_trusted_proxy(tmp_path):
    env = server_env(tmp_path, KFDASH_AUTH="header")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "KFDASH_TRUSTED_PROXY=1" in result.stderr
    env["KFDASH_TRUSTED_PROXY"] = "1"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
