"""Argo Workflow (what the kfp 1.x compiler writes) → PipelineSpec.

kfp 1.8 compiles a pipeline into DAG templates: the entrypoint's DAG holds the
top-level ops, and every ``dsl.Condition``, ``dsl.ParallelFor`` and
``dsl.ExitHandler`` becomes a task running a DAG template of its own
(``condition-1``, ``for-loop-3``, ``exit-handler-1``). Data moves through
Argo placeholders: ``{{inputs.parameters.x}}`` (the enclosing template's
input), ``{{tasks.t.outputs.parameters.p}}`` (a sibling's output),
``{{item}}`` (the loop item) and ``{{workflow.parameters.x}}``.

Hand-written Workflows add what kfp does not write: ``script`` templates (read as their
container), ``withSequence`` loops, ``{{tasks.t.outputs.result}}`` (a step's stdout, the
output ``RESULT``), and templates or input artifacts that only a cluster can run or fetch;
those load (the graph shows them), the local engine refuses to run them.

A ``steps`` template (groups of steps: a group starts when the one before has finished, the
steps of a group run in parallel) is read as the DAG it amounts to: each step depends on
every step of the group before, so that loops, ``when``, outputs and nested templates are
the DAG code's. Its steps read each other as ``{{steps.s.outputs.…}}``, a DAG's tasks as
``{{tasks.t.outputs.…}}``. ``continueOn.failed`` (a step's or a DAG task's) keeps a failure
from failing the template around it.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from typing import Any

from pipelines.choices import SpecFormat
from pipelines.specs import fields, graph
from pipelines.specs.errors import SpecError
from pipelines.specs.graph import Node, Tree
from pipelines.specs.model import Container, Group, Parameter, PipelineSpec, Port, Source, Task

PIPELINE_SPEC = "pipelines.kubeflow.org/pipeline_spec"
SDK_VERSION = "pipelines.kubeflow.org/kfp_sdk_version"
ENABLE_CACHING = "pipelines.kubeflow.org/enable_caching"
MAX_CACHE_STALENESS = "pipelines.kubeflow.org/max_cache_staleness"
DISPLAY_NAME = "pipelines.kubeflow.org/task_display_name"
EXIT_HANDLER_GROUP = re.compile(r"exit-handler-\d+")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
REFERENCE = re.compile(r"\{\{\s*(tasks|steps)\.([^.{}\s]+)\.")  # a sibling's output, read
DEPENDS_TASK = re.compile(r"([A-Za-z0-9_][-A-Za-z0-9_]*)(?:\.[A-Za-z]+)?")
LOOPS = ("withItems", "withParam", "withSequence")
SEQUENCE_FIELDS = ("count", "start", "end", "format")
RESULT = "outputs.result"  # a step's stdout as a task output (no declared output has a dot)
# Where an input artifact no task produces comes from: raw data (local mode writes it), or
# a store only a cluster reaches (said in the error when a run is refused).
REMOTE_ARTIFACTS = {"s3": "S3 (s3)", "gcs": "Google Cloud Storage (gcs)", "git": "git (git)",
                    "oss": "Alibaba OSS (oss)", "hdfs": "HDFS (hdfs)",
                    "artifactory": "Artifactory (artifactory)",
                    "azure": "Azure Blob Storage (azure)", "http": "a URL (http)",
                    "fromExpression": "an expression (fromExpression)"}
ARTIFACT_SOURCES = ("raw", *REMOTE_ARTIFACTS)


def parse(workflow: dict) -> PipelineSpec:
    """Normalize a Workflow; SpecError if it is not one kfdash can run."""
    metadata = fields.mapping(workflow, "metadata", "The Workflow")
    spec = fields.mapping(workflow, "spec", "The Workflow")
    annotations = fields.mapping(metadata, "annotations", "metadata")
    described = _pipeline_spec(annotations)
    templates: dict[str, dict] = {}
    for template in fields.entries(spec.get("templates"), "spec.templates"):
        name = fields.text(template, "name", "A template")
        if not name:
            raise SpecError("A template in spec.templates has no name")
        if name in templates:
            raise SpecError(f"Two templates are named '{name}'")
        templates[name] = template
    entrypoint = fields.text(spec, "entrypoint", "spec")
    if not entrypoint:
        raise SpecError("The Workflow has no spec.entrypoint")
    if entrypoint not in templates:
        raise SpecError(f"spec.entrypoint names the template '{entrypoint}', which spec.templates "
                        "does not define")
    parameters = _parameters(spec, described)
    labels = fields.mapping(metadata, "labels", "metadata")
    builder = _Builder(templates, {p.name for p in parameters},
                       fields.text(labels, ENABLE_CACHING, "metadata.labels") == "true")
    builder.expand_top(entrypoint, fields.text(spec, "onExit", "spec"))
    builder.tree.assign_ids()
    builder.build(templates[entrypoint], builder.tree.top,
                  builder.root_scope(templates[entrypoint]), None, "")
    generate_name = fields.text(metadata, "generateName", "metadata")
    name = (str(described.get("name") or "") or generate_name.removesuffix("-")
            or fields.text(metadata, "name", "metadata"))
    result = PipelineSpec(
        format=SpecFormat.ARGO, name=name, description=str(described.get("description") or ""),
        parameters=parameters, tasks=builder.tasks, groups=builder.groups,
        schema_version=fields.text(workflow, "apiVersion", "The Workflow"),
        sdk_version=fields.text(annotations, SDK_VERSION, "metadata.annotations")
        or fields.text(labels, SDK_VERSION, "metadata.labels"))
    graph.check(result)
    return result


def _pipeline_spec(annotations: dict) -> dict:
    """The kfp 1.x annotation with the pipeline's name, description and typed inputs; a
    Workflow written by hand has none, and a broken one only costs those niceties."""
    try:
        described = json.loads(annotations.get(PIPELINE_SPEC) or "{}")
    except (TypeError, json.JSONDecodeError):
        return {}
    return described if isinstance(described, dict) else {}


def _parameters(spec: dict, described: dict) -> list[Parameter]:
    declared = {item.get("name"): item for item in described.get("inputs") or []
                if isinstance(item, dict)}
    parameters = []
    arguments = fields.mapping(spec, "arguments", "spec")
    for item in fields.entries(arguments.get("parameters"), "spec.arguments.parameters"):
        name = fields.text(item, "name", "A pipeline parameter")
        about = declared.get(name, {})
        kind = about.get("type", "")
        has_default = item.get("value") is not None
        parameters.append(Parameter(
            name=name, type="STRING", has_default=has_default,
            default=fields.text(item, "value", f"Pipeline parameter '{name}'") if has_default
            else None,
            optional=has_default or bool(about.get("optional")),
            description=str(about.get("description") or ""),
            declared_type=kind if isinstance(kind, str) else json.dumps(kind, sort_keys=True)))
    return parameters


def _loops(task: dict) -> bool:
    return any(key in task for key in LOOPS)


def runs_dag(template: dict) -> bool:
    """Whether a template runs tasks of its own (a group), not one step."""
    return "dag" in template or "steps" in template


def output_reference(expression: str) -> tuple[str, str, str] | None:
    """``tasks.t.outputs.parameters.p`` → (t, "parameters", p), ``…artifacts.a`` → (t,
    "artifacts", a), ``tasks.t.outputs.result`` → (t, "result", RESULT); else None. A step
    reads a sibling as ``steps.t.…``: the same, so that one lookup serves both."""
    parts = expression.split(".")
    if len(parts) < 4 or parts[0] not in ("tasks", "steps") or parts[2] != "outputs":
        return None
    if len(parts) == 5 and parts[3] in ("parameters", "artifacts"):
        return parts[1], parts[3], parts[4]
    if len(parts) == 4 and parts[3] == "result":
        return parts[1], "result", RESULT
    return None


def sequence_fields(task: dict, where: str) -> dict[str, str]:
    """A task's ``withSequence`` as text, checked as Argo checks it: count or end, not both."""
    sequence = fields.mapping(task, "withSequence", where)
    given = {key: fields.text(sequence, key, f"{where}: withSequence") for key in SEQUENCE_FIELDS
             if sequence.get(key) not in (None, "")}
    if ("count" in given) == ("end" in given):
        raise SpecError(f"{where}: withSequence needs either count or end, not "
                        f"{'both' if 'count' in given else 'neither'}")
    return given


