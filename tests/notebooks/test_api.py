"""The notebooks API: same validation as the form, same access rules as the pages."""

from notebooks.models import Notebook, Volume


def test_it_creates_a_notebook_with_defaults(api, member, profile, spawner,
                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(member).post("/api/v1/namespaces/team-a/notebooks", {
            "name": "nb", "memory": "2Gi",
            "data_volumes": [{"name": "data", "size": "1Gi", "mount_path": "/home/jovyan/data"}],
        }, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"] == "/notebook/team-a/nb/" and body["memory_limit"] == "2457Mi"
    assert body["workspace"] == "nb-workspace"
    assert body["data_volumes"] == [{"volume": "data", "mount_path": "/home/jovyan/data"}]
    assert Notebook.objects.get(name="nb").status == "running"
    listed = api(member).get("/api/v1/namespaces/team-a/notebooks").json()
    assert [n["name"] for n in listed] == ["nb"]


def test_it_reports_every_error_by_field(api, member, profile, spawner):
    response = api(member).post("/api/v1/namespaces/team-a/notebooks", {
        "name": "Bad!", "cpu": "x", "data_volumes": [{"name": "ok", "size": "huge",
                                                      "mount_path": "/d"}]}, format="json")
    assert response.status_code == 400
    body = response.json()
    fields = {d["field"] for d in body["details"]}
    assert {"name", "cpu", "data_volumes[0].size"} <= fields, body
    assert not Notebook.objects.exists() and not Volume.objects.exists()


def test_it_stops_starts_and_deletes(api, member, profile, spawner,
                                     django_capture_on_commit_callbacks):
    client = api(member)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/namespaces/team-a/notebooks", {"name": "nb"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/namespaces/team-a/notebooks/nb/stop").status_code == 202
    assert Notebook.objects.get(name="nb").status == "stopped"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/namespaces/team-a/notebooks/nb/start").status_code == 202
    assert Notebook.objects.get(name="nb").status == "running"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(
            "/api/v1/namespaces/team-a/notebooks/nb?delete_volumes=true").status_code == 202
    assert not Notebook.objects.exists() and not Volume.objects.exists()


def test_it_refuses_viewers_and_hides_from_strangers(api, viewer, stranger, profile):
    Notebook.objects.create(profile=profile, name="nb", image="x")
    assert api(viewer).get("/api/v1/namespaces/team-a/notebooks/nb").status_code == 200
    assert api(viewer).post("/api/v1/namespaces/team-a/notebooks/nb/stop").status_code == 403
    assert api(viewer).post("/api/v1/namespaces/team-a/notebooks", {"name": "x"},
                            format="json").status_code == 403
    assert api(stranger).get("/api/v1/namespaces/team-a/notebooks").status_code == 404


def test_it_lists_and_deletes_volumes(api, member, profile):
    used = Volume.objects.create(profile=profile, name="used")
    Volume.objects.create(profile=profile, name="free")
    Notebook.objects.create(profile=profile, name="nb", image="x", workspace=used)
    client = api(member)
    listed = client.get("/api/v1/namespaces/team-a/volumes").json()
    assert {(v["name"], tuple(v["used_by"])) for v in listed} == {("used", ("nb",)),
                                                                    ("free", ())}
    refused = client.delete("/api/v1/namespaces/team-a/volumes/used")
    assert refused.status_code == 400 and "used by nb" in refused.json()["message"]
    assert client.delete("/api/v1/namespaces/team-a/volumes/free").status_code == 204
