"""Filter, sort and paging: one implementation behind every list of both API versions."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from pipelines.api.listing import MAX_PAGE_SIZE
from pipelines.models import Experiment, Pipeline

V2 = "/apis/v2beta1/experiments"
V1 = "/apis/v1beta1/experiments"


@pytest.fixture
def experiments(profile, owner):
    """e00…e24, one minute apart (e00 oldest)."""
    start = timezone.now() - timedelta(days=1)
    made = []
    for i in range(25):
        experiment = Experiment.create(profile, f"e{i:02}", owner, "even" if i % 2 == 0 else "")
        experiment.created_at = start + timedelta(minutes=i)
        experiment.save(update_fields=["created_at"])
        made.append(experiment)
    return made


def names(client, url=V2, key="display_name", **query) -> list[str]:
    response = client.get(f"{url}?{urlencode(query)}")
    assert response.status_code == 200, response.json()
    return [item[key] for item in response.json()["experiments"]]


def where(*predicates) -> str:
    return json.dumps({"predicates": list(predicates)})


def test_it_defaults_to_20_oldest_first_and_treats_empty_values_as_unset(api, viewer,
                                                                         experiments):
    response = api(viewer).get(f"{V2}?page_token=&page_size=&sort_by=&filter=&namespace=")
    body = response.json()
    assert [e["display_name"] for e in body["experiments"]] == [f"e{i:02}" for i in range(20)]
    assert body["total_size"] == 25 and body["next_page_token"]


def test_it_pages_by_token_to_the_end(api, viewer, experiments):
    client = api(viewer)
    seen, token = [], ""
    while True:
        body = client.get(V1 + "?" + urlencode({"page_size": 7, "page_token": token,
                                                "sort_by": "name desc"})).json()
        seen += [e["name"] for e in body["experiments"]]
        assert body["total_size"] == 25
        token = body["next_page_token"]
        if not token:
            break
    assert seen == [f"e{i:02}" for i in reversed(range(25))]


def test_it_keeps_paging_stable_when_sort_values_tie(api, viewer, experiments):
    same = timezone.now()
    Experiment.objects.update(created_at=same)
    client = api(viewer)
    first = client.get(V2 + "?page_size=10&sort_by=created_at").json()
    rest = client.get(V2 + "?" + urlencode({"page_size": 100,
                                            "page_token": first["next_page_token"]})).json()
    ids = [e["experiment_id"] for e in first["experiments"] + rest["experiments"]]
    assert len(ids) == len(set(ids)) == 25


@pytest.mark.parametrize("sort_by, expected", [
    ("display_name desc", ["e24", "e23"]), ("display_name", ["e00", "e01"]),
    ("created_at desc", ["e24", "e23"]), ("created_at asc", ["e00", "e01"]),
])
def test_it_sorts(api, viewer, experiments, sort_by, expected):
    assert names(api(viewer), sort_by=sort_by, page_size=2) == expected


@pytest.mark.parametrize("predicate, expected", [
    ({"operation": 1, "key": "display_name", "stringValue": "e03"}, ["e03"]),
    ({"operation": "EQUALS", "key": "display_name", "string_value": "e03"}, ["e03"]),
    ({"operation": "NOT_EQUALS", "key": "description", "stringValue": "even"},
     ["e01", "e03"]),
    ({"operation": 8, "key": "display_name", "stringValues": {"values": ["e02", "e04"]}},
     ["e02", "e04"]),
    ({"operation": "IN", "key": "display_name", "string_values": {"values": ["e05"]}},
     ["e05"]),
    ({"operation": "IS_SUBSTRING", "key": "display_name", "stringValue": "E1"},
     ["e10", "e11"]),
    ({"operation": "GREATER_THAN", "key": "display_name", "stringValue": "e22"},
     ["e23", "e24"]),
    ({"operation": 7, "key": "display_name", "stringValue": "e01"}, ["e00", "e01"]),
])
def test_it_filters_with_int_and_named_operations(api, viewer, experiments, predicate,
                                                   expected):
    assert names(api(viewer), filter=where(predicate), page_size=2) == expected


def test_it_filters_timestamps_in_rfc3339_and_seconds(api, viewer, experiments):
    cut = experiments[22].created_at
    rfc = cut.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert names(api(viewer), filter=where(
        {"operation": "GREATER_THAN_EQUALS", "key": "created_at", "timestampValue": rfc})) == \
        ["e22", "e23", "e24"]
    seconds = int(experiments[23].created_at.timestamp()) + 1
    assert names(api(viewer), filter=where(
        {"operation": "LESS_THAN", "key": "created_at", "longValue": str(seconds)}),
        sort_by="created_at desc", page_size=1) == ["e23"]


def test_it_combines_predicates_and_uses_v1_names(api, viewer, experiments):
    query = where({"op": 5, "key": "name", "string_value": "e20"},
                  {"op": "EQUALS", "key": "description", "string_value": "even"})
    assert names(api(viewer), V1, "name", filter=query) == ["e20", "e22", "e24"]


def test_it_counts_the_filtered_set(api, viewer, experiments):
    body = api(viewer).get(V2 + "?" + urlencode({"filter": where(
        {"operation": "IS_SUBSTRING", "key": "display_name", "stringValue": "e1"}),
        "page_size": 3})).json()
    assert body["total_size"] == 10 and len(body["experiments"]) == 3


@pytest.mark.parametrize("query, message", [
    ({"filter": "{not json"}, "not valid JSON"),
    ({"filter": "[1]"}, "JSON object"),
    ({"filter": where({"operation": 1, "key": "colour", "stringValue": "x"})},
     "'colour' is not one of: experiment_id, display_name, storage_state"),
    ({"filter": where({"operation": 4, "key": "display_name", "stringValue": "x"})},
     "no valid operation (4)"),
    ({"filter": where({"operation": "LIKE", "key": "display_name", "stringValue": "x"})},
     "no valid operation ('LIKE')"),
    ({"filter": where({"operation": 1, "key": "display_name"})}, "has no value"),
    ({"filter": where({"operation": 1, "key": "created_at", "stringValue": "soon"})},
     "needs a timestamp"),
    ({"filter": where({"operation": 1, "key": "experiment_id", "stringValue": "x"})},
     "needs an id"),
    ({"filter": where({"operation": 8, "key": "display_name", "stringValue": "x"})},
     "IN on display_name needs"),
    ({"filter": where({"operation": 9, "key": "created_at", "stringValue": "x"})},
     "needs a timestamp"),
    ({"sort_by": "colour"}, "Can't sort by 'colour'"),
    ({"sort_by": "display_name sideways"}, "sort_by should be"),
    ({"page_size": "ten"}, "page_size should be a whole number"),
    ({"page_size": "-1"}, "should not be negative"),
    ({"page_token": "garbage!"}, "page_token is not one this server gave out"),
])
def test_it_refuses_what_it_cannot_use_with_400(api, viewer, experiments, query, message):
    response = api(viewer).get(f"{V2}?{urlencode(query)}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3 and message in body["message"], body


def test_it_refuses_another_lists_token(api, viewer, experiments, uploaded):
    token = api(viewer).get(f"{V2}?page_size=1&sort_by=experiment_id").json()["next_page_token"]
    response = api(viewer).get("/apis/v2beta1/pipelines?page_token=" + token)
    assert response.status_code == 400


def test_it_caps_the_page_size(api, viewer, profile, owner):
    Experiment.objects.bulk_create(
        Experiment(profile=profile, name=f"x{i}") for i in range(MAX_PAGE_SIZE + 5))
    body = api(viewer).get(f"{V2}?page_size=100000").json()
    assert len(body["experiments"]) == MAX_PAGE_SIZE and body["next_page_token"]


def make_pipelines(profile, owner, count: int, loaded):
    for i in range(count):
        pipeline = Pipeline.upload(profile, f"p{i:03}", loaded, owner)
        pipeline.pipeline.add_version(loaded, owner, "v2")


@pytest.fixture
def loaded(ir_package):
    from pipelines.specs import load

    return load(ir_package)


@pytest.mark.parametrize("url_of", [
    lambda p: "/apis/v2beta1/experiments",
    lambda p: "/apis/v1beta1/experiments",
    lambda p: "/apis/v2beta1/pipelines",
    lambda p: "/apis/v1beta1/pipelines",
    lambda p: f"/apis/v2beta1/pipelines/{p.pk}/versions",
    lambda p: f"/apis/v1beta1/pipeline_versions?resource_key.type=PIPELINE"
              f"&resource_key.id={p.pk}",
], ids=["v2-experiments", "v1-experiments", "v2-pipelines", "v1-pipelines", "v2-versions",
        "v1-versions"])
def test_it_makes_the_same_number_of_queries_whatever_the_page_size(
        api, viewer, profile, owner, loaded, django_assert_num_queries, url_of):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api(viewer)

    def fill(count: int) -> str:
        """``count`` pipelines (each with 2 versions) and experiments, and ``count`` more
        versions of the first pipeline; the URL to list with a page of 100."""
        make_pipelines(profile, owner, count, loaded)
        Experiment.objects.bulk_create(
            Experiment(profile=profile, name=f"e{count}-{i}") for i in range(count))
        first = Pipeline.objects.order_by("name").first()
        for i in range(count):
            first.add_version(loaded, owner, f"extra-{count}-{i}")
        url = url_of(first)
        return f"{url}{'&' if '?' in url else '?'}page_size=100"

    url = fill(5)
    client.get(url)  # the token's first use records it; later requests don't write
    with CaptureQueriesContext(connection) as few:
        response = client.get(url)
    assert response.status_code == 200
    Pipeline.objects.all().delete()
    Experiment.objects.all().delete()
    url = fill(50)
    with django_assert_num_queries(len(few)):
        response = client.get(url)
    items = next(v for v in response.json().values() if isinstance(v, list))
    assert len(items) >= 50
