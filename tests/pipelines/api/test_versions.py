"""Pipeline versions: upload_version, create from a URL, list, get, delete, templates, the v1
default version."""

from __future__ import annotations

from io import BytesIO
from urllib.parse import urlencode

import pytest
import yaml

from pipelines.models import PipelineVersion
from tests.pipelines.api.conftest import tar_gz, upload_file

V2 = "/apis/v2beta1/pipelines"
V1 = "/apis/v1beta1"


def upload_version(client, data: bytes, version: str = "v2beta1", filename="pipeline.yaml",
                   **query):
    return client.post(f"/apis/{version}/pipelines/upload_version?{urlencode(query)}",
                       {"uploadfile": upload_file(data, filename)}, format="multipart")


@pytest.fixture
def pid(uploaded) -> str:
    return uploaded["pipeline_id"]


def test_it_uploads_a_v2_version(api, member, pid, ir_package):
    response = upload_version(api(member), ir_package, name="second", pipelineid=pid,
                              description="again")
    assert response.status_code == 200
    body = response.json()
    assert body["pipeline_id"] == pid and body["display_name"] == body["name"] == "second"
    assert body["description"] == "again"
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "add-pipeline"
    assert body["pipeline_spec"] == yaml.safe_load(ir_package)


def test_it_uploads_a_v1_version_named_after_the_file(api, member, pid, argo_package):
    response = upload_version(api(member), tar_gz("pipeline.yaml", argo_package), "v1beta1",
                              filename="demo-1.tar.gz", pipelineid=pid)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "demo-1.tar.gz"
    assert body["parameters"] == [{"name": "msg", "value": "hello"}]
    assert body["resource_references"] == [{"key": {"type": "PIPELINE", "id": pid},
                                            "relationship": "OWNER"}]


def test_the_newest_version_becomes_the_default(api, member, pid, argo_package):
    upload_version(api(member), argo_package, pipelineid=pid, name="argo")
    body = api(member).get(f"{V1}/pipelines/{pid}").json()
    assert body["default_version"]["name"] == "argo"
    assert body["parameters"] == [{"name": "msg", "value": "hello"}]


def test_it_refuses_a_taken_version_name_with_409(api, member, pid, ir_package):
    response = upload_version(api(member), ir_package, name="add-pipeline", pipelineid=pid)
    assert response.status_code == 409
    assert "already has a version named 'add-pipeline'" in response.json()["message"]
    assert PipelineVersion.objects.count() == 1


def test_it_refuses_versions_without_a_pipeline_or_for_viewers(api, member, viewer, stranger,
                                                               pid, ir_package):
    assert upload_version(api(member), ir_package, name="x").status_code == 400
    assert upload_version(api(member), ir_package, name="x",
                          pipelineid="0" * 32).status_code == 404
    assert upload_version(api(viewer), ir_package, name="x", pipelineid=pid).status_code == 403
    assert upload_version(api(stranger), ir_package, name="x",
                          pipelineid=pid).status_code == 404


def test_it_refuses_a_bad_version_and_keeps_the_pipeline_as_it_was(api, member, pid):
    response = upload_version(api(member), b"just text", name="bad", pipelineid=pid)
    assert response.status_code == 400 and response.json()["code"] == 3
    assert PipelineVersion.objects.count() == 1


def test_it_lists_versions_in_both_versions(api, viewer, member, pid, ir_package):
    upload_version(api(member), ir_package, name="second", pipelineid=pid)
    client = api(viewer)
    v2 = client.get(f"{V2}/{pid}/versions?page_token=&page_size=10&sort_by=").json()
    assert [v["name"] for v in v2["pipeline_versions"]] == ["add-pipeline", "second"]
    assert v2["total_size"] == 2 and v2["next_page_token"] == ""
    assert all(v["pipeline_spec"]["pipelineInfo"] for v in v2["pipeline_versions"])
    v1 = client.get(f"{V1}/pipeline_versions?resource_key.type=PIPELINE&resource_key.id={pid}"
                    "&page_size=10&page_token=&sort_by=name desc").json()
    assert [v["name"] for v in v1["versions"]] == ["second", "add-pipeline"]
    assert v1["versions"][0]["parameters"][0] == {"name": "a", "value": "3"}