def sequence_items(sequence: dict[str, str], where: str) -> list[str]:
    """Argo's withSequence items: from ``start`` (0), ``count`` numbers or up (or down) to
    ``end`` included, each printf-formatted by ``format`` ("%d"); text, as Argo's are."""

    def number(key: str) -> int:
        try:
            return int(str(sequence.get(key, "0")).strip())
        except ValueError:
            raise SpecError(f"{where}: withSequence {key} should be a whole number, not "
                            f"{sequence[key]!r}") from None

    start = number("start")
    if "count" in sequence:
        count = number("count")
        if count < 0:
            raise SpecError(f"{where}: withSequence count should not be negative ({count})")
        numbers = range(start, start + count)
    else:
        end = number("end")
        numbers = range(start, end + 1) if start <= end else range(start, end - 1, -1)
    if len(numbers) > graph.MAX_NODES:
        raise SpecError(f"{where}: withSequence gives {len(numbers)} items, more than the "
                        f"{graph.MAX_NODES} kfdash runs in one loop")
    form = sequence.get("format") or "%d"
    try:  # Go's %v is Python's %d for a number; the rest of printf is the same for one
        return [form.replace("%v", "%d") % value for value in numbers]
    except (TypeError, ValueError):
        raise SpecError(f"{where}: withSequence format {form!r} is not a printf format for "
                        "one number") from None


