"""The "New notebook" form: every field checked against the admin's spawner config.

Everything is validated before anything is created (volumes, rows, processes),
and each error is attached to the field it is about.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from dashboard.models import DNS1123_LABEL
from notebooks.choices import ServerType
from notebooks.config import SpawnerConfig, spawner_config
from notebooks.models import Notebook, Volume

PULL_POLICIES = [("IfNotPresent", "IfNotPresent"), ("Always", "Always"), ("Never", "Never")]
WORKSPACE_MODES = [("new", "New volume"), ("existing", "Existing volume"), ("none", "None")]
READ_ONLY = "This value is set by your administrator."
NO_IMAGES = "your administrator offers no {label} images (spawner config)"


def parse_quantity(text: str) -> Decimal:
    # Imported on first use: importing kubernetes.utils loads the whole client.
    from kubernetes.utils.quantity import parse_quantity as parse

    return parse(text)


def quantity(value: str, what: str, *, cpu: bool = False) -> Decimal:
    """A Kubernetes resource quantity, refused when the cluster would refuse it."""
    text = (value or "").strip()
    try:
        amount = parse_quantity(text)
    except (ValueError, InvalidOperation, TypeError):
        raise ValidationError(
            f"'{text}' is not a {what} quantity Kubernetes accepts "
            f"(e.g. {'0.5 or 500m' if cpu else '1Gi or 512Mi'})."
        ) from None
    if amount <= 0:
        raise ValidationError(f"The {what} must be more than zero.")
    if cpu and amount < Decimal("0.001"):
        raise ValidationError("CPU is counted in thousandths at the finest (1m).")
    if not cpu and amount < 1024 * 1024:
        raise ValidationError("Memory below 1Mi cannot run a server.")
    return amount


def limit_from_factor(request: str, factor: str, *, cpu: bool) -> str:
    """The limit implied by the admin's limitFactor ('' when the factor is 'none')."""
    if factor in ("", "none", "None"):
        return ""
    value = parse_quantity(request) * Decimal(factor)
    if cpu:
        return f"{value.quantize(Decimal('0.001')).normalize():f}"
    return f"{int(value / (1024 * 1024))}Mi"


