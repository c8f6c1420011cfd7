"""Forms of the runs pages: "Create run", the runs list's filters and its bulk actions.

The create form shows one input per parameter of the chosen pipeline and checks the
values with ``pipelines.parameters.resolve`` (what the API uses too), so that every error
lands next to its input; ``Run.start`` then checks them again and creates the run.

The pipeline may be a stored version, an uploaded file or, for a clone whose version is
gone, the copy the run kept. Which parameters a form shows depends on that choice, so a
form remembers which pipeline its inputs were made for (``parameters_of``): a form posted
for another pipeline (the version select changed, a file was chosen) is shown again with
that pipeline's parameters to review instead of starting a run with values meant for
another one. A chosen file cannot be put back in a file input, so the form carries its
bytes in a hidden field (base64) to the next submission.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import operator
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.forms.utils import ErrorDict
from django.utils import timezone

from pipelines import parameters as run_parameters
from pipelines.choices import RunState
from pipelines.models import (
    DESCRIPTION_MAX,
    NAME_MAX,
    Experiment,
    Pipeline,
    PipelineVersion,
    Run,
    RunMetric,
    validate_display_name,
)
from pipelines.specs import LoadedPipeline, PipelineSpec, SpecError
from pipelines.specs.model import Parameter
from pipelines.uploads import read_upload

VERSION, FILE, CLONED = "version", "file", "run"
PARAMETER_PREFIX = "parameter-"
# What the form calls each parameter type next to its label.
TYPE_LABELS = {"STRING": "string", "NUMBER_INTEGER": "integer", "NUMBER_DOUBLE": "number",
               "BOOLEAN": "boolean", "LIST": "JSON list", "STRUCT": "JSON object"}
# Django refuses a POST whose fields (files aside) are bigger than this; a carried package
# must leave room for the rest of the form.
CARRY_MAX = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE * 0.9)


def parameter_key(name: str) -> str:
    return f"{PARAMETER_PREFIX}{name}"


def default_run_name(pipeline_name: str) -> str:
    """What a run is called unless the user says otherwise, as the KFP UI does."""
    return f"{pipeline_name} {timezone.localtime():%Y-%m-%d %H:%M:%S}"


class RunForm(forms.Form):
    source = forms.ChoiceField(
        label="Pipeline from", widget=forms.RadioSelect, initial=VERSION,
        choices=[(VERSION, "A pipeline version"), (FILE, "A pipeline file")])
    pipeline = forms.ModelChoiceField(label="Pipeline", queryset=Pipeline.objects.none(),
                                      required=False, empty_label="Choose a pipeline…")
    version = forms.ModelChoiceField(label="Version", queryset=PipelineVersion.objects.none(),
                                     required=False, empty_label=None)
    package = forms.FileField(
        label="Pipeline file", required=False,
        help_text="KFP v2 IR (YAML or JSON), an Argo Workflow from the KFP v1 compiler, "
                  "or a .tar.gz/.tgz/.zip holding one such file. Nothing is stored but the run.",
        widget=forms.ClearableFileInput(attrs={"accept": ".yaml,.yml,.json,.tar.gz,.tgz,.zip"}))
    package_data = forms.CharField(widget=forms.HiddenInput, required=False)
    parameters_of = forms.CharField(widget=forms.HiddenInput, required=False)
    name = forms.CharField(label="Run name", max_length=NAME_MAX, required=False,
                           help_text="Empty: the pipeline's name and the time.")
    description = forms.CharField(label="Description", required=False,
                                  max_length=DESCRIPTION_MAX,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    experiment = forms.ChoiceField(label="Experiment", required=False)
    caching = forms.BooleanField(
        label="Reuse cached results", required=False, initial=True,
        help_text="Steps whose component allows it reuse the outputs of an earlier step "
                  "with the same inputs. Off: every step runs again.")

    def __init__(self, data=None, files=None, *, profile, user, clone: Run | None = None,
                 initial: dict[str, Any] | None = None, refresh: bool = False) -> None:
        initial = dict(initial or {})
        self.profile, self.user, self.clone = profile, user, clone
        if clone is not None:
            initial = {**_clone_initial(clone), **initial}
        super().__init__(data, files, initial=initial)
        if self.is_bound:
            self.data = self.data.copy()  # the review below rewrites some values
        self.fields["pipeline"].queryset = Pipeline.objects.visible_in(profile).only(
            "id", "name", "profile_id", "default_version_id").order_by("name")
        self.fields["pipeline"].label_from_instance = (
            lambda p: f"{p.name} (shared)" if p.is_shared else p.name)
        self.fields["version"].label_from_instance = (
            lambda v: f"{v.name} ({timezone.localtime(v.created_at):%Y-%m-%d %H:%M})")
        self.fields["experiment"].choices = _experiment_choices(profile)
        if clone is not None and clone.pipeline_version_id is None:
            self.fields["source"].choices = [
                (CLONED, f"The pipeline as run in {clone.name}"),
                *self.fields["source"].choices]
            self.fields["source"].initial = CLONED
        self.chosen_version: PipelineVersion | None = None
        self.loaded: LoadedPipeline | None = None
        self.spec: PipelineSpec | None = None
        self.source_errors: dict[str, str] = {}
        self.fingerprint = self._read_source()
        if not self.is_bound:
            self.initial["parameters_of"] = self.fingerprint
            if not self.initial.get("name") and self.source_name:
                self.initial["name"] = self.default_name()
        self.parameter_names = self._add_parameter_fields()
        self.reviewing = self.is_bound and (
            refresh or self.data.get("parameters_of", "") != self.fingerprint)
        if self.reviewing:
            self._start_review()

    # --- which pipeline -------------------------------------------------------------------

    def _value(self, name: str) -> str:
        value = self[name].value()
        return "" if value is None else str(value)

    def _read_source(self) -> str:
        """Find the chosen pipeline and its spec; return what identifies it."""
        source = self._value("source")
        if source == CLONED and self.clone is not None:
            run = self.clone
            self.loaded = LoadedPipeline(format=run.format, document=run.document,
                                         platform_spec=run.platform_spec, source="",
                                         filename="", spec=run.spec)
            self.spec = self.loaded.spec
            return f"run:{run.pk}"
        if source == FILE:
            return self._read_file()
        return self._read_version()

    def _read_version(self) -> str:
        chosen_pipeline = self._value("pipeline")
        pipeline = _visible(self.fields["pipeline"].queryset, chosen_pipeline)
        if pipeline is None:
            if chosen_pipeline:
                self.source_errors["pipeline"] = "There is no such pipeline in this namespace."
            return ""
        versions = pipeline.versions.only("id", "pipeline_id", "name", "created_at")
        self.fields["version"].queryset = versions
        chosen = _uuid(self._value("version"))
        if chosen is None or not versions.filter(pk=chosen).exists():
            # Another pipeline was chosen: its default version, as the KFP UI does.
            chosen = pipeline.default_version_id or versions.values_list("pk", flat=True).first()
            if self.is_bound:
                self.data["version"] = str(chosen or "")
            else:
                self.initial["version"] = chosen
        if chosen is None:
            self.source_errors["pipeline"] = f"The pipeline {pipeline.name} has no versions yet."
            return f"pipeline:{pipeline.pk}"
        self.chosen_version = PipelineVersion.objects.select_related("pipeline").only(
            "id", "name", "graph", "pipeline__id", "pipeline__name",
            "pipeline__profile_id").get(pk=chosen)
        self.spec = self.chosen_version.spec
        return f"version:{self.chosen_version.pk}"

    def _read_file(self) -> str:
        """The file just chosen, else the one carried from the previous submission."""
        upload = self.files.get("package") if self.is_bound else None
        if upload is None:
            carried = self.data.get("package_data", "") if self.is_bound else ""
            if not carried:
                return ""
            try:
                upload = SimpleUploadedFile("package", base64.b64decode(carried, validate=True))
            except (binascii.Error, ValueError):
                self.source_errors["package"] = "Choose the pipeline file again."
                return ""
        try:
            self.loaded = read_upload(upload)
        except SpecError as exc:
            self.source_errors["package"] = str(exc)
            self.data["package_data"] = ""
            return ""
        upload.seek(0)
        raw = upload.read()
        carried = base64.b64encode(raw).decode()
        self.data["package_data"] = carried if len(carried) <= CARRY_MAX else ""
        self.spec = self.loaded.spec
        return f"file:{hashlib.sha256(raw).hexdigest()[:20]}"

    @property
    def source_name(self) -> str:
        """The chosen pipeline's name, for the default run name and the page."""
        if self.chosen_version is not None:
            return self.chosen_version.pipeline.name
        return self.spec.name if self.spec is not None else ""

    def default_name(self) -> str:
        """The name an empty name input stands for (a recurring run's form says another)."""
        return default_run_name(self.source_name)

    @property
    def needs_file_again(self) -> bool:
        """A file too large to carry in the form: it must be chosen again for Start."""
        return bool(self.is_bound and self.loaded is not None
                    and self._value("source") == FILE and not self.data.get("package_data"))

    @property
    def carries_package(self) -> bool:
        """Whether the next submission brings the file chosen so far (file inputs come back
        empty)."""
        return bool(self.is_bound and self.loaded is not None and self.data.get("package_data"))

    # --- parameter inputs -----------------------------------------------------------------

    def _add_parameter_fields(self) -> list[str]:
        if self.spec is None:
            return []
        given = self._cloned_values()
        names = []
        for parameter in self.spec.parameters:
            value = given.get(parameter.name, parameter.default)
            key = parameter_key(parameter.name)
            self.fields[key] = _parameter_field(parameter)
            self.initial[key] = run_parameters.as_text(parameter, value) \
                if parameter.name in given or parameter.has_default else ""
            names.append(parameter.name)
        return names

    def _cloned_values(self) -> dict[str, Any]:
        """The cloned run's parameter values, while the form shows the pipeline it ran."""
        run = self.clone
        if run is None:
            return {}
        ran = f"version:{run.pipeline_version_id}" if run.pipeline_version_id \
            else f"run:{run.pk}"
        return run.parameters if self.fingerprint == ran else {}

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[parameter_key(name)] for name in self.parameter_names]

    def _start_review(self) -> None:
        """Show the chosen pipeline's parameters with their defaults (or the cloned run's
        values), and make the next submission start the run."""
        for name in self.parameter_names:
            key = parameter_key(name)
            self.data[key] = self.initial[key]
        for key in [k for k in self.data if k.startswith(PARAMETER_PREFIX)]:
            if key.removeprefix(PARAMETER_PREFIX) not in self.parameter_names:
                del self.data[key]
        self.data["parameters_of"] = self.fingerprint
        if not self.data.get("name", "").strip() and self.source_name:
            self.data["name"] = self.default_name()

    def full_clean(self) -> None:
        """A form under review has no errors but a pipeline that could not be read."""
        if not self.reviewing:
            super().full_clean()
            return
        self._errors = ErrorDict()
        self.cleaned_data = {}
        for field, message in self.source_errors.items():
            self.add_error(field, message)

    # --- checking and starting ------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for field, message in self.source_errors.items():
            self.add_error(field, message)
        if self.source_errors:
            return data
        if self.spec is None:
            source = data.get("source")
            self.add_error("package" if source == FILE else "pipeline",
                           "Choose a pipeline file." if source == FILE
                           else "Choose a pipeline.")
            return data
        try:
            run_parameters.resolve(self.spec, self.parameter_values(), from_text=True)
        except ValidationError as exc:
            self.add_start_errors(exc)
        if not data.get("name", "").strip():
            data["name"] = self.default_name()
        return data

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        return validate_display_name(name, "run") if name.strip() else ""

    def clean_experiment(self) -> Experiment | None:
        chosen = self.cleaned_data.get("experiment")
        if not chosen:
            return None  # the namespace's Default, created on first use
        experiment = Experiment.objects.filter(profile=self.profile, pk=chosen).first()
        if experiment is None:
            raise ValidationError("That experiment no longer exists.")
        return experiment

    def parameter_values(self) -> dict[str, str]:
        """What was typed, by parameter name; any other ``parameter-*`` field posted too, so
        that a parameter the pipeline does not have is reported, not dropped."""
        return {key.removeprefix(PARAMETER_PREFIX): self.data.get(key, "")
                for key in self.data if key.startswith(PARAMETER_PREFIX)}

    def add_start_errors(self, error: ValidationError) -> None:
        """Put ``Run.start``'s (or ``resolve``'s) errors next to their inputs: parameter
        errors on the parameter's input, the rest above the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for name, messages in error.message_dict.items():
            key = parameter_key(name)
            if key not in self.fields:
                self.add_error(None, messages)
            elif key not in self.errors:  # e.g. not one of a boolean's choices already
                self.add_error(key, messages)

    def start(self) -> Run:
        """Start the run the valid form describes. Raises Run.start's ValidationError."""
        data = self.cleaned_data
        return Run.start(
            self.profile, self.user, name=data["name"], description=data["description"],
            version=self.chosen_version if data["source"] == VERSION else None,
            loaded=self.loaded if data["source"] != VERSION else None,
            experiment=data["experiment"], parameters=self.parameter_values(),
            parameters_from_text=True, caching=None if data["caching"] else False)


