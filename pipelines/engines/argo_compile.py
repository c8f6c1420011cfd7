"""KFP v2 runs as Argo Workflows: ``compile_v2_workflow`` turns a run's normalized spec (and
its IR, for the executors' details) into the Workflow the Argo engine submits. A pure
function: no cluster, no database. ``validate_workflow`` checks what it returns.

The Workflow's shape, which the watcher (``argo_status.py``) relies on:

- ``spec.entrypoint`` is the DAG template of the pipeline's root; ``spec.arguments`` holds one
  parameter per pipeline parameter that has a value (text: a STRING as is, others compact
  JSON), named by ``argo_names.port_names``.
- Every spec task is a DAG task named ``argo_names.task_names(spec)[id]`` in the DAG template
  of its parent group (the root's for top-level tasks), running a container template of its
  own (``argo_compile_ports.py``). Every group is a DAG task (same naming) in its parent's
  DAG, running a DAG template that holds the group's children.
- A condition group's condition, and a task's own, is the ``when`` of its DAG task.
- A loop's DAG task carries ``withItems`` (literal items) or ``withParam`` (the placeholder of
  the list's source) and runs the DAG template of one iteration, whose input parameters carry
  the item (``{{item}}`` or ``{{item.<field>}}``). With a parallelism limit, the group's DAG
  task runs a wrapper DAG template (``parallelism: N``) holding ONE DAG task of the same name
  that loops, so node display names read ``for-loop-2`` → ``for-loop-2`` (task group) →
  ``for-loop-2(0:…)``.
- Dependencies are ``dependencies: [names]`` of siblings. A task that runs whatever happened
  upstream (an exit handler's task, ``ignore_upstream_failure``) has ``depends: "(g.Succeeded ||
  g.Failed || g.Errored || g.Skipped || g.Omitted) && …"``; Argo refuses a DAG that mixes
  ``depends`` and ``dependencies``, so its siblings then say ``depends: "a && b"`` (the
  same as ``dependencies: [a, b]``). A task also depends on every sibling whose outputs it
  reads, as Argo requires. Note that Argo counts a failure a ``depends`` handles as handled:
  when the exit task succeeds, the Workflow's phase can be Succeeded although the group it
  guards failed, so a run's state is read from its nodes, not from the Workflow's phase.
- Data: a DAG task reads a sibling's output (``{{tasks.<name>.outputs.parameters.<out>}}``),
  a pipeline parameter (``{{workflow.parameters.<name>}}``) or its template's inputs. A value
  from farther away is threaded through the DAG templates in between: an input of each group
  template on the way down, an output (``valueFrom.parameter`` / ``from``) on the way up. An
  output read from outside its loop is collected: the iteration template's output, which
  Argo aggregates into a JSON list (``dsl.Collected``). ``dsl.OneOf`` is an output of the
  template around the branches, ``valueFrom.expression`` picking the first that succeeded.
- Importers run nothing and are no DAG tasks: consumers get the artifact straight from its
  URI, and the annotation ``kfdash.io/importers`` lists their spec ids (JSON), so the watcher
  can show them done.
- Tasks served from the cache (``cached``: spec id → the outputs of the earlier execution
  serving it, as ``argo_cache.py`` decided) are no DAG tasks either: consumers read its
  parameters as constants and its artifacts straight from their URIs (as an importer's),
  and dependencies on it are dropped. They are outside loops and conditions, and never all
  of a DAG's tasks (Argo refuses an empty DAG): ``argo_cache`` guarantees both. The engine
  lists them in the annotation ``kfdash.io/cached``.
- A task Argo memoizes (``memoized``: caching on, its key only known in the run) runs a
  wrapper DAG template instead of its container template: ``cache-key`` (a step that
  works out its key) then ``run`` (its container template, memoized under that key), with
  the task's own inputs and outputs (``argo_compile_cache.py``).
- A step's kfp-kubernetes settings (the package's platform spec: secrets, volumes, node
  selectors…) are applied to its container template by ``argo_platform.py``, or refused.

Everything the compiler cannot express faithfully is a ValueError naming the construct and
where it is (the engine turns it into a failed run with that message), never a Workflow that
would run something else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.choices import SpecFormat
from pipelines.specs.model import Group, PipelineSpec, Port, Source, Task

from . import argo_compile_cache, argo_platform
from . import argo_compile_ports as ports
from .argo_manifests import API_VERSION, KEEP_EVERYTHING, KIND, Cleanup, fill_run_metadata
from .argo_names import (
    EXECUTOR_OUTPUT,
    NOT_PORT_NAME,
    NOT_TASK_NAME,
    PORT_NAME_LIMIT,
    port_names,
    task_names,
    unique_name,
)
from .argo_templates import argo_text
from .executor_protocol import component_parts, executor_config, substitute_inputs

if TYPE_CHECKING:
    from collections.abc import Callable

IMPORTERS_ANNOTATION = "kfdash.io/importers"
TEMPLATE_NAME_LIMIT = 50
ANY_OUTCOME = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted")
TASK_REFERENCE = re.compile(r"\{\{tasks\.([a-z0-9-]+)\.")
OUTPUT_REFERENCE = re.compile(r"\{\{tasks\.([a-z0-9-]+)\.outputs\.parameters\.([A-Za-z0-9_-]+)\}\}")
ITEM_FIELD = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class S3Repository:
    """The S3 (or MinIO) bucket that output artifacts go to, and the Secrets with its keys."""

    endpoint: str
    bucket: str
    insecure: bool
    access_key_secret: tuple[str, str]  # (Secret name, key)
    secret_key_secret: tuple[str, str]
    region: str = ""
    key_prefix: str = "artifacts"

    def s3(self, key: str, bucket: str = "") -> dict:
        """An Argo ``s3`` artifact location in this repository (or another of its buckets)."""
        location: dict[str, Any] = {
            "endpoint": self.endpoint, "bucket": bucket or self.bucket, "insecure": self.insecure,
            "accessKeySecret": {"name": self.access_key_secret[0],
                                "key": self.access_key_secret[1]},
            "secretKeySecret": {"name": self.secret_key_secret[0],
                                "key": self.secret_key_secret[1]},
        }
        if self.region:
            location["region"] = self.region
        location["key"] = key
        return location

    def run_key(self, *parts: str) -> str:
        return "/".join(part for part in (self.key_prefix.strip("/"), *parts) if part)


def compile_v2_workflow(spec: PipelineSpec, ir_document: dict, *, run_id: str, run_name: str,
                        namespace: str, parameters: dict[str, Any], service_account: str,
                        repository: S3Repository, launcher_image: str,
                        labels: dict | None = None,
                        cached: dict[str, dict] | None = None,
                        platform_spec: dict | None = None,
                        cleanup: Cleanup = KEEP_EVERYTHING,
                        memoized: set[str] | frozenset[str] = frozenset()) -> dict:
    """The Workflow to submit for a run of the KFP v2 pipeline ``spec`` (see the module
    docstring). ``parameters`` are the run's typed values (name → JSON value); defaults fill
    the rest. ``cached``: the tasks served from the cache, spec id → the serving execution's
    outputs (``{"parameters": {name: value}, "artifacts": {name: [{"uri", "metadata"…}]}}``).
    ``platform_spec``: the package's kfp-kubernetes settings, applied to each step's template
    (``argo_platform.py``). ``cleanup``: when Argo deletes the Workflow and its pods
    (``argo_manifests.Cleanup``). ``memoized``: the tasks whose caching is decided while
    the run runs (``argo_compile_cache.py``; those it cannot memoize just run). ValueError
    for anything Argo cannot run as the pipeline means it."""
    if spec.format != SpecFormat.KFP_V2:
        raise ValueError(f"compile_v2_workflow takes a KFP v2 pipeline, not {spec.format}")
    compiler = _Compiler(spec, ir_document, parameters, repository, launcher_image,
                         run_id, run_name, cached or {}, platform_spec, memoized)
    workflow: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": spec.name},
        "spec": {"entrypoint": compiler.root.name,
                 "arguments": {"parameters": compiler.arguments},
                 "templates": compiler.templates},
    }
    if compiler.importers:
        workflow["metadata"]["annotations"] = {
            IMPORTERS_ANNOTATION: json.dumps(sorted(compiler.importers))}
    fill_run_metadata(workflow, run_id=run_id, run_name=run_name, namespace=namespace,
                      service_account=service_account, labels=labels, cleanup=cleanup)
    return workflow


class _Dag:
    """A DAG template being built: the root's, a group's, a loop's wrapper. Inputs and outputs
    are declared as values are threaded through it; each input becomes an argument of the
    DAG task that runs it (``invoker``, in the parent DAG)."""

    def __init__(self, name: str, parent: _Dag | None = None, invoker: dict | None = None,
                 iteration: bool = False, parallelism: int = 0):
        self.name, self.parent, self.invoker = name, parent, invoker
        self.iteration, self.parallelism = iteration, parallelism
        self.tasks: list[dict] = []
        self.keys: dict[tuple, str] = {}
        self.taken: set[str] = set()
        self.inputs: dict[str, list] = {"parameters": [], "artifacts": []}
        self.outputs: dict[str, list] = {"parameters": [], "artifacts": []}

    def ancestors(self) -> list[_Dag]:
        chain, dag = [], self.parent
        while dag is not None:
            chain.append(dag)
            dag = dag.parent
        return chain

    def below(self, ancestor: _Dag) -> _Dag:
        """The DAG under ``ancestor`` on the way down to this one."""
        dag = self
        while dag.parent is not ancestor:
            dag = dag.parent
        return dag

    def _name(self, hint: str) -> str:
        name = NOT_PORT_NAME.sub("_", hint).strip("_-")[:PORT_NAME_LIMIT] or "value"
        return unique_name(name, self.taken, PORT_NAME_LIMIT)

    def declare_input(self, key: tuple, kind: str, hint: str,
                      argument: Callable[[], str]) -> str:
        if ("in", key) in self.keys:
            return self.keys[("in", key)]
        name = self.keys[("in", key)] = self._name(hint)
        value = argument()
        self.inputs[kind].append({"name": name})
        passed = {"name": name, "value": value} if kind == "parameters" else \
            {"name": name, "from": value}
        self.invoker.setdefault("arguments", {}).setdefault(kind, []).append(passed)
        return name

    def declare_output(self, key: tuple, kind: str, hint: str,
                       source: Callable[[], dict]) -> str:
        if ("out", key) in self.keys:
            return self.keys[("out", key)]
        name = self.keys[("out", key)] = self._name(hint)
        self.outputs[kind].append({"name": name, **source()})
        return name

    def template(self) -> dict:
        template: dict[str, Any] = {"name": self.name}
        for section, lists in (("inputs", self.inputs), ("outputs", self.outputs)):
            present = {kind: items for kind, items in lists.items() if items}
            if present:
                template[section] = present
        if self.parallelism:
            template["parallelism"] = self.parallelism
        template["dag"] = {"tasks": self.tasks}
        return template


@dataclass(frozen=True)
class _Value:
    """Something a DAG template can read: a task's output in the DAG that runs the task
    (``holder``), or a loop's item inside its iteration template."""

    key: tuple
    kind: str  # "parameters" | "artifacts"
    holder: _Dag
    hint: str  # the base of its names when threaded
    task: str = ""
    output: str = ""
    item: str = ""  # "{{item}}", "{{item.<field>}}"


