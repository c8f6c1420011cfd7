"""Pipelines through /apis/v2beta1 and /apis/v1beta1: upload, create, get, list, delete,
shared pipelines, and refusals that store nothing."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from urllib.parse import urlencode

import pytest

from pipelines.models import Pipeline, PipelineVersion
from tests.pipelines.api.conftest import tar_gz, upload

V2 = "/apis/v2beta1/pipelines"
V1 = "/apis/v1beta1/pipelines"


@pytest.fixture
def shared(api, cluster_admin, ir_package):
    """A shared pipeline (``namespace=kubeflow``), uploaded by a cluster admin."""
    response = upload(api(cluster_admin), ir_package, name="shared-add", namespace="kubeflow")
    assert response.status_code == 200, response.json()
    return response.json()


def zipped(name: str, data: bytes) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


# --- upload ----------------------------------------------------------------------------------


def test_it_uploads_a_v2_pipeline_with_the_query_arguments(api, member, profile, ir_package):
    response = upload(api(member), ir_package, name="adder", description="adds",
                      namespace="team-a")
    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == body["name"] == "adder"
    assert body["description"] == "adds" and body["namespace"] == "team-a"
    pipeline = Pipeline.objects.get(pk=body["pipeline_id"])
    assert pipeline.profile == profile
    version = pipeline.default_version
    assert version.name == "adder" and version.format == "kfp-v2"


def test_it_names_a_v2_upload_after_the_pipeline_then_the_display_name(api, member, profile,
                                                                      ir_package):
    assert upload(api(member), ir_package).json()["display_name"] == "add-pipeline"
    assert upload(api(member), ir_package, display_name="Shown").json()["name"] == "Shown"


def test_it_names_a_v1_upload_after_the_file_as_kfp_does(api, member, profile, argo_package):
    response = upload(api(member), tar_gz("pipeline.yaml", argo_package), "v1beta1",
                      filename="demo-0.tar.gz")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "demo-0.tar.gz"
    assert body["parameters"] == [{"name": "msg", "value": "hello"}]
    assert body["default_version"]["name"] == "demo-0.tar.gz"
    assert body["default_version"]["resource_references"] == [
        {"key": {"type": "PIPELINE", "id": body["id"]}, "relationship": "OWNER"}]
    assert body["resource_references"][0]["key"] == {"type": "NAMESPACE", "id": "team-a"}


def test_it_uploads_a_zip_whatever_the_part_says(api, member, profile, ir_package):
    response = upload(api(member), zipped("pipeline.yaml", ir_package), filename="p.bin",
                      name="zipped")
    assert response.status_code == 200


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"a: [1, 2", "line"),
    (b"kind: ConfigMap\napiVersion: v1\n", "neither a KFP v2 pipeline nor an Argo Workflow"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_it_refuses_what_is_not_a_pipeline_and_stores_nothing(api, member, profile, data,
                                                              message):
    response = upload(api(member), data, name="bad")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3 and message in body["message"], body
    assert not Pipeline.objects.exists() and not PipelineVersion.objects.exists()


def test_it_refuses_a_package_over_the_limit_with_413(api, member, profile, ir_package,
                                                      settings):
    settings.KFDASH_MAX_PIPELINE_BYTES = 1000
    response = upload(api(member), ir_package, name="big")
    assert response.status_code == 413
    assert "larger than the limit of 1000 bytes" in response.json()["message"]
    assert response.json()["code"] == 8
    assert not Pipeline.objects.exists()


def test_it_refuses_a_body_over_the_limit_before_parsing_it(api, member, profile, settings):
    settings.KFDASH_MAX_PIPELINE_BYTES = 1000
    response = upload(api(member), b"x" * 200_000, name="big")
    assert response.status_code == 413


def test_it_wants_the_uploadfile_part(api, member, profile, ir_package):
    response = api(member).post(f"{V2}/upload", {"file": BytesIO(ir_package)},
                                format="multipart")
    assert response.status_code == 400 and "'uploadfile'" in response.json()["message"]


def test_it_refuses_a_taken_name_with_409_and_keeps_the_first(api, member, uploaded,
                                                             ir_package):
    response = upload(api(member), ir_package, namespace="team-a")
    assert response.status_code == 409
    assert response.json()["message"] == \
        "A pipeline named 'add-pipeline' already exists in the namespace team-a."
    assert Pipeline.objects.count() == 1 and PipelineVersion.objects.count() == 1


def test_it_lets_viewers_read_but_not_upload(api, viewer, stranger, profile, ir_package):
    assert upload(api(viewer), ir_package, namespace="team-a").status_code == 403
    assert upload(api(stranger), ir_package, namespace="team-a").status_code == 404
    assert not Pipeline.objects.exists()


# --- create from metadata or URL ------------------------------------------------------------


def test_it_creates_a_pipeline_without_versions(api, member, profile):
    response = api(member).post(V2, {"display_name": "empty", "description": "later",
                                     "namespace": "team-a"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "empty" and body["namespace"] == "team-a"
    assert not Pipeline.objects.get(pk=body["pipeline_id"]).versions.exists()
    v1 = api(member).get(f"{V1}/{body['pipeline_id']}").json()
    assert v1["default_version"] is None and v1["parameters"] == []


def test_it_creates_a_pipeline_and_version_from_a_url(api, member, profile, package_server,
                                                       ir_package):
    url = package_server.serve("/create/add.yaml", ir_package)
    response = api(member).post(f"{V2}/create", {
        "pipeline": {"display_name": "from-url", "namespace": "team-a"},
        "pipeline_version": {"display_name": "v1", "package_url": {"pipeline_url": url},
                             "code_source_url": "https://example.com/src"}},
        format="json")
    assert response.status_code == 200, response.json()
    pipeline = Pipeline.objects.get(pk=response.json()["pipeline_id"])
    version = pipeline.default_version
    assert (version.name, version.package_url, version.code_source_url) == (
        "v1", url, "https://example.com/src")


def test_it_creates_a_v1_pipeline_from_a_url(api, member, profile, package_server,
                                              argo_package):
    url = package_server.serve("/v1/demo_param.yaml", argo_package)
    response = api(member).post(V1, {"url": {"pipeline_url": url}}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "demo_param.yaml"
    assert body["default_version"]["package_url"] == {"pipeline_url": url}


def test_it_stores_nothing_when_the_url_fails(api, member, profile, package_server):
    response = api(member).post(f"{V2}/create", {
        "pipeline": {"display_name": "x"},
        "pipeline_version": {"package_url": {"pipeline_url": package_server.url + "/nope"}}},
        format="json")
    assert response.status_code == 400 and "answered 404" in response.json()["message"]
    assert not Pipeline.objects.exists()


def test_it_refuses_a_url_that_does_not_parse_with_400(api, member, profile):
    """Found by the API fuzz test: urlsplit raises on an unclosed IPv6 host (was a 500)."""
    response = api(member).post(f"{V2}/create", {
        "pipeline": {"display_name": "x"},
        "pipeline_version": {"package_url": {"pipeline_url": "https://[oops/p.yaml"}}},
        format="json")
    assert response.status_code == 400 and "http:// or https://" in response.json()["message"]
    assert not Pipeline.objects.exists()


# --- read --------------------------------------------------------------------------------------


def test_it_gets_a_pipeline_in_both_versions(api, viewer, uploaded):
    client = api(viewer)
    pid = uploaded["pipeline_id"]
    v2 = client.get(f"{V2}/{pid}").json()
    assert v2 == uploaded
    v1 = client.get(f"{V1}/{pid}", CONTENT_TYPE="application/json").json()
    assert v1["id"] == pid and v1["name"] == "add-pipeline"
    assert v1["parameters"] == [{"name": "a", "value": "3"}, {"name": "msg", "value": "hi"},
                                {"name": "ratio", "value": "0.5"}]
    assert v1["default_version"]["parameters"] == v1["parameters"]


def test_it_gets_a_pipeline_by_name(api, viewer, uploaded, shared):
    client = api(viewer)
    assert client.get(f"{V2}/names/add-pipeline").json()["pipeline_id"] == \
        uploaded["pipeline_id"]
    assert client.get(f"{V2}/names/shared-add?namespace=").json()["namespace"] == ""
    assert client.get(f"{V2}/names/shared-add?namespace=team-a").status_code == 404
    assert client.get(f"{V2}/names/shared-add?namespace=kubeflow").status_code == 200
    assert client.get(f"{V2}/names/nothing").status_code == 404


def test_it_lists_a_namespace_with_the_shared_pipelines(api, viewer, stranger, uploaded,
                                                        shared):
    body = api(viewer).get(f"{V2}?page_token=&page_size=10&sort_by=&namespace=").json()
    assert {p["display_name"] for p in body["pipelines"]} == {"add-pipeline", "shared-add"}
    assert body["total_size"] == 2
    only_shared = api(viewer).get(f"{V1}?resource_reference_key.type=NAMESPACE"
                                  "&resource_reference_key.id=kubeflow").json()
    assert [p["name"] for p in only_shared["pipelines"]] == ["shared-add"]
    assert only_shared["pipelines"][0]["resource_references"] == []
    # A user without a namespace still sees the shared pipelines.
    assert [p["display_name"] for p in api(stranger).get(V2).json()["pipelines"]] == \
        ["shared-add"]
    assert api(stranger).get(f"{V2}?namespace=team-a").status_code == 404


def test_it_finds_a_pipeline_id_by_name_as_the_sdks_do(api, viewer, uploaded):
    v2 = json.dumps({"predicates": [{"operation": 1, "key": "display_name",
                                     "stringValue": "add-pipeline"}]})
    v1 = json.dumps({"predicates": [{"op": 1, "key": "name", "stringValue": "add-pipeline"}]})
    client = api(viewer)
    assert client.get(f"{V2}?{urlencode({'filter': v2})}").json()["pipelines"][0][
        "pipeline_id"] == uploaded["pipeline_id"]
    assert client.get(f"{V1}?{urlencode({'filter': v1})}").json()["pipelines"][0]["id"] == \
        uploaded["pipeline_id"]


def test_it_hides_pipelines_from_strangers(api, stranger, uploaded):
    pid = uploaded["pipeline_id"]
    client = api(stranger)
    for url in (f"{V2}/{pid}", f"{V1}/{pid}", f"{V1}/{pid}/templates",
                f"{V2}/{pid}/versions"):
        assert client.get(url).status_code == 404, url
    assert client.delete(f"{V2}/{pid}").status_code == 404
    assert client.get(f"{V2}/names/add-pipeline?namespace=team-a").status_code == 404


def test_it_serves_the_v1_template(api, viewer, uploaded, ir_package):
    body = api(viewer).get(f"{V1}/{uploaded['pipeline_id']}/templates").json()
    assert body == {"template": ir_package.decode()}


# --- shared pipelines --------------------------------------------------------------------------


def test_it_lets_only_cluster_admins_write_shared_pipelines(api, owner, member, shared,
                                                            ir_package):
    assert shared["namespace"] == ""
    assert Pipeline.objects.get(pk=shared["pipeline_id"]).is_shared
    assert upload(api(owner), ir_package, name="mine", namespace="kubeflow").status_code == 403
    pid = shared["pipeline_id"]
    assert api(member).delete(f"{V1}/{pid}").status_code == 403
    version = api(member).post(
        f"{V2}/upload_version?{urlencode({'pipelineid': pid, 'name': 'v2'})}",
        {"uploadfile": BytesIO(ir_package)}, format="multipart")
    assert version.status_code == 403
    assert api(member).get(f"{V2}/{pid}").status_code == 200  # but everyone reads it


# --- delete ------------------------------------------------------------------------------------


def test_v2_refuses_to_delete_a_pipeline_with_versions_without_cascade(api, member, uploaded):
    pid = uploaded["pipeline_id"]
    response = api(member).delete(f"{V2}/{pid}")
    assert response.status_code == 400
    assert "still has 1 version(s)" in response.json()["message"]
    assert "cascade=true" in response.json()["message"]
    assert api(member).delete(f"{V2}/{pid}?cascade=true").status_code == 200
    assert not Pipeline.objects.exists() and not PipelineVersion.objects.exists()


def test_v2_deletes_a_pipeline_once_its_versions_are_gone(api, member, uploaded):
    pid = uploaded["pipeline_id"]
    client = api(member)
    for version in client.get(f"{V2}/{pid}/versions").json()["pipeline_versions"]:
        assert client.delete(f"{V2}/{pid}/versions/{version['pipeline_version_id']}"
                             ).status_code == 200
    assert client.delete(f"{V2}/{pid}").json() == {}


def test_v1_deletes_a_pipeline_with_its_versions(api, member, viewer, uploaded):
    pid = uploaded["pipeline_id"]
    assert api(viewer).delete(f"{V1}/{pid}").status_code == 403
    assert api(member).delete(f"{V1}/{pid}").status_code == 200
    assert not PipelineVersion.objects.exists()


def test_it_answers_unknown_api_paths_with_a_kfp_404(api, member):
    response = api(member).get("/apis/v2beta1/nothing/here")
    assert response.status_code == 404
    assert response.json()["code"] == 5 and "/apis/v2beta1/nothing/here" in \
        response.json()["message"]


def test_it_answers_a_post_to_an_unknown_path_with_the_same_404_not_a_csrf_page(owner):
    from rest_framework.test import APIClient

    from dashboard.models import ApiToken

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(owner, 't')[1]}")
    client.cookies["sessionid"] = "whatever-the-browser-had"
    response = client.post("/apis/v1beta1/runs/a:b:archive")  # ':' is never in an id
    assert response.status_code == 404 and response.json()["code"] == 5


def test_it_answers_paths_with_control_characters_with_the_same_404(api, member):
    response = api(member).get("/apis/v1beta1/runs/r/nodes/a%0Ab/artifacts/x:read")
    assert response.status_code == 404 and response.json()["code"] == 5
