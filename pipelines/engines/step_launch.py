"""From a step instance to a process, and back to its outputs, for both formats.

``prepare_inputs`` (in the scheduler, when the step becomes ready) resolves its inputs,
its own condition and its cache key, and runs importers (no process). ``prepare`` (on a
worker, for each attempt) makes the attempt's folders and log, builds the command and
environment, and returns a ``Prepared`` whose ``collect`` reads the outputs afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from pipelines.choices import TaskState

from . import argo_templates, caching, executor_protocol, isolation, layout, python_steps
from . import artifacts as artifact_store
from .logs import LogWriter
from .processes import TAG, Launch
from .warm_python import WarmPython

# Variables that must be set before an interpreter starts: a step setting one gets a
# fresh interpreter instead of a fork of the warm one.
_STARTUP_VARIABLES = ("PYTHONHASHSEED", "PYTHONOPTIMIZE", "PYTHONDONTWRITEBYTECODE",
                      "PYTHONWARNINGS", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONNOUSERSITE",
                      "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONMALLOC", "PYTHONDEVMODE")


@dataclass
class Prepared:
    launch: Launch
    log: LogWriter
    folder: Path
    timeout: float
    mode: str  # how it runs: "warm python", "process", "namespace", "rewrite"
    command: list[str]  # what a cluster would run, placeholders resolved
    # (output parameters, output artifacts, Argo's outputs.result or None)
    collect: Callable[[], tuple[dict, dict, str | None]]
    warm: WarmPython | None = None
    before: Callable[[], None] = lambda: None  # inside ``hold``: place inputs
    hold: Callable = field(default=contextlib.nullcontext)


def prepare_inputs(execution, instance) -> str:
    """Resolve a ready step's inputs and cache key onto its row: "done" when it needed no
    process (an importer), else "ready"."""
    task = instance.spec
    row = instance.row
    if execution.is_v2:
        component, executor = executor_protocol.component_parts(execution.run.document,
                                                                task.component)
        optional = executor_protocol.optional_inputs(component)
        identity = {"component": component, "executor": executor}
    else:
        template = argo_templates.template_of(execution.run.document, task.component)
        optional = set()
        identity = argo_templates.component_identity(template)
        if _wants_result(execution, instance):  # a cached copy must have kept it
            identity["outputs.result"] = True
    parameters, artifacts = execution.task_inputs(instance, optional)
    row.inputs = {"parameters": parameters, "artifacts": artifacts}
    if task.importer:
        entry = executor_protocol.imported_artifact(task.importer, parameters)
        entry["fingerprint"] = entry["uri"]
        row.outputs = {"parameters": {}, "artifacts": {"artifact": [entry]}}
        execution.extra_rows += artifact_store.rows(execution.run, row, row.outputs["artifacts"])
        execution._end(instance, TaskState.SUCCEEDED, "")
        return "done"
    row.cache_key = caching.key(identity, parameters, artifacts)
    return "ready"


def step_environment(execution, attempt_folder: Path, declared: dict[str, str]) -> dict[str, str]:
    env = {**execution.engine.base_env(), **declared}
    env.update({TAG: str(attempt_folder), "TMPDIR": str(attempt_folder / "tmp"),
                "PYTHONUNBUFFERED": "1"})
    return env


def _fresh_attempt(execution, instance, attempt: int) -> Path:
    folder = layout.attempt_folder(execution.namespace, execution.run.pk, instance.node_id,
                                   attempt)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:  # started by a process that died before recording it
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for sub in ("work", "tmp"):
        (folder / sub).mkdir()
    return folder


def _python_argv(argv: list[str], python: str) -> list[str]:
    """``python3``/``python`` at the head of a command mean the step interpreter."""
    if argv and argv[0] in python_steps.PYTHON_NAMES:
        return [python, *argv[1:]]
    return list(argv)


def prepare(execution, instance, attempt: int) -> Prepared:
    if execution.is_v2:
        return _prepare_v2(execution, instance, attempt)
    return _prepare_v1(execution, instance, attempt)


def _log(execution, instance, attempt: int, folder: Path, mode: str) -> LogWriter:
    writer = LogWriter(folder / "log", settings.KFDASH_MAX_LOG_BYTES)
    task = instance.spec
    image = task.container.image if task.container else ""
    writer.note(f"attempt {attempt} of {execution.allowed_attempts(instance)} on this host "
                f"({mode}); a cluster would pull the image {image or '(none)'}")
    return writer


def _prepare_v2(execution, instance, attempt: int) -> Prepared:
    task, row, run = instance.spec, instance.row, execution.run
    engine = execution.engine
    component, executor = executor_protocol.component_parts(run.document, task.component)
    container = executor.get("container")
    if not isinstance(container, dict):
        raise executor_protocol.ProtocolError(
            f"its executor has no container ({', '.join(executor) or 'nothing'})")
    folder = _fresh_attempt(execution, instance, attempt)
    outputs_dir = folder / "outputs"
    outputs_dir.mkdir()

    def artifact_uri(name: str) -> Path:
        path = layout.artifact_path(execution.namespace, run.pk, instance.node_id, name)
        artifact_store.clear(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    inputs = row.inputs or {}
    executor_input = executor_protocol.executor_input(
        component, inputs.get("parameters") or {}, inputs.get("artifacts") or {}, outputs_dir,
        artifact_uri)
    run_folder = layout.run_folder(execution.namespace, run.pk)
    created = run.created_at.isoformat().replace("+00:00", "Z")
    context = {
        "pipeline_job_name": run.name, "pipeline_job_resource_name": f"run-{run.pk}",
        "pipeline_job_uuid": str(run.pk), "pipeline_task_name": task.name,
        "pipeline_task_uuid": str(row.pk),
        "pipeline_root": run.pipeline_root or str(layout.run_artifacts(execution.namespace,
                                                                       run.pk)),
        "pipeline_job_create_time_utc": created, "pipeline_job_schedule_time_utc": created,
        "workspace_path": str(run_folder / "workspace"),
    }
    executor_protocol.resolve_values(executor_input, context)
    argv = executor_protocol.resolve_command(
        [*(container.get("command") or []), *(container.get("args") or [])],
        executor_input, context)
    if any("workspace" in part for part in argv):
        (run_folder / "workspace").mkdir(parents=True, exist_ok=True)
    python = engine.step_python
    env = step_environment(execution, folder, task.container.env if task.container else {})
    recognized = python_steps.recognize(argv)
    command, notes = argv, []
    if recognized.requirements is not None:
        missing = recognized.requirements if recognized.uncheckable else \
            python_steps.missing(recognized.requirements, python, env)
        if missing:
            target = folder / "site-packages"
            env["PIP_TARGET"] = str(target)
            env["PYTHONPATH"] = ":".join(p for p in (str(target), env.get("PYTHONPATH")) if p)
            notes.append("installing what the step interpreter lacks into the step's folder "
                         f"(needs the network): {', '.join(missing)}")
        else:
            command = recognized.command
            notes.append("the pip install before the component was skipped: "
                         f"{', '.join(recognized.requirements)} already installed")
    python_step = recognized.python if command is recognized.command else None
    warm = None
    timeout = executor_protocol.executor_timeout(run.platform_spec, component) \
        or settings.KFDASH_STEP_TIMEOUT
    if python_step is None:
        launch = Launch(_python_argv(command, python), folder / "work", env, str(folder))
        mode = "process"
    else:
        args = list(python_step.args)
        if python_step.source is not None:
            program = folder / "ephemeral_component.py"
            program.write_text(python_step.source)
            args = ["--component_module_path", str(program), *args]
        env["_KFP_RUNTIME"] = "true"
        launch = Launch([python, "-m", python_step.module, *args], folder / "work", env,
                        str(folder))
        warm = engine.warm_python() if _warm_allowed(env) else None
        if warm is not None:
            launch.warm_module, launch.warm_args = python_step.module, args
            launch.request_file = folder / "warm-request.json"
        mode = "warm python" if warm is not None else "process"
    _limit_memory(launch, task, engine)
    step_log = _log(execution, instance, attempt, folder, mode)
    for note in notes:
        step_log.note(note)

    def collect() -> tuple[dict, dict, None]:
        return (*executor_protocol.read_outputs(component, executor_input), None)

    return Prepared(launch, step_log, folder, timeout, mode, argv, collect, warm=warm)


def _limit_memory(launch: Launch, task, engine) -> None:
    """The step runs under its memory limit (``set_memory_limit``, a container's
    ``resources.limits.memory``), else under the admin's default for steps."""
    limits = (task.container.resources.get("limits") or {}) if task.container else {}
    launch.memory_limit = str(limits.get("memory") or settings.KFDASH_LOCAL_STEP_MEMORY_LIMIT)
    launch.memory_cgroups = engine.memory_cgroups