def _references(task: dict, word: str, where: str) -> list[str]:
    """The siblings whose outputs a task reads in its arguments, ``when``, ``withParam`` or
    ``withSequence``: ``{{tasks.t.…}}`` in a DAG (``word`` "tasks"), ``{{steps.s.…}}`` in a
    steps template ("steps"). The other word is refused, as Argo refuses it, because its
    ordering would not hold."""
    mentioned = json.dumps([task.get("arguments"), task.get("when"), task.get("withParam"),
                            task.get("withSequence")])
    found = []
    for used, name in REFERENCE.findall(mentioned):
        if used != word:
            raise SpecError(f"{where} reads '{{{{{used}.{name}…}}}}'; in a "
                            f"{'DAG' if word == 'tasks' else 'steps template'} that is "
                            f"'{{{{{word}.{name}…}}}}'")
        found.append(name)
    return found


def steps_as_tasks(template: dict) -> list[dict]:
    """A steps template's steps as DAG tasks: each depends on every step of the group before
    (Argo starts a group once the one before has finished), so it also comes after any
    step it reads; reading one of its own group or a later group is refused, as Argo does."""
    where = f"The steps template '{template['name']}'"
    tasks: list[dict] = []
    before: list[str] = []  # the last group that had steps
    earlier: set[str] = set()
    for number, group in enumerate(fields.sequence(template, "steps", where)):
        names = []
        for step in fields.entries(group, f"{where}: steps[{number}]"):
            name = fields.text(step, "name", f"{where}: steps[{number}]")
            if not name:
                raise SpecError(f"{where}: a step of steps[{number}] has no name")
            for read in _references(step, "steps", f"Step '{name}'"):
                if read not in earlier:
                    raise SpecError(f"Step '{name}' reads an output of '{read}', which is not "
                                    f"a step of an earlier group of the steps template "
                                    f"'{template['name']}'")
            unordered = {key: value for key, value in step.items()
                         if key not in ("dependencies", "depends")}  # a DAG's, not a step's
            tasks.append({**unordered, "dependencies": list(before)})
            names.append(name)
        if names:
            before = names
            earlier.update(names)
    return tasks


