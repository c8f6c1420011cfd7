"""Bulk actions of the runs lists: archive, restore, and delete after a confirmation, on the
checked runs of this namespace, for people who may edit it."""

import pytest

from pipelines.models import Run
from tests.pipelines.pages.run_factory import make_run

LIST = "/ns/team-a/runs/"
BULK = "/ns/team-a/runs/bulk/"


@pytest.fixture
def runs(profile):
    return [make_run(profile, name, ago=i) for i, name in enumerate(["one", "two", "three"])]


def storage(*runs: Run) -> list[str]:
    return [Run.objects.get(pk=run.pk).storage_state for run in runs]


def test_it_archives_and_restores_the_checked_runs(login, member, profile, runs):
    client = login(member)
    back = LIST + "?sort=name&page=1"
    response = client.post(BULK, {"action": "archive", "runs": [runs[0].pk, runs[2].pk],
                                  "next": back}, follow=True)
    assert response.redirect_chain == [(back, 302)]
    assert "2 runs archived." in response.content.decode()
    assert storage(*runs) == ["ARCHIVED", "AVAILABLE", "ARCHIVED"]
    assert [r.name for r in client.get(LIST).context["runs"]] == ["two"]
    response = client.post(BULK, {"action": "restore", "runs": [runs[2].pk]}, follow=True)
    assert "1 run restored." in response.content.decode()
    assert response.redirect_chain == [(LIST, 302)]  # no next: the runs page
    assert storage(*runs) == ["ARCHIVED", "AVAILABLE", "AVAILABLE"]
    assert profile.activities.filter(message__contains="archived the run one").exists()


def test_it_deletes_only_after_a_confirmation(login, owner, runs):
    client = login(owner)
    back = f"{LIST}?show=active"
    page = client.post(BULK, {"action": "delete", "runs": [runs[0].pk, runs[1].pk],
                              "next": back})
    assert page.status_code == 200 and Run.objects.count() == 3
    html = page.content.decode()
    assert "Delete 2 runs?" in html and "one" in html and "two" in html
    assert f'<input type="hidden" name="runs" value="{runs[0].pk}">' in html
    assert f'href="{back}">Cancel</a>' in html
    response = client.post(BULK, {"action": "delete", "confirmed": "on", "next": back,
                                  "runs": [runs[0].pk, runs[1].pk]}, follow=True)
    assert response.redirect_chain == [(back, 302)]
    assert "2 runs deleted." in response.content.decode()
    assert list(Run.objects.values_list("name", flat=True)) == ["three"]


def test_it_acts_on_this_namespaces_runs_only(login, member, make_user, runs):
    from dashboard.models import Profile

    other = make_user("other@example.com")
    theirs = make_run(Profile.register("team-b", other), "theirs")
    client = login(member)
    client.post(BULK, {"action": "archive", "runs": [theirs.pk, runs[0].pk]})
    assert storage(theirs, runs[0]) == ["AVAILABLE", "ARCHIVED"]
    response = client.post(BULK, {"action": "delete", "confirmed": "on", "runs": [theirs.pk]},
                           follow=True)
    assert "Check the runs to act on first." in response.content.decode()
    assert Run.objects.filter(pk=theirs.pk).exists()


def test_it_asks_for_checked_runs_and_a_known_action(login, member, runs):
    client = login(member)
    response = client.post(BULK, {"action": "archive", "next": LIST}, follow=True)
    assert "Check the runs to act on first." in response.content.decode()
    response = client.post(BULK, {"action": "explode", "runs": [runs[0].pk, "nonsense"]},
                           follow=True)
    assert "Select a valid choice." in response.content.decode()
    assert storage(*runs) == ["AVAILABLE"] * 3


def test_it_does_not_redirect_elsewhere(login, member, runs):
    response = login(member).post(BULK, {"action": "archive", "runs": [runs[0].pk],
                                         "next": "https://evil.example.com/"})
    assert response["Location"] == LIST


def test_it_refuses_viewers_and_hides_from_strangers(login, viewer, stranger, runs):
    for user, status in ((viewer, 403), (stranger, 404)):
        client = login(user)
        for action in ("archive", "delete"):
            response = client.post(BULK, {"action": action, "confirmed": "on",
                                          "runs": [r.pk for r in runs]})
            assert response.status_code == status
    assert login(viewer).get(BULK).status_code == 403  # the role is checked first
    assert storage(*runs) == ["AVAILABLE"] * 3 and Run.objects.count() == 3
