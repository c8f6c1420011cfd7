"""KFP v1 steps: Argo container templates, run as Argo's executor would.

Argo substitutes ``{{…}}`` in a template's command, arguments and environment: the
template's ``inputs.parameters.x`` (strings: Argo passes every parameter as text),
``inputs.artifacts.x.path`` and ``outputs.{parameters,artifacts}.x.path`` (the declared
paths), ``workflow.{name,uid,namespace,serviceAccountName,creationTimestamp,status,
duration,failures}``, ``workflow.parameters.x``, ``pod.name`` and ``retries``. DAG-level
text (``when``, argument values) also has ``tasks.t.outputs.parameters.p``,
``inputs.parameters.x`` of the enclosing DAG, and ``item`` / ``item.key``; the scheduler
resolves those through ``substitute`` with its own lookup. After the step, each
``outputs.parameters[].valueFrom.path`` is read (a missing file fails the step unless the
parameter has a default) and each ``outputs.artifacts[].path`` is copied into the
artifact store (missing: fails unless ``optional``; KFP's mlpipeline-ui-metadata and
mlpipeline-metrics are treated as optional, as the KFP UI does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
OPTIONAL_BY_CONVENTION = ("mlpipeline-ui-metadata", "mlpipeline-metrics")


class TemplateError(Exception):
    """The template cannot run here or refers to something unknown; says why."""


@dataclass
class Declared:
    kind: str  # "parameter" | "artifact"
    name: str
    path: str
    optional: bool = False
    default: str | None = None


def template_of(document: dict, name: str) -> dict:
    for template in (document.get("spec") or {}).get("templates") or []:
        if isinstance(template, dict) and template.get("name") == name:
            return template
    raise TemplateError(f"the Workflow has no template '{name}'")


def component_identity(template: dict) -> dict:
    """What makes two steps the same for caching: the template without its name and
    metadata (kfp numbers templates per pipeline and annotates compile details)."""
    return {key: value for key, value in template.items() if key not in ("name", "metadata")}


def timeout(template: dict) -> float | None:
    value = template.get("activeDeadlineSeconds")
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def argo_text(value: Any) -> str:
    """A value as Argo passes it: text (lists and objects as compact JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def substitute(text: str, lookup: Callable[[str], str | None], where: str) -> str:
    def replace(match: re.Match) -> str:
        value = lookup(match.group(1))
        if value is None:
            raise TemplateError(f"{where}: kfdash cannot resolve {match.group(0)}")
        return value

    return PLACEHOLDER.sub(replace, text)


def outputs(template: dict) -> list[Declared]:
    declared = []
    section = template.get("outputs") or {}
    for item in section.get("parameters") or []:
        value_from = item.get("valueFrom") or {}
        if value_from.get("path"):
            default = value_from.get("default")
            declared.append(Declared("parameter", item["name"], value_from["path"],
                                     default=None if default is None else str(default)))
    for item in section.get("artifacts") or []:
        if item.get("path"):
            declared.append(Declared("artifact", item["name"], item["path"],
                                     optional=bool(item.get("optional"))
                                     or item["name"] in OPTIONAL_BY_CONVENTION))
    return declared


def input_artifacts(template: dict) -> list[Declared]:
    return [Declared("artifact", item["name"], item["path"], optional=bool(item.get("optional")))
            for item in (template.get("inputs") or {}).get("artifacts") or []
            if item.get("path")]


def step_command(template: dict, parameters: dict[str, str],
                 workflow: Callable[[str], str | None]) -> tuple[list[str], dict[str, str]]:
    """The command, arguments and declared environment of a container template, with its
    placeholders replaced. ``workflow`` answers ``workflow.*``, ``pod.name``, ``retries``."""
    name = template.get("name", "")
    container = template.get("container")
    if not isinstance(container, dict):
        kind = next((k for k in ("script", "resource", "steps", "suspend") if k in template),
                    "no container")
        raise TemplateError(f"the template '{name}' has {kind}; kfdash runs container "
                            "templates")
    paths = {(d.kind, d.name): d.path for d in input_artifacts(template)}
    output_paths = {(d.kind, d.name): d.path for d in outputs(template)}

    def lookup(expression: str) -> str | None:
        parts = expression.split(".")
        if parts[:2] == ["inputs", "parameters"] and len(parts) == 3:
            return parameters.get(parts[2])
        if parts[0] == "inputs" and len(parts) == 4 and parts[1] == "artifacts" \
                and parts[3] == "path":
            return paths.get(("artifact", parts[2]))
        if parts[0] == "outputs" and len(parts) == 4 and parts[3] == "path":
            kind = {"parameters": "parameter", "artifacts": "artifact"}.get(parts[1])
            return output_paths.get((kind, parts[2]))
        return workflow(expression)

    where = f"template '{name}'"
    argv = [substitute(str(part), lookup, where)
            for part in [*(container.get("command") or []), *(container.get("args") or [])]]
    if not argv:
        raise TemplateError(f"the template '{name}' has no command (kfdash cannot read the "
                            "image's entrypoint)")
    env = {item["name"]: substitute(str(item["value"]), lookup, where)
           for item in container.get("env") or [] if "value" in item and "name" in item}
    return argv, env
