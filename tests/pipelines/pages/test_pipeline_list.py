"""The pipelines page: namespace and shared pipelines, search, sort, tabs and pages."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.models import Pipeline
from pipelines.specs import load


@pytest.fixture
def loaded(hello_package):
    return load(hello_package)


def names(response) -> list[str]:
    return [p.name for p in response.context["listing"].page.object_list]


def test_it_lists_the_namespace_and_shared_pipelines(login, owner, profile, cluster_admin,
                                                     loaded, make_user):
    Pipeline.upload(profile, "mine", loaded, owner, description="ours")
    Pipeline.upload(None, "everyones", loaded, cluster_admin)
    other = make_user("other@example.com")
    from dashboard.models import Profile

    Pipeline.upload(Profile.register("team-b", other), "theirs", loaded, other)
    page = login(owner).get("/ns/team-a/pipelines/")
    assert page.status_code == 200
    assert sorted(names(page)) == ["everyones", "mine"]
    html = page.content.decode()
    assert "ours" in html and 'class="badge">shared<' in html
    assert login(owner).get("/ns/team-a/pipelines/?show=shared").context[
        "listing"].page.object_list[0].name == "everyones"
    assert names(login(owner).get("/ns/team-a/pipelines/?show=private")) == ["mine"]


def test_it_shows_each_pipelines_latest_version(login, owner, profile, loaded):
    version = Pipeline.upload(profile, "mine", loaded, owner)
    newer = version.pipeline.add_version(loaded, owner, "v2")
    html = login(owner).get("/ns/team-a/pipelines/").content.decode()
    assert f"?version={newer.pk}" in html and ">v2</a>" in html


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_it_lets_every_member_read_it(request, login, who, profile):
    page = login(request.getfixturevalue(who)).get("/ns/team-a/pipelines/")
    assert page.status_code == 200
    assert (b"Upload pipeline" in page.content) == (who != "viewer")


def test_it_hides_the_page_from_strangers(login, stranger, profile):
    assert login(stranger).get("/ns/team-a/pipelines/").status_code == 404


def test_it_searches_by_name_and_sorts(login, owner, profile, loaded):
    for name in ("beta", "alpha", "gamma-ray", "alphabet"):
        Pipeline.upload(profile, name, loaded, owner)
    client = login(owner)
    assert names(client.get("/ns/team-a/pipelines/?q=alph&sort=name")) == ["alpha", "alphabet"]
    assert names(client.get("/ns/team-a/pipelines/?sort=name")) == [
        "alpha", "alphabet", "beta", "gamma-ray"]
    by_name = client.get("/ns/team-a/pipelines/?sort=name&q=a").content.decode()
    # The sorted column says so and offers the other direction; the other starts newest first.
    assert '<th scope="col" aria-sort="ascending"><a class="sort-link" href="?q=a&amp;' \
           'show=all&amp;sort=-name">Name' in by_name
    assert 'aria-sort="none"><a class="sort-link" href="?q=a&amp;show=all&amp;' \
           'sort=-created">Created' in by_name
    assert names(client.get("/ns/team-a/pipelines/?sort=-name"))[0] == "gamma-ray"
    assert names(client.get("/ns/team-a/pipelines/"))[0] == "alphabet"  # newest first
    assert names(client.get("/ns/team-a/pipelines/?sort=created"))[0] == "beta"
    assert names(client.get("/ns/team-a/pipelines/?sort=nonsense"))[0] == "alphabet"
    html = client.get("/ns/team-a/pipelines/?q=zzz").content.decode()
    assert "No pipeline's name contains “zzz”" in html


def _many(profile, owner, loaded, count: int) -> None:
    """``count`` pipelines with two versions each, without parsing or saving the file anew."""
    first = Pipeline.upload(profile, "p-0", loaded, owner)
    pipelines = Pipeline.objects.bulk_create(
        Pipeline(profile=profile, name=f"p-{i}", created_by=owner) for i in range(1, count))
    from pipelines.models import PipelineVersion

    PipelineVersion.objects.bulk_create(
        PipelineVersion(pipeline=p, name=f"v{n}", format=first.format, source="x",
                        document={}, graph=first.graph)
        for p in pipelines for n in (1, 2))


def test_it_pages_with_the_same_number_of_queries_for_few_or_many(login, owner, profile,
                                                                  loaded):
    client = login(owner)
    _many(profile, owner, loaded, 3)
    client.get("/ns/team-a/pipelines/")  # the session and namespace choice settle first
    with CaptureQueriesContext(connection) as few:
        assert client.get("/ns/team-a/pipelines/").status_code == 200
    Pipeline.objects.all().delete()
    _many(profile, owner, loaded, 65)
    with CaptureQueriesContext(connection) as many:
        page = client.get("/ns/team-a/pipelines/?page=2&sort=name")
    assert len(page.context["listing"].page.object_list) == 20
    assert len(many) == len(few), [q["sql"] for q in many]
    html = page.content.decode()
    assert "Page 2 of 4 · 65 in all" in html
    assert 'href="?q=&amp;' not in html  # empty parameters are left out of links
    assert 'rel="next" href="?show=all&amp;sort=name&amp;page=3"' in html
