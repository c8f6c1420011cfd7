"""Argo ``Workflow`` manifests for runs in kubernetes mode, built by pure functions.

A KFP v1 package already is an Argo Workflow (what kfp 1.8's compiler writes), so a run's
manifest is that document with the run filled in: its parameters, a concrete name, its
namespace, kfdash's labels and annotation, the service account, and when Argo is to delete
the finished Workflow and its pods (``Cleanup``). Nothing here talks to a cluster; the
Argo engine submits what ``make_workflow`` returns, after ``validate_workflow`` (hera's
Argo models, plus a strict check for unknown keys, which hera's models silently ignore
and a cluster would silently drop).
"""

from __future__ import annotations

import copy
import re
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

if TYPE_CHECKING:
    from .argo_compile import S3Repository

API_VERSION = "argoproj.io/v1alpha1"
KIND = "Workflow"
RUN_ID_LABEL = "kfdash.io/run-id"
MANAGED_BY_LABEL = "kfdash.io/managed-by"
MANAGED_BY = "kfdash"
RUN_NAME_ANNOTATION = "kfdash.io/run-name"
# A Workflow's name goes into its pods' names and into label values
# (workflows.argoproj.io/workflow), so it must be a DNS-1123 label: ≤ 63, no dots.
NAME_LIMIT = 63
SUFFIX_LENGTH = 10  # of the run id's characters: 40 bits of a UUID4, unique enough per stem
NOT_NAME = re.compile(r"[^a-z0-9-]+")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# Where an Argo artifact can say it is kept (Argo's ArtifactLocation).
LOCATIONS = ("s3", "gcs", "http", "git", "artifactory", "hdfs", "oss", "raw", "azure")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Cleanup:
    """What Argo deletes once a run is over, for a package that does not say so itself:
    the Workflow ``ttl_seconds`` after it finishes (``spec.ttlStrategy``; 0 keeps it), and
    step pods by the ``podGC`` strategy ``pod_gc`` ("" keeps them), each ``pod_gc_delay``
    (a Go duration, "" for none) after it qualifies. The default keeps everything; the
    Argo engine passes the ``KFDASH_ARGO_*`` settings, which are checked at start-up."""

    ttl_seconds: int = 0
    pod_gc: str = ""
    pod_gc_delay: str = ""


KEEP_EVERYTHING = Cleanup()


def make_workflow(run_document: dict, *, run_id: str, run_name: str, namespace: str,
                  parameters: dict[str, str], service_account: str = "default-editor",
                  labels: dict | None = None, cleanup: Cleanup = KEEP_EVERYTHING,
                  repository: S3Repository | None = None) -> dict:
    """The Workflow to submit for a run of a KFP v1 package (``run_document``, left as is).

    ``parameters`` replace the values of ``spec.arguments.parameters`` (text, as Argo takes
    them); a name the package does not declare, a non-text value, a declared parameter left
    without any value, or a value outside a parameter's ``enum`` is a ValueError, since
    Argo would refuse the Workflow or run it with something nobody asked for.

    The name is ``generateName`` (or the package's own name) plus the start of the run id:
    deterministic, so a retried submission of the same run meets a 409 instead of starting
    a second Workflow.

    ``service_account`` always wins over the package's ``spec.serviceAccountName``. KFP's
    backend does the same for every package kfp compiles (kfp 1.8 writes
    ``pipeline-runner``, which KFP replaces with the namespace's ``default-editor`` in
    multi-user mode) but keeps any other account a package names, for old SDKs' sake.
    kfdash does not: it creates Workflows with its own credentials, so honouring the
    package would let an uploaded file choose which identity in the namespace its pods
    get. The caller passes the run's requested account or the configured default.
    """
    if not isinstance(run_document, dict) or run_document.get("kind") != KIND:
        raise ValueError("The run's document is not an Argo Workflow (kind: Workflow)")
    workflow = copy.deepcopy(run_document)
    fill_run_metadata(workflow, run_id=run_id, run_name=run_name, namespace=namespace,
                      service_account=service_account, labels=labels, cleanup=cleanup)
    _fill_parameters(workflow["spec"], parameters)
    _capture_small_outputs(workflow["spec"])
    if repository is not None:
        _place_outputs(workflow["spec"], repository)
    return workflow


