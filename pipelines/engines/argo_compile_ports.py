"""The step side of a KFP v2 run's Argo Workflow: a container template per task, its ports,
placeholders, artifact locations, retries, and trigger conditions as Argo ``when`` text.

``argo_compile.py`` decides where every value comes from (DAG-level text with Argo
placeholders) and hands each task here as a ``Step``.

Paths inside a step's pod (fixed, so the templates are plain data):

- ``/tmp/kfdash/inputs/artifacts/<argo name>``: input artifacts, placed by Argo;
- ``/tmp/kfdash/outputs/parameters/<argo name>``: output parameters, read by Argo
  (``valueFrom.path``), and ``kfdash-executor-output`` for a launched step;
- ``/tmp/kfdash/outputs/artifacts/<argo name>``: output artifacts, stored by Argo in S3 at
  ``<key_prefix>/<namespace>/<workflow>/<pod>/<argo name>.tgz`` (Argo's tar.gz);
- ``/kfdash/kfdash_launcher.py``: the launcher, for launched steps.

The two output folders are emptyDir mounts (subPaths of one volume), so they exist before the
program starts whatever its image, as KFP's launcher makes them.

A step whose command or outputs need the executor protocol (``{{$}}``, the executor output
file, an artifact's metadata, a PipelineTaskFinalStatus input, or a task uuid in a value) runs
through ``kfdash_launcher.py`` (its docstring documents its arguments): an init container
copies it from kfdash's image into an emptyDir at /kfdash, the main container runs
``python3 /kfdash/kfdash_launcher.py <options> -- <command and args as the IR writes them>``,
and the template has one more output parameter, ``kfdash-executor-output`` (the artifacts'
URIs and metadata, ``{}`` when the step fails before writing it). Such a step also gets, for
each input artifact, an input parameter ``kfdash-metadata-<argo name>`` carrying its
producer's ``kfdash-executor-output`` (a JSON literal for an imported artifact, ``{}`` for a
container component's), from which the launcher takes the artifact's URI and metadata. Any
other container component runs as written, its placeholders replaced by Argo ones here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.specs.model import Port, Task

from . import argo_names
from .executor_protocol import schema_version, substitute_all
from .expressions import ExpressionError, _tokens
from .kfdash_launcher import IO, PLACEHOLDER, ROOT, expand_structures

if TYPE_CHECKING:
    from collections.abc import Callable

    from .argo_compile import S3Repository

INPUT_ARTIFACTS = f"{ROOT}/inputs/artifacts"
OUTPUT_PARAMETERS = f"{ROOT}/outputs/parameters"
OUTPUT_ARTIFACTS = f"{ROOT}/outputs/artifacts"
OUTPUTS_VOLUME = "kfdash-outputs"
LAUNCHER_VOLUME = "kfdash-launcher"
LAUNCHER_DIR = "/kfdash"
LAUNCHER = f"{LAUNCHER_DIR}/kfdash_launcher.py"
# Where kfdash's image keeps the launcher (the Dockerfile copies pipelines/ to /app).
LAUNCHER_SOURCE = "/app/pipelines/engines/kfdash_launcher.py"
LAUNCHER_CONTAINER = "kfdash-launcher"
# {{$.<key>}} placeholders about the run, and what they are in a step's container. In DAG-level
# text (a parameter value) the pod's name is not known: only the launcher can fill in that one.
CONTEXT_KEYS = ("pipeline_job_name", "pipeline_job_resource_name", "pipeline_job_uuid",
                "pipeline_task_name", "pipeline_task_uuid", "pipeline_job_create_time_utc",
                "pipeline_job_schedule_time_utc", "pipeline_root")
POD_ONLY = {"pipeline_task_uuid"}
WORKSPACE = "workspace_path"
CONVERSIONS = {"int": False, "double": False, "float": False, "bool": False, "string": True}
UNQUOTED_TYPES = {"NUMBER_INTEGER", "NUMBER_DOUBLE", "BOOLEAN"}


class NeedsLauncher(Exception):
    """A placeholder only the launcher can fill in."""


@dataclass
class Step:
    """One task's container template, as the DAG side resolved it."""

    task: Task
    component: dict  # the IR component
    container: dict  # the IR executor's container, as written
    template: str  # the template's name
    launcher: bool
    context: dict[str, str]  # {{$.<key>}} → its value in the container
    # KFP input name → DAG-level text (only the inputs that have a value)
    parameters: dict[str, str] = field(default_factory=dict)
    # KFP input name → its Argo argument without the name ({"from": …} or a location)
    artifacts: dict[str, dict] = field(default_factory=dict)
    # KFP input artifact name → (the producer's output name, its executor-output text)
    reports: dict[str, tuple[str, str]] = field(default_factory=dict)
    memoized: bool = False  # Argo memoizes it under its cache key (argo_compile_cache.py)

    @property
    def where(self) -> str:
        return f"The task '{self.task.id}'"


