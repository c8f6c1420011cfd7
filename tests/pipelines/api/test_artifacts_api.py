"""v2beta1 artifacts (KFP's ArtifactService): the ids a run's task_details list, resolved
one by one (BASIC and DOWNLOAD views) and listed per namespace (paged as every list is),
through the access policy like the runs they belong to."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from dashboard.models import Profile
from pipelines.models import Artifact
from tests.pipelines.api.run_samples import finished_run
from tests.pipelines.run_rows import write_artifact

ARTIFACTS = "/apis/v2beta1/artifacts"
ADD = "for-loop-1/add.0"
NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def run(profile, owner, ir_package):
    return finished_run(profile, owner, ir_package)


@pytest.fixture
def sums(run) -> Artifact:
    return run.artifacts.get(name="sums")


def url(artifact_id, **query) -> str:
    return f"{ARTIFACTS}/{artifact_id}" + (f"?{urlencode(query)}" if query else "")


def listed(client, **query):
    response = client.get(f"{ARTIFACTS}?{urlencode(query)}")
    assert response.status_code == 200, response.json()
    return response.json()


def names(body) -> list[str]:
    return [item["name"] for item in body["artifacts"]]


def test_it_resolves_the_ids_a_runs_task_details_list(api, viewer, run, sums):
    sums.metadata = {"rows": 1}
    sums.save(update_fields=["metadata"])
    details = api(viewer).get(f"/apis/v2beta1/runs/{run.pk}").json()["run_details"]
    add = next(t for t in details["task_details"] if t["pod_name"] == ADD)
    [artifact_id] = add["outputs"]["sums"]["artifact_ids"]

    response = api(viewer).get(url(artifact_id))
    assert response.status_code == 200
    assert response.json() == {
        "artifact_id": str(sums.pk), "storage_provider": "kfdash", "storage_path": sums.path,
        "uri": sums.uri, "namespace": "team-a", "artifact_type": "system.Dataset",
        "artifact_size": "2", "created_at": response.json()["created_at"],
        "last_updated_at": response.json()["created_at"], "name": "sums",
        "run_id": str(run.pk), "task_id": add["task_id"], "node_id": ADD,
        "metadata": {"rows": 1}}
    assert response.json()["created_at"].endswith("Z")
    for view in ("BASIC", "ARTIFACT_VIEW_UNSPECIFIED", "1"):
        assert api(viewer).get(url(artifact_id, view=view)).json() == response.json()


def test_its_download_url_opens_with_the_same_token_or_session(api, viewer, stranger,
                                                                 sums, run):
    expected = f"http://testserver/apis/v2beta1/artifacts/{sums.pk}:download"
    client = api(viewer)
    for view in ("DOWNLOAD", "download", "2"):
        body = client.get(url(sums.pk, view=view)).json()
        assert body["download_url"] == expected
    download = client.get(body["download_url"])  # a script's bearer token
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"5\n"
    assert download["Content-Disposition"] == 'attachment; filename="sums"'
    browser = APIClient()
    browser.force_login(viewer)
    download = browser.get(browser.get(url(sums.pk, view="DOWNLOAD")).json()["download_url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"5\n"
    refused = api(stranger).get(expected)
    assert refused.status_code == 404
    assert refused.json()["message"] == f"No artifact with id {sums.pk}."
    assert APIClient().get(expected).status_code == 401


def test_it_says_where_an_artifact_outside_its_store_is(api, viewer, run):
    add = run.tasks.get(node_id=ADD)
    gone = write_artifact(run, add, "gone", None)
    remote = run.artifacts.create(task=add, name="model", type="system.Model",
                                  uri="s3://bucket/models/a/b")
    body = api(viewer).get(url(remote.pk, view="DOWNLOAD")).json()
    assert (body["storage_provider"], body["storage_path"]) == ("s3", "models/a/b")
    assert body["artifact_size"] is None and body["download_url"] is None
    body = api(viewer).get(url(gone.pk, view="DOWNLOAD")).json()
    assert body["storage_provider"] == "kfdash" and body["download_url"] is None


def test_it_refuses_views_it_does_not_serve(api, viewer, sums):
    response = api(viewer).get(url(sums.pk, view="RENDER"))
    assert response.status_code == 400 and "never renders" in response.json()["message"]
    response = api(viewer).get(url(sums.pk, view="FULL"))
    assert response.status_code == 400 and response.json()["code"] == 3


def test_it_hides_a_strangers_artifact_as_if_it_did_not_exist(api, stranger, sums):
    hidden = api(stranger).get(url(sums.pk))
    missing = api(stranger).get(url(NO_SUCH_ID))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == {"error": f"No artifact with id {sums.pk}.", "code": 5,
                             "message": f"No artifact with id {sums.pk}.", "details": []}
    assert missing.json()["message"] == f"No artifact with id {NO_SUCH_ID}."
    assert listed(api(stranger))["artifacts"] == []  # no namespace of their own
    assert api(stranger).get(f"{ARTIFACTS}?namespace=team-a").status_code == 404


def test_it_answers_404_for_an_id_that_is_not_a_uuid(api, viewer):
    response = api(viewer).get(url("not-a-uuid"))
    assert response.status_code == 404
    assert response.json()["code"] == 5 and "not-a-uuid" in response.json()["message"]


def test_it_asks_anonymous_callers_to_authenticate(sums):
    for path in (url(sums.pk), ARTIFACTS, f"{ARTIFACTS}?namespace=team-a"):
        response = APIClient().get(path)
        assert response.status_code == 401 and response.json()["code"] == 16


def test_it_lets_cluster_admins_read_any_namespaces_artifacts(api, cluster_admin, sums):
    assert api(cluster_admin).get(url(sums.pk)).status_code == 200
    assert names(listed(api(cluster_admin), namespace="team-a")) == ["sums"]


@pytest.fixture
def many(run) -> list[Artifact]:
    """Five artifacts of team-a, oldest first, and one of another namespace's run."""
    add = run.tasks.get(node_id=ADD)
    made = [run.artifacts.get(name="sums")]
    made += [write_artifact(run, add, f"part-{i}", b"x" * i, "system.Dataset")
             for i in range(1, 4)]
    made.append(write_artifact(run, add, "model", b"m", "system.Model"))
    return made