def _warm_allowed(env: dict[str, str]) -> bool:
    return settings.KFDASH_STEP_WARM_PYTHON and not any(
        key in env for key in _STARTUP_VARIABLES) and not any(
        key.startswith("LD_") for key in env)


def _prepare_v1(execution, instance, attempt: int) -> Prepared:
    task, row, run = instance.spec, instance.row, execution.run
    engine = execution.engine
    template = argo_templates.template_of(run.document, task.component)
    folder = _fresh_attempt(execution, instance, attempt)
    parameters = (row.inputs or {}).get("parameters") or {}
    lookup = argo_templates.template_lookup(
        template, parameters, lambda e: execution.workflow_value(e, instance, attempt))
    script_file = folder / "script"
    step = argo_templates.step_command(template, lookup, str(script_file))
    argv = step.argv
    outputs = argo_templates.outputs(template)
    inputs = argo_templates.input_artifacts(template)
    mode = engine.isolation_mode()
    python = engine.step_python
    plan = isolation.PathPlan(mode, folder, [d.path for d in [*outputs, *inputs]],
                              keep=[str(layout.data_dir()), *isolation.interpreter_roots(python)])
    # A script's source names the declared paths as a command does: the plan maps both.
    script = [] if step.source is None else [step.source]
    exec_argv = plan.command(python, [*_python_argv(argv, python), *script])
    if script:
        *exec_argv, source = exec_argv
        script_file.write_text(source)
        script_file.chmod(0o755)
    result_file = folder / "result" if _wants_result(execution, instance) else None
    if result_file is not None:
        exec_argv = argo_templates.result_command(python, result_file, exec_argv)
    env = step_environment(execution, folder, step.env)
    if mode == "namespace":
        env["TMPDIR"] = "/tmp"
    timeout = argo_templates.timeout(template) or settings.KFDASH_STEP_TIMEOUT
    step_log = _log(execution, instance, attempt, folder, f"{mode} isolation")
    if plan.unmapped:
        step_log.note("paths used as they are (one step at a time): "
                      + ", ".join(plan.unmapped))
    given = (row.inputs or {}).get("artifacts") or {}

    def place_inputs() -> None:
        plan.prepare_outputs([d.path for d in outputs])
        for declared in inputs:
            entries = given.get(declared.name) or []
            if not entries:
                if declared.optional:
                    continue
                raise argo_templates.TemplateError(
                    f"its input artifact '{declared.name}' has no value")
            _place(entries[0], plan.host_path(declared.path), raw_text)

    def raw_text(data: str) -> str:
        return argo_templates.substitute(data, lookup, f"template '{task.component}'")

    def collect() -> tuple[dict, dict, str | None]:
        parameters_out: dict[str, Any] = {}
        artifacts_out: dict[str, list] = {}
        for declared in outputs:
            where = plan.host_path(declared.path)
            if declared.kind == "parameter":
                if where.is_file():
                    parameters_out[declared.name] = executor_protocol.read_limited(
                        where, executor_protocol.MAX_PARAMETER_BYTES).removesuffix("\n")
                elif declared.default is not None:
                    parameters_out[declared.name] = declared.default
                else:
                    raise argo_templates.TemplateError(
                        f"it did not write its output parameter '{declared.name}' at "
                        f"{declared.path}")
                continue
            if not where.exists():
                if declared.optional:
                    continue
                raise argo_templates.TemplateError(
                    f"it did not write its output artifact '{declared.name}' at "
                    f"{declared.path}")
            target = layout.artifact_path(execution.namespace, run.pk, instance.node_id,
                                          declared.name)
            artifact_store.copy(where, target)
            artifacts_out[declared.name] = [{
                "name": declared.name, "type": "system.Artifact", "uri": str(target),
                "path": artifact_store.store_relative(target), "metadata": {},
                "size": artifact_store.size_of(target)}]
        result = argo_templates.read_result(result_file) if result_file is not None else None
        return parameters_out, artifacts_out, result

    launch = Launch(exec_argv, plan.cwd, env, str(folder))
    _limit_memory(launch, task, engine)
    return Prepared(launch, step_log, folder, timeout, mode, argv, collect,
                    before=place_inputs, hold=plan.hold)


def _wants_result(execution, instance) -> bool:
    """Whether anything reads the step's ``outputs.result`` (by its name in its DAG)."""
    return argo_templates.wants_result(execution.run.document,
                                       instance.spec.id.rsplit("/", 1)[-1])


def _place(entry: dict, where: Path, substitute: Callable[[str], str]) -> None:
    """An input artifact at the path the step reads it from (raw data with its
    placeholders replaced, as Argo does)."""
    where.parent.mkdir(parents=True, exist_ok=True)
    if "raw" in entry:
        raw = entry["raw"]
        data = raw.get("raw", {}).get("data") if isinstance(raw, dict) else None
        if data is None:
            raise argo_templates.TemplateError(
                "kfdash can only provide raw input artifacts, not "
                f"{', '.join(raw) if isinstance(raw, dict) else raw!r}")
        where.write_text(substitute(str(data)))
        return
    source = layout.artifacts_root() / entry["path"] if entry.get("path") else Path(entry["uri"])
    if not source.exists():
        raise argo_templates.TemplateError(f"its input artifact {entry.get('uri')} is gone")
    artifact_store.copy(source, where)