def test_v1_lists_versions_only_of_a_named_pipeline(api, viewer, stranger, pid):
    response = api(viewer).get(f"{V1}/pipeline_versions")
    assert response.status_code == 400 and "resource_key.type=PIPELINE" in \
        response.json()["message"]
    assert api(stranger).get(
        f"{V1}/pipeline_versions?resource_key.type=PIPELINE&resource_key.id={pid}"
    ).status_code == 404


def test_it_gets_and_deletes_a_version(api, member, viewer, stranger, pid, ir_package):
    vid = upload_version(api(member), ir_package, name="second",
                         pipelineid=pid).json()["pipeline_version_id"]
    assert api(viewer).get(f"{V2}/{pid}/versions/{vid}").json()["name"] == "second"
    assert api(viewer).get(f"{V1}/pipeline_versions/{vid}").json()["id"] == vid
    template = api(viewer).get(f"{V1}/pipeline_versions/{vid}/templates").json()
    assert template == {"template": ir_package.decode()}
    assert api(stranger).get(f"{V1}/pipeline_versions/{vid}").status_code == 404
    assert api(viewer).delete(f"{V2}/{pid}/versions/{vid}").status_code == 403
    assert api(member).delete(f"{V2}/{pid}/versions/{vid}").json() == {}
    assert api(member).get(f"{V1}/pipelines/{pid}").json()["default_version"]["name"] == \
        "add-pipeline"
    first = PipelineVersion.objects.get().pk
    assert api(member).delete(f"{V1}/pipeline_versions/{first}").status_code == 200
    assert not PipelineVersion.objects.exists()


def test_it_finds_a_version_only_under_its_own_pipeline(api, member, pid, profile, owner,
                                                        ir_package):
    from pipelines.models import Pipeline
    from pipelines.specs import load

    other = Pipeline.upload(profile, "other", load(ir_package), owner)
    assert api(member).get(f"{V2}/{pid}/versions/{other.pk}").status_code == 404


def test_it_nests_the_platform_spec_as_the_v2_sdk_does(api, member, profile, ir_package):
    platform = yaml.safe_dump({"platforms": {"kubernetes": {"deploymentSpec": {}}}})
    package = ir_package + b"\n---\n" + platform.encode()
    from tests.pipelines.api.conftest import upload

    pid = upload(api(member), package, name="with-platform").json()["pipeline_id"]
    version = api(member).get(f"{V2}/{pid}/versions").json()["pipeline_versions"][0]
    assert set(version["pipeline_spec"]) == {"pipeline_spec", "platform_spec"}
    assert version["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]


def test_it_creates_versions_from_urls(api, member, pid, package_server, ir_package,
                                       argo_package):
    url = package_server.serve("/versions/add.yaml", ir_package)
    v2 = api(member).post(f"{V2}/{pid}/versions", {
        "display_name": "from-url", "package_url": {"pipeline_url": url}}, format="json")
    assert v2.status_code == 200 and v2.json()["package_url"] == {"pipeline_url": url}
    url1 = package_server.serve("/versions/demo.tar.gz", tar_gz("pipeline.yaml",
                                                                argo_package))
    v1 = api(member).post(f"{V1}/pipeline_versions", {
        "package_url": {"pipeline_url": url1},
        "resource_references": [{"key": {"type": "PIPELINE", "id": pid},
                                 "relationship": "OWNER"}]}, format="json")
    assert v1.status_code == 200, v1.json()
    assert v1.json()["name"] == "demo.tar.gz"
    missing = api(member).post(f"{V1}/pipeline_versions", {
        "package_url": {"pipeline_url": url1}, "resource_references": []}, format="json")
    assert missing.status_code == 400


def test_v1_sets_the_default_version(api, member, viewer, pid, ir_package):
    client = api(member)
    first = client.get(f"{V1}/pipelines/{pid}").json()["default_version"]["id"]
    upload_version(client, ir_package, name="second", pipelineid=pid)
    url = f"{V1}/pipelines/{pid}/default_version/{first}"
    assert api(viewer).post(url).status_code == 403
    assert client.post(url, content_type="application/json").json() == {}
    assert client.get(f"{V1}/pipelines/{pid}").json()["default_version"]["id"] == first
    template = client.get(f"{V1}/pipelines/{pid}/templates").json()["template"]
    assert template == ir_package.decode()


def test_it_reads_the_uploadfile_as_sent_by_curl(api, member, pid, ir_package):
    response = api(member).post(
        f"/apis/v1beta1/pipelines/upload_version?pipelineid={pid}&name=curl",
        {"uploadfile": BytesIO(ir_package)}, format="multipart")
    assert response.status_code == 200
