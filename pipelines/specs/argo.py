"""Argo Workflow (what the kfp 1.x compiler writes) → PipelineSpec.

kfp 1.8 compiles a pipeline into DAG templates: the entrypoint's DAG holds the
top-level ops, and every ``dsl.Condition``, ``dsl.ParallelFor`` and
``dsl.ExitHandler`` becomes a task running a DAG template of its own
(``condition-1``, ``for-loop-3``, ``exit-handler-1``). Data moves through
Argo placeholders: ``{{inputs.parameters.x}}`` (the enclosing template's
input), ``{{tasks.t.outputs.parameters.p}}`` (a sibling's output),
``{{item}}`` (the loop item) and ``{{workflow.parameters.x}}``.
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
TASK_REFERENCE = re.compile(r"\{\{\s*tasks\.([^.{}\s]+)\.")
DEPENDS_TASK = re.compile(r"([A-Za-z0-9_][-A-Za-z0-9_]*)(?:\.[A-Za-z]+)?")


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
    builder.build(builder.tree.top, builder.root_scope(templates[entrypoint]), None, "")
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
    return "withItems" in task or "withParam" in task


class _Builder:
    """Expands the DAG templates into a Tree, then turns its nodes into Tasks and Groups."""

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
        if "dag" in template:
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
        where = f"The DAG template '{template['name']}'"
        for task in fields.entries(fields.mapping(template, "dag", where).get("tasks"),
                                   f"{where}: tasks"):
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
        if "steps" in template:
            raise SpecError(f"Template '{reference}' (task '{key}') uses steps; kfdash reads DAG "
                            "templates, which is what kfp compiles")
        if "dag" in template:
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
        if "dag" not in entrypoint:
            return {}
        ports = self._declared_inputs(entrypoint, f"Template '{entrypoint['name']}'")
        return {port.name: Source("pipeline_parameter", parameter=port.name)
                if port.name in self.workflow_parameters else port.source for port in ports}

    def build(self, siblings: dict[str, Node], scope: dict[str, Source | None],
              parent: str | None, item_group: str) -> None:
        for node in siblings.values():
            task, template = node.data
            where = f"Task '{node.id}'"
            common: dict[str, Any] = {
                "id": node.id, "parent": parent,
                "dependencies": self._dependencies(task, siblings, where),
                "condition": fields.text(task, "when", where),
                "depends": fields.text(task, "depends", where),
            }
            if node is self.exit_node:  # runs after everything else, whatever happened
                common["dependencies"] = [other.id for other in siblings.values()
                                          if other is not node]
            if template is None:
                self._step_loop(node, task, siblings, scope, common, where)
                continue
            own_item_group = node.id if _loops(task) else item_group
            inputs = self._inputs(task, template, siblings, scope, own_item_group, where)
            if "dag" in template:
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
                       "depends": ""}
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
        self.build(node.children, {port.name: port.source for port in inputs}, node.id, "")

    def _loop(self, group: Group, task: dict, siblings: dict[str, Node],
              scope: dict[str, Source | None], inputs: list[Port], where: str) -> Group:
        group.kind = "loop"
        if "withItems" in task:
            items = task["withItems"]
            if not isinstance(items, list):
                raise SpecError(f"{where}: withItems should be a list")
            group.loop_items = copy.deepcopy(items)
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
            stored = {k: v for k, v in item.items() if k not in ("name", "path", "from")}
            if stored:  # raw data, an s3 key...: the artifact is given, not produced
                port.source = Source("constant", value=stored)
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
                elif kind == "artifact":
                    given[kind, name] = {k: v for k, v in item.items() if k != "name"}
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
        if (parts[0] == "tasks" and len(parts) == 5 and parts[2] == "outputs"
                and parts[3] in ("parameters", "artifacts")):
            return self._output(parts[1], parts[4], parts[3], siblings, where)
        return Source("expression", value=value)

    def _output(self, producer: str, key: str, section: str, siblings: dict[str, Node],
                where: str) -> Source:
        """The task that really writes ``key``: a DAG template's outputs are followed down."""
        node = siblings.get(producer)
        if node is None:
            raise SpecError(f"{where} reads an output of '{producer}', which is not in its DAG")
        _, template = node.data
        if template is None:  # a loop straight over a step: its outputs, collected
            node = next(iter(node.children.values()))
            _, template = node.data
        outputs = fields.mapping(template, "outputs", f"Template '{template['name']}'")
        declared = {fields.text(item, "name", where): item
                    for item in fields.entries(outputs.get(section), f"{where}: outputs")}
        if key not in declared:
            raise SpecError(f"{where} reads the output '{key}' of '{node.id}', which its "
                            f"template '{template['name']}' does not declare")
        if "dag" not in template:
            return Source("task_output", task=node.id, output=key)
        item = declared[key]
        inner = (fields.mapping(item, "valueFrom", where).get("parameter")
                 if section == "parameters" else item.get("from"))
        match = PLACEHOLDER.fullmatch(inner.strip()) if isinstance(inner, str) else None
        parts = match.group(1).split(".") if match else []
        if len(parts) == 5 and parts[0] == "tasks" and parts[2] == "outputs":
            return self._output(parts[1], parts[4], parts[3], node.children, where)
        return Source("task_output", task=node.id, output=key)

    def _dependencies(self, task: dict, siblings: dict[str, Node], where: str) -> list[str]:
        """``dependencies``, the tasks ``depends`` names, and every sibling whose output the
        task reads (in its arguments, ``when`` or ``withParam``)."""
        keys = [str(key) for key in fields.sequence(task, "dependencies", where)]
        keys += DEPENDS_TASK.findall(fields.text(task, "depends", where))
        mentioned = json.dumps([task.get("arguments"), task.get("when"), task.get("withParam")])
        keys += TASK_REFERENCE.findall(mentioned)
        dependencies = []
        for key in dict.fromkeys(keys):
            if key not in siblings:
                raise SpecError(f"{where} depends on '{key}', which is not a task in its DAG")
            dependencies.append(siblings[key].id)
        return dependencies


def _container(template: dict, name: str) -> Container | None:
    spec = fields.mapping(template, "container", f"Template '{name}'")
    if not spec:
        return None
    where = f"Template '{name}'"
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