def _clone_initial(run: Run) -> dict[str, Any]:
    """A clone starts as the run did: same pipeline, parameters, experiment and caching."""
    initial: dict[str, Any] = {
        "name": f"Clone of {run.name}"[:NAME_MAX], "description": run.description,
        "experiment": str(run.experiment_id), "caching": run.caching is not False,
    }
    if run.pipeline_version_id is not None:
        initial.update(source=VERSION, pipeline=str(run.pipeline_id),
                       version=str(run.pipeline_version_id))
    else:
        initial["source"] = CLONED
    return initial


def _experiment_choices(profile) -> list[tuple[str, str]]:
    """The namespace's active experiments; the empty choice is "Default", which need not
    exist yet (Run.start creates it)."""
    others = Experiment.objects.available().filter(profile=profile).exclude(
        name=Experiment.DEFAULT_NAME).order_by("name").values_list("pk", "name")
    return [("", Experiment.DEFAULT_NAME), *((str(pk), name) for pk, name in others)]


def _parameter_field(parameter: Parameter) -> forms.Field:
    """An input for one parameter. Every value arrives as text and is checked by
    ``resolve``, so the inputs themselves accept anything."""
    kind = parameter.type
    label = parameter.name
    help_text = parameter.description
    if kind == "BOOLEAN":
        choices = [("true", "true"), ("false", "false")]
        if not parameter.has_default:
            choices.insert(0, ("", "(none)" if parameter.optional else "Choose…"))
        field = forms.ChoiceField(label=label, choices=choices, required=False)
    elif kind in ("LIST", "STRUCT"):
        example = "[1, 2, 3]" if kind == "LIST" else '{"key": "value"}'
        field = forms.CharField(label=label, required=False, widget=forms.Textarea(
            attrs={"rows": 3, "class": "mono", "spellcheck": "false", "placeholder": example}))
    else:
        attrs = {"inputmode": "numeric" if kind == "NUMBER_INTEGER" else "decimal"} \
            if kind.startswith("NUMBER") else {}
        field = forms.CharField(label=label, required=False, strip=False,
                                widget=forms.TextInput(attrs={"spellcheck": "false", **attrs}))
    field.help_text = help_text
    field.type_label = parameter.declared_type or TYPE_LABELS.get(kind, kind)
    field.required_value = not (parameter.has_default or parameter.optional)
    return field


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _visible(queryset: QuerySet, value: str):
    pk = _uuid(value)
    return queryset.filter(pk=pk).first() if pk else None