@dataclass
class _Wiring:
    """What a DAG task waits for, settled once every value is threaded."""

    dag: _Dag
    task: dict
    dependencies: list[str] = field(default_factory=list)
    any_outcome: bool = False


class _Compiler:
    def __init__(self, spec: PipelineSpec, document: dict, parameters: dict[str, Any],
                 repository: S3Repository, launcher_image: str, run_id: str, run_name: str,
                 cached: dict[str, dict], platform_spec: dict | None = None,
                 memoized: set[str] | frozenset[str] = frozenset()):
        self.spec, self.document, self.repository = spec, document, repository
        self.platform_spec = platform_spec
        self.launcher_image, self.run_id, self.run_name = launcher_image, run_id, run_name
        self.names = task_names(spec)
        self.nodes: dict[str, Task | Group] = {n.id: n for n in [*spec.groups, *spec.tasks]}
        self.children: dict[str | None, list[Task | Group]] = {}
        for node in [*spec.groups, *spec.tasks]:
            self.children.setdefault(node.parent, []).append(node)
        self.importers = {task.id for task in spec.tasks if task.importer}
        unknown = sorted(set(cached) - {task.id for task in spec.tasks if not task.importer})
        if unknown:
            raise ValueError(f"The pipeline has no task {', '.join(map(repr, unknown))} to "
                             "serve from the cache")
        self.cached = cached
        self.memoized = memoized
        # Tasks that are no DAG tasks: their outputs are known when the run is compiled.
        self.absent = self.importers | set(cached)
        self.values = self._parameter_values(parameters)
        self.parameter_names = port_names([p.name for p in spec.parameters])
        self.arguments = [{"name": self.parameter_names[p.name],
                           "value": argo_text(self.values[p.name])}
                          for p in spec.parameters if p.name in self.values]
        self.template_names: set[str] = set()
        self.dag_list: list[_Dag] = []
        self.steps: list[dict] = []
        self.dags: dict[str | None, _Dag] = {}
        self.outer: dict[str, dict] = {}  # node id → its DAG task in its parent's DAG
        self.loops: dict[str, tuple[dict, _Dag]] = {}  # loop id → (looping task, its DAG)
        self.wiring: dict[str, _Wiring] = {}
        self.launched: dict[str, bool] = {}
        self.root = self._dag("root")
        self.dags[None] = self.root
        self._build(None)
        if not self.root.tasks and cached:
            raise ValueError("Every task of the pipeline is served from the cache: Argo "
                             "cannot run an empty DAG")
        for task in spec.tasks:
            if task.id not in self.absent:
                self.launched[task.id] = self._needs_launcher(task)
        self._wire(None)
        for wiring in self.wiring.values():
            self._settle(wiring)
        self._depends_where_mixed()
        self.templates = [dag.template() for dag in self.dag_list] + self.steps

    # --- pipeline parameters -------------------------------------------------------------

    def _parameter_values(self, given: dict[str, Any]) -> dict[str, Any]:
        declared = {p.name: p for p in self.spec.parameters}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ValueError(f"The pipeline has no parameter {', '.join(map(repr, unknown))}")
        values, missing = {}, []
        for name, parameter in declared.items():
            value = given.get(name)
            if value is None and parameter.has_default:
                value = parameter.default
            if value is None:
                if not parameter.optional:
                    missing.append(name)
                continue
            if parameter.type == "NUMBER_INTEGER" and isinstance(value, float) \
                    and value.is_integer():
                value = int(value)
            values[name] = value
        if missing:
            raise ValueError(f"No value for the parameter {', '.join(map(repr, missing))}")
        return values

    # --- structure -----------------------------------------------------------------------

    def _dag(self, hint: str, **kwargs) -> _Dag:
        dag = _Dag(self._template_name(hint), **kwargs)
        self.dag_list.append(dag)
        return dag

    def _template_name(self, hint: str) -> str:
        name = NOT_TASK_NAME.sub("-", hint.lower()).strip("-")
        if not name or not name[0].isalpha():
            name = f"t-{name}".rstrip("-")
        name = name[:TEMPLATE_NAME_LIMIT].rstrip("-")
        candidate, number = name, 1
        while candidate in self.template_names:
            number += 1
            candidate = f"{name[:TEMPLATE_NAME_LIMIT - 4].rstrip('-')}-{number}"
        self.template_names.add(candidate)
        return candidate

    def _build(self, parent: str | None) -> None:
        dag = self.dags[parent]
        for node in self.children.get(parent, []):
            if node.id in self.absent:
                continue
            task = {"name": self.names[node.id]}
            dag.tasks.append(task)
            self.outer[node.id] = task
            self.wiring[node.id] = _Wiring(dag, task)
            if isinstance(node, Group):
                self._build_group(node, dag, task)
                self._build(node.id)
                if not self.dags[node.id].tasks:
                    raise ValueError(f"The group '{node.id}' holds only importers"
                                     f"{' or cached tasks' if self.cached else ''}: Argo "
                                     "cannot run an empty DAG")

    def _build_group(self, group: Group, dag: _Dag, task: dict) -> None:
        loop = group.kind == "loop"
        if loop and group.parallelism > 0:
            content_name = self._template_name(group.id)
            wrapper = self._dag(f"{group.id}-parallelism", parent=dag, invoker=task,
                                parallelism=group.parallelism)
            looping = {"name": task["name"]}
            wrapper.tasks.append(looping)
            task["template"] = wrapper.name
            content = _Dag(content_name, parent=wrapper, invoker=looping, iteration=True)
            self.dag_list.append(content)
            self.loops[group.id] = (looping, wrapper)
        else:
            content = self._dag(group.id, parent=dag, invoker=task, iteration=loop)
            if loop:
                self.loops[group.id] = (task, dag)
        (self.loops[group.id][0] if loop else task)["template"] = content.name
        self.dags[group.id] = content

    # --- wiring ----------------------------------------------------------------------------

    def _wire(self, parent: str | None) -> None:
        for node in self.children.get(parent, []):
            if node.id in self.absent:
                continue
            if isinstance(node, Group):
                self._wire_group(node)
                self._wire(node.id)
            else:
                self._wire_task(node)

    def _wire_group(self, group: Group) -> None:
        where = f"The group '{group.id}'"
        task, wiring = self.outer[group.id], self.wiring[group.id]
        dag = wiring.dag
        wiring.dependencies = self._dependencies(group.dependencies)
        if group.depends or group.continue_on_failure:
            raise ValueError(f"{where} uses Argo's depends/continueOn, which KFP v2 does not")
        if group.condition:
            task["when"] = self._when(group.condition, group.inputs, dag, where)
        if group.kind != "loop":
            return
        looping, loop_dag = self.loops[group.id]
        if group.loop_items is not None:
            looping["withItems"] = list(group.loop_items)
        elif group.loop_source is not None and group.loop_source.kind == "constant" \
                and isinstance(group.loop_source.value, list):
            looping["withItems"] = list(group.loop_source.value)
        elif group.loop_source is not None:
            looping["withParam"] = self._text(group.loop_source, loop_dag,
                                              f"{where}'s list of items")
        else:
            raise ValueError(f"{where} loops over nothing")

    def _wire_task(self, task: Task) -> None:
        where = f"The task '{task.id}'"
        dag_task, wiring = self.outer[task.id], self.wiring[task.id]
        dag = wiring.dag
        if task.container is None:
            raise ValueError(f"{where} has no container to run")
        if task.depends or task.continue_on_failure:
            raise ValueError(f"{where} uses Argo's depends/continueOn, which KFP v2 does not")
        wiring.dependencies = self._dependencies(task.dependencies)
        wiring.any_outcome = task.exit_handler
        if task.condition:
            dag_task["when"] = self._when(task.condition, task.inputs, dag, where)
        component, executor = component_parts(self.document, task.component)
        step = ports.Step(task=task, component=component,
                          container=executor.get("container") or {},
                          template=self._template_name(task.id),
                          launcher=self.launched[task.id],
                          context=ports.run_context(task, self.run_id, self.run_name,
                                                    self.repository),
                          memoized=task.id in self.memoized and argo_compile_cache.memoizable(
                              task, lambda producer: producer in self.absent
                              or self.launched.get(producer, False)))
        declared = self._declared_inputs(component)
        for port in task.inputs:
            if port.name not in declared or port.source is None:
                continue
            if port.kind == "artifact":
                self._artifact_input(step, port, dag)
                continue
            text = self._text(port.source, dag, f"{where}, input '{port.name}'",
                              step=step)
            if text is not None:
                step.parameters[port.name] = text
        template, arguments = ports.step_template(step, self.repository, self.launcher_image)
        template = argo_platform.apply_executor_config(
            template, executor_config(self.platform_spec, component),
            parameters=self.values, where=where)
        templates = [template]
        if step.memoized:
            templates, arguments = argo_compile_cache.wrap(
                step, executor, template, arguments, launcher_image=self.launcher_image,
                names=(self._template_name(f"{task.id}-cache-key"),
                       self._template_name(f"{task.id}-run")))
        dag_task["template"] = templates[0]["name"]
        if arguments:
            dag_task["arguments"] = arguments
        self.steps.extend(templates)

    @staticmethod
    def _declared_inputs(component: dict) -> set[str]:
        definitions = component.get("inputDefinitions") or {}
        return {name for section in ("parameters", "artifacts")
                for name in (definitions.get(section) or {})}

    def _needs_launcher(self, task: Task) -> bool:
        component, executor = component_parts(self.document, task.component)
        declared = self._declared_inputs(component)
        present = {port.name for port in task.inputs
                   if port.name in declared and self._present(port.source)}
        expressions = [str(port.source.value) for port in task.inputs
                       if port.source is not None and port.source.kind == "expression"]
        return ports.needs_launcher(task, executor.get("container") or {}, present,
                                    expressions)

    def _present(self, source: Source | None) -> bool:
        if source is None:
            return False
        if source.kind == "pipeline_parameter":
            return source.parameter in self.values
        return source.kind != "constant" or source.value is not None

    def _dependencies(self, ids: list[str]) -> list[str]:
        return [self.names[i] for i in ids if i not in self.absent]

    def _when(self, condition: str, inputs: list[Port], dag: _Dag, where: str) -> str:
        def lookup(name: str) -> tuple[str, str]:
            port = ports.input_port(inputs, name, where)
            text = self._text(port.source, dag, f"{where}'s condition")
            if text is None:
                raise ValueError(f"{where} has a condition on '{name}', which has no value")
            return port.type, text

        return ports.argo_when(condition, lookup, where)

    # --- values --------------------------------------------------------------------------

    def _text(self, source: Source, dag: _Dag, where: str,
              step: ports.Step | None = None) -> str | None:
        """The DAG-level text of a parameter value in ``dag`` (None: it has no value);
        ``step`` is the task whose input it is, if it is one."""
        if source.selector and source.kind != "loop_item":
            raise ValueError(f"{where} reads the field '{source.selector}' of a value: not "
                             "supported on Argo yet")
        if source.kind == "constant":
            return None if source.value is None else argo_text(source.value)
        if source.kind == "pipeline_parameter":
            if source.parameter not in self.parameter_names:
                raise ValueError(f"{where} reads the pipeline input artifact "
                                 f"'{source.parameter}': not supported on Argo yet")
            if source.parameter not in self.values:
                return None
            return f"{{{{workflow.parameters.{self.parameter_names[source.parameter]}}}}}"
        if source.kind == "task_output":
            if source.task in self.cached:
                return argo_text(self._cached_output(source, "parameters", where))
            return self.ref(self._output(source.task, source.output, where), dag, where)
        if source.kind == "loop_item":
            return self.ref(self._item(source, where), dag, where)
        if source.kind == "one_of":
            return self.ref(self._one_of(source, where), dag, where)
        if source.kind == "task_final_status":
            return self._final_status(source, dag, where)
        if source.kind == "expression":
            if step is None:
                raise ValueError(f"{where} is an f-string outside a task's inputs: not "
                                 "supported on Argo yet")
            return self._expression(str(source.value), step, dag, where)
        raise ValueError(f"{where} reads a {source.kind} source: not supported on Argo yet")

    def _expression(self, text: str, step: ports.Step, dag: _Dag, where: str) -> str:
        """An f-string over pipeline channels and run placeholders (``{{$.pipeline_job_name}}``)
        made DAG-level text, as the KFP driver resolves it."""
        values = {}
        for port in step.task.inputs:
            if port.source is not None and port.source.kind != "expression" and \
                    (f"['{port.name}']" in text or f'["{port.name}"]' in text):
                value = self._text(port.source, dag, where)
                if value is not None:
                    values[port.name] = value
        text = substitute_inputs(text, values)

        def value(match: re.Match) -> str:
            key = match.group("expr").lstrip(".")
            if key in ports.POD_ONLY and step.launcher:
                return match.group(0)  # the launcher fills it in, with --context
            if key in step.context and key not in ports.POD_ONLY:
                return step.context[key]
            raise ValueError(f"{where} uses {match.group(0)} in a value: not supported on "
                             "Argo yet")

        return ports.PLACEHOLDER.sub(value, text)

    def _final_status(self, source: Source, dag: _Dag, where: str) -> str:
        group = self.nodes.get(source.task)
        if group is None or self.dags.get(group.parent if group else None) is not dag:
            raise ValueError(f"{where} reads the final status of '{source.task}', which is not "
                             "in its DAG: not supported on Argo yet")
        name = self.names[source.task]
        return json.dumps({"state": f"{{{{tasks.{name}.status}}}}",
                           "pipelineJobResourceName": "{{workflow.name}}",
                           "pipelineTaskName": name, "error": {}})

    def _output(self, task_id: str, output: str, where: str, report: bool = False) -> _Value:
        producer = self.nodes.get(task_id)
        if not isinstance(producer, Task):
            raise ValueError(f"{where} reads '{output}' of '{task_id}', which is no task")
        port = next((p for p in producer.outputs if p.name == output), None)
        if port is None:
            raise ValueError(f"{where} reads '{output}' of '{task_id}', which has no such "
                             "output")
        name = self.names[task_id]
        holder = self.dags[producer.parent]
        if report:
            return _Value(("report", task_id), "parameters", holder, f"{name}-metadata",
                          task=name, output=EXECUTOR_OUTPUT)
        out = port_names(producer.outputs)[output]
        kind = "artifacts" if port.kind == "artifact" else "parameters"
        return _Value(("output", task_id, output), kind, holder, f"{name}-{out}", task=name,
                      output=out)

    def _item(self, source: Source, where: str) -> _Value:
        if source.group not in self.dags:
            raise ValueError(f"{where} reads the item of '{source.group}', which is no loop")
        if source.selector and not ITEM_FIELD.fullmatch(source.selector):
            raise ValueError(f"{where} reads {source.selector!r} of a loop item: not supported "
                             "on Argo yet")
        item = f"{{{{item.{source.selector}}}}}" if source.selector else "{{item}}"
        hint = f"{self.names[source.group]}-item" + (f"-{source.selector}"
                                                     if source.selector else "")
        return _Value(("item", source.group, source.selector), "parameters",
                      self.dags[source.group], hint, item=item)

    def _one_of(self, source: Source, where: str) -> _Value:
        """dsl.OneOf: an output of the DAG template around the branches, picking the first
        option whose branch succeeded."""
        options = []
        for option in source.options:
            if option.kind != "task_output" or option.task in self.cached:
                raise ValueError(f"{where} takes a dsl.OneOf of a "
                                 f"{'cached task' if option.task in self.cached else option.kind}"
                                 ": not supported on Argo yet")
            options.append(self._output(option.task, option.output, where))
        if any(option.kind == "artifacts" for option in options):
            raise ValueError(f"{where} takes a dsl.OneOf of artifacts: not supported on Argo "
                             "yet")
        chains = [[option.holder, *option.holder.ancestors()] for option in options]
        around = next(dag for dag in chains[0] if all(dag in chain for chain in chains))
        if around.parent is None or around.iteration or \
                any(dag.iteration for chain in chains for dag in chain[:chain.index(around)]):
            raise ValueError(f"{where} takes a dsl.OneOf whose branches are not in one "
                             "If/Elif/Else outside loops: not supported on Argo yet")
        key = ("one_of", *(option.key for option in options))

        def expression() -> dict:
            picked = []
            for option in options:
                match = OUTPUT_REFERENCE.fullmatch(self.ref(option, around, where))
                picked.append((match.group(1), f"tasks['{match.group(1)}'].outputs."
                                               f"parameters['{match.group(2)}']"))
            text = picked[-1][1]
            for branch, value in reversed(picked[:-1]):
                text = f"tasks['{branch}'].status == 'Succeeded' ? {value} : ({text})"
            return {"valueFrom": {"expression": text}}

        name = around.declare_output(key, "parameters", "one-of", expression)
        return _Value(key, "parameters", around.parent, "one-of", task=around.invoker["name"],
                      output=name)

    def ref(self, value: _Value, dag: _Dag, where: str) -> str:
        """The placeholder that reads ``value`` in ``dag``, threading it through the DAG
        templates in between."""
        if dag is value.holder:
            if value.item:
                name = dag.declare_input(value.key, "parameters", value.hint, lambda: value.item)
                return f"{{{{inputs.parameters.{name}}}}}"
            return f"{{{{tasks.{value.task}.outputs.{value.kind}.{value.output}}}}}"
        if value.item and value.holder not in dag.ancestors():
            raise ValueError(f"{where} reads a loop item outside its loop")
        if not value.item and dag in value.holder.ancestors():
            self._check_collected(value, dag, where)
            child = value.holder.below(dag)
            name = child.declare_output(value.key, value.kind, value.hint,
                                        lambda: self._output_source(value, child, where))
            return f"{{{{tasks.{child.invoker['name']}.outputs.{value.kind}.{name}}}}}"
        name = dag.declare_input(value.key, value.kind, value.hint,
                                 lambda: self.ref(value, dag.parent, where))
        return f"{{{{inputs.{value.kind}.{name}}}}}"

    def _output_source(self, value: _Value, child: _Dag, where: str) -> dict:
        inner = self.ref(value, child, where)
        return {"valueFrom": {"parameter": inner}} if value.kind == "parameters" else \
            {"from": inner}

    @staticmethod
    def _check_collected(value: _Value, dag: _Dag, where: str) -> None:
        between = [value.holder, *value.holder.ancestors()]
        loops = [d for d in between[:between.index(dag)] if d.iteration]
        if loops and value.kind == "artifacts":
            raise ValueError(f"{where} collects the artifact '{value.output}' of "
                             f"'{value.task}' from every iteration of a loop (dsl.Collected of "
                             "artifacts): not supported on Argo yet")
        if len(loops) > 1:
            raise ValueError(f"{where} collects '{value.output}' of '{value.task}' from nested "
                             "loops (dsl.Collected across loops): not supported on Argo yet")

    def _artifact_input(self, step: ports.Step, port: Port, dag: _Dag) -> None:
        where = f"{step.where}, input '{port.name}'"
        source = port.source
        if source.kind == "pipeline_parameter":
            raise ValueError(f"{where} reads the pipeline input artifact '{source.parameter}': "
                             "not supported on Argo yet")
        if source.kind == "one_of":
            raise ValueError(f"{where} takes a dsl.OneOf of artifacts: not supported on Argo "
                             "yet")
        if source.kind != "task_output":
            raise ValueError(f"{where} takes a {source.kind} as an artifact: not supported "
                             "on Argo yet")
        producer = self.nodes.get(source.task)
        if isinstance(producer, Task) and producer.id in self.importers | set(self.cached):
            if producer.id in self.importers:
                uri, metadata = self._imported(producer)
            else:
                listed = self._cached_output(source, "artifacts", where)
                entry = listed[0] if isinstance(listed, list) and len(listed) == 1 else {}
                uri, metadata = entry.get("uri") or "", entry.get("metadata") or {}
            step.artifacts[port.name] = ports.artifact_location(uri, self.repository, where)
            step.reports[port.name] = (source.output, json.dumps(
                {source.output: [{"name": source.output, "uri": uri, "metadata": metadata}]}))
            return
        step.artifacts[port.name] = {"from": self.ref(self._output(source.task, source.output,
                                                                   where), dag, where)}
        if not (step.launcher or step.memoized):
            return
        if self.launched.get(source.task):
            report = self.ref(self._output(source.task, source.output, where, report=True),
                              dag, where)
        else:
            report = "{}"  # a container component reports no metadata
        step.reports[port.name] = (source.output, report)

    def _cached_output(self, source: Source, section: str, where: str) -> Any:
        """An output of a task served from the cache, as its earlier execution recorded it."""
        recorded = self.cached[source.task].get(section) or {}
        if recorded.get(source.output) is None:
            raise ValueError(f"{where} reads '{source.output}' of '{source.task}', which the "
                             "execution serving it from the cache did not record")
        return recorded[source.output]

    def _imported(self, importer: Task) -> tuple[str, dict]:
        """An importer's URI and metadata, known when the run is compiled."""
        where = f"The importer '{importer.id}'"
        values = {}
        for port in importer.inputs:
            if port.source is None:
                continue
            if port.source.kind == "constant":
                values[port.name] = port.source.value
            elif port.source.kind == "pipeline_parameter" and \
                    port.source.parameter in self.values:
                values[port.name] = self.values[port.source.parameter]
            else:
                raise ValueError(f"{where} takes '{port.name}' from a {port.source.kind}: Argo "
                                 "needs an importer's URI when the run starts (a constant or a "
                                 "pipeline parameter)")
        return ports.imported_artifact(importer, values, where)

    # --- dependencies --------------------------------------------------------------------

    def _settle(self, wiring: _Wiring) -> None:
        """Add the siblings whose outputs a task reads (Argo requires them as dependencies)."""
        siblings = {task["name"] for task in wiring.dag.tasks}
        read = TASK_REFERENCE.findall(json.dumps({k: v for k, v in wiring.task.items()
                                                  if k != "name"}))
        for name in read:
            if name in siblings and name not in wiring.dependencies and \
                    name != wiring.task["name"]:
                wiring.dependencies.append(name)
        if wiring.any_outcome:
            if wiring.dependencies:
                wiring.task["depends"] = " && ".join(
                    "(" + " || ".join(f"{name}.{outcome}" for outcome in ANY_OUTCOME) + ")"
                    for name in wiring.dependencies)
        elif wiring.dependencies:
            wiring.task["dependencies"] = list(wiring.dependencies)

    def _depends_where_mixed(self) -> None:
        """Argo refuses a DAG mixing depends and dependencies: say it all with depends."""
        for dag in self.dag_list:
            if not any("depends" in task for task in dag.tasks):
                continue
            for task in dag.tasks:
                if "dependencies" in task:
                    task["depends"] = " && ".join(task.pop("dependencies"))
