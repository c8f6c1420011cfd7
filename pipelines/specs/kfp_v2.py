"""KFP v2 pipeline IR (what the kfp 2 compiler writes, as YAML or JSON) → PipelineSpec.

The IR nests DAGs: a task whose component has a ``dag`` is a group (a condition,
a loop, an exit handler, KFP's If/Elif/Else wrapper or a pipeline used as a
component), one whose component names an executor is a step. Inside a group,
tasks read the group's inputs (``componentInputParameter:
pipelinechannel--num-Output``), which the group's own task wires from its DAG;
following that chain up gives each input its real source.
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
from pipelines.specs.model import (
    PARAMETER_TYPES,
    Container,
    Group,
    Parameter,
    PipelineSpec,
    Port,
    Source,
    Task,
)

SCHEMA_VERSIONS = ("2.0.0", "2.1.0")
EXIT_HANDLER_GROUP = re.compile(r"exit-handler-\d+")  # the kfp compiler's name for dsl.ExitHandler
STRUCT_FIELD = re.compile(r'parseJson\(string_value\)\["([^"]*)"\]')  # item.a in a ParallelFor
LEGACY_TYPES = {"STRING": "STRING", "INT": "NUMBER_INTEGER", "DOUBLE": "NUMBER_DOUBLE"}  # IR 2.0.0
# (executor field for a string as the user wrote it, field for the compiler's number, unit)
RESOURCES = (
    ("limits", "cpu", "resourceCpuLimit", "cpuLimit", ""),
    ("limits", "memory", "resourceMemoryLimit", "memoryLimit", "G"),
    ("requests", "cpu", "resourceCpuRequest", "cpuRequest", ""),
    ("requests", "memory", "resourceMemoryRequest", "memoryRequest", "G"),
)


def parse(ir: dict) -> PipelineSpec:
    """Normalize an IR; SpecError if it is not one kfdash can run."""
    version = fields.text(ir, "schemaVersion", "The pipeline")
    if not version:
        raise SpecError("The KFP pipeline has no schemaVersion")
    if version not in SCHEMA_VERSIONS:
        raise SpecError(f"Unsupported KFP schemaVersion '{version}': kfdash reads "
                        + " and ".join(SCHEMA_VERSIONS))
    info = fields.mapping(ir, "pipelineInfo", "The pipeline")
    root = fields.mapping(ir, "root", "The pipeline")
    parameters = _parameters(root)
    inputs = fields.mapping(root, "inputDefinitions", "root")
    scope: dict[str, Source | None] = {
        name: Source("pipeline_parameter", parameter=name)
        for section in ("parameters", "artifacts")
        for name in fields.mapping(inputs, section, "root.inputDefinitions")
    }
    builder = _Builder(ir)
    builder.expand(fields.mapping(root, "dag", "root"), None, ())
    builder.tree.assign_ids()
    builder.build(builder.tree.top, scope, None)
    spec = PipelineSpec(
        format=SpecFormat.KFP_V2, name=fields.text(info, "name", "pipelineInfo"),
        description=fields.text(info, "description", "pipelineInfo"), parameters=parameters,
        tasks=builder.tasks, groups=builder.groups, schema_version=version,
        sdk_version=fields.text(ir, "sdkVersion", "The pipeline"))
    graph.check(spec)
    return spec


def _parameters(root: dict) -> list[Parameter]:
    definitions = fields.mapping(fields.mapping(root, "inputDefinitions", "root"), "parameters",
                                 "root.inputDefinitions")
    parameters = []
    for name, definition in definitions.items():
        where = f"Pipeline parameter '{name}'"
        if not isinstance(definition, dict):
            raise SpecError(f"{where} should be a mapping")
        kind = _parameter_type(definition, where)
        if kind not in PARAMETER_TYPES:
            raise SpecError(f"{where} has the unknown type '{kind}'")
        parameters.append(Parameter(
            name=str(name), type=kind, default=_native(definition.get("defaultValue"), kind),
            has_default="defaultValue" in definition, optional=bool(definition.get("isOptional")),
            description=fields.text(definition, "description", where)))
    return parameters


def _parameter_type(definition: dict, where: str) -> str:
    if "parameterType" in definition:
        return fields.text(definition, "parameterType", where)
    legacy = fields.text(definition, "type", where)
    return LEGACY_TYPES.get(legacy, legacy or "STRING")


def _native(value: Any, kind: str) -> Any:
    """The IR stores every number as a double (``seed: 3.0``); an integer parameter's
    value is an int."""
    if kind == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _Builder:
    """Expands the DAGs into a Tree, then turns its nodes into Tasks and Groups."""

    def __init__(self, ir: dict):
        self.components = fields.mapping(ir, "components", "The pipeline")
        deployment = fields.mapping(ir, "deploymentSpec", "The pipeline")
        self.executors = fields.mapping(deployment, "executors", "deploymentSpec")
        self.tree = Tree()
        self.tasks: list[Task] = []
        self.groups: list[Group] = []

    def expand(self, dag: dict, parent: Node | None, stack: tuple[str, ...]) -> None:
        if len(stack) > graph.MAX_NESTING:
            raise SpecError(f"DAGs are nested more than {graph.MAX_NESTING} levels deep")
        where = f"The DAG of '{parent.key}'" if parent else "root"
        for key, task in fields.mapping(dag, "tasks", where).items():
            if not isinstance(task, dict):
                raise SpecError(f"Task '{key}' should be a mapping")
            name = fields.text(fields.mapping(task, "componentRef", f"Task '{key}'"), "name",
                               f"Task '{key}'")
            component = self.components.get(name)
            if not isinstance(component, dict):
                raise SpecError(f"Task '{key}' uses the component '{name}', which the pipeline "
                                "does not define")
            node = self.tree.add(str(key), parent, (task, name, component))
            if "dag" in component:
                if name in stack:
                    raise SpecError(f"Component '{name}' contains itself (task '{key}')")
                self.expand(fields.mapping(component, "dag", f"Component '{name}'"), node,
                            (*stack, name))
            elif "executorLabel" not in component:
                raise SpecError(f"Component '{name}' (task '{key}') has neither a dag nor an "
                                "executorLabel")

    def build(self, siblings: dict[str, Node], scope: dict[str, Source | None],
              parent: str | None) -> None:
        for node in siblings.values():
            task, component_name, component = node.data
            where = f"Task '{node.id}'"
            info = fields.mapping(task, "taskInfo", where)
            trigger = fields.mapping(task, "triggerPolicy", where)
            inputs = self._inputs(task, component, siblings, scope, where)
            common: dict[str, Any] = {
                "id": node.id, "parent": parent,
                "dependencies": self._dependencies(task, siblings, where),
                "condition": fields.text(trigger, "condition", where),
            }
            label = fields.text(info, "name", where) or node.key
            if "dag" in component:
                self._group(node, task, label, inputs, common)
            else:
                self.tasks.append(self._task(task, component_name, component, label, inputs,
                                             trigger, common, where))

    def _group(self, node: Node, task: dict, label: str, inputs: list[Port],
               common: dict[str, Any]) -> None:
        where = f"Task '{node.id}'"
        group = Group(kind="dag", label=label, inputs=inputs, **common)
        child_scope = {port.name: port.source for port in inputs}
        iterator = task.get("parameterIterator") or task.get("artifactIterator")
        if iterator is not None:
            if not isinstance(iterator, dict):
                raise SpecError(f"{where}: its iterator should be a mapping")
            group.kind = "loop"
            group.loop_item_name = fields.text(iterator, "itemInput", where)
            items = fields.mapping(iterator, "items", where)
            if "raw" in items:
                group.loop_items = _raw_items(items["raw"], where)
            else:
                group.loop_parameter = (fields.text(items, "inputParameter", where)
                                        or fields.text(items, "inputArtifact", where))
                if group.loop_parameter not in child_scope:
                    raise SpecError(f"{where} loops over '{group.loop_parameter}', which is not "
                                    "one of its inputs")
                group.loop_source = child_scope[group.loop_parameter]
            policy = fields.mapping(task, "iteratorPolicy", where)
            group.parallelism = fields.integer(policy, "parallelismLimit", where)
            item = Source("loop_item", parameter=group.loop_item_name, group=node.id)
            child_scope[group.loop_item_name] = item
            for port in inputs:
                if port.name == group.loop_item_name:
                    port.source = item
        elif group.condition:
            group.kind = "condition"
        elif EXIT_HANDLER_GROUP.fullmatch(node.key):
            group.kind = "exit_handler"
        self.groups.append(group)
        self.build(node.children, child_scope, node.id)

    def _task(self, task: dict, component_name: str, component: dict, label: str,
              inputs: list[Port], trigger: dict, common: dict[str, Any], where: str) -> Task:
        label_key = fields.text(component, "executorLabel", where)
        executor = self.executors.get(label_key)
        if not isinstance(executor, dict):
            raise SpecError(f"{where}: its component '{component_name}' runs the executor "
                            f"'{label_key}', which deploymentSpec does not define")
        retry = fields.mapping(task, "retryPolicy", where)
        return Task(
            name=label, component=component_name, container=_container(executor, where),
            inputs=inputs, outputs=_outputs(component, where),
            retries=fields.integer(retry, "maxRetryCount", where),
            retry_policy=copy.deepcopy(retry),
            caching=bool(fields.mapping(task, "cachingOptions", where).get("enableCache")),
            exit_handler=trigger.get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED",
            importer=copy.deepcopy(fields.mapping(executor, "importer", where)), **common)

    def _inputs(self, task: dict, component: dict, siblings: dict[str, Node],
                scope: dict[str, Source | None], where: str) -> list[Port]:
        """The component's declared inputs, each with its source, then any extra inputs the
        task wires (kfp passes pipeline channels used in f-strings that way)."""
        declared_all = fields.mapping(component, "inputDefinitions", where)
        wired_all = fields.mapping(task, "inputs", where)
        ports = []
        for kind, section in (("parameter", "parameters"), ("artifact", "artifacts")):
            declared = fields.mapping(declared_all, section, where)
            wired = fields.mapping(wired_all, section, where)
            for name in dict.fromkeys([*declared, *wired]):
                definition = declared.get(name)
                definition = definition if isinstance(definition, dict) else {}
                port_where = f"{where}, input '{name}'"
                port = Port(str(name), kind, _port_type(kind, definition, port_where))
                if name in wired:
                    port.source = self._source(wired[name], port.type, siblings, scope, port_where)
                elif "defaultValue" in definition:
                    port.source = Source("constant",
                                         value=_native(definition["defaultValue"], port.type))
                ports.append(port)
        return ports

    def _source(self, spec: Any, kind: str, siblings: dict[str, Node],
                scope: dict[str, Source | None], where: str) -> Source | None:
        if not isinstance(spec, dict):
            raise SpecError(f"{where} should be a mapping")
        if "componentInputParameter" in spec or "componentInputArtifact" in spec:
            name = spec.get("componentInputParameter") or spec.get("componentInputArtifact")
            if not isinstance(name, str) or name not in scope:
                raise SpecError(f"{where} reads '{name}', which its DAG does not receive")
            source = scope[name]
            selector = fields.text(spec, "parameterExpressionSelector", where)
            if source is not None and selector:
                match = STRUCT_FIELD.fullmatch(selector)
                source = replace(source, selector=match.group(1) if match else selector)
            return source
        if "taskOutputParameter" in spec:
            ref = fields.mapping(spec, "taskOutputParameter", where)
            return self._output(ref.get("producerTask"), ref.get("outputParameterKey"),
                                "parameters", siblings, where)
        if "taskOutputArtifact" in spec:
            ref = fields.mapping(spec, "taskOutputArtifact", where)
            return self._output(ref.get("producerTask"), ref.get("outputArtifactKey"),
                                "artifacts", siblings, where)
        if "runtimeValue" in spec:
            return _constant(fields.mapping(spec, "runtimeValue", where), kind)
        if "taskFinalStatus" in spec:
            producer = fields.mapping(spec, "taskFinalStatus", where).get("producerTask")
            if not isinstance(producer, str) or producer not in siblings:
                raise SpecError(f"{where} reads the final status of '{producer}', which is not "
                                "in its DAG")
            return Source("task_final_status", task=siblings[producer].id)
        raise SpecError(f"{where} has a source kfdash does not know: {', '.join(map(str, spec))}")

    def _output(self, producer: Any, key: Any, section: str, siblings: dict[str, Node],
                where: str) -> Source:
        """The task that really writes output ``key`` of ``producer``: a group's outputs are
        followed down to the task inside that writes them."""
        node = siblings.get(producer) if isinstance(producer, str) else None
        if node is None:
            raise SpecError(f"{where} reads an output of '{producer}', which is not in its DAG")
        _, component_name, component = node.data
        if "dag" not in component:
            declared = fields.mapping(fields.mapping(component, "outputDefinitions", where),
                                      section, where)
            if key not in declared:
                raise SpecError(f"{where} reads the output '{key}' of '{node.id}', whose "
                                f"component '{component_name}' has no such output")
            return Source("task_output", task=node.id, output=str(key))
        outputs = fields.mapping(fields.mapping(component["dag"], "outputs", where), section, where)
        spec = outputs.get(key)
        if not isinstance(spec, dict):
            raise SpecError(f"{where} reads the output '{key}' of '{node.id}', which its DAG "
                            "does not produce")
        if section == "parameters" and "valueFromParameter" in spec:
            selectors = [fields.mapping(spec, "valueFromParameter", where)]
        elif section == "parameters":
            selectors = fields.entries(fields.mapping(spec, "valueFromOneof", where)
                                       .get("parameterSelectors"), where)
        else:
            selectors = fields.entries(spec.get("artifactSelectors"), where)
        key_name = "outputParameterKey" if section == "parameters" else "outputArtifactKey"
        options = [self._output(selector.get("producerSubtask"), selector.get(key_name), section,
                                node.children, where) for selector in selectors]
        if not options:
            raise SpecError(f"{where}: the output '{key}' of '{node.id}' names no task")
        return options[0] if len(options) == 1 else Source("one_of", options=options)

    def _dependencies(self, task: dict, siblings: dict[str, Node], where: str) -> list[str]:
        """``dependentTasks`` plus every sibling whose output the task reads."""
        keys = list(fields.sequence(task, "dependentTasks", where))
        wired = fields.mapping(task, "inputs", where)
        for section in ("parameters", "artifacts"):
            for spec in fields.mapping(wired, section, where).values():
                for ref in ("taskOutputParameter", "taskOutputArtifact", "taskFinalStatus"):
                    if isinstance(spec, dict) and isinstance(spec.get(ref), dict):
                        keys.append(spec[ref].get("producerTask"))
        dependencies = []
        for key in dict.fromkeys(map(str, keys)):
            if key not in siblings:
                raise SpecError(f"{where} depends on '{key}', which is not a task in its DAG")
            dependencies.append(siblings[key].id)
        return dependencies


def _port_type(kind: str, definition: dict, where: str) -> str:
    if kind == "parameter":
        return _parameter_type(definition, where)
    schema = fields.mapping(definition, "artifactType", where)
    return fields.text(schema, "schemaTitle", where) or "system.Artifact"


def _constant(value: dict, kind: str) -> Source:
    if "constant" in value:
        constant = value["constant"]
    else:  # IR 2.0.0: constantValue {stringValue | intValue | doubleValue}
        legacy = value.get("constantValue")
        constant = next(iter(legacy.values()), None) if isinstance(legacy, dict) else None
    if isinstance(constant, str) and "{{$" in constant:
        # An f-string over pipeline channels: the placeholders name the task's other inputs.
        return Source("expression", value=constant)
    return Source("constant", value=_native(constant, kind))


def _raw_items(raw: Any, where: str) -> list[Any]:
    """``items.raw`` is the literal list of a ParallelFor, JSON-encoded in a string."""
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise SpecError(f"{where} loops over items that are not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise SpecError(f"{where} loops over {fields.kind_of(items)}, not a list")
    return items


def _outputs(component: dict, where: str) -> list[Port]:
    declared = fields.mapping(component, "outputDefinitions", where)
    ports = []
    for kind, section in (("parameter", "parameters"), ("artifact", "artifacts")):
        for name, definition in fields.mapping(declared, section, where).items():
            definition = definition if isinstance(definition, dict) else {}
            ports.append(Port(str(name), kind, _port_type(kind, definition, where)))
    return ports


def _container(executor: dict, where: str) -> Container | None:
    spec = fields.mapping(executor, "container", where)
    if not spec:
        return None
    env = {fields.text(item, "name", where): fields.text(item, "value", where)
           for item in fields.entries(spec.get("env"), f"{where}: env")}
    return Container(
        image=fields.text(spec, "image", where),
        command=[str(item) for item in fields.sequence(spec, "command", where)],
        args=[str(item) for item in fields.sequence(spec, "args", where)],
        env=env, resources=_resources(fields.mapping(spec, "resources", where), where))


def _resources(spec: dict, where: str) -> dict[str, Any]:
    """Kubernetes-shaped ``{"limits": {"cpu": "2", "memory": "1G"}, "requests": {...}}``.
    kfp 2.17 writes both the user's string (``resourceCpuLimit: '2'``) and a number
    (``cpuLimit: 2.0``, memory in GB); older SDKs only the number."""
    result: dict[str, dict[str, str]] = {"limits": {}, "requests": {}}
    for section, resource, text_key, number_key, unit in RESOURCES:
        if spec.get(text_key) not in (None, ""):
            result[section][resource] = fields.text(spec, text_key, where)
        elif spec.get(number_key):
            try:
                result[section][resource] = f"{float(spec[number_key]):g}{unit}"
            except (TypeError, ValueError):
                raise SpecError(f"{where}: '{number_key}' should be a number") from None
    accelerator = fields.mapping(spec, "accelerator", where)
    kind = (fields.text(accelerator, "resourceType", where)
            or fields.text(accelerator, "type", where))
    count = (fields.text(accelerator, "resourceCount", where)
             or fields.text(accelerator, "count", where))
    if kind and count:
        result["limits"][kind] = count
    return {section: values for section, values in result.items() if values}
