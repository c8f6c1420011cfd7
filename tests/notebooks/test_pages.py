"""Notebook pages and actions, tried by owner, member, viewer and stranger."""

import pytest

from dashboard.models import Activity
from notebooks.models import Notebook, Volume

FORM = {"name": "nb", "server_type": "jupyter", "cpu": "0.5", "memory": "1Gi",
        "gpu_count": "0", "workspace_mode": "new", "shm": "on",
        "vol-TOTAL_FORMS": "2", "vol-INITIAL_FORMS": "0",
        "vol-0-mode": "new", "vol-0-name": "datasets", "vol-0-size": "2Gi",
        "vol-0-mount_path": "/home/jovyan/data"}


@pytest.fixture
def running(profile, owner, spawner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        from notebooks.config import spawner_config
        from notebooks.forms import NotebookForm

        form = NotebookForm(FORM, profile=profile)
        assert form.is_valid()
        notebook = Notebook.create(profile, owner, form.cleaned_data, spawner_config())
        notebook.request_start(owner)
    notebook.refresh_from_db()
    return notebook


def test_it_creates_and_starts_a_notebook_from_the_form(login, member, profile, spawner,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(member).post("/ns/team-a/notebooks/new/", FORM)
    assert response["Location"] == "/ns/team-a/notebooks/nb/"
    notebook = Notebook.objects.get(profile=profile, name="nb")
    assert notebook.status == "running"
    assert notebook.workspace.name == "nb-workspace" and notebook.workspace.size == "5Gi"
    assert [(m.volume.name, m.mount_path) for m in notebook.data_mounts.all()] == [
        ("datasets", "/home/jovyan/data")]
    assert notebook.cpu_limit == "0.6" and notebook.created_by == member
    assert spawner == [("start", "nb")]
    assert Activity.objects.filter(message="member@example.com created the notebook nb").exists()


def test_it_creates_nothing_when_any_part_is_wrong(login, member, profile, spawner):
    bad = {**FORM, "memory_limit": "1Mi", "vol-0-size": "lots"}
    page = login(member).post("/ns/team-a/notebooks/new/", bad)
    assert page.status_code == 200
    assert b"below the request" in page.content
    assert b"storage quantity" in page.content
    assert not Notebook.objects.exists() and not Volume.objects.exists()
    assert spawner == []


def test_it_shows_the_spawn_error(login, member, profile, spawner, monkeypatch,
                                  django_capture_on_commit_callbacks):
    from notebooks import spawners

    monkeypatch.setitem(spawners.SPAWNERS, "local", "tests.notebooks.doubles.FailingSpawner")
    with django_capture_on_commit_callbacks(execute=True):
        login(member).post("/ns/team-a/notebooks/new/", FORM)
    notebook = Notebook.objects.get(name="nb")
    assert notebook.status == "error"
    assert "no space left" in notebook.status_message
    page = login(member).get("/ns/team-a/notebooks/nb/")
    assert b"no space left" in page.content


def test_it_lists_notebooks_with_status_and_connect(login, viewer, running):
    page = login(viewer).get("/ns/team-a/notebooks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-notebook="nb"' in html and "Running" in html
    assert 'href="/notebook/team-a/nb/"' in html
    assert "New notebook" not in html  # viewers don't create


def test_it_shows_details_logs_and_events(login, member, running):
    page = login(member).get("/ns/team-a/notebooks/nb/").content.decode()
    assert "server says hello" in page and "Started" in page
    assert "nb-workspace" in page and "/home/jovyan/data" in page


def test_it_stops_starts_and_deletes(login, member, running, spawner,
                                     django_capture_on_commit_callbacks):
    client = login(member)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/ns/team-a/notebooks/nb/stop/")
    running.refresh_from_db()
    assert running.stopped and running.status == "stopped"
    assert running.status_message == "stopped by member@example.com"
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/ns/team-a/notebooks/nb/start/")
    running.refresh_from_db()
    assert not running.stopped and running.status == "running"
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/ns/team-a/notebooks/nb/delete/")
    assert not Notebook.objects.exists()
    assert set(Volume.objects.values_list("name", flat=True)) == {"nb-workspace", "datasets"}
    assert spawner[-1] == ("delete", "nb volumes=False")


def test_it_deletes_the_workspace_when_asked(login, member, running, spawner,
                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        login(member).post("/ns/team-a/notebooks/nb/delete/", {"delete_volumes": "1"})
    assert list(Volume.objects.values_list("name", flat=True)) == ["datasets"]


def test_it_refuses_viewers_changing_notebooks(login, viewer, running, spawner):
    client = login(viewer)
    for action in ("stop", "start", "delete"):
        assert client.post(f"/ns/team-a/notebooks/nb/{action}/").status_code == 403
    assert client.get("/ns/team-a/notebooks/new/").status_code == 403
    assert spawner == [("start", "nb")]


def test_it_hides_notebooks_from_strangers(login, stranger, running):
    client = login(stranger)
    assert client.get("/ns/team-a/notebooks/").status_code == 404
    assert client.get("/ns/team-a/notebooks/nb/").status_code == 404
    assert client.post("/ns/team-a/notebooks/nb/stop/").status_code == 404


def test_it_marks_servers_that_died_as_stopped(login, member, running, monkeypatch):
    from notebooks.spawners import Observed
    from tests.notebooks.doubles import InstantSpawner

    monkeypatch.setattr(InstantSpawner, "poll",
                        lambda self: Observed("stopped", "the server exited"))
    page = login(member).get("/ns/team-a/notebooks/")
    assert b"the server exited" in page.content
    running.refresh_from_db()
    assert running.status == "stopped"


def test_it_settles_notebooks_left_half_way_by_a_restart(profile, spawner, monkeypatch):
    from notebooks.spawners import Observed
    from notebooks.tasks import recover_after_restart
    from tests.notebooks.doubles import InstantSpawner

    Notebook.objects.create(profile=profile, name="alive", image="x", status="waiting")
    Notebook.objects.create(profile=profile, name="dead", image="x", status="waiting")
    Notebook.objects.create(profile=profile, name="stopping", image="x", status="terminating",
                            stopped=True)
    monkeypatch.setattr(InstantSpawner, "poll", lambda self: Observed(
        "running" if self.notebook.name == "alive" else "stopped"))
    assert sorted(recover_after_restart()) == ["team-a/alive", "team-a/dead", "team-a/stopping"]
    states = {n.name: (n.status, n.status_message) for n in Notebook.objects.all()}
    assert states["alive"] == ("running", "")
    assert states["dead"][0] == "error" and "restart" in states["dead"][1]
    assert states["stopping"][0] == "stopped"
    assert recover_after_restart() == []


def test_the_form_groups_images_by_type_and_says_which_types_are_unavailable(
        login, member, profile, settings, monkeypatch, tmp_path):
    settings.KFDASH_CODE_SERVER = settings.KFDASH_RSERVER = ""
    monkeypatch.setenv("PATH", str(tmp_path))
    code_server = tmp_path / "code-server"
    code_server.write_text("#!/bin/sh\n")
    code_server.chmod(0o755)
    page = login(member).get("/ns/team-a/notebooks/new/").content.decode()
    assert '<optgroup label="JupyterLab" data-server-type="jupyter">' in page
    assert '<optgroup label="VS Code" data-server-type="group-one">' in page
    assert 'data-server-type="group-two"' not in page  # no rserver here
    assert "RStudio is not available: no rserver found on this host" in page
    assert '<option value="group-two" disabled>' in page