def _given_artifact(item: dict) -> dict:
    """Where an input artifact comes from when no task produces it: raw data, an s3 key..."""
    return {key: copy.deepcopy(item[key]) for key in ARTIFACT_SOURCES if key in item}


class _Builder:
    """Expands the DAG and steps templates into a Tree, then turns its nodes into Tasks and
    Groups."""

    def __init__(self, templates: dict[str, dict], workflow_parameters: set[str],
                 caching_label: bool):
        self.templates = templates
        self.workflow_parameters = workflow_parameters
        self.caching_label = caching_label
        self.tree = Tree()
        self.exit_node: Node | None = None
        self.tasks: list[Task] = []
        self.groups: list[Group] = []

    def expand_top(self, entrypoint: str, on_exit: str) -> None:
        template = self.templates[entrypoint]
        if runs_dag(template):
            self.expand(template, None, (entrypoint,))
        else:  # a one-step workflow
            self._add(self._call(entrypoint, entrypoint), None, ())
        if on_exit:
            if on_exit not in self.templates:
                raise SpecError(f"spec.onExit names the template '{on_exit}', which "
                                "spec.templates does not define")
            key = on_exit if on_exit not in self.tree.top else "onExit"
            self.exit_node = self._add(self._call(key, on_exit), None, ())

    def _call(self, key: str, template_name: str) -> dict:
        """A task for a template Argo runs by itself (the entrypoint, onExit): its inputs
        come from the workflow's parameters of the same names."""
        inputs = fields.mapping(self.templates[template_name], "inputs", template_name)
        names = [fields.text(item, "name", template_name) for item in fields.entries(
            inputs.get("parameters"), f"The inputs of template '{template_name}'")]
        return {"name": key, "template": template_name, "arguments": {"parameters": [
            {"name": name, "value": f"{{{{workflow.parameters.{name}}}}}"}
            for name in names if name in self.workflow_parameters]}}

    def expand(self, template: dict, parent: Node | None, stack: tuple[str, ...]) -> None:
        if len(stack) > graph.MAX_NESTING:
            raise SpecError(f"DAG templates are nested more than {graph.MAX_NESTING} levels deep")
        if "steps" in template:
            tasks = steps_as_tasks(template)
        else:
            where = f"The DAG template '{template['name']}'"
            tasks = fields.entries(fields.mapping(template, "dag", where).get("tasks"),
                                   f"{where}: tasks")
        for task in tasks:
            self._add(task, parent, stack)

    def _add(self, task: dict, parent: Node | None, stack: tuple[str, ...]) -> Node:
        key = fields.text(task, "name", "A DAG task")
        if not key:
            raise SpecError("A DAG task has no name")
        reference = fields.text(task, "template", f"Task '{key}'")
        if not reference:
            what = "templateRef, which kfdash does not follow" if "templateRef" in task else \
                "no template"
            raise SpecError(f"Task '{key}' has {what}")
        template = self.templates.get(reference)
        if template is None:
            raise SpecError(f"Task '{key}' uses the template '{reference}', which spec.templates "
                            "does not define")
        if runs_dag(template):
            node = self.tree.add(key, parent, (task, template))
            if reference in stack:
                raise SpecError(f"Template '{reference}' contains itself (task '{key}')")
            self.expand(template, node, (*stack, reference))
        elif _loops(task):
            # A loop straight over a step (kfp always wraps loops in a DAG): a loop group
            # around the one task, so every loop is a group.
            node = self.tree.add(key, parent, (task, None))
            self.tree.add(key, node, (task, template))
        else:
            node = self.tree.add(key, parent, (task, template))
        return node

    def root_scope(self, entrypoint: dict) -> dict[str, Source | None]:
        """What ``{{inputs.parameters.x}}`` means in the entrypoint's DAG."""
        if not runs_dag(entrypoint):
            return {}
        ports = self._declared_inputs(entrypoint, f"Template '{entrypoint['name']}'")
        return {port.name: Source("pipeline_parameter", parameter=port.name)
                if port.name in self.workflow_parameters else port.source for port in ports}

    def build(self, around: dict, siblings: dict[str, Node], scope: dict[str, Source | None],
              parent: str | None, item_group: str) -> None:
        """Tasks and groups for ``siblings``, the tasks or steps of the template ``around``."""
        word = "steps" if "steps" in around else "tasks"
        for node in siblings.values():
            task, template = node.data
            where = f"{'Step' if word == 'steps' else 'Task'} '{node.id}'"
            continue_on = fields.mapping(task, "continueOn", where)
            common: dict[str, Any] = {
                "id": node.id, "parent": parent,
                "dependencies": self._dependencies(task, siblings, word, where),
                "condition": fields.text(task, "when", where),
                "depends": fields.text(task, "depends", where),
                "continue_on_failure": fields.text(continue_on, "failed", where) == "true",
            }
            if node is self.exit_node:  # runs after everything else, whatever happened
                common["dependencies"] = [other.id for other in siblings.values()
                                          if other is not node]
            if template is None:
                self._step_loop(node, task, siblings, scope, common, where)
                continue
            own_item_group = node.id if _loops(task) else item_group
            inputs = self._inputs(task, template, siblings, scope, own_item_group, where)
            if runs_dag(template):
                self._group(node, task, template, inputs, siblings, scope, common, where)
            else:
                self.tasks.append(self._task(template, node, inputs, common))

    def _step_loop(self, node: Node, task: dict, siblings: dict[str, Node],
                   scope: dict[str, Source | None], common: dict[str, Any], where: str) -> None:
        """The loop group and its one task; the task's arguments are read where the looping
        task stands, with ``{{item}}`` meaning the group's item."""
        step = next(iter(node.children.values()))
        _, template = step.data
        inputs = self._inputs(task, template, siblings, scope, node.id, where)
        self.groups.append(self._loop(Group(kind="loop", label=node.key, **common), task,
                                      siblings, scope, inputs, where))
        step_common = {"id": step.id, "parent": node.id, "dependencies": [], "condition": "",
                       "depends": "", "continue_on_failure": common["continue_on_failure"]}
        self.tasks.append(self._task(template, step, inputs, step_common))

    def _group(self, node: Node, task: dict, template: dict, inputs: list[Port],
               siblings: dict[str, Node], scope: dict[str, Source | None],
               common: dict[str, Any], where: str) -> None:
        group = Group(kind="dag", label=node.key, inputs=inputs, **common)
        if _loops(task):
            self._loop(group, task, siblings, scope, inputs, where)
            group.parallelism = fields.integer(template, "parallelism",
                                               f"Template '{template['name']}'")
        elif group.condition:
            group.kind = "condition"
        elif self.exit_node is not None and EXIT_HANDLER_GROUP.fullmatch(node.key):
            group.kind = "exit_handler"
        self.groups.append(group)
        self.build(template, node.children, {port.name: port.source for port in inputs},
                   node.id, "")

    def _loop(self, group: Group, task: dict, siblings: dict[str, Node],
              scope: dict[str, Source | None], inputs: list[Port], where: str) -> Group:
        group.kind = "loop"
        if "withItems" in task:
            items = task["withItems"]
            if not isinstance(items, list):
                raise SpecError(f"{where}: withItems should be a list")
            group.loop_items = copy.deepcopy(items)
        elif "withSequence" in task:
            sequence = sequence_fields(task, where)
            if any("{{" in value for value in sequence.values()):
                # read where the loop stands when it starts; the references are checked now
                for value in sequence.values():
                    self._resolve(value, siblings, scope, "", where)
                group.loop_source = Source("sequence", value=sequence)
            else:
                group.loop_items = sequence_items(sequence, where)
        else:
            group.loop_parameter = fields.text(task, "withParam", where)
            group.loop_source = self._resolve(group.loop_parameter, siblings, scope, "", where)
        whole_item = [port.name for port in inputs if port.source is not None
                      and port.source.kind == "loop_item" and not port.source.selector]
        group.loop_item_name = whole_item[0] if whole_item else "item"
        return group

    def _task(self, template: dict, node: Node, inputs: list[Port], common: dict[str, Any],
              ) -> Task:
        name = template["name"]
        meta = fields.mapping(template, "metadata", f"Template '{name}'")
        labels = fields.mapping(meta, "labels", f"Template '{name}'")
        annotations = fields.mapping(meta, "annotations", f"Template '{name}'")
        caching = (fields.text(labels, ENABLE_CACHING, name) == "true"
                   if ENABLE_CACHING in labels else self.caching_label)
        retry = fields.mapping(template, "retryStrategy", f"Template '{name}'")
        return Task(
            name=fields.text(annotations, DISPLAY_NAME, name) or node.key, component=name,
            container=_container(template, name), inputs=inputs, outputs=_outputs(template, name),
            retries=fields.integer(retry, "limit", f"Template '{name}': retryStrategy"),
            retry_policy=copy.deepcopy(retry),
            caching=caching and fields.text(annotations, MAX_CACHE_STALENESS, name) != "P0D",
            exit_handler=node is self.exit_node, **common)

    def _declared_inputs(self, template: dict, where: str) -> list[Port]:
        """The template's inputs, each with its own default as a constant source."""
        inputs = fields.mapping(template, "inputs", where)
        ports = []
        for item in fields.entries(inputs.get("parameters"), f"{where}: inputs.parameters"):
            port = Port(fields.text(item, "name", where))
            for key in ("value", "default"):
                if item.get(key) is not None:
                    port.source = Source("constant", value=item[key])
                    break
            ports.append(port)
        for item in fields.entries(inputs.get("artifacts"), f"{where}: inputs.artifacts"):
            port = Port(fields.text(item, "name", where), "artifact", "system.Artifact",
                        path=fields.text(item, "path", where))
            given = _given_artifact(item)
            if given:  # the artifact is given, not produced
                port.source = Source("constant", value=given)
            ports.append(port)
        return ports

    def _inputs(self, task: dict, template: dict, siblings: dict[str, Node],
                scope: dict[str, Source | None], item_group: str, where: str) -> list[Port]:
        ports = self._declared_inputs(template, f"Template '{template['name']}'")
        arguments = fields.mapping(task, "arguments", where)
        given: dict[tuple[str, str], Any] = {}
        for kind, section, value_key in (("parameter", "parameters", "value"),
                                         ("artifact", "artifacts", "from")):
            for item in fields.entries(arguments.get(section), f"{where}: arguments.{section}"):
                name = fields.text(item, "name", where)
                if value_key in item:
                    given[kind, name] = item[value_key]
                elif kind == "artifact" and (stored := _given_artifact(item)):
                    given[kind, name] = stored
        for port in ports:
            if (port.kind, port.name) not in given:
                continue
            value = given[port.kind, port.name]
            port_where = f"{where}, input '{port.name}'"
            port.source = (Source("constant", value=value) if isinstance(value, dict)
                           else self._resolve(value, siblings, scope, item_group, port_where))
            if port.source is not None and port.source.kind == "loop_item":
                port.source = replace(port.source, parameter=port.name)
        return ports

    def _resolve(self, value: Any, siblings: dict[str, Node], scope: dict[str, Source | None],
                 item_group: str, where: str) -> Source | None:
        """The source an argument value names: one placeholder is followed to its origin,
        text mixing placeholders stays an expression, anything else is a constant."""
        if not isinstance(value, str) or "{{" not in value:
            return Source("constant", value=value)
        match = PLACEHOLDER.fullmatch(value.strip())
        if match is None:
            return Source("expression", value=value)
        parts = match.group(1).split(".")
        if parts[0] == "item" and item_group:
            return Source("loop_item", group=item_group, selector=".".join(parts[1:]))
        if parts[:2] == ["inputs", "parameters"] and len(parts) == 3:
            if parts[2] not in scope:
                raise SpecError(f"{where} reads '{value}', which its DAG does not receive")
            return scope[parts[2]]
        if parts[:2] == ["workflow", "parameters"] and len(parts) == 3:
            if parts[2] not in self.workflow_parameters:
                raise SpecError(f"{where} reads '{value}', which is not a pipeline parameter")
            return Source("pipeline_parameter", parameter=parts[2])
        reference = output_reference(match.group(1))
        if reference is not None:
            return self._output(*reference, siblings, where)
        return Source("expression", value=value)

    def _output(self, producer: str, section: str, key: str, siblings: dict[str, Node],
                where: str) -> Source:
        """The task that really writes ``key``: a DAG template's outputs are followed down."""
        node = siblings.get(producer)
        if node is None:
            raise SpecError(f"{where} reads an output of '{producer}', which is not in its DAG")
        _, template = node.data
        if template is None:  # a loop straight over a step: its outputs, collected
            node = next(iter(node.children.values()))
            _, template = node.data
        if section == "result":
            if runs_dag(template):
                raise SpecError(f"{where} reads the result of '{node.id}', which runs a DAG; "
                                "only a step has one (its stdout)")
            return Source("task_output", task=node.id, output=RESULT)
        outputs = fields.mapping(template, "outputs", f"Template '{template['name']}'")
        declared = {fields.text(item, "name", where): item
                    for item in fields.entries(outputs.get(section), f"{where}: outputs")}
        if key not in declared:
            raise SpecError(f"{where} reads the output '{key}' of '{node.id}', which its "
                            f"template '{template['name']}' does not declare")
        if not runs_dag(template):
            return Source("task_output", task=node.id, output=key)
        item = declared[key]
        inner = (fields.mapping(item, "valueFrom", where).get("parameter")
                 if section == "parameters" else item.get("from"))
        match = PLACEHOLDER.fullmatch(inner.strip()) if isinstance(inner, str) else None
        reference = output_reference(match.group(1)) if match else None
        if reference is not None:
            return self._output(*reference, node.children, where)
        return Source("task_output", task=node.id, output=key)

    def _dependencies(self, task: dict, siblings: dict[str, Node], word: str,
                      where: str) -> list[str]:
        """``dependencies``, the tasks ``depends`` names, and every sibling whose output a DAG
        task reads; a step's are its group before (``steps_as_tasks``), which already
        comes after whatever it reads."""
        keys = [str(key) for key in fields.sequence(task, "dependencies", where)]
        keys += DEPENDS_TASK.findall(fields.text(task, "depends", where))
        read = _references(task, word, where)
        if word == "tasks":
            keys += read
        dependencies = []
        for key in dict.fromkeys(keys):
            if key not in siblings:
                raise SpecError(f"{where} depends on '{key}', which is not a task in its DAG")
            dependencies.append(siblings[key].id)
        return dependencies


