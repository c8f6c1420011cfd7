"""The administrator's spawner configuration (Kubeflow's ``spawner_ui_config.yaml``).

Read once per process from ``KFDASH_SPAWNER_CONFIG`` (else the copy shipped in
this folder) and checked at load, so a broken file is reported clearly instead
of breaking the form later.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_PATH = Path(__file__).with_name("spawner_ui_config.yaml")

# Form field -> key in spawnerFormDefaults.
FIELDS = {
    "image": "image", "image_group_one": "imageGroupOne", "image_group_two": "imageGroupTwo",
    "image_pull_policy": "imagePullPolicy", "cpu": "cpu", "memory": "memory", "gpus": "gpus",
    "workspace": "workspaceVolume", "data_volumes": "dataVolumes",
    "configurations": "configurations", "shm": "shm", "affinity": "affinityConfig",
    "tolerations": "tolerationGroup",
}
# Fields a config may leave out: Kubeflow configs older than 1.3 have no image groups,
# and an admin removes a group to stop offering VS Code or RStudio.
OPTIONAL = frozenset({"image_group_one", "image_group_two"})


@dataclass(frozen=True)
class Field:
    value: Any
    read_only: bool
    options: list
    raw: dict


class SpawnerConfig:
    def __init__(self, data: dict, source: str) -> None:
        defaults = (data or {}).get("spawnerFormDefaults")
        if not isinstance(defaults, dict):
            raise ImproperlyConfigured(f"{source}: no 'spawnerFormDefaults' mapping.")
        self.source = source
        self.allow_custom_image = bool(defaults.get("allowCustomImage", True))
        self.fields: dict[str, Field] = {}
        for name, key in FIELDS.items():
            entry = defaults.get(key, {})
            if name in OPTIONAL and key not in defaults:
                entry = {"value": "", "options": []}
            if not isinstance(entry, dict) or "value" not in entry:
                raise ImproperlyConfigured(f"{source}: '{key}' needs a 'value'.")
            options = entry.get("options") or []
            if not isinstance(options, list):
                raise ImproperlyConfigured(f"{source}: '{key}.options' must be a list.")
            self.fields[name] = Field(entry["value"], bool(entry.get("readOnly", False)),
                                      options, entry)

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]

    def limit_factor(self, name: str) -> str:
        return str(self.fields[name].raw.get("limitFactor", "none"))

    def gpu_vendors(self) -> list[dict]:
        return list((self["gpus"].value or {}).get("vendors") or [])

    def configuration(self, name: str) -> dict | None:
        return next((c for c in self["configurations"].options if c.get("name") == name), None)

    def workspace_size(self) -> str:
        new = (self["workspace"].value or {}).get("newPvc") or {}
        return str(new.get("spec", {}).get("resources", {}).get("requests", {})
                   .get("storage", "5Gi"))

    def workspace_name(self, notebook_name: str) -> str:
        new = (self["workspace"].value or {}).get("newPvc") or {}
        pattern = str(new.get("metadata", {}).get("name", "{notebook-name}-workspace"))
        return pattern.replace("{notebook-name}", notebook_name)

    def images_for(self, server_type: str) -> Field:
        return self[{"jupyter": "image", "group-one": "image_group_one",
                     "group-two": "image_group_two"}[server_type]]

    def image_presets(self, server_type: str) -> list[str]:
        """The images offered for a server type, the default first; only the default
        when the admin made it read-only; none when the config has no such group."""
        field = self.images_for(server_type)
        presets = [str(field.value)] if field.value else []
        if not field.read_only:
            presets += [str(o) for o in field.options if o and str(o) not in presets]
        return presets


def load(path: str | Path) -> SpawnerConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ImproperlyConfigured(f"The spawner config {path} cannot be read: {exc}") from exc
    return SpawnerConfig(data, str(path))


@cache
def _cached(path: str) -> SpawnerConfig:
    return load(path)


def spawner_config() -> SpawnerConfig:
    return _cached(str(settings.KFDASH_SPAWNER_CONFIG or DEFAULT_PATH))