def run_context(task: Task, run_id: str, run_name: str, repository: S3Repository) -> dict:
    """``{{$.<key>}}`` placeholders about the run → their values in the step's container."""
    return {
        "pipeline_job_name": run_name,
        "pipeline_job_resource_name": "{{workflow.name}}",
        "pipeline_job_uuid": run_id,
        "pipeline_task_name": task.name,
        "pipeline_task_uuid": "{{pod.name}}",
        "pipeline_job_create_time_utc": "{{workflow.creationTimestamp}}",
        "pipeline_job_schedule_time_utc": "{{workflow.creationTimestamp}}",
        "pipeline_root": f"s3://{repository.bucket}/"
                         + repository.run_key("{{workflow.namespace}}", "{{workflow.name}}"),
    }


def context_keys(text: str) -> set[str]:
    return {m.group("expr")[1:] for m in PLACEHOLDER.finditer(text)
            if m.group("expr").startswith(".") and IO.fullmatch(m.group("expr")) is None}


def needs_launcher(task: Task, container: dict, present: set[str],
                   values: list[str]) -> bool:
    """Whether the step must run through the launcher (see the module docstring);
    ``values`` are the DAG-level texts of its parameter values."""
    if any(port.type == "TASK_FINAL_STATUS" for port in task.inputs):
        return True
    if any(POD_ONLY & context_keys(value) for value in values):
        return True
    try:
        _static_argv(_argv(container), task, present, dict.fromkeys(CONTEXT_KEYS, ""))
    except NeedsLauncher:
        return True
    return False


def _argv(container: dict) -> list[str]:
    return [*map(str, container.get("command") or []), *map(str, container.get("args") or [])]


def _static_argv(argv: list[str], task: Task, present: set[str], context: dict[str, str],
                 ) -> list[str]:
    where = f"The task '{task.id}'"
    try:
        expanded = expand_structures(argv, present)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    inputs, outputs = argo_names.port_names(task.inputs), argo_names.port_names(task.outputs)
    declared_outputs = {port.name for port in task.outputs}

    def value(match: re.Match) -> str:
        expr = match.group("expr")
        if expr in ("", ".outputs.output_file", ".outputMetadataUri"):
            raise NeedsLauncher
        key = expr.lstrip(".")
        if key in context:
            return context[key]
        if key == WORKSPACE:
            raise ValueError(f"{where} uses dsl.WORKSPACE_PATH_PLACEHOLDER: a pipeline "
                             "workspace is not supported on Argo yet")
        io = IO.fullmatch(expr)
        unknown = ValueError(f"{where} uses the placeholder {{{{${expr}}}}}, which kfdash "
                             "does not know")
        if io is None:
            raise unknown
        side, kind, name, part = io.group("side", "kind", "name", "field")
        if side == "outputs" and name not in declared_outputs:
            raise unknown
        if kind == "parameters":
            if side == "inputs" and not part:
                return f"{{{{inputs.parameters.{inputs[name]}}}}}" if name in present else "null"
            if side == "outputs" and part == "output_file":
                return f"{OUTPUT_PARAMETERS}/{outputs[name]}"
            raise unknown
        if part == "metadata":
            raise NeedsLauncher
        if part not in ("path", "uri"):
            raise unknown
        if side == "outputs":
            return f"{OUTPUT_ARTIFACTS}/{outputs[name]}"
        if name not in present:
            raise ValueError(f"{where} uses the path of its input artifact '{name}', which "
                             "has no value")
        return f"{INPUT_ARTIFACTS}/{inputs[name]}"

    return [PLACEHOLDER.sub(value, part) for part in expanded]


