"""The upload page: a new pipeline or a new version, from a file or a URL; every error is
shown on its field and nothing is stored."""

import pytest

from pipelines.models import Pipeline, PipelineVersion
from tests.pipelines.pages.conftest import package_file

URL = "/ns/team-a/pipelines/upload/"


def nothing_stored() -> bool:
    return not Pipeline.objects.exists() and not PipelineVersion.objects.exists()


def errors(response, field: str) -> list[str]:
    return response.context["form"].errors.get(field, [])


def test_it_uploads_a_compiled_pipeline_named_after_its_spec(login, member, profile,
                                                             hello_package):
    response = login(member).post(URL, {"target": "new", "origin": "file", "name": "",
                                        "package": package_file(hello_package)})
    pipeline = Pipeline.objects.get()
    version = pipeline.versions.get()
    assert response.status_code == 302
    assert response["Location"] == f"/ns/team-a/pipelines/{pipeline.pk}/?version={version.pk}"
    assert pipeline.name == "hello-pipeline" and pipeline.profile == profile
    assert pipeline.description == "Load, train, evaluate; publish if good."
    assert pipeline.created_by == member and pipeline.default_version == version
    assert len(version.spec.tasks) == 5


def test_it_takes_the_name_and_description_given(login, member, profile, hello_package):
    login(member).post(URL, {"target": "new", "origin": "file", "name": "My pipeline",
                             "description": "mine", "package": package_file(hello_package)})
    assert Pipeline.objects.get().name == "My pipeline"
    assert Pipeline.objects.get().description == "mine"


def test_it_uploads_from_a_url(login, member, profile, hello_package, package_server):
    url = package_server.serve("/hello.yaml", hello_package)
    response = login(member).post(URL, {"target": "new", "origin": "url", "url": url})
    assert response.status_code == 302
    version = Pipeline.objects.get().versions.get()
    assert version.package_url == url and len(version.spec.tasks) == 5


def test_it_shows_a_url_that_cannot_be_fetched_on_its_field(login, member, profile,
                                                            package_server):
    response = login(member).post(URL, {"target": "new", "origin": "url",
                                        "url": package_server.url + "/missing.yaml"})
    assert response.status_code == 200
    assert "404" in errors(response, "url")[0]
    assert nothing_stored()


@pytest.mark.parametrize(("data", "words"), [
    (b"key: [unclosed\n", "line"),
    (b"just: a mapping\n", "neither a KFP v2 pipeline nor an Argo Workflow"),
    (b"\xff\xfe\x00bad", "UTF-8"),
])
def test_it_shows_why_a_file_is_refused_next_to_it(login, member, profile, data, words):
    response = login(member).post(URL, {"target": "new", "origin": "file",
                                        "package": package_file(data)})
    assert response.status_code == 200
    [message] = errors(response, "package")
    assert words in message
    assert message in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert nothing_stored()


def test_it_refuses_a_name_already_taken(login, member, profile, stored, hello_package):
    response = login(member).post(URL, {"target": "new", "origin": "file",
                                        "name": "hello-pipeline",
                                        "package": package_file(hello_package)})
    assert response.status_code == 200
    assert errors(response, "name") == [
        "A pipeline named 'hello-pipeline' already exists in the namespace team-a."]
    assert Pipeline.objects.count() == 1 and PipelineVersion.objects.count() == 1


def test_it_asks_for_what_is_missing(login, member, profile):
    response = login(member).post(URL, {"target": "version", "origin": "file"})
    assert errors(response, "pipeline") == ["Choose the pipeline this is a new version of."]
    assert errors(response, "package") == ["Choose a pipeline file."]
    response = login(member).post(URL, {"target": "new", "origin": "url", "url": ""})
    assert errors(response, "url") == ["Give the URL of a pipeline package."]
    assert nothing_stored()


def test_it_adds_a_new_version(login, member, stored, hello_package):
    pipeline = stored.pipeline
    client = login(member)
    form = client.get(f"{URL}?pipeline={pipeline.pk}")
    assert form.context["form"].initial == {"target": "version", "pipeline": pipeline.pk}
    response = client.post(URL, {"target": "version", "pipeline": pipeline.pk, "origin": "file",
                                 "name": "v2", "description": "faster",
                                 "package": package_file(hello_package)})
    version = pipeline.versions.get(name="v2")
    assert response["Location"].endswith(f"?version={version.pk}")
    pipeline.refresh_from_db()
    assert pipeline.default_version == version and version.description == "faster"
    # Without a name, the spec's name; once that is taken, the spec's name and the time.
    client.post(URL, {"target": "version", "pipeline": pipeline.pk, "origin": "file",
                      "package": package_file(hello_package)})
    assert pipeline.versions.filter(name__startswith="hello-pipeline (").count() == 1
    response = client.post(URL, {"target": "version", "pipeline": pipeline.pk,
                                 "origin": "file", "name": "v2",
                                 "package": package_file(hello_package)})
    assert errors(response, "name") == [
        "The pipeline hello-pipeline already has a version named 'v2'."]
    assert pipeline.versions.count() == 3


def test_it_offers_only_this_namespaces_pipelines_for_a_version(login, member, profile,
                                                                cluster_admin, stored,
                                                                hello_package):
    from pipelines.specs import load

    shared = Pipeline.upload(None, "everyones", load(hello_package), cluster_admin).pipeline
    response = login(member).post(URL, {"target": "version", "pipeline": shared.pk,
                                        "origin": "file",
                                        "package": package_file(hello_package)})
    assert "Select a valid choice" in errors(response, "pipeline")[0]
    assert shared.versions.count() == 1
    assert login(member).get(f"{URL}?pipeline={shared.pk}").status_code == 403


def test_only_cluster_admins_upload_shared_pipelines(login, member, cluster_admin, profile,
                                                     hello_package):
    page = login(member).get(URL).content.decode()
    assert 'name="shared"' not in page
    login(member).post(URL, {"target": "new", "origin": "file", "shared": "on",
                             "package": package_file(hello_package)})
    assert Pipeline.objects.get().profile == profile  # the field is ignored
    Pipeline.objects.all().delete()
    assert 'name="shared"' in login(cluster_admin).get(URL).content.decode()
    login(cluster_admin).post(URL, {"target": "new", "origin": "file", "shared": "on",
                                    "package": package_file(hello_package)})
    assert Pipeline.objects.get().is_shared


def test_it_refuses_viewers_and_strangers(login, viewer, stranger, profile, hello_package):
    data = {"target": "new", "origin": "file", "package": package_file(hello_package)}
    assert login(viewer).get(URL).status_code == 403
    assert login(viewer).post(URL, data).status_code == 403
    assert login(stranger).get(URL).status_code == 404
    assert login(stranger).post(URL, data).status_code == 404
    assert nothing_stored()
