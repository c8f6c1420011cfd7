"""The new-notebook form: every field checked, read-only fields enforced."""

import dataclasses

import pytest
import yaml

from notebooks.config import DEFAULT_PATH, SpawnerConfig
from notebooks.forms import NotebookForm
from notebooks.models import Volume


def config(**changes) -> SpawnerConfig:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    for key, value in changes.items():
        data["spawnerFormDefaults"][key].update(value)
    return SpawnerConfig(data, "test")


def form(profile, cfg=None, **data):
    base = {"name": "nb", "server_type": "jupyter", "cpu": "0.5", "memory": "1Gi",
            "gpu_count": "0", "workspace_mode": "new", "shm": "on",
            "vol-TOTAL_FORMS": "2", "vol-INITIAL_FORMS": "0"}
    base.update(data)
    return NotebookForm(base, profile=profile, config=cfg or config())


def test_it_accepts_the_defaults_and_fills_limits_and_workspace(profile):
    f = form(profile)
    assert f.is_valid(), (f.errors, [r.errors for r in f.volumes])
    data = f.cleaned_data
    assert data["image"] == "kubeflownotebookswg/jupyter-scipy:v1.9.2"
    assert data["cpu_limit"] == "0.6"
    assert data["memory_limit"] == "1228Mi"
    assert data["workspace_name"] == "nb-workspace" and data["workspace_size"] == "5Gi"
    assert data["data_volumes"] == []


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "Bad_Name", "lower-case"),
    ("cpu", "lots", "not a CPU quantity"),
    ("cpu", "0", "more than zero"),
    ("cpu", "0.0001", "thousandths"),
    ("memory", "1GB", "not a memory quantity"),
    ("memory", "12", "below 1Mi"),
    ("cpu_limit", "0.1", "below the request"),
    ("memory_limit", "512Mi", "below the request"),
    ("image", "evil/miner:latest", "offered JupyterLab images"),
    ("gpu_vendor", "", "GPU vendor"),
    ("workspace_size", "big", "storage quantity"),
    ("workspace_existing", "nope", "volumes"),
])
def test_it_puts_each_error_next_to_its_field(profile, field, value, message):
    data = {field: value}
    if field == "gpu_vendor":
        data["gpu_count"] = "1"
    if field == "workspace_existing":
        data["workspace_mode"] = "existing"
    f = form(profile, **data)
    assert not f.is_valid()
    assert message in " ".join(f.errors.get(field, [])), f.errors


def test_it_refuses_custom_images_in_local_mode(profile):
    f = form(profile, custom_image="registry.example/team/image:1")
    assert not f.is_valid()
    assert "local mode" in f.errors["custom_image"][0]


def test_it_accepts_custom_images_in_kubernetes_mode(profile, settings):
    settings.KFDASH_PLATFORM = "kubernetes"
    f = form(profile, custom_image="registry.example/team/image:1")
    assert f.is_valid(), f.errors
    assert f.cleaned_data["image"] == "registry.example/team/image:1"
    assert "not an image reference" in form(profile, custom_image="bad image!").errors[
        "custom_image"][0]
    strict = config()
    strict.allow_custom_image = False
    f = form(profile, strict, custom_image="registry.example/team/image:1")
    assert "does not allow" in f.errors["custom_image"][0]


def test_it_rejects_changes_to_read_only_fields(profile):
    cfg = config(cpu={"readOnly": True}, image={"readOnly": True}, shm={"readOnly": True})
    f = form(profile, cfg, cpu="4", image="kubeflownotebookswg/jupyter-pytorch-full:v1.9.2",
             shm="")
    assert not f.is_valid()
    for field in ("cpu", "image", "shm"):
        assert "administrator" in f.errors[field][0], field
    f = form(profile, cfg)  # the defaults pass
    assert f.is_valid(), f.errors


# --- server types: what this platform and the admin's config offer -------------------------

CODE_SERVER_IMAGE = "kubeflownotebookswg/codeserver-python:v1.9.2"
RSTUDIO_IMAGE = "kubeflownotebookswg/rstudio-tidyverse:v1.9.2"


@pytest.fixture
def bare_host(settings, monkeypatch, tmp_path):
    """A host with neither code-server nor rserver (an empty PATH, no settings)."""
    from notebooks.spawners import programs

    settings.KFDASH_CODE_SERVER = ""
    settings.KFDASH_RSERVER = ""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for key, program in programs.PROGRAMS.items():
        monkeypatch.setitem(programs.PROGRAMS, key, dataclasses.replace(program, places=()))
    return empty


def fake_program(folder, name: str, help_text: str = "") -> str:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{help_text}'\n")
    path.chmod(0o755)
    return str(path)


def test_it_shows_server_types_this_host_cannot_run_and_refuses_them(profile, bare_host):
    html = str(NotebookForm(profile=profile, config=config())["server_type"])
    assert '<option value="jupyter" selected>JupyterLab</option>' in html
    assert '<option value="group-one" disabled>VS Code (not available: no code-server ' \
        "found on this host; install it or set KFDASH_CODE_SERVER)</option>" in html
    assert "RStudio (not available: no rserver found" in html
    f = form(profile, server_type="group-one", image=CODE_SERVER_IMAGE)
    assert [t["type"] for t in f.unavailable_types()] == ["group-one", "group-two"]
    assert [g["type"] for g in f.image_groups()] == ["jupyter"]
    assert not f.is_valid()
    assert f.errors["server_type"] == [
        "VS Code is not available: no code-server found on this host; install it or set "
        "KFDASH_CODE_SERVER"]
    f = form(profile, server_type="group-two", image=RSTUDIO_IMAGE)
    assert not f.is_valid()
    assert "RStudio is not available: no rserver found" in f.errors["server_type"][0]