# --- the runs list ----------------------------------------------------------------------


@dataclass(frozen=True)
class MetricCondition:
    """``accuracy > 0.9``: the run has a metric of that name whose value compares so."""

    name: str
    op: str
    value: float

    LOOKUPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "exact", "==": "exact"}

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.value:g}"

    def matches(self) -> Exists:
        metrics = RunMetric.objects.filter(run=OuterRef("pk"), name=self.name)
        if self.op == "!=":
            return Exists(metrics.exclude(value=self.value))
        return Exists(metrics.filter(**{f"value__{self.LOOKUPS[self.op]}": self.value}))

    def holds(self, value: float) -> bool:
        compare = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
                   "=": operator.eq, "==": operator.eq, "!=": operator.ne}[self.op]
        return compare(value, self.value)


_CONDITION = re.compile(r"^\s*(?P<name>.+?)\s*(?P<op>>=|<=|==|!=|=|>|<)\s*(?P<value>\S+)\s*$")


def parse_metric_conditions(text: str) -> list[MetricCondition]:
    """``accuracy > 0.9 and loss < 0.2`` (``and`` or a comma between conditions). Raises
    ValidationError saying what a condition looks like."""
    conditions = []
    for part in re.split(r",|\band\b", text, flags=re.IGNORECASE):
        if not part.strip():
            continue
        match = _CONDITION.match(part)
        value = None
        if match:
            try:
                value = float(match["value"])
            except ValueError:
                value = None
        if match is None or value is None or value != value:  # NaN compares to nothing
            raise ValidationError(
                f"“{part.strip()}” is not a metric condition: write a metric name, one of "
                "> >= < <= = !=, and a number, e.g. accuracy > 0.9.")
        conditions.append(MetricCondition(match["name"], match["op"], value))
    return conditions


