"""KFP v2 steps: the executor protocol, as the KFP launcher (and kfp.local) speak it.

The step gets ``--executor_input`` (through the ``{{$}}`` placeholder): its parameter
values, its input artifacts (uri, type, metadata), a file per output parameter, a uri per
output artifact and the path of ``executor_output.json``. A Python component writes that
file (parameter values, artifact metadata); a container component writes its output
parameter files. Artifact URIs are local paths in the artifact store, which the KFP
executor uses as the artifacts' paths (as kfp.local does).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from . import artifacts as artifact_store
from .kfdash_launcher import expand_structures

EXECUTOR_OUTPUT = "executor_output.json"
MAX_PARAMETER_BYTES = 1024 * 1024  # an output parameter is a value, not a dataset
MAX_EXECUTOR_OUTPUT_BYTES = 16 * 1024 * 1024
DEFAULT_SCHEMA_VERSION = "0.0.1"
_PLACEHOLDER = re.compile(r"\{\{\$(?P<expr>[^{}]*)\}\}")
_IO = re.compile(r"""\.(?P<side>inputs|outputs)\.(?P<kind>parameters|artifacts)"""
                 r"""\[(?P<quote>['"])(?P<name>.+?)(?P=quote)\](?:\.(?P<field>\w+))?""")


class ProtocolError(Exception):
    """The step cannot be prepared or its outputs cannot be read; says why."""


def component_parts(document: dict, component_name: str) -> tuple[dict, dict]:
    """The IR's component and its executor for a task."""
    component = (document.get("components") or {}).get(component_name) or {}
    label = component.get("executorLabel", "")
    executor = ((document.get("deploymentSpec") or {}).get("executors") or {}).get(label) or {}
    return component, executor


def executor_config(platform_spec: dict | None, component: dict) -> dict:
    """The kfp-kubernetes config of the IR ``component``'s executor ({} when it has none)."""
    label = component.get("executorLabel", "")
    try:
        executors = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    except (KeyError, TypeError):
        return {}
    config = (executors or {}).get(label) if isinstance(executors, dict) else None
    return config if isinstance(config, dict) else {}


def executor_timeout(platform_spec: dict | None, component: dict) -> float | None:
    """A kfp-kubernetes ``set_timeout`` on this task's executor, in seconds."""
    seconds = executor_config(platform_spec, component).get("activeDeadlineSeconds")
    try:
        return float(seconds) if seconds else None
    except (TypeError, ValueError):
        return None


def _definitions(component: dict, side: str, kind: str) -> dict:
    return ((component.get(side) or {}).get(kind) or {})


def schema_version(component: dict, side: str, name: str) -> str:
    definition = _definitions(component, side, "artifacts").get(name) or {}
    return (definition.get("artifactType") or {}).get("schemaVersion") or DEFAULT_SCHEMA_VERSION


def optional_inputs(component: dict) -> set[str]:
    return {name for kind in ("parameters", "artifacts")
            for name, definition in _definitions(component, "inputDefinitions", kind).items()
            if isinstance(definition, dict) and definition.get("isOptional")}


def runtime_artifact(entry: dict) -> dict:
    """An artifact entry as the executor input lists it."""
    return {"name": entry.get("name", ""),
            "type": {"schemaTitle": entry.get("type") or "system.Artifact",
                     "schemaVersion": entry.get("schemaVersion") or DEFAULT_SCHEMA_VERSION},
            "uri": entry["uri"], "metadata": entry.get("metadata") or {}}


def executor_input(component: dict, parameters: dict[str, Any],
                   input_artifacts: dict[str, list[dict]], outputs_dir: Path,
                   artifact_uri) -> dict:
    """``artifact_uri(name)`` is where output artifact ``name`` goes."""
    outputs: dict[str, Any] = {
        "parameters": {name: {"outputFile": str(outputs_dir / name)}
                       for name in _definitions(component, "outputDefinitions", "parameters")},
        "artifacts": {},
        "outputFile": str(outputs_dir / EXECUTOR_OUTPUT),
    }
    for name, definition in _definitions(component, "outputDefinitions", "artifacts").items():
        schema = (definition or {}).get("artifactType") or {}
        outputs["artifacts"][name] = {"artifacts": [{
            "name": name,
            "type": {"schemaTitle": schema.get("schemaTitle") or "system.Artifact",
                     "schemaVersion": schema.get("schemaVersion") or DEFAULT_SCHEMA_VERSION},
            "uri": str(artifact_uri(name)), "metadata": {}}]}
    return {
        "inputs": {"parameterValues": parameters,
                   "artifacts": {name: {"artifacts": [runtime_artifact(e) for e in listed]}
                                 for name, listed in input_artifacts.items()}},
        "outputs": outputs,
    }


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def substitute_inputs(text: str, parameters: dict[str, Any]) -> str:
    """``{{$.inputs.parameters['x']}}`` in a value (an f-string over pipeline channels)."""
    def value(match: re.Match) -> str:
        io = _IO.fullmatch(match.group("expr"))
        if io and io["side"] == "inputs" and io["kind"] == "parameters" and not io["field"] \
                and io["name"] in parameters:
            return text_of(parameters[io["name"]])
        return match.group(0)

    return _PLACEHOLDER.sub(value, text)


def resolve_values(executor: dict, context: dict[str, str]) -> None:
    """Placeholders inside string parameter values (``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``
    passed as an argument, an f-string over one), replaced as the KFP driver does."""
    values = executor["inputs"]["parameterValues"]
    for name, value in values.items():
        if isinstance(value, str) and "{{$." in value:
            values[name] = _PLACEHOLDER.sub(
                lambda m: _value(m.group("expr"), executor, context), value)


def resolve_command(argv: list[str], executor: dict, context: dict[str, str]) -> list[str]:
    """The command and arguments with every placeholder replaced (IfPresent and Concat
    structures first, as the KFP launcher does: the same code as kfdash's own launcher's)."""
    provided = {name for name, value in executor["inputs"]["parameterValues"].items()
                if value is not None} | set(executor["inputs"]["artifacts"])
    try:
        flat = expand_structures(argv, provided)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    return [_PLACEHOLDER.sub(lambda m: _value(m.group("expr"), executor, context), part)
            for part in flat]


def _value(expr: str, executor: dict, context: dict[str, str]) -> str:
    if expr == "":
        return json.dumps(executor)
    if expr in (".outputs.output_file", ".outputMetadataUri"):
        return executor["outputs"]["outputFile"]
    simple = context.get(expr.lstrip("."))
    if simple is not None:
        return simple
    io = _IO.fullmatch(expr)
    if io is None:
        raise ProtocolError(f"kfdash does not know the placeholder {{{{${expr}}}}}")
    side, kind, name, field = io["side"], io["kind"], io["name"], io["field"]
    if kind == "parameters":
        if side == "inputs" and not field:
            return text_of(executor["inputs"]["parameterValues"].get(name))
        if side == "outputs" and field == "output_file":
            return executor["outputs"]["parameters"][name]["outputFile"]
        raise ProtocolError(f"kfdash does not know the placeholder {{{{${expr}}}}}")
    listed = executor[side]["artifacts"].get(name, {}).get("artifacts") or []
    if not listed:
        raise ProtocolError(f"the placeholder {{{{${expr}}}}} names no artifact")
    if field in ("path", "uri"):
        return listed[0]["uri"]
    if field == "metadata":
        return json.dumps(listed[0].get("metadata") or {})
    raise ProtocolError(f"kfdash does not know the placeholder {{{{${expr}}}}}")


def read_outputs(component: dict, executor: dict) -> tuple[dict[str, Any], dict[str, list]]:
    """The step's output parameters and artifacts, from ``executor_output.json`` and the
    output parameter files. Raises ProtocolError when a declared parameter is missing."""
    output_file = Path(executor["outputs"]["outputFile"])
    try:
        written = json.loads(read_limited(output_file, MAX_EXECUTOR_OUTPUT_BYTES)) \
            if output_file.exists() else {}
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"its {EXECUTOR_OUTPUT} cannot be read: {exc}") from exc
    values = written.get("parameterValues") or {}
    parameters: dict[str, Any] = {}
    for name, definition in _definitions(component, "outputDefinitions", "parameters").items():
        if name in values:
            parameters[name] = values[name]
            continue
        path = Path(executor["outputs"]["parameters"][name]["outputFile"])
        if not path.is_file():
            raise ProtocolError(f"it did not write its output parameter '{name}'")
        parameters[name] = parse_parameter(read_limited(path, MAX_PARAMETER_BYTES),
                                           (definition or {}).get("parameterType", "STRING"),
                                           name)
    reported = written.get("artifacts") or {}
    outputs: dict[str, list] = {}
    for name, declared in executor["outputs"]["artifacts"].items():
        base = declared["artifacts"][0]
        report = ((reported.get(name) or {}).get("artifacts") or [{}])[0]
        uri = report.get("uri") or base["uri"]
        path = Path(uri) if uri.startswith("/") else None
        outputs[name] = [{
            "name": name, "type": base["type"]["schemaTitle"],
            "schemaVersion": base["type"]["schemaVersion"], "uri": uri,
            "path": artifact_store.store_relative(path) if path else "",
            "metadata": report.get("metadata") or {},
            "size": artifact_store.size_of(path) if path else None,
        }]
    return parameters, outputs


def read_limited(path: Path, limit: int) -> str:
    """A file the step wrote, refused (ProtocolError) when larger than ``limit``."""
    size = path.stat().st_size
    if size > limit:
        raise ProtocolError(f"{path.name} holds {size} bytes, more than the {limit} kfdash "
                            "reads (an output parameter is a value: pass data as an artifact)")
    return path.read_text(errors="replace")


def parse_parameter(text: str, kind: str, name: str) -> Any:
    """An output parameter file's text as its declared type."""
    try:
        if kind == "NUMBER_INTEGER":
            return int(text.strip())
        if kind == "NUMBER_DOUBLE":
            return float(text.strip())
        if kind == "BOOLEAN":
            return {"true": True, "false": False}[text.strip().lower()]
        if kind in ("LIST", "STRUCT"):
            return json.loads(text)
    except (ValueError, KeyError):
        raise ProtocolError(f"its output parameter '{name}' should be {kind}, "
                            f"not {text[:100]!r}") from None
    return text


def imported_artifact(importer: dict, parameters: dict[str, Any]) -> dict:
    """The artifact a ``dsl.importer`` names: no process, no copy."""
    source = importer.get("artifactUri") or {}
    if "runtimeParameter" in source:
        uri = parameters.get(source["runtimeParameter"])
    elif "constant" in source:
        uri = source["constant"]
    else:
        uri = ((source.get("constantValue") or {}).get("stringValue"))
    if not isinstance(uri, str) or not uri:
        raise ProtocolError("the importer names no artifact URI")
    schema = importer.get("typeSchema") or {}
    metadata = substitute_all(importer.get("metadata") or {}, parameters)
    path = Path(uri) if uri.startswith("/") else None
    return {"name": "artifact", "type": schema.get("schemaTitle") or "system.Artifact",
            "schemaVersion": schema.get("schemaVersion") or DEFAULT_SCHEMA_VERSION,
            "uri": uri, "path": artifact_store.store_relative(path) if path else "",
            "metadata": metadata, "size": artifact_store.size_of(path) if path else None}


def substitute_all(value: Any, parameters: dict[str, Any]) -> Any:
    """``substitute_inputs`` in every string of a JSON value (an importer's metadata)."""
    if isinstance(value, str):
        return substitute_inputs(value, parameters)
    if isinstance(value, list):
        return [substitute_all(item, parameters) for item in value]
    if isinstance(value, dict):
        return {key: substitute_all(item, parameters) for key, item in value.items()}
    return value
