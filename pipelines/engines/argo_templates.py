"""KFP v1 steps: Argo templates, run as Argo's executor would.

``container`` and ``script`` templates run as processes; ``suspend`` with a duration is a
sleep. Argo substitutes ``{{…}}`` in a template's command, arguments, environment, script
source, suspend duration and raw input artifacts: the template's ``inputs.parameters.x``
(strings: Argo passes every parameter as text), ``inputs.artifacts.x.path`` and
``outputs.{parameters,artifacts}.x.path`` (the declared paths), ``workflow.{name,uid,
namespace,serviceAccountName,creationTimestamp,status,duration,failures}``,
``workflow.parameters.x``, ``pod.name`` and ``retries``. A script's source is written to a
file whose path ends its command (command + args + [file]), as Argo's executor does. DAG-level
text (``when``, argument values) also has ``tasks.t.outputs.parameters.p``,
``tasks.t.outputs.result`` (``steps.s.…`` in a steps template), ``inputs.parameters.x`` of
the enclosing DAG, and ``item`` / ``item.key``; the scheduler resolves those through
``substitute`` with its own lookup.

After the step, each ``outputs.parameters[].valueFrom.path`` is read (a missing file fails
the step unless the parameter has a default) and each ``outputs.artifacts[].path`` is
copied into the artifact store (missing: fails unless ``optional``; KFP's
mlpipeline-ui-metadata and mlpipeline-metrics are treated as optional, as the KFP UI does).
``outputs.result`` is the step's stdout, one trailing newline trimmed and its last 256 kB
kept, as Argo does; like Argo, kfdash captures it only when something reads it: the step
runs under a small relay that copies its stdout to the log and keeps the tail, because the
log has stdout and stderr on one pipe.

What local mode can never run (``unrunnable``: templates that need a cluster, input
artifacts in a remote store) is said when the run starts, before any step does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.specs.argo import REMOTE_ARTIFACTS
from pipelines.specs.model import Task

from .retries import duration_seconds

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


@dataclass
class StepCommand:
    argv: list[str]  # command + args (+ the script's file), placeholders resolved
    env: dict[str, str]
    source: str | None = None  # a script template's source, to write at the file argv names


def template_lookup(template: dict, parameters: dict[str, str],
                    workflow: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """What a placeholder inside the template means: its inputs and declared paths, else
    ``workflow`` (``workflow.*``, ``pod.name``, ``retries``)."""
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

    return lookup


def step_command(template: dict, lookup: Callable[[str], str | None],
                 script_file: str) -> StepCommand:
    """What runs for a container, script or timed suspend template, its placeholders
    replaced through ``lookup``; a script's source is for ``script_file``."""
    name = template.get("name", "")
    why = why_not_local(template)
    if why:
        raise TemplateError(f"the template '{name}' {why}")
    where = f"template '{name}'"

    def text(value: Any) -> str:
        return substitute(argo_text(value), lookup, where)

    if "suspend" in template:
        seconds = suspend_seconds(text(template["suspend"].get("duration")), name)
        return StepCommand(["sleep", str(seconds)], {})
    spec = template["script"] if "script" in template else template["container"]
    argv = [text(part) for part in [*(spec.get("command") or []), *(spec.get("args") or [])]]
    source = None
    if "script" in template:
        source = text(spec.get("source") or "")
        argv.append(script_file)
    env = {item["name"]: text(item["value"])
           for item in spec.get("env") or [] if "value" in item and "name" in item}
    return StepCommand(argv, env, source)


def suspend_seconds(duration: str, name: str) -> float:
    """An Argo duration ("10" seconds, "5s", "2m", "1h30m") in seconds."""
    seconds = duration_seconds(duration, -1.0)
    if not 0 <= seconds < float("inf"):
        raise TemplateError(f"the template '{name}' suspends for {duration!r}, which is not "
                            "an Argo duration")
    return seconds


# Templates that need a cluster, and why (said in the run's error).
NEEDS_A_CLUSTER = {
    "resource": "creates Kubernetes objects (resource)",
    "containerSet": "runs several containers in one pod (containerSet)",
    "http": "sends an HTTP request from the Argo controller (http)",
    "plugin": "runs an Argo executor plugin (plugin)",
    "data": "transforms artifacts in Argo's data template (data)",
}


