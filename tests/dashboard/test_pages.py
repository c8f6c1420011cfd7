"""The HTML pages of the dashboard app, tried by owner, member, viewer and stranger."""

import pytest

from dashboard.models import ApiToken, Profile


def test_it_sends_anonymous_visitors_to_login(client, profile):
    response = client.get("/ns/team-a/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/ns/team-a/"


def test_it_logs_in_with_email_and_password(client, owner):
    from tests.conftest import PASSWORD

    response = client.post("/login/", {"username": "OWNER@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_it_rejects_a_wrong_password(client, owner):
    response = client.post("/login/", {"username": owner.email, "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct" in response.content


def test_it_lands_new_users_on_registration(login, make_user):
    client = login(make_user("new.person@example.com"))
    assert client.get("/")["Location"] == "/register/"
    page = client.get("/register/")
    assert b'value="new-person-example-com"' in page.content


def test_it_registers_a_namespace_from_the_form(login, make_user):
    client = login(make_user("new@example.com"))
    response = client.post("/register/", {"name": "my-space"})
    assert response["Location"] == "/ns/my-space/"
    assert Profile.objects.get(name="my-space").owner.email == "new@example.com"


def test_it_shows_errors_for_bad_names(login, make_user, profile):
    client = login(make_user("new@example.com"))
    for name, message in [("Bad_Name", b"DNS-1123"), ("team-a", b"is taken")]:
        response = client.post("/register/", {"name": name})
        assert response.status_code == 200
        assert message in response.content
    assert Profile.objects.count() == 1


def test_it_lands_users_in_their_last_namespace(login, member, make_user, owner):
    Profile.register("member-own", member)
    client = login(member)
    client.post("/switch-namespace/", {"namespace": "team-a", "next": "/"})
    assert client.get("/")["Location"] == "/ns/team-a/"


def test_it_switches_to_the_same_section_of_another_namespace(login, member):
    Profile.register("member-own", member)
    client = login(member)
    response = client.post(
        "/switch-namespace/", {"namespace": "team-a", "next": "/ns/member-own/contributors/"}
    )
    assert response["Location"] == "/ns/team-a/contributors/"


def test_it_refuses_switching_to_a_foreign_namespace(login, stranger, profile):
    response = login(stranger).post("/switch-namespace/", {"namespace": "team-a"})
    assert response.status_code == 404


def test_it_shows_the_namespace_home_with_its_activity(login, member):
    page = login(member).get("/ns/team-a/")
    assert page.status_code == 200
    assert b"owner@example.com created the namespace team-a" in page.content
    assert b"owner@example.com added member@example.com as edit" in page.content
    assert b'data-live-feed="team-a"' in page.content


def test_it_explains_an_empty_feed(login, owner):
    profile = Profile.register("quiet", owner)
    profile.activities.all().delete()
    page = login(owner).get("/ns/quiet/")
    assert b"Nothing has happened here yet" in page.content


@pytest.mark.parametrize("who", ["stranger", "cluster_admin"])
def test_it_hides_or_shows_the_home_by_role(request, login, profile, who):
    user = request.getfixturevalue(who)
    status = login(user).get("/ns/team-a/").status_code
    assert status == (404 if who == "stranger" else 200)


def test_it_lets_admins_add_contributors(login, owner, profile, make_user):
    response = login(owner).post("/ns/team-a/contributors/",
                                 {"email": "New@Example.com", "role": "view"})
    assert response.status_code == 302
    assert profile.contributors.get(email="new@example.com").role == "view"


def test_it_shows_contributor_errors_next_to_the_form(login, owner, profile):
    client = login(owner)
    page = client.post("/ns/team-a/contributors/", {"email": "owner@example.com", "role": "view"})
    assert b"owns this namespace" in page.content
    page = client.post("/ns/team-a/contributors/", {"email": "x@example.com", "role": "god"})
    assert b"Select a valid choice" in page.content
    assert profile.contributors.count() == 1


def test_it_shows_contributors_read_only_to_members(login, member, viewer):
    client = login(viewer)
    page = client.get("/ns/team-a/contributors/")
    assert page.status_code == 200
    assert b"member@example.com" in page.content
    assert b"Add a contributor" not in page.content
    response = client.post("/ns/team-a/contributors/", {"email": "x@example.com", "role": "view"})
    assert response.status_code == 403


def test_it_removes_contributors(login, owner, member, profile):
    client = login(owner)
    client.post("/ns/team-a/contributors/remove/", {"email": member.email})
    assert not profile.contributors.filter(email=member.email).exists()


def test_it_refuses_removal_by_non_admins(login, member, viewer, profile):
    response = login(member).post("/ns/team-a/contributors/remove/", {"email": viewer.email})
    assert response.status_code == 403
    assert profile.contributors.filter(email=viewer.email).exists()


def test_it_lists_memberships(login, member):
    page = login(member).get("/namespaces/")
    assert b"team-a" in page.content and b"Edit" in page.content


def test_it_creates_shows_once_and_revokes_tokens(login, owner):
    client = login(owner)
    page = client.post("/tokens/", {"name": "laptop"})
    token = ApiToken.objects.get(user=owner)
    assert "no-store" in page["Cache-Control"]
    secret = page.context["new_secret"]
    assert secret.startswith("kfd_") and secret.encode() in page.content
    assert token.digest == ApiToken.digest_of(secret) and secret not in token.digest
    assert secret.encode() not in client.get("/tokens/").content
    client.post(f"/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_it_does_not_revoke_other_peoples_tokens(login, owner, member):
    token, _ = ApiToken.issue(owner, "mine")
    assert login(member).post(f"/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.is_active


def test_it_refuses_posts_without_csrf(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/tokens/", {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_it_answers_probes_without_login(client, db):
    assert client.get("/healthz").content == b"ok\n"
    assert client.get("/readyz").status_code == 200


def test_it_reports_not_ready_without_a_database(client, db, monkeypatch):
    class DownDatabase:
        def cursor(self):
            raise RuntimeError("down")

    monkeypatch.setattr("dashboard.views.health.connection", DownDatabase())
    assert client.get("/readyz").status_code == 503


def test_it_shows_configured_external_links(login, owner, profile, settings):
    settings.KFDASH_EXTERNAL_LINKS = [{"text": "Team wiki", "url": "https://wiki.example/"}]
    page = login(owner).get("/ns/team-a/")
    assert b"Team wiki" in page.content and b'href="https://wiki.example/"' in page.content


def test_it_marks_the_current_section_in_the_nav(login, owner, profile):
    page = login(owner).get("/ns/team-a/contributors/").content.decode()
    assert 'href="/ns/team-a/contributors/" aria-current="page"' in page
    assert 'href="/ns/team-a/" aria-current="page"' not in page
