"""Standing cast for every test: an owner, a member (edit), a viewer, a stranger,
and a cluster admin, around the namespace ``team-a``."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fakekube.plugin"]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(db):
    from dashboard.models import User

    def make(email: str, **extra):
        return User.objects.create_user(email, PASSWORD, **extra)

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com", name="Olivia Owner")


@pytest.fixture
def profile(owner):
    from dashboard.models import Profile

    return Profile.register("team-a", owner)


@pytest.fixture
def member(make_user, profile, owner):
    user = make_user("member@example.com")
    profile.set_contributor(user.email, "edit", owner)
    return user


@pytest.fixture
def viewer(make_user, profile, owner):
    user = make_user("viewer@example.com")
    profile.set_contributor(user.email, "view", owner)
    return user


@pytest.fixture
def stranger(make_user):
    return make_user("stranger@example.com")


@pytest.fixture
def cluster_admin(make_user):
    return make_user("root@example.com", is_superuser=True, is_staff=True)


@pytest.fixture
def login(client):
    """Log the test client in as a user; returns the client."""

    def as_user(user):
        client.force_login(user)
        return client

    return as_user


@pytest.fixture
def api(db):
    """An API client that authenticates with a fresh personal token of the user."""
    from rest_framework.test import APIClient

    from dashboard.models import ApiToken

    def as_user(user):
        _, secret = ApiToken.issue(user, "test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return as_user


@pytest.fixture
def kfdash_server(tmp_path):
    """A factory of real kfdash server processes: ``kfdash_server(KFDASH_AUTH="oidc", ...)``.
    Every server started is stopped at the end of the test."""
    from tests.servers import start_kfdash

    started = []

    def start(**env):
        server = start_kfdash(tmp_path / f"server-{len(started)}", **env)
        started.append(server)
        return server

    yield start
    from notebooks.spawners.local import stop_all

    for server in started:
        server.stop()
        stop_all(server.data_dir)  # notebook servers outlive the dashboard by design


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server, one process for the session (tests.s3)."""
    from tests.s3 import S3Server

    server = S3Server.start()
    yield server
    server.stop()


@pytest.fixture
def artifact_store(s3_server, settings):
    """kubernetes mode's artifact store: an empty bucket on the S3 server, and kfdash
    configured to read it with its own keys."""
    from tests import s3

    s3_server.reset()
    s3_server.client().create_bucket(Bucket=s3.BUCKET)
    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KFDASH_ARTIFACT_S3_ENDPOINT = s3_server.url
    settings.KFDASH_ARTIFACT_S3_BUCKET = s3.BUCKET
    settings.KFDASH_ARTIFACT_S3_ACCESS_KEY = s3.ACCESS_KEY
    settings.KFDASH_ARTIFACT_S3_SECRET_KEY = s3.SECRET_KEY
    return s3_server


@pytest.fixture(scope="session", autouse=True)
def _stop_engine(django_db_setup, django_db_blocker):
    """After the last test, before the test database goes: any pipeline engine a test
    started (engine tests, API and page tests that start runs) stops its warm Python and
    its threads close their database connections (PostgreSQL refuses to drop a
    database still in use)."""
    yield
    from pipelines.engines import _engines

    for started in _engines.values():
        started.shutdown()