def _place_outputs(spec: dict, repository: S3Repository) -> None:
    """Output artifacts that name no place of their own go to kfdash's artifact repository
    under the run's namespace (``<prefix>/<namespace>/<workflow>/<pod>/<name>.tgz``, as a v2
    run's do), where kfdash may read them back; the cluster's default repository has keys
    kfdash could not tell apart by namespace. One that names its place keeps it."""
    for template in spec.get("templates") or []:
        for artifact in (template.get("outputs") or {}).get("artifacts") or []:
            if not artifact.get("path") or any(key in artifact for key in LOCATIONS):
                continue
            archived = "none" not in (artifact.get("archive") or {})
            artifact["s3"] = repository.s3(repository.run_key(
                "{{workflow.namespace}}", "{{workflow.name}}", "{{pod.name}}",
                f"{artifact['name']}{'.tgz' if archived else ''}"))


def _capture_small_outputs(spec: dict) -> None:
    """A template that writes ``mlpipeline-metrics`` also reports the file as an output
    parameter (``kfdash-mlpipeline-metrics``, empty when missing), which Argo keeps in the
    Workflow's status: the watcher reads the run's metrics from there."""
    from .argo_names import CAPTURE_PREFIX, CAPTURED_V1_OUTPUTS

    for template in spec.get("templates") or []:
        outputs = template.get("outputs") or {}
        for artifact in outputs.get("artifacts") or []:
            if artifact.get("name") in CAPTURED_V1_OUTPUTS and artifact.get("path"):
                parameters = outputs.setdefault("parameters", [])
                name = CAPTURE_PREFIX + artifact["name"]
                if not any(p.get("name") == name for p in parameters):
                    parameters.append({"name": name, "valueFrom": {
                        "path": artifact["path"], "default": ""}})


def fill_run_metadata(workflow: dict, *, run_id: str, run_name: str, namespace: str,
                      service_account: str, labels: dict | None = None,
                      cleanup: Cleanup = KEEP_EVERYTHING) -> None:
    """Make ``workflow`` (changed in place) the run's: its name from its ``generateName`` or
    ``name`` and the run id, the namespace, kfdash's labels and annotation on top of its own,
    the service account, and ``cleanup`` where the package has none. Every Workflow kfdash
    submits, whatever it was compiled from, goes through here, so the watcher finds them all
    the same way and the cluster is cleaned up after all of them alike."""
    metadata = workflow.setdefault("metadata", {})
    spec = workflow.setdefault("spec", {})
    metadata["name"] = workflow_name(metadata, run_id)
    metadata.pop("generateName", None)
    metadata["namespace"] = namespace
    metadata["labels"] = {**(metadata.get("labels") or {}), **(labels or {}),
                          RUN_ID_LABEL: run_id, MANAGED_BY_LABEL: MANAGED_BY}
    _check_labels(metadata["labels"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}),
                               RUN_NAME_ANNOTATION: run_name}
    spec["serviceAccountName"] = service_account
    _fill_cleanup(spec, cleanup)


def _fill_cleanup(spec: dict, cleanup: Cleanup) -> None:
    """kfdash's ``ttlStrategy`` and ``podGC``, each only where the package sets none: one a
    kfp 1.8 pipeline asked for (``set_ttl_seconds_after_finished``) or a hand-written
    Workflow carries is its author's choice, kept as it is."""
    if cleanup.ttl_seconds > 0 and spec.get("ttlStrategy") is None:
        spec["ttlStrategy"] = {"secondsAfterCompletion": cleanup.ttl_seconds}
    if cleanup.pod_gc and spec.get("podGC") is None:
        spec["podGC"] = {"strategy": cleanup.pod_gc}
        if cleanup.pod_gc_delay:
            spec["podGC"]["deleteDelayDuration"] = cleanup.pod_gc_delay


def workflow_name(metadata: dict, run_id: str) -> str:
    """``<generateName>-<run id start>``: a DNS-1123 label of at most 63 characters."""
    suffix = re.sub(r"[^a-z0-9]", "", run_id.lower())[:SUFFIX_LENGTH]
    if not suffix:
        raise ValueError(f"The run id {run_id!r} has no letters or digits to name a Workflow")
    stem = NOT_NAME.sub("-", str(metadata.get("generateName") or metadata.get("name") or "")
                        .lower()).strip("-")
    stem = stem[:NAME_LIMIT - len(suffix) - 1].rstrip("-") or "run"
    return f"{stem}-{suffix}"


