"""Forms of the pipeline and experiment pages.

The upload form only checks what was asked and loads the package (``pipelines.uploads``
reads and parses it, whatever the format); storing it is the model's job, and the
model's ``ValidationError`` (a taken name) is put back on the name field by the view.
"""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.utils import timezone

from pipelines.models import DESCRIPTION_MAX, NAME_MAX, Pipeline
from pipelines.specs import LoadedPipeline, SpecError
from pipelines.uploads import fetch_package, read_upload

NEW, VERSION = "new", "version"
FILE, URL = "file", "url"


class UploadForm(forms.Form):
    target = forms.ChoiceField(
        label="Upload as", widget=forms.RadioSelect, initial=NEW,
        choices=[(NEW, "A new pipeline"), (VERSION, "A new version of an existing pipeline")])
    pipeline = forms.ModelChoiceField(
        label="Pipeline", queryset=Pipeline.objects.none(), required=False,
        empty_label="Choose a pipeline…")
    origin = forms.ChoiceField(
        label="Package from", widget=forms.RadioSelect, initial=FILE,
        choices=[(FILE, "A file"), (URL, "A URL")])
    package = forms.FileField(
        label="Pipeline file", required=False,
        help_text="KFP v2 IR (YAML or JSON), an Argo Workflow from the KFP v1 compiler, "
                  "or a .tar.gz/.tgz/.zip holding one such file.",
        widget=forms.ClearableFileInput(attrs={"accept": ".yaml,.yml,.json,.tar.gz,.tgz,.zip"}))
    url = forms.URLField(label="Package URL", required=False, assume_scheme="https",
                         help_text="An http(s) URL kfdash downloads the package from.")
    name = forms.CharField(
        label="Name", required=False, max_length=NAME_MAX,
        help_text="The new pipeline's name, or the new version's. Leave it empty to use "
                  "the name the pipeline file gives.")
    description = forms.CharField(label="Description", required=False,
                                  max_length=DESCRIPTION_MAX,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    shared = forms.BooleanField(
        label="Shared: visible in every namespace", required=False,
        help_text="Only cluster admins upload shared pipelines.")

    def __init__(self, *args, profile, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        # New versions go to the namespace's pipelines, and to the shared ones for admins.
        mine = Q(profile=profile) | Q(profile__isnull=True) if user.is_cluster_admin \
            else Q(profile=profile)
        self.fields["pipeline"].queryset = Pipeline.objects.filter(mine).order_by("name")
        self.fields["pipeline"].label_from_instance = (
            lambda p: f"{p.name} (shared)" if p.is_shared else p.name)
        if not user.is_cluster_admin:
            del self.fields["shared"]
        self.loaded: LoadedPipeline | None = None

    def clean(self):
        data = super().clean()
        if data.get("target") == VERSION and not data.get("pipeline") \
                and "pipeline" not in self.errors:
            self.add_error("pipeline", "Choose the pipeline this is a new version of.")
        if data.get("origin") == URL:
            if not data.get("url") and "url" not in self.errors:
                self.add_error("url", "Give the URL of a pipeline package.")
            elif data.get("url"):
                self._load("url", fetch_package, data["url"])
        elif data.get("origin") == FILE:
            if not data.get("package"):
                if "package" not in self.errors:
                    self.add_error("package", "Choose a pipeline file.")
            else:
                self._load("package", read_upload, data["package"])
        return data

    def _load(self, field: str, how, what) -> None:
        try:
            self.loaded = how(what)
        except SpecError as exc:
            self.add_error(field, str(exc))

    def store(self, profile):
        """Save the upload through the model: a pipeline with its first version, or a new
        version. Raises the model's ``ValidationError`` (e.g. a name already taken)."""
        data, loaded = self.cleaned_data, self.loaded
        name = data["name"].strip()
        package_url = data["url"] if data["origin"] == URL else ""
        if data["target"] == VERSION:
            pipeline = data["pipeline"]
            return pipeline.add_version(loaded, self.user, name or self._version_name(pipeline),
                                        data["description"], package_url=package_url)
        owner = None if data.get("shared") else profile
        return Pipeline.upload(owner, name or loaded.spec.name, loaded, self.user,
                               description=data["description"] or loaded.spec.description,
                               package_url=package_url)

    def _version_name(self, pipeline: Pipeline) -> str:
        """The spec's name, unless a version has it already; then with the time, as
        KFP's upload dialog does."""
        name = self.loaded.spec.name or pipeline.name
        if pipeline.versions.filter(name=name).exists():
            name = f"{name} ({timezone.now():%Y-%m-%d %H:%M:%S})"
        return name


class ExperimentForm(forms.Form):
    name = forms.CharField(label="Name", max_length=NAME_MAX)
    description = forms.CharField(label="Description", required=False,
                                  max_length=DESCRIPTION_MAX,
                                  widget=forms.Textarea(attrs={"rows": 3}))