def why_not_local(template: dict) -> str:
    """Why local mode can never run the template ("" when it can)."""
    for kind, why in NEEDS_A_CLUSTER.items():
        if kind in template:
            return why
    if "suspend" in template:
        suspend = template["suspend"]
        if not isinstance(suspend, dict) or suspend.get("duration") in (None, ""):
            return "waits until someone resumes it (suspend without a duration)"
        return ""
    script = "script" in template
    spec = template.get("script" if script else "container")
    if not isinstance(spec, dict):
        return "has nothing local mode can run (no container, script or suspend)"
    if not spec.get("command") and (script or not spec.get("args")):
        return "has no command (local mode cannot read the image's entrypoint)"
    return ""


def unrunnable(document: dict, tasks: list[Task]) -> str:
    """Why local mode can never run some of these tasks of the Workflow, naming their
    templates ("" when it can run them all). Said when a run starts, so that a pipeline
    that needs a cluster fails before any of its steps run, not when one is reached."""
    reasons: dict[str, list[str]] = {}
    for task in tasks:
        found = reasons.setdefault(task.component, [])
        why = why_not_local(template_of(document, task.component))
        if why and why not in found:
            found.append(why)
        for port in task.inputs:
            source = port.source
            if port.kind != "artifact" or source is None or source.kind != "constant" \
                    or not isinstance(source.value, dict):
                continue
            for key in source.value:
                said = f"gets its input artifact '{port.name}' from {REMOTE_ARTIFACTS.get(key)}"
                if key in REMOTE_ARTIFACTS and said not in found:
                    found.append(said)
    named = [f"'{name}' {' and '.join(why)}" for name, why in reasons.items() if why]
    if not named:
        return ""
    if len(named) == 1:
        return f"The template {named[0]}; local mode cannot run it, kubernetes mode can."
    return "Local mode cannot run these templates, kubernetes mode can: " \
        + "; ".join(named) + "."


# --- outputs.result -----------------------------------------------------------------------

RESULT_BYTES = 256 * 1024  # Argo keeps the last 256 kB of a step's stdout as its result

# Runs in the step interpreter (python -I -S -c): runs argv, copies its stdout to ours (the
# log) keeping the tail, and ends with it. It ignores the SIGTERM the engine sends the whole
# group, so that what the step says while it stops still reaches the log.
_RELAY = r"""
import os, select, signal, subprocess, sys, time
result, keep, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
try:
    child = subprocess.Popen(argv, stdout=subprocess.PIPE)
except OSError as exc:
    sys.stderr.write(f"kfdash: cannot run {argv[0]}: {exc}\n")
    sys.exit(127)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
out, tail, ended = child.stdout.fileno(), b"", None
while True:
    if ended is None and child.poll() is not None:
        ended = time.monotonic()
    wait = 0.2 if ended is None else ended + 1.0 - time.monotonic()
    if wait <= 0:
        break  # what the step left running holds its stdout: a pod would end here
    if not select.select([out], [], [], wait)[0]:
        continue
    data = os.read(out, 65536)
    if not data:
        break
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
    tail = (tail + data)[-keep:]
with open(result, "wb") as handle:
    handle.write(tail)
code = child.wait()
if code < 0:
    try:
        signal.signal(-code, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), -code)
    code = 128 - code
sys.exit(code)
"""


def wants_result(document: dict, task_key: str) -> bool:
    """Whether the Workflow reads ``outputs.result`` of the task (or step) named ``task_key``:
    Argo captures a step's stdout only then."""
    pattern = re.compile(rf"\b(?:tasks|steps)\.{re.escape(task_key)}\.outputs\.result\b")
    return pattern.search(json.dumps(document)) is not None


def result_command(python: str, result_file: Path, argv: list[str]) -> list[str]:
    """``argv`` under the relay that keeps the tail of its stdout in ``result_file``."""
    return [python, "-I", "-S", "-c", _RELAY, str(result_file), str(RESULT_BYTES + 1), *argv]


def read_result(result_file: Path) -> str:
    """The step's result as Argo has it: one trailing newline trimmed, the last 256 kB."""
    try:
        data = result_file.read_bytes()
    except FileNotFoundError:
        raise TemplateError("its stdout (outputs.result) was not captured") from None
    return data.removesuffix(b"\n")[-RESULT_BYTES:].decode("utf-8", errors="replace")
