"""Experiment pages: create, list (active and archived), details, archive/unarchive, delete."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.models import Experiment

LIST = "/ns/team-a/experiments/"


@pytest.fixture
def experiment(profile, owner):
    return Experiment.create(profile, "tuning", owner, "learning rates")


def test_it_creates_an_experiment(login, member, profile):
    response = login(member).post(LIST + "new/", {"name": "tuning", "description": "lr sweep"})
    experiment = Experiment.objects.get()
    assert response["Location"] == f"{LIST}{experiment.pk}/"
    assert (experiment.name, experiment.description, experiment.profile) == (
        "tuning", "lr sweep", profile)
    assert experiment.created_by == member


def test_it_shows_a_taken_name_next_to_the_field(login, member, experiment):
    response = login(member).post(LIST + "new/", {"name": "tuning"})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [
        "An experiment named 'tuning' already exists in team-a."]
    assert b'class="field-error"' in response.content
    assert Experiment.objects.count() == 1


def test_it_asks_for_a_name(login, member, profile):
    response = login(member).post(LIST + "new/", {"name": ""})
    assert response.context["form"].errors["name"] == ["This field is required."]
    assert not Experiment.objects.exists()


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_it_lists_and_shows_experiments_to_members(request, login, who, experiment):
    client = login(request.getfixturevalue(who))
    html = client.get(LIST).content.decode()
    assert 'data-experiment="tuning"' in html and "learning rates" in html
    assert ("New experiment" in html) == (who != "viewer")
    assert ("Archive</button>" in html) == (who != "viewer")
    detail = client.get(f"{LIST}{experiment.pk}/").content.decode()
    assert "tuning" in detail and "learning rates" in detail and "Active" in detail


def test_it_archives_and_unarchives(login, member, experiment):
    client = login(member)
    response = client.post(f"{LIST}{experiment.pk}/archive/", {"next": LIST})
    assert response["Location"] == LIST
    experiment.refresh_from_db()
    assert experiment.is_archived
    assert 'data-experiment="tuning"' not in client.get(LIST).content.decode()
    archived = client.get(LIST + "?show=archived").content.decode()
    assert 'data-experiment="tuning"' in archived and "Restore</button>" in archived
    response = client.post(f"{LIST}{experiment.pk}/unarchive/")
    assert response["Location"] == f"{LIST}{experiment.pk}/"  # no next: its own page
    experiment.refresh_from_db()
    assert not experiment.is_archived


def test_it_does_not_redirect_elsewhere(login, member, experiment):
    response = login(member).post(f"{LIST}{experiment.pk}/archive/",
                                  {"next": "https://evil.example.com/"})
    assert response["Location"] == f"{LIST}{experiment.pk}/"


def test_it_deletes_after_confirming(login, member, experiment):
    client = login(member)
    url = f"{LIST}{experiment.pk}/delete/"
    assert b"Delete the experiment tuning?" in client.get(url).content
    assert Experiment.objects.exists()
    assert client.post(url)["Location"] == LIST
    assert not Experiment.objects.exists()


def test_it_refuses_viewers_changes(login, viewer, experiment):
    client = login(viewer)
    assert client.get(LIST + "new/").status_code == 403
    assert client.post(LIST + "new/", {"name": "other"}).status_code == 403
    for action in ("archive", "unarchive", "delete"):
        assert client.post(f"{LIST}{experiment.pk}/{action}/").status_code == 403
    assert client.get(f"{LIST}{experiment.pk}/delete/").status_code == 403
    assert Experiment.objects.count() == 1 and not Experiment.objects.get().is_archived


def test_it_hides_everything_from_strangers(login, stranger, experiment):
    client = login(stranger)
    for url in (LIST, LIST + "new/", f"{LIST}{experiment.pk}/"):
        assert client.get(url).status_code == 404
    for action in ("archive", "delete"):
        assert client.post(f"{LIST}{experiment.pk}/{action}/").status_code == 404
    assert Experiment.objects.exists()


def test_it_hides_other_namespaces_experiments(login, owner, make_user):
    from dashboard.models import Profile

    other = make_user("other@example.com")
    theirs = Experiment.create(Profile.register("team-b", other), "theirs", other)
    Profile.register("team-a", owner)
    assert login(owner).get(f"{LIST}{theirs.pk}/").status_code == 404
    assert login(owner).post(f"{LIST}{theirs.pk}/delete/").status_code == 404


def test_it_searches_sorts_and_pages_in_constant_queries(login, owner, profile):
    client = login(owner)
    Experiment.objects.bulk_create(Experiment(profile=profile, name=f"e-{i:02}")
                                   for i in range(3))
    client.get(LIST)
    with CaptureQueriesContext(connection) as few:
        client.get(LIST)
    Experiment.objects.bulk_create(Experiment(profile=profile, name=f"e-{i:02}")
                                   for i in range(3, 45))
    with CaptureQueriesContext(connection) as many:
        page = client.get(LIST + "?sort=name&page=3")
    assert len(many) == len(few)
    assert [e.name for e in page.context["listing"].page.object_list] == [
        f"e-{i}" for i in range(40, 45)]
    found = client.get(LIST + "?q=e-1&sort=-name")
    assert [e.name for e in found.context["listing"].page.object_list] == [
        f"e-{i}" for i in range(19, 9, -1)]