class DataVolumeForm(forms.Form):
    # No initial values: an untouched extra row must count as unchanged (and empty).
    mode = forms.ChoiceField(choices=[("new", "New"), ("existing", "Existing")], required=False,
                             label="Data volume")
    name = forms.CharField(max_length=63, required=False, label="New volume name")
    size = forms.CharField(max_length=20, required=False, label="New volume size",
                           widget=forms.TextInput(attrs={"placeholder": "5Gi"}))
    existing = forms.CharField(max_length=63, required=False, label="Existing volume name")
    mount_path = forms.CharField(max_length=255, required=False, label="Mount path",
                                 widget=forms.TextInput(attrs={"placeholder": "/home/jovyan/data"}))

    def __init__(self, *args, volume_names: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["existing"].widget = forms.Select(
            choices=[("", "(choose)"), *[(name, name) for name in volume_names]])

    def clean(self):
        data = super().clean()
        if not (data.get("name") or data.get("existing") or data.get("mount_path")):
            return data  # an empty row
        path = (data.get("mount_path") or "").strip()
        if not path:
            self.add_error("mount_path", "Where should the volume appear?")
        elif not re.fullmatch(r"/?[A-Za-z0-9._/-]+", path) or ".." in path.split("/"):
            self.add_error("mount_path", "Use a plain path such as /home/jovyan/data.")
        data["mode"] = data.get("mode") or "new"
        if data["mode"] == "new":
            name = (data.get("name") or "").strip()
            if not DNS1123_LABEL.match(name) or len(name) > 63:
                self.add_error("name", "Use lower-case letters, digits and '-'.")
            try:
                quantity(data.get("size") or "", "storage")
            except ValidationError as exc:
                self.add_error("size", exc)
        elif not data.get("existing"):
            self.add_error("existing", "Choose a volume.")
        return data

    @property
    def is_empty_row(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return not (data.get("name") or data.get("existing") or data.get("mount_path"))


DataVolumeFormSet = forms.formset_factory(DataVolumeForm, extra=2, max_num=10, validate_max=True)


class TypeSelect(forms.Select):
    """A select whose unavailable options are shown, disabled, with the reason."""

    def __init__(self, *args, unavailable: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.unavailable = unavailable or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        reason = self.unavailable.get(str(value))
        if reason:
            option["label"] = f"{label} (not available: {reason})"
            option["attrs"]["disabled"] = True
        return option


def server_type_reasons(config: SpawnerConfig) -> dict[str, str]:
    """Each server type: "" when it is offered here, else why not. The platform's
    spawner says what it can run; the admin's config, which images it offers."""
    from notebooks.spawners import spawner_class

    reasons = spawner_class().server_types()
    for server_type in ServerType:
        if not reasons.get(server_type.value) and not config.image_presets(server_type.value):
            reasons[server_type.value] = NO_IMAGES.format(label=server_type.label)
    return {t.value: reasons.get(t.value, "") for t in ServerType}


class NotebookForm(forms.Form):
    name = forms.CharField(max_length=52)
    server_type = forms.ChoiceField(choices=ServerType.choices, initial=ServerType.JUPYTER)
    image = forms.CharField(max_length=500, required=False)
    custom_image = forms.CharField(max_length=500, required=False,
                                   help_text="Instead of a preset: e.g. registry/team/image:tag")
    image_pull_policy = forms.ChoiceField(choices=PULL_POLICIES, required=False)
    cpu = forms.CharField(max_length=20, label="CPU")
    cpu_limit = forms.CharField(max_length=20, required=False, label="CPU limit")
    memory = forms.CharField(max_length=20)
    memory_limit = forms.CharField(max_length=20, required=False)
    gpu_count = forms.IntegerField(min_value=0, max_value=16, initial=0, label="GPUs")
    gpu_vendor = forms.CharField(max_length=100, required=False, label="GPU vendor")
    workspace_mode = forms.ChoiceField(choices=WORKSPACE_MODES, initial="new", label="Workspace")
    workspace_name = forms.CharField(max_length=63, required=False, label="Workspace name",
                                     help_text="Default: <name>-workspace")
    workspace_size = forms.CharField(max_length=20, required=False, label="Workspace size")
    workspace_existing = forms.CharField(max_length=63, required=False)
    configurations = forms.MultipleChoiceField(required=False,
                                               widget=forms.CheckboxSelectMultiple)
    shm = forms.BooleanField(required=False, label="Enable shared memory (/dev/shm)")
    affinity = forms.CharField(required=False)
    tolerations = forms.CharField(required=False)

    def __init__(self, *args, profile, config: SpawnerConfig | None = None, **kwargs):
        self.profile = profile
        self.config = config or spawner_config()
        self.local = settings.KFDASH_PLATFORM == "local"
        kwargs.setdefault("initial", self.defaults())
        super().__init__(*args, **kwargs)
        self.fields["configurations"].choices = [
            (c["name"], c.get("description") or c["name"]) for c in self.config[
                "configurations"].options]
        self.type_reasons = server_type_reasons(self.config)
        self.fields["server_type"].widget = TypeSelect(
            choices=ServerType.choices,
            unavailable={k: v for k, v in self.type_reasons.items() if v})
        prefix = kwargs.get("prefix")
        self.volumes = DataVolumeFormSet(
            args[0] if args else kwargs.get("data"), prefix=f"{prefix}-vol" if prefix else "vol",
            form_kwargs={"volume_names": list(profile.volumes.values_list("name", flat=True))})

    def defaults(self) -> dict:
        c = self.config
        gpus = c["gpus"].value or {}
        num = str(gpus.get("num", "none"))
        return {
            "server_type": ServerType.JUPYTER, "image": c["image"].value,
            "image_pull_policy": c["image_pull_policy"].value, "cpu": str(c["cpu"].value),
            "memory": str(c["memory"].value), "gpu_count": 0 if num == "none" else int(num),
            "gpu_vendor": gpus.get("vendor", ""), "workspace_mode": "new",
            "workspace_size": c.workspace_size(), "configurations": c["configurations"].value,
            "shm": bool(c["shm"].value), "affinity": c["affinity"].value or "",
            "tolerations": c["tolerations"].value or "",
        }

    def is_valid(self) -> bool:
        valid = super().is_valid()
        return self.volumes.is_valid() and valid  # validate both, report every error

    # --- one field at a time ---------------------------------------------------------

    def _fixed(self, name: str, config_name: str, value):
        """Refuse a change to a field the admin made read-only."""
        field = self.config[config_name]
        default = self.defaults()[name]
        if field.read_only and value not in (None, "", []) and value != default:
            raise ValidationError(READ_ONLY)
        return default if field.read_only else value

    def image_groups(self) -> list[dict]:
        """The image presets of each offered server type (the page's image select)."""
        return [{"type": t.value, "label": t.label,
                 "images": self.config.image_presets(t.value)}
                for t in ServerType if not self.type_reasons[t.value]]

    def unavailable_types(self) -> list[dict]:
        """The server types not offered here, and why (shown next to the choice)."""
        return [{"type": t.value, "label": t.label, "reason": self.type_reasons[t.value]}
                for t in ServerType if self.type_reasons[t.value]]

    def clean_server_type(self) -> str:
        value = self.cleaned_data["server_type"]
        if self.type_reasons.get(value):
            raise ValidationError(f"{ServerType(value).label} is not available: "
                                  f"{self.type_reasons[value]}")
        return value

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not DNS1123_LABEL.match(name):
            raise ValidationError("Use lower-case letters, digits and '-', starting with a "
                                  "letter or digit.")
        if Notebook.objects.filter(profile=self.profile, name=name).exists():
            raise ValidationError(f"A notebook named '{name}' already exists here.")
        return name

    def clean_image_pull_policy(self) -> str:
        value = self.cleaned_data.get("image_pull_policy") or self.defaults()["image_pull_policy"]
        return self._fixed("image_pull_policy", "image_pull_policy", value)

    def clean_cpu(self) -> str:
        value = self._fixed("cpu", "cpu", self.cleaned_data["cpu"].strip())
        quantity(value, "CPU", cpu=True)
        return value

    def clean_memory(self) -> str:
        value = self._fixed("memory", "memory", self.cleaned_data["memory"].strip())
        quantity(value, "memory")
        return value

    def clean_gpu_count(self) -> int:
        return self._fixed("gpu_count", "gpus", self.cleaned_data["gpu_count"])

    def clean_shm(self) -> bool:
        field = self.config["shm"]
        value = self.cleaned_data["shm"]
        if field.read_only and value != bool(field.value):
            raise ValidationError(READ_ONLY)
        return value

    def clean_configurations(self) -> list[str]:
        return self._fixed("configurations", "configurations", self.cleaned_data["configurations"])

    def clean_affinity(self) -> str:
        return self._preset("affinity")

    def clean_tolerations(self) -> str:
        return self._preset("tolerations")

    def _preset(self, name: str) -> str:
        value = self._fixed(name, name, self.cleaned_data.get(name, ""))
        if not value:
            return ""
        if self.local:
            raise ValidationError("Affinity and toleration presets apply in kubernetes mode only.")
        keys = {o.get("configKey") for o in self.config[name].options}
        if value not in keys:
            raise ValidationError(f"'{value}' is not one of the presets.")
        return value

    # --- across fields -------------------------------------------------------------------

    def clean(self):
        data = super().clean()
        self._clean_image(data)
        self._clean_limits(data, "cpu", cpu=True)
        self._clean_limits(data, "memory", cpu=False)
        self._clean_gpus(data)
        self._clean_workspace(data)
        return data

    def _clean_image(self, data) -> None:
        server_type = data.get("server_type")
        if not server_type:
            return
        field = self.config.images_for(server_type)
        custom = (data.get("custom_image") or "").strip()
        if custom:
            if self.local:
                self.add_error("custom_image", "Custom images need kubernetes mode: in local mode "
                               "servers run on this host's Python environment.")
            elif not self.config.allow_custom_image or field.read_only:
                self.add_error("custom_image", "Your administrator does not allow custom images.")
            elif not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._/:@-]*", custom):
                self.add_error("custom_image", "That is not an image reference.")
            data["image"] = custom
            return
        image = data.get("image") or field.value
        if not image or image not in [field.value, *field.options]:
            label = ServerType(server_type).label
            self.add_error("image", f"Choose one of the offered {label} images.")
        elif field.read_only and image != field.value:
            self.add_error("image", READ_ONLY)
        data["image"] = image

    def _clean_limits(self, data, name: str, *, cpu: bool) -> None:
        request = data.get(name)
        limit = (data.get(f"{name}_limit") or "").strip()
        if not request:
            return
        if not limit:
            data[f"{name}_limit"] = limit_from_factor(request, self.config.limit_factor(name),
                                                      cpu=cpu)
            return
        what = "CPU" if cpu else "memory"
        try:
            if quantity(limit, what, cpu=cpu) < parse_quantity(request):
                self.add_error(f"{name}_limit", f"The {what} limit is below the request "
                                                f"({request}).")
        except ValidationError as exc:
            self.add_error(f"{name}_limit", exc)
        data[f"{name}_limit"] = limit

    def _clean_gpus(self, data) -> None:
        if not data.get("gpu_count"):
            data["gpu_vendor"] = ""
            return
        vendors = {v.get("limitsKey") for v in self.config.gpu_vendors()}
        if data.get("gpu_vendor") not in vendors:
            self.add_error("gpu_vendor", "Choose the GPU vendor.")

    def _clean_workspace(self, data) -> None:
        mode = self._fixed_workspace(data.get("workspace_mode"))
        data["workspace_mode"] = mode
        if mode == "new":
            name = (data.get("workspace_name") or "").strip() or (
                self.config.workspace_name(data["name"]) if data.get("name") else "")
            data["workspace_name"] = name
            if name and (not DNS1123_LABEL.match(name) or len(name) > 63):
                self.add_error("workspace_name", "Use lower-case letters, digits and '-'.")
            elif name and Volume.objects.filter(profile=self.profile, name=name).exists():
                self.add_error("workspace_name", f"A volume named '{name}' exists; choose "
                                                 "'Existing volume' to use it.")
            size = data.get("workspace_size") or self.config.workspace_size()
            data["workspace_size"] = size
            try:
                quantity(size, "storage")
            except ValidationError as exc:
                self.add_error("workspace_size", exc)
        elif mode == "existing":
            volume = Volume.objects.filter(profile=self.profile,
                                           name=data.get("workspace_existing") or "").first()
            if volume is None:
                self.add_error("workspace_existing", "Choose one of this namespace's volumes.")
            elif volume.workspace_of.exists():
                self.add_error("workspace_existing", f"'{volume.name}' is already the workspace "
                                                     "of another notebook.")
            data["workspace_volume"] = volume

    def _fixed_workspace(self, mode: str | None) -> str:
        field = self.config["workspace"]
        if field.read_only and mode not in (None, "", "new"):
            self.add_error("workspace_mode", READ_ONLY)
            return "new"
        return mode or "new"

    def clean_data_volumes(self) -> list[dict]:
        """Cross-row checks of the data volumes; errors are added to the rows."""
        rows, paths, names = [], set(), set()
        workspace = self.cleaned_data.get("workspace_name")
        for row_form in self.volumes:
            if row_form.is_empty_row or not hasattr(row_form, "cleaned_data"):
                continue
            row = row_form.cleaned_data
            path = row.get("mount_path", "")
            if self.local and path:
                self._check_local_mount(row_form, path)
            if path in paths:
                row_form.add_error("mount_path", "Two volumes cannot share a mount path.")
            paths.add(path)
            if row.get("mode") == "new":
                name = row.get("name")
                if name in names or name == workspace or Volume.objects.filter(
                        profile=self.profile, name=name).exists():
                    row_form.add_error("name", f"A volume named '{name}' already exists.")
                names.add(name)
            else:
                volume = Volume.objects.filter(profile=self.profile,
                                               name=row.get("existing")).first()
                if volume is None:
                    row_form.add_error("existing", "Choose one of this namespace's volumes.")
                row["volume"] = volume
            rows.append(row)
        return rows

    @staticmethod
    def _check_local_mount(row_form, path: str) -> None:
        """A local server sees only its workspace: the spawner's own rule decides."""
        from notebooks.spawners import SpawnError
        from notebooks.spawners.local import LocalProcessSpawner

        spawner = LocalProcessSpawner
        try:
            spawner.mount_location(path, spawner.workspace_mount())
        except SpawnError as exc:
            row_form.add_error("mount_path", str(exc))

    def full_clean(self):
        super().full_clean()
        if self.is_bound and self.volumes.is_bound and self.volumes.is_valid():
            self.cleaned_data["data_volumes"] = self.clean_data_volumes()
            if any(f.errors for f in self.volumes):
                self.add_error(None, "Check the data volumes below.")