def step_template(step: Step, repository: S3Repository, launcher_image: str,
                  ) -> tuple[dict, dict]:
    """The container template of ``step`` and the ``arguments`` its DAG task passes."""
    task, inputs = step.task, argo_names.port_names(step.task.inputs)
    outputs = argo_names.port_names(task.outputs)
    in_parameters, in_artifacts, arguments = [], [], {"parameters": [], "artifacts": []}
    reports = report_names(step, inputs)
    for port in task.inputs:
        name = inputs[port.name]
        if port.name in step.parameters:
            in_parameters.append({"name": name})
            arguments["parameters"].append({"name": name, "value": step.parameters[port.name]})
        elif port.name in step.artifacts:
            in_artifacts.append({"name": name, "path": f"{INPUT_ARTIFACTS}/{name}"})
            arguments["artifacts"].append({"name": name, **step.artifacts[port.name]})
            if step.launcher:
                in_parameters.append({"name": reports[port.name]})
                arguments["parameters"].append({"name": reports[port.name],
                                                "value": step.reports[port.name][1]})
    out_parameters, out_artifacts = [], []
    for port in task.outputs:
        name = outputs[port.name]
        if port.kind == "artifact":
            key = repository.run_key("{{workflow.namespace}}", "{{workflow.name}}",
                                     "{{pod.name}}", f"{name}.tgz")
            out_artifacts.append({"name": name, "path": f"{OUTPUT_ARTIFACTS}/{name}",
                                  "s3": repository.s3(key)})
        else:
            out_parameters.append({"name": name,
                                   "valueFrom": {"path": f"{OUTPUT_PARAMETERS}/{name}"}})
    if step.launcher:
        out_parameters.append({"name": argo_names.EXECUTOR_OUTPUT, "valueFrom": {
            "path": f"{OUTPUT_PARAMETERS}/{argo_names.EXECUTOR_OUTPUT}", "default": "{}"}})
    container = _container(step, inputs, outputs, reports, repository)
    mounts, volumes = [], []
    if out_parameters or out_artifacts:
        volumes.append({"name": OUTPUTS_VOLUME, "emptyDir": {}})
        if out_parameters:
            mounts.append({"name": OUTPUTS_VOLUME, "mountPath": OUTPUT_PARAMETERS,
                           "subPath": "parameters"})
        if out_artifacts:
            mounts.append({"name": OUTPUTS_VOLUME, "mountPath": OUTPUT_ARTIFACTS,
                           "subPath": "artifacts"})
    template: dict[str, Any] = {"name": step.template}
    if in_parameters or in_artifacts:
        template["inputs"] = nonempty(parameters=in_parameters, artifacts=in_artifacts)
    if out_parameters or out_artifacts:
        template["outputs"] = nonempty(parameters=out_parameters, artifacts=out_artifacts)
    if step.launcher:
        launcher_mount = {"name": LAUNCHER_VOLUME, "mountPath": LAUNCHER_DIR}
        volumes.append({"name": LAUNCHER_VOLUME, "emptyDir": {}})
        mounts.append(dict(launcher_mount))
        template["initContainers"] = [{
            "name": LAUNCHER_CONTAINER, "image": launcher_image,
            "command": ["cp", LAUNCHER_SOURCE, LAUNCHER], "volumeMounts": [launcher_mount]}]
    if mounts:
        container["volumeMounts"] = mounts
    template["container"] = container
    if volumes:
        template["volumes"] = volumes
    retry = retry_strategy(task)
    if retry:
        template["retryStrategy"] = retry
    return template, nonempty(**arguments)


def nonempty(**lists: list) -> dict:
    return {key: value for key, value in lists.items() if value}


def report_names(step: Step, inputs: dict[str, str]) -> dict[str, str]:
    """The input parameter carrying each input artifact's producer report (launched steps)."""
    taken = set(inputs.values())
    names = {}
    for name in step.artifacts:
        base = f"kfdash-metadata-{inputs[name]}"[:argo_names.PORT_NAME_LIMIT]
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base[:argo_names.PORT_NAME_LIMIT - 4]}-{number}"
        taken.add(candidate)
        names[name] = candidate
    return names


