"""Caching that only the running Workflow can decide, through Argo's memoization.

``argo_cache.py`` serves a task from the cache at submit when its inputs are known then. A
task with caching on whose inputs are not (an upstream output, a loop item, a condition's
branch) is memoized by Argo instead: its DAG task runs a wrapper DAG template of two tasks,

- ``cache-key``: kfdash's launcher, from kfdash's own image, with ``--cache-key-of``: it
  types the step's input parameters as the executor input does and writes the step's cache
  key (``caching.key``: the same function as everywhere in kfdash), an input artifact known
  by the URI its producer reported;
- ``run``: the step's own container template, memoized under that key (``memoize.key:
  {{inputs.parameters.kfdash-cache-key}}``, cache: the ConfigMap ``kfdash-cache`` of the
  run's namespace). On a hit Argo starts no pod and gives the node the outputs it kept
  (artifacts by reference); the watcher shows the task *Cached* and records its key, which
  also serves later runs at submit.

The wrapper takes the step's arguments and gives its outputs, so nothing around it changes.
Memoized are steps whose every input artifact's URI can reach the key step: produced by a
step that runs through the launcher (its executor output reports it), imported, or served
from the cache at submit. Not memoized: a step with retries (Argo's memoization and
``retryStrategy`` do not mix), an exit handler's step, one with a final-status input. The
key cannot be an Argo expression (they are not evaluated in ``memoize.key``), hence the
step before. Argo's controller needs to create and update ConfigMaps in the namespace.
"""

from __future__ import annotations

import json
from typing import Any

from . import argo_compile_ports as ports
from . import argo_names
from .argo_compile_ports import nonempty
from .kfdash_launcher import CACHE_KEY

CACHE_CONFIG_MAP = "kfdash-cache"
KEY_TASK = "cache-key"
RUN_TASK = "run"


def memoizable(task, launched_or_known) -> bool:
    """Whether Argo can memoize ``task``: ``launched_or_known(producer id)`` says whether a
    producer's artifacts' URIs reach the key step."""
    if task.retries or task.exit_handler or any(
            port.type == "TASK_FINAL_STATUS" for port in task.inputs):
        return False
    for port in task.inputs:
        if port.kind != "artifact" or port.source is None:
            continue
        if port.source.kind != "task_output" or not launched_or_known(port.source.task):
            return False
    return True


def wrap(step: ports.Step, executor: dict, template: dict, arguments: dict, *,
         names: tuple[str, str], launcher_image: str) -> tuple[list[dict], dict]:
    """The templates of a memoized step (its wrapper DAG first, named ``step.template``)
    and the arguments its DAG task passes. ``executor``: the step's IR executor (with the
    component, what the key hashes); ``names``: the key's and the run's templates'."""
    key_name, run_name = names
    inputs = argo_names.port_names(step.task.inputs)
    reports = ports.report_names(step, inputs)
    parameters = [p["name"] for p in (template.get("inputs") or {}).get("parameters") or []]
    artifacts = [a["name"] for a in (template.get("inputs") or {}).get("artifacts") or []]
    arguments = {"parameters": list(arguments.get("parameters") or []),
                 "artifacts": list(arguments.get("artifacts") or [])}
    passed = {p["name"] for p in arguments["parameters"]}
    for port_name, (_, report) in step.reports.items():
        if reports[port_name] not in passed:  # a step not launched takes no report itself
            arguments["parameters"].append({"name": reports[port_name], "value": report})
    wrapper_inputs = [p["name"] for p in arguments["parameters"]]
    run = {**template, "name": run_name,
           "inputs": {**(template.get("inputs") or {}),
                      "parameters": [*[{"name": n} for n in parameters], {"name": CACHE_KEY}]},
           "memoize": {"key": f"{{{{inputs.parameters.{CACHE_KEY}}}}}", "maxAge": "",
                       "cache": {"configMap": {"name": CACHE_CONFIG_MAP}}}}
    outputs = template.get("outputs") or {}
    wrapper: dict[str, Any] = {
        "name": step.template,
        "inputs": nonempty(parameters=[{"name": n} for n in wrapper_inputs],
                            artifacts=[{"name": n} for n in artifacts]),
        "dag": {"tasks": [
            {"name": KEY_TASK, "template": key_name, "arguments": {"parameters": [
                _passed(n) for n in wrapper_inputs]}},
            {"name": RUN_TASK, "template": run_name, "dependencies": [KEY_TASK],
             "arguments": nonempty(
                 parameters=[*[_passed(n) for n in parameters],
                             {"name": CACHE_KEY, "value": f"{{{{tasks.{KEY_TASK}.outputs."
                                                          f"parameters.{CACHE_KEY}}}}}"}],
                 artifacts=[{"name": n, "from": f"{{{{inputs.artifacts.{n}}}}}"}
                            for n in artifacts])},
        ]},
    }
    wrapped_outputs = nonempty(
        parameters=[{"name": p["name"], "valueFrom": {
            "parameter": f"{{{{tasks.{RUN_TASK}.outputs.parameters.{p['name']}}}}}"}}
            for p in outputs.get("parameters") or []],
        artifacts=[{"name": a["name"],
                    "from": f"{{{{tasks.{RUN_TASK}.outputs.artifacts.{a['name']}}}}}"}
                   for a in outputs.get("artifacts") or []])
    if wrapped_outputs:
        wrapper["outputs"] = wrapped_outputs
    key = _key_template(step, executor, key_name, inputs, reports, wrapper_inputs,
                        launcher_image)
    return [wrapper, key, run], nonempty(**arguments)


def _key_template(step: ports.Step, executor: dict, name: str, inputs: dict[str, str],
                  reports: dict[str, str], parameters: list[str], launcher_image: str) -> dict:
    args = ["--cache-key-of", json.dumps({"component": step.component, "executor": executor},
                                         sort_keys=True, separators=(",", ":")),
            *ports.input_args(step, inputs, reports)]
    mount = {"name": ports.OUTPUTS_VOLUME, "mountPath": ports.OUTPUT_PARAMETERS,
             "subPath": "parameters"}
    return {
        "name": name,
        "inputs": {"parameters": [{"name": n} for n in parameters]},
        "outputs": {"parameters": [{"name": CACHE_KEY, "valueFrom": {
            "path": f"{ports.OUTPUT_PARAMETERS}/{CACHE_KEY}"}}]},
        "container": {"name": argo_names.MAIN_CONTAINER, "image": launcher_image,
                      "command": ["python3", ports.LAUNCHER_SOURCE],
                      "args": [*args, "--"], "volumeMounts": [mount]},
        "volumes": [{"name": ports.OUTPUTS_VOLUME, "emptyDir": {}}],
    }


def _passed(name: str) -> dict:
    return {"name": name, "value": f"{{{{inputs.parameters.{name}}}}}"}