def search_runs(runs: QuerySet, text: str) -> QuerySet:
    """Runs whose name or parameter values contain ``text`` (case-insensitively).

    ``parameters`` is a JSON field; its text (cast to text: SQLite's stored JSON,
    PostgreSQL's ``jsonb::text``) is searched for the text as typed and as JSON writes it
    inside a string, escaped (SQLite stores non-ASCII as ``\\u00e9``, both escape quotes).
    Parameter names are in that text too, so searching a name finds every run that has
    that parameter, which is a fair answer to that search."""
    as_text = Cast("parameters", output_field=TextField())
    forms_of_text = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    matches = Q(name__icontains=text)
    for form in forms_of_text:
        matches |= Q(parameters_text__icontains=form)
    return runs.annotate(parameters_text=as_text).filter(matches)


class RunFilterForm(forms.Form):
    """The runs list's filters, from the query string. Search (``q``) is applied with the
    paging (``search_runs``); state and metric conditions here."""

    q = forms.CharField(label="Search by name or parameter value", required=False,
                        widget=forms.TextInput(attrs={
                            "type": "search", "placeholder": "Search by name or parameter value"}))
    state = forms.ChoiceField(label="State", required=False,
                              choices=[("", "Any state"), *RunState.choices])
    metric = forms.CharField(label="Metric condition", required=False,
                             widget=forms.TextInput(attrs={"placeholder": "accuracy > 0.9"}))

    def __init__(self, data) -> None:
        super().__init__(data, auto_id="runs-%s")

    def clean_metric(self) -> list[MetricCondition]:
        return parse_metric_conditions(self.cleaned_data["metric"])

    def apply(self, runs: QuerySet) -> QuerySet:
        """The runs that pass the valid filters (an invalid one is shown, not applied)."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("state"):
            runs = runs.filter(state=data["state"])
        for condition in data.get("metric") or []:
            runs = runs.filter(condition.matches())
        return runs

    def params(self) -> dict[str, str]:
        """What links to other pages and sorts keep."""
        return {"state": self.data.get("state", ""), "metric": self.data.get("metric", "")}


BULK_ACTIONS = {"archive": "archived", "restore": "restored", "delete": "deleted"}


class RunBulkForm(forms.Form):
    """Archive, restore or delete the runs checked in a list."""

    action = forms.ChoiceField(choices=[(a, a) for a in BULK_ACTIONS])
    runs = forms.CharField(required=False)  # read with getlist: one value per checked row
    confirmed = forms.BooleanField(required=False)

    def __init__(self, data, *, profile) -> None:
        super().__init__(data)
        self.profile = profile

    def clean_runs(self) -> list[Run]:
        """The checked runs that are in this namespace (others are not found, as ever)."""
        ids = [pk for pk in map(_uuid, self.data.getlist("runs")) if pk is not None]
        runs = list(Run.objects.filter(profile=self.profile, pk__in=ids).light()
                    .select_related("profile").order_by("name", "pk"))
        if not runs:
            raise ValidationError("Check the runs to act on first.")
        return runs

    @property
    def needs_confirmation(self) -> bool:
        return self.cleaned_data["action"] == "delete" and not self.cleaned_data["confirmed"]

    def apply(self, by) -> list[Run]:
        """Do the action on each run, through its model method."""
        action = self.cleaned_data["action"]
        method = {"archive": "archive", "restore": "unarchive", "delete": "remove"}[action]
        for run in self.cleaned_data["runs"]:
            getattr(run, method)(by)
        return self.cleaned_data["runs"]
