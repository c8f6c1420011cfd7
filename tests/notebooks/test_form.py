"""The new-notebook form: every field checked, read-only fields enforced."""

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
    ("image", "evil/miner:latest", "offered images"),
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


def test_it_offers_only_jupyter_in_local_mode(profile):
    f = form(profile, server_type="group-one")
    assert not f.is_valid() and "server_type" in f.errors


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
