"""Upload bytes (or an already parsed document) → a LoadedPipeline: unpack, parse, decide
which format it is, normalize."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from pipelines.choices import SpecFormat
from pipelines.specs import argo, fields, kfp_v2, sniff, yaml_safe
from pipelines.specs.errors import SpecError
from pipelines.specs.model import PipelineSpec


@dataclass
class LoadedPipeline:
    format: str  # pipelines.choices.SpecFormat value
    document: dict  # the pipeline: the IR (camelCase keys, as MessageToDict gives) or the Workflow
    platform_spec: dict | None  # the IR's second YAML document (kfp-kubernetes), if any
    source: str  # the text of the pipeline file, unpacked from any archive
    filename: str  # the archive member it came from, or ""
    spec: PipelineSpec  # the normalized DAG


def load(data: bytes, max_bytes: int | None = None) -> LoadedPipeline:
    """An uploaded package: YAML or JSON, or a .tar.gz/.zip holding one such file. Files and
    archives may unpack to at most ``max_bytes`` (default: the KFDASH_MAX_PIPELINE_BYTES
    setting)."""
    content, text, filename = sniff.unpack(data, max_bytes)
    documents = yaml_safe.parse(text, utf8=content)
    if len(documents) == 2 and documents[1] is None:  # a trailing "---"
        documents.pop()
    if not documents or documents[0] is None:
        raise SpecError("The file holds no YAML document")
    platform_spec = documents[1] if len(documents) == 2 else None
    return _loaded(documents[0], platform_spec, text, filename)


def load_document(document: dict) -> LoadedPipeline:
    """A pipeline given as a parsed object (a run's ``pipeline_spec`` or ``workflow_manifest``).
    The v2 SDK nests a multi-document package as ``{"pipeline_spec": …, "platform_spec": …}``."""
    if not isinstance(document, dict):
        raise SpecError(f"The pipeline should be a mapping, not {fields.kind_of(document)}")
    yaml_safe.check_shape(document)
    platform_spec = None
    if "pipeline_spec" in document and "pipelineInfo" not in document:
        platform_spec = document.get("platform_spec")
        document = document["pipeline_spec"]
        if not isinstance(document, dict):
            raise SpecError("pipeline_spec should be a mapping, not "
                            f"{fields.kind_of(document)}")
    parts = [document] if platform_spec is None else [document, platform_spec]
    source = yaml.dump_all(parts, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                           sort_keys=False, allow_unicode=True)
    return _loaded(document, platform_spec, source, "")


def _loaded(document: Any, platform_spec: Any, source: str, filename: str) -> LoadedPipeline:
    kind = identify(document)
    if platform_spec is not None:
        if kind != SpecFormat.KFP_V2:
            raise SpecError("A second YAML document (a platform spec) only goes with a KFP v2 "
                            "pipeline, not an Argo Workflow")
        if not isinstance(platform_spec, dict) or "platforms" not in platform_spec:
            what = (f"the keys {', '.join(map(str, platform_spec))}"
                    if isinstance(platform_spec, dict) else fields.kind_of(platform_spec))
            raise SpecError("The second YAML document should be a platform spec (a mapping "
                            f"with 'platforms'), not {what}")
    spec = kfp_v2.parse(document) if kind == SpecFormat.KFP_V2 else argo.parse(document)
    return LoadedPipeline(format=kind, document=document, platform_spec=platform_spec,
                          source=source, filename=filename, spec=spec)


def identify(document: Any) -> SpecFormat:
    """KFP v2 IR or Argo Workflow; anything else is refused, saying what it looks like."""
    if isinstance(document, dict):
        if "pipelineInfo" in document and "root" in document:
            return SpecFormat.KFP_V2
        api_version = document.get("apiVersion")
        kind = document.get("kind")
        if str(api_version).startswith("argoproj.io/") and kind == "Workflow":
            return SpecFormat.ARGO
    raise SpecError(f"This is neither a KFP v2 pipeline nor an Argo Workflow: it is "
                    f"{_describe(document)}")


def _describe(document: Any) -> str:
    if not isinstance(document, dict):
        return fields.kind_of(document)
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if kind and api_version:
        owner = "an Argo" if str(api_version).startswith("argoproj.io/") else "a Kubernetes"
        return f"{owner} {kind} ({api_version})"
    if "implementation" in document or "executorLabel" in document:
        return "a component, not a pipeline"
    if "pipelineInfo" in document or "deploymentSpec" in document:
        return "a KFP pipeline without its 'root' DAG"
    keys = ", ".join(map(str, list(document)[:5]))
    return f"a mapping with the keys {keys}" if keys else "an empty mapping"