def _container(step: Step, inputs: dict[str, str], outputs: dict[str, str],
               report_names: dict[str, str], repository: S3Repository) -> dict:
    task, spec = step.task, step.container
    container: dict[str, Any] = {"name": argo_names.MAIN_CONTAINER,
                                 "image": spec.get("image") or ""}
    present = set(step.parameters) | set(step.artifacts)
    if step.launcher:
        container["command"] = ["python3", LAUNCHER]
        container["args"] = [*_launcher_args(step, inputs, outputs, report_names, repository),
                             "--", *_argv(spec)]
    else:
        command = [str(part) for part in spec.get("command") or []]
        args = [str(part) for part in spec.get("args") or []]
        if command:
            container["command"] = _static_argv(command, task, present, step.context)
        if args:
            container["args"] = _static_argv(args, task, present, step.context)
    if not container["image"]:
        raise ValueError(f"{step.where} names no container image")
    if task.container and task.container.env:
        container["env"] = [{"name": k, "value": v} for k, v in task.container.env.items()]
    if task.container and task.container.resources:
        container["resources"] = {section: dict(values) for section, values
                                  in task.container.resources.items() if values}
    return container


def _launcher_args(step: Step, inputs: dict[str, str], outputs: dict[str, str],
                   report_names: dict[str, str], repository: S3Repository) -> list[str]:
    task, component = step.task, step.component
    args = input_args(step, inputs, report_names)
    for port in task.outputs:
        name = outputs[port.name]
        if port.kind == "artifact":
            version = schema_version(component, "outputDefinitions", port.name)
            key = repository.run_key("{{workflow.namespace}}", "{{workflow.name}}",
                                     "{{pod.name}}", f"{name}.tgz")
            args += ["--output-artifact", port.name, name, f"{port.type}@{version}",
                     f"s3://{repository.bucket}/{key}"]
        else:
            args += ["--output-parameter", port.name, name, port.type]
    used = set().union(*(context_keys(text) for text in [*_argv(step.container),
                                                          *step.parameters.values()]))
    for key in sorted(used):
        if key == WORKSPACE:
            raise ValueError(f"{step.where} uses dsl.WORKSPACE_PATH_PLACEHOLDER: a pipeline "
                             "workspace is not supported on Argo yet")
        if key in step.context:
            args += ["--context", key, step.context[key]]
    return args


def input_args(step: Step, inputs: dict[str, str], report_names: dict[str, str]) -> list[str]:
    """The launcher's ``--parameter`` and ``--input-artifact`` options for the step's
    inputs, as Argo fills them in (a step's, and its key step's)."""
    args: list[str] = []
    for port in step.task.inputs:
        if port.name in step.parameters:
            args += ["--parameter", port.name, port.type,
                     f"{{{{inputs.parameters.{inputs[port.name]}}}}}"]
        elif port.name in step.artifacts:
            version = schema_version(step.component, "inputDefinitions", port.name)
            args += ["--input-artifact", port.name, inputs[port.name], f"{port.type}@{version}",
                     step.reports[port.name][0],
                     f"{{{{inputs.parameters.{report_names[port.name]}}}}}"]
    return args


def retry_strategy(task: Task) -> dict | None:
    """Argo's retryStrategy for a KFP retry policy (KFP's default factor is 2)."""
    if task.retries <= 0:
        return None
    strategy: dict[str, Any] = {"limit": str(task.retries), "retryPolicy": "Always"}
    policy = task.retry_policy or {}
    backoff = {}
    if policy.get("backoffDuration"):
        backoff["duration"] = str(policy["backoffDuration"])
        factor = policy.get("backoffFactor") or 2
        try:
            whole = float(factor).is_integer()
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise ValueError(f"The task '{task.id}' retries with a backoff factor of {factor}: "
                             "Argo takes whole numbers only")
        backoff["factor"] = str(int(float(factor)))
    if policy.get("backoffMaxDuration"):
        backoff["maxDuration"] = str(policy["backoffMaxDuration"])
    if backoff:
        strategy["backoff"] = backoff
    return strategy


def artifact_location(uri: str, repository: S3Repository, where: str) -> dict:
    """The Argo artifact location (without a name) of an imported artifact's URI."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme in ("s3", "minio") and bucket and key:
        return {"s3": repository.s3(key, bucket)}
    if scheme in ("http", "https") and rest:
        return {"http": {"url": uri}}
    if scheme == "gs" and bucket and key:
        return {"gcs": {"bucket": bucket, "key": key}}
    raise ValueError(f"{where} imports '{uri}': Argo reads artifacts from s3://, minio://, "
                     "gs:// and http(s):// URIs only")


def imported_artifact(importer: Task, values: dict[str, Any], where: str) -> tuple[str, dict]:
    """An importer's URI and metadata, given the values of its inputs."""
    source = importer.importer.get("artifactUri") or {}
    if "runtimeParameter" in source:
        uri = values.get(source["runtimeParameter"])
    else:
        uri = source.get("constant") or (source.get("constantValue") or {}).get("stringValue")
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"{where} names no artifact URI")
    return uri, substitute_all(importer.importer.get("metadata") or {}, values)