def test_it_offers_vscode_where_code_server_is_found(profile, bare_host, settings, tmp_path):
    fake_program(bare_host, "code-server")  # on PATH
    f = form(profile, server_type="group-one", image=CODE_SERVER_IMAGE)
    assert f.is_valid(), f.errors
    assert f.cleaned_data["server_type"] == "group-one"
    assert f.cleaned_data["image"] == CODE_SERVER_IMAGE
    assert [g["type"] for g in f.image_groups()] == ["jupyter", "group-one"]
    # The setting wins over PATH, and a wrong one says so.
    settings.KFDASH_CODE_SERVER = str(tmp_path / "nowhere" / "code-server")
    f = form(profile, server_type="group-one", image=CODE_SERVER_IMAGE)
    assert not f.is_valid()
    assert "KFDASH_CODE_SERVER names" in f.errors["server_type"][0]
    assert "not an executable file" in f.errors["server_type"][0]


def test_it_offers_rstudio_where_rserver_can_listen_on_a_socket(profile, bare_host, tmp_path):
    fake_program(bare_host, "rserver", "  --www-port arg\n  --www-socket arg")
    f = form(profile, server_type="group-two", image=RSTUDIO_IMAGE)
    assert f.is_valid(), f.errors
    old = tmp_path / "old"
    old.mkdir()
    fake_program(old, "rserver", "  --www-port arg")
    from django.conf import settings

    settings.KFDASH_RSERVER = str(old / "rserver")
    f = form(profile, server_type="group-two", image=RSTUDIO_IMAGE)
    assert not f.is_valid()
    assert "too old" in f.errors["server_type"][0]


def test_it_offers_every_type_with_images_in_kubernetes_mode(profile, settings, bare_host):
    settings.KFDASH_PLATFORM = "kubernetes"
    f = form(profile, server_type="group-one", image=CODE_SERVER_IMAGE)
    assert f.is_valid(), f.errors
    assert f.unavailable_types() == []
    f = form(profile, server_type="group-two", image=RSTUDIO_IMAGE)
    assert f.is_valid(), f.errors
    # Images belong to their type.
    f = form(profile, server_type="group-two", image=CODE_SERVER_IMAGE)
    assert f.errors["image"] == ["Choose one of the offered RStudio images."]


def test_it_offers_no_type_the_admin_gave_no_images(profile, settings):
    settings.KFDASH_PLATFORM = "kubernetes"
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    del data["spawnerFormDefaults"]["imageGroupTwo"]  # as in configs before Kubeflow 1.3
    f = form(profile, SpawnerConfig(data, "test"), server_type="group-two",
             image=RSTUDIO_IMAGE)
    assert not f.is_valid()
    assert f.errors["server_type"] == [
        "RStudio is not available: your administrator offers no RStudio images "
        "(spawner config)"]


def test_it_offers_only_the_default_image_of_a_read_only_group(profile, settings):
    settings.KFDASH_PLATFORM = "kubernetes"
    cfg = config(imageGroupOne={"readOnly": True, "options": [CODE_SERVER_IMAGE, "other:1"]})
    f = form(profile, cfg, server_type="group-one", image="other:1")
    assert f.errors["image"] == ["This value is set by your administrator."]
    assert [g["images"] for g in f.image_groups() if g["type"] == "group-one"] == [
        [CODE_SERVER_IMAGE]]


def test_it_refuses_a_taken_name_and_volume(profile, owner):
    from notebooks.models import Notebook

    Notebook.objects.create(profile=profile, name="nb", image="x")
    Volume.objects.create(profile=profile, name="mine-workspace")
    f = form(profile, workspace_name="mine-workspace")
    assert not f.is_valid()
    assert "already exists" in f.errors["name"][0]
    assert "exists" in f.errors["workspace_name"][0]


def test_it_checks_data_volumes(profile):
    Volume.objects.create(profile=profile, name="datasets")
    f = form(profile, **{
        "vol-0-mode": "existing", "vol-0-existing": "datasets",
        "vol-0-mount_path": "/home/jovyan/data",
        "vol-1-mode": "new", "vol-1-name": "scratch", "vol-1-size": "1Gi",
        "vol-1-mount_path": "/home/jovyan/data"})
    assert not f.is_valid()
    assert "share a mount path" in f.volumes[1].errors["mount_path"][0]
    f = form(profile, **{"vol-0-mode": "new", "vol-0-name": "x", "vol-0-size": "1Gi",
                         "vol-0-mount_path": "../../etc"})
    assert not f.is_valid()
    assert "plain path" in f.volumes[0].errors["mount_path"][0]
    f = form(profile, **{
        "vol-0-mode": "existing", "vol-0-existing": "datasets",
        "vol-0-mount_path": "/home/jovyan/data",
        "vol-1-mode": "new", "vol-1-name": "scratch", "vol-1-size": "1Gi",
        "vol-1-mount_path": "scratch"})
    assert f.is_valid(), [r.errors for r in f.volumes]
    assert [r["mount_path"] for r in f.cleaned_data["data_volumes"]] == [
        "/home/jovyan/data", "scratch"]


def test_it_keeps_local_mounts_inside_the_workspace(profile):
    f = form(profile, **{"vol-0-mode": "new", "vol-0-name": "x", "vol-0-size": "1Gi",
                         "vol-0-mount_path": "/data"})
    assert not f.is_valid()
    assert "outside the workspace" in f.volumes[0].errors["mount_path"][0]
