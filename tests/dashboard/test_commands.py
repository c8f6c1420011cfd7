"""Management commands other tools and the README rely on."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import ApiToken, Profile, User


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_it_creates_a_user_with_a_namespace(db):
    run("create_user", "Dev@Example.com", "--password", "pw-123456", "--namespace", "dev")
    user = User.objects.get(email="dev@example.com")
    assert user.check_password("pw-123456")
    assert Profile.objects.get(name="dev").owner == user


def test_it_updates_an_existing_user(db):
    run("create_user", "dev@example.com", "--password", "one")
    run("create_user", "dev@example.com", "--password", "two", "--superuser")
    user = User.objects.get(email="dev@example.com")
    assert user.check_password("two") and user.is_cluster_admin
    assert User.objects.count() == 1


def test_it_refuses_someone_elses_namespace(owner, profile):
    with pytest.raises(CommandError, match="belongs to"):
        run("create_user", "other@example.com", "--namespace", "team-a")


def test_it_prints_the_token_last(owner):
    secret = run("create_token", owner.email, "--name", "ci").strip().splitlines()[-1]
    assert ApiToken.objects.get(digest=ApiToken.digest_of(secret)).name == "ci"


def test_it_refuses_tokens_for_unknown_users(db):
    with pytest.raises(CommandError):
        run("create_token", "ghost@example.com")


def test_it_bootstraps_an_admin_only_once(db, settings):
    out = run("bootstrap")
    admin = User.objects.get(email=settings.KFDASH_ADMIN_EMAIL)
    password = out.split("password:")[1].split()[0]
    assert admin.is_cluster_admin and admin.check_password(password)
    assert "changepassword" in out
    assert run("bootstrap") == ""
    assert User.objects.count() == 1