def _fill_parameters(spec: dict, given: dict[str, str]) -> None:
    declared = (spec.get("arguments") or {}).get("parameters") or []
    known = {p.get("name") for p in declared}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"The pipeline has no parameter {_names(unknown)} (its parameters: "
                         f"{_names(sorted(n for n in known if n)) or 'none'})")
    not_text = sorted(name for name, value in given.items() if not isinstance(value, str))
    if not_text:
        raise ValueError(f"Argo takes parameters as text; not text: {_names(not_text)}")
    missing, refused = [], []
    for parameter in declared:
        name = parameter.get("name")
        if name in given:
            parameter["value"] = given[name]
            parameter.pop("valueFrom", None)  # Argo takes one of value and valueFrom
        if "value" not in parameter and "valueFrom" not in parameter:
            missing.append(name)
        elif parameter.get("enum") and "value" in parameter and \
                parameter["value"] not in parameter["enum"]:
            refused.append(f"{name} (one of {', '.join(parameter['enum'])})")
    if missing:
        raise ValueError(f"No value for the parameter {_names(missing)}")
    if refused:
        raise ValueError(f"A value outside its choices for {_names(refused)}")


def _check_labels(labels: dict) -> None:
    bad = []
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if not (name and len(name) <= 63 and LABEL_NAME.match(name)) or \
                (prefix and not (len(prefix) <= 253 and DNS_SUBDOMAIN.match(prefix))):
            bad.append(f"key {key!r}")
        elif not (isinstance(value, str) and len(value) <= 63 and LABEL_NAME.match(value)):
            bad.append(f"{key}={value!r}")
    if bad:
        raise ValueError(f"Not a valid Kubernetes label: {', '.join(bad)}")


def _names(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def validate_workflow(manifest: dict) -> None:
    """Raise ValueError unless ``manifest`` is a Workflow Argo will take as written.

    hera's models check types and required fields; they ignore keys they do not know (as
    the API server drops unknown fields of a CRD), which would turn a misspelt
    ``imagePullPolicy`` into a silently different run, so every key is also checked
    against the models' JSON (camelCase) names. pydantic's ValidationError is a ValueError.
    """
    # hera's ~1,000 models take ≈ 0.7 s to import: only a process that validates pays it.
    from hera.workflows.models import Workflow

    if not isinstance(manifest, dict):
        raise ValueError("A Workflow manifest is a mapping")
    if manifest.get("apiVersion") != API_VERSION or manifest.get("kind") != KIND:
        raise ValueError(f"Not an Argo Workflow: apiVersion must be {API_VERSION} "
                         f"and kind {KIND}")
    Workflow.model_validate(manifest)
    unknown = unknown_keys(manifest, Workflow)
    if unknown:
        raise ValueError(f"Unknown keys in the Workflow: {', '.join(unknown)}")


def unknown_keys(value: Any, annotation: Any, path: str = "") -> list[str]:
    """The paths of keys in ``value`` that the pydantic type ``annotation`` does not name
    (by alias, i.e. the JSON name). Values of the wrong shape are left to validation."""
    from pydantic import BaseModel, RootModel

    origin = get_origin(annotation)
    if origin is Annotated:
        return unknown_keys(value, get_args(annotation)[0], path)
    if origin in (Union, types.UnionType):
        # The member the value fits best: none of hera's unions mixes two models today.
        best: list[str] | None = None
        for member in get_args(annotation):
            if member is type(None):
                continue
            found = unknown_keys(value, member, path)
            if not found:
                return []
            if best is None or len(found) < len(best):
                best = found
        return best or []
    if isinstance(annotation, type) and issubclass(annotation, RootModel):
        return unknown_keys(value, annotation.model_fields["root"].annotation, path)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(value, dict):
            return []
        fields = {field.alias or name: field for name, field in
                  annotation.model_fields.items()}
        found = []
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key in fields:
                found += unknown_keys(item, fields[key].annotation, here)
            else:
                found.append(here)
        return found
    if origin is list and isinstance(value, list):
        (inner,) = get_args(annotation) or (Any,)
        return [p for i, item in enumerate(value)
                for p in unknown_keys(item, inner, f"{path}[{i}]")]
    if origin is dict and isinstance(value, dict):
        inner = (get_args(annotation) or (Any, Any))[1]
        return [p for key, item in value.items()
                for p in unknown_keys(item, inner, f"{path}[{key}]")]
    return []