def _container(template: dict, name: str) -> Container | None:
    """A container template's container, or a script template's (its source aside)."""
    where = f"Template '{name}'"
    spec = fields.mapping(template, "container", where) or fields.mapping(template, "script",
                                                                          where)
    if not spec:
        return None
    env = {fields.text(item, "name", where): fields.text(item, "value", where)
           for item in fields.entries(spec.get("env"), f"{where}: env") if "value" in item}
    return Container(
        image=fields.text(spec, "image", where),
        command=[str(item) for item in fields.sequence(spec, "command", where)],
        args=[str(item) for item in fields.sequence(spec, "args", where)],
        env=env, resources=copy.deepcopy(fields.mapping(spec, "resources", where)))


def _outputs(template: dict, name: str) -> list[Port]:
    where = f"Template '{name}'"
    outputs = fields.mapping(template, "outputs", where)
    ports = []
    for item in fields.entries(outputs.get("parameters"), f"{where}: outputs.parameters"):
        value_from = fields.mapping(item, "valueFrom", where)
        ports.append(Port(fields.text(item, "name", where),
                          path=fields.text(value_from, "path", where)))
    for item in fields.entries(outputs.get("artifacts"), f"{where}: outputs.artifacts"):
        ports.append(Port(fields.text(item, "name", where), "artifact", "system.Artifact",
                          path=fields.text(item, "path", where)))
    return ports