# --- trigger conditions ---------------------------------------------------------------


def argo_when(condition: str, lookup: Callable[[str], tuple[str, str]], where: str) -> str:
    """A KFP v2 trigger condition (the CEL subset the kfp compiler writes) as Argo's
    govaluate ``when``. ``lookup(name)`` gives the input ``inputs.parameter_values['name']``
    reads: its KFP type and its DAG-level text. Text values are quoted, numbers and booleans
    (and int()/double()/bool() conversions) are not. ValueError naming ``where`` otherwise."""
    try:
        parser = _When(_tokens(condition), condition, lookup)
        text = parser.expression()
        if parser.peek() is not None:
            raise ExpressionError(f"unexpected '{parser.peek()[1]}'")
    except ExpressionError as exc:
        raise ValueError(f"{where} has a condition Argo cannot express: {condition!r} ({exc})"
                         ) from None
    return text


class _When:
    def __init__(self, tokens: list, text: str, lookup: Callable[[str], tuple[str, str]]):
        self.tokens, self.position, self.text, self.lookup = tokens, 0, text, lookup

    def peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, op: str | None = None):
        token = self.peek()
        if token is None:
            raise ExpressionError("it ends too early")
        if op is not None and token != ("op", op):
            raise ExpressionError(f"expected '{op}' but found '{token[1]}'")
        self.position += 1
        return token

    def at(self, op: str) -> bool:
        return self.peek() == ("op", op)

    def expression(self) -> str:
        parts = [self.conjunction()]
        while self.at("||"):
            self.take()
            parts.append(self.conjunction())
        return " || ".join(parts)

    def conjunction(self) -> str:
        parts = [self.comparison()]
        while self.at("&&"):
            self.take()
            parts.append(self.comparison())
        return " && ".join(parts)

    def comparison(self) -> str:
        left = self.unary()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in ("==", "!=", "<", "<=", ">",
                                                                     ">="):
            self.take()
            return f"{left} {token[1]} {self.unary()}"
        return left

    def unary(self) -> str:
        if self.at("!"):
            self.take()
            return "!" + self.unary()
        if self.at("-"):
            self.take()
            return "-" + self.unary()
        return self.primary()

    def primary(self) -> str:
        kind, value = self.take()
        if kind == "number":
            return str(value)
        if kind == "string":
            return _quote(value)
        if kind == "op" and value == "(":
            inner = self.expression()
            self.take(")")
            return f"({inner})"
        if kind == "name" and value in ("true", "false"):
            return value
        if kind == "name" and value in CONVERSIONS and self.at("("):
            self.take("(")
            inner = self.operand(quoted=CONVERSIONS[value])
            self.take(")")
            return inner
        if kind == "name" and value == "inputs":
            kind_of, text = self.parameter()
            return text if kind_of in UNQUOTED_TYPES else _quote(text)
        raise ExpressionError(f"'{value}' is not something Argo's when can read")

    def operand(self, quoted: bool) -> str:
        """The argument of a conversion: a parameter value or a literal."""
        if self.peek() == ("name", "inputs"):
            self.take()
            _, text = self.parameter()
            return _quote(text) if quoted else text
        kind, value = self.take()
        if kind == "number" and not quoted:
            return str(value)
        if kind == "string":
            return _quote(value) if quoted else value
        raise ExpressionError(f"cannot convert '{value}'")

    def parameter(self) -> tuple[str, str]:
        self.take(".")
        _, name = self.take()
        if name != "parameter_values":
            raise ExpressionError(f"unknown field inputs.{name}")
        self.take("[")
        kind, key = self.take()
        if kind != "string":
            raise ExpressionError("inputs.parameter_values takes a quoted name")
        self.take("]")
        return self.lookup(key)


def _quote(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise ExpressionError(f"{text!r} holds both kinds of quotes")


def input_port(ports: list[Port], name: str, where: str) -> Port:
    port = next((p for p in ports if p.name == name), None)
    if port is None or port.source is None:
        raise ValueError(f"{where} has a condition on '{name}', which has no value")
    return port
