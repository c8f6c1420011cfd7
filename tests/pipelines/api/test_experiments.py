"""Experiments through /apis/v2beta1 and /apis/v1beta1: shapes, namespaces, access."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

from pipelines.models import Experiment

V2 = "/apis/v2beta1/experiments"
V1 = "/apis/v1beta1/experiments"
TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


@pytest.fixture
def experiment(profile, owner):
    return Experiment.create(profile, "train", owner, "first try")


def name_filter(key: str, name: str, op_field: str = "operation") -> str:
    return json.dumps({"predicates": [{op_field: 1, "key": key, "stringValue": name}]})


def test_it_creates_a_v2_experiment_in_the_default_namespace(api, member, profile):
    response = api(member).post(V2, {"display_name": "e1", "description": "d",
                                     "namespace": ""}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "e1" and body["description"] == "d"
    assert body["namespace"] == "team-a" and body["storage_state"] == "AVAILABLE"
    assert Experiment.objects.get(pk=body["experiment_id"]).profile == profile
    assert re.match(TIMESTAMP, body["created_at"])


def test_it_creates_a_v1_experiment_from_its_namespace_reference(api, member, profile):
    response = api(member).post(V1, {
        "name": "e1", "resource_references": [
            {"key": {"type": "NAMESPACE", "id": "team-a"}, "relationship": "OWNER"}]},
        format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "e1" and body["storage_state"] == "STORAGESTATE_AVAILABLE"
    assert body["resource_references"] == [{"key": {"type": "NAMESPACE", "id": "team-a"},
                                            "name": "team-a", "relationship": "OWNER"}]


def test_it_refuses_a_taken_name_with_409(api, member, experiment):
    response = api(member).post(V2, {"display_name": "train", "namespace": "team-a"},
                                format="json")
    assert response.status_code == 409
    assert response.json() == {
        "error": "An experiment named 'train' already exists in team-a.", "code": 6,
        "message": "An experiment named 'train' already exists in team-a.", "details": []}


def test_it_refuses_a_viewer_and_hides_the_namespace_from_a_stranger(api, viewer, stranger,
                                                                      profile):
    data = {"display_name": "e", "namespace": "team-a"}
    assert api(viewer).post(V2, data, format="json").status_code == 403
    assert api(stranger).post(V2, data, format="json").status_code == 404


def test_it_tells_a_user_without_a_namespace_to_get_one(api, stranger):
    response = api(stranger).post(V2, {"display_name": "e", "namespace": ""}, format="json")
    assert response.status_code == 400
    assert "You have no namespace yet" in response.json()["message"]
    assert api(stranger).get(V2 + "?namespace=").json()["experiments"] == []


def test_it_lists_by_name_as_create_experiment_does(api, viewer, experiment, profile, owner):
    Experiment.create(profile, "other", owner)
    client = api(viewer)
    v2 = client.get(V2 + "?" + urlencode({"filter": name_filter("display_name", "train"),
                                          "namespace": ""}))
    assert [e["experiment_id"] for e in v2.json()["experiments"]] == [str(experiment.pk)]
    assert v2.json()["total_size"] == 1
    v1 = client.get(V1 + "?" + urlencode({"filter": name_filter("name", "train", "op")}))
    assert [e["id"] for e in v1.json()["experiments"]] == [str(experiment.pk)]


def test_it_lists_a_named_namespace_v1_style(api, viewer, experiment):
    query = ("page_token=&page_size=10&sort_by=&resource_reference_key.type=NAMESPACE"
             "&resource_reference_key.id=team-a")
    body = api(viewer).get(f"{V1}?{query}").json()
    assert [e["name"] for e in body["experiments"]] == ["train"]
    assert body["next_page_token"] == ""


def test_it_hides_a_namespace_list_from_strangers(api, stranger, experiment):
    assert api(stranger).get(V2 + "?namespace=team-a").status_code == 404
    assert api(stranger).get(
        V1 + "?resource_reference_key.type=NAMESPACE&resource_reference_key.id=team-a"
    ).status_code == 404


def test_it_gets_an_experiment_in_both_versions(api, viewer, experiment):
    client = api(viewer)
    v2 = client.get(f"{V2}/{experiment.pk}", CONTENT_TYPE="application/json").json()
    assert v2["experiment_id"] == str(experiment.pk) and v2["description"] == "first try"
    assert v2["last_run_created_at"] is None
    v1 = client.get(f"{V1}/{experiment.pk}").json()
    assert v1["id"] == str(experiment.pk) and v1["name"] == "train"


def test_it_answers_404_for_strangers_and_unknown_ids(api, stranger, owner, experiment):
    assert api(stranger).get(f"{V2}/{experiment.pk}").status_code == 404
    assert api(stranger).delete(f"{V2}/{experiment.pk}").status_code == 404
    assert api(stranger).post(f"{V2}/{experiment.pk}:archive").status_code == 404
    missing = api(owner).get(f"{V2}/not-an-id")
    assert missing.status_code == 404 and missing.json()["code"] == 5
    assert api(owner).get(f"{V2}/00000000-0000-0000-0000-000000000000").status_code == 404


def test_it_archives_and_unarchives_without_a_body(api, member, viewer, experiment):
    client = api(member)
    # The SDK sends Content-Type: application/json and no body.
    response = client.post(f"{V2}/{experiment.pk}:archive", content_type="application/json")
    assert response.status_code == 200 and response.json() == {}
    experiment.refresh_from_db()
    assert experiment.is_archived
    assert client.get(f"{V1}/{experiment.pk}").json()["storage_state"] == \
        "STORAGESTATE_ARCHIVED"
    archived = json.dumps({"predicates": [{"op": "EQUALS", "key": "storage_state",
                                           "string_value": "STORAGESTATE_ARCHIVED"}]})
    assert client.get(V1 + "?" + urlencode({"filter": archived})).json()["total_size"] == 1
    assert client.post(f"{V1}/{experiment.pk}:unarchive").status_code == 200
    experiment.refresh_from_db()
    assert not experiment.is_archived
    assert api(viewer).post(f"{V2}/{experiment.pk}:archive").status_code == 403


def test_it_deletes_for_editors_only(api, member, viewer, experiment):
    assert api(viewer).delete(f"{V2}/{experiment.pk}").status_code == 403
    response = api(member).delete(f"{V1}/{experiment.pk}", content_type="application/json")
    assert response.status_code == 200 and response.json() == {}
    assert not Experiment.objects.filter(pk=experiment.pk).exists()


def test_it_refuses_bad_bodies_with_the_kfp_error_body(api, member, profile):
    response = api(member).post(V2, {"description": "no name"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3 and "display_name" in body["message"]
    too_long = api(member).post(V2, {"display_name": "x" * 200}, format="json")
    assert too_long.status_code == 400 and "128" in too_long.json()["message"]


def test_it_refuses_anonymous_callers(db):
    from rest_framework.test import APIClient

    response = APIClient().get(V2)
    assert response.status_code == 401 and response.json()["code"] == 16