def test_it_lists_a_namespaces_artifacts_page_by_page(api, viewer, many, make_user,
                                                      ir_package):
    boss = make_user("boss@example.com")
    elsewhere = finished_run(Profile.register("team-b", boss), boss, ir_package)
    assert elsewhere.artifacts.exists()
    seen, token = [], ""
    while True:
        body = listed(api(viewer), namespace="team-a", page_size=2, page_token=token)
        assert body["total_size"] == 5 and len(body["artifacts"]) <= 2
        seen += names(body)
        token = body["next_page_token"]
        if not token:
            break
    assert seen == [a.name for a in many]  # created_at ascending, as KFP lists by default
    item = body["artifacts"][-1]
    assert "metadata" not in item and "download_url" not in item
    assert item["artifact_type"] == "system.Model" and item["namespace"] == "team-a"


def test_it_lists_the_callers_default_namespace_when_none_is_named(api, owner, many):
    assert names(listed(api(owner))) == names(listed(api(owner), namespace="team-a"))
    assert listed(api(owner))["total_size"] == 5


def test_it_sorts_and_filters_as_other_lists_do(api, viewer, many):
    body = listed(api(viewer), namespace="team-a", sort_by="created_at desc", page_size=1)
    assert names(body) == ["model"]
    body = listed(api(viewer), namespace="team-a", sort_by="created_at desc",
                  page_token=body["next_page_token"], page_size=1)
    assert names(body) == ["part-3"]
    models = '{"predicates": [{"key": "artifact_type", "operation": "EQUALS", ' \
             '"string_value": "system.Model"}]}'
    assert names(listed(api(viewer), namespace="team-a", filter=models)) == ["model"]
    response = api(viewer).get(f"{ARTIFACTS}?namespace=team-a&sort_by=size")
    assert response.status_code == 400 and "Can't sort by 'size'" in response.json()["message"]


def test_it_takes_the_list_parameters_of_kfps_first_artifact_api(api, viewer, many):
    body = listed(api(viewer), namespace="team-a", max_result_size=3,
                  order_by_field="CREATE_TIME", order_by="desc")
    assert names(body) == ["model", "part-3", "part-2"]
    body = listed(api(viewer), namespace="team-a", max_result_size=3,
                  next_page_token=body["next_page_token"])
    assert names(body) == ["part-1", "sums"] and body["next_page_token"] == ""
    by_id = listed(api(viewer), namespace="team-a", order_by_field="ID")
    assert names(by_id) == [a.name for a in sorted(many, key=lambda a: a.pk)]


def test_it_lists_a_page_in_the_same_queries_whatever_its_size(api, viewer, many):
    client = api(viewer)
    listed(client, namespace="team-a")  # the token's first use is written down once
    counts = []
    for size in (1, 5):
        with CaptureQueriesContext(connection) as queries:
            listed(client, namespace="team-a", page_size=size)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_it_documents_both_endpoints(api, owner):
    schema = yaml.safe_load(api(owner).get("/api/schema").content)
    paths = schema["paths"]
    assert {"/apis/v2beta1/artifacts", "/apis/v2beta1/artifacts/{artifact_id}"} <= set(paths)
    get = paths["/apis/v2beta1/artifacts/{artifact_id}"]["get"]
    assert {p["name"] for p in get["parameters"]} == {"artifact_id", "view"}
    artifact = schema["components"]["schemas"]["ArtifactDetailV2"]
    assert "download_url" in artifact["properties"]
    assert "download_url" not in artifact["required"]  # BASIC leaves it out
