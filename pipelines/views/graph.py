"""What the pipeline graph page needs from a normalized DAG, in words a person reads.

The browser lays the graph out (``static/js/pipeline-graph.js``); this module only
reduces a ``PipelineSpec`` to nodes with readable labels and the facts its side panel
shows, so that the script never has to know a format's placeholders
(``inputs.parameter_values['pipelinechannel--n-Output']``, ``{{tasks.a.outputs.result}}``).
The same rows feed the tasks table shown without JavaScript.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

from pipelines.specs.model import Group, PipelineSpec, Port, Source, Task

CHANNEL = "pipelinechannel--"
LIST_PREVIEW = 3  # loop items shown in a group's label before "…"
TEXT_MAX = 80  # a constant or a label longer than this is cut in labels

# KFP v2 conditions cast their operands: int(inputs.parameter_values['pipelinechannel--x'])
_V2_CAST = re.compile(r"\b(?:int|double|string|bool)\(inputs\.parameter_values\['([^']+)'\]\)")
_V2_PLAIN = re.compile(r"inputs\.parameter_values\['([^']+)'\]")
# Argo: {{inputs.parameters.x}}, {{workflow.parameters.x}}, {{tasks.a.outputs.parameters.y}},
# a step's {{steps.a.outputs.result}}
_ARGO = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


def graph_data(spec: PipelineSpec) -> dict[str, Any]:
    """The nodes of the graph view: ``{"tasks": [...], "groups": [...], "containers": [...]}``
    with ids, parents, dependencies, display labels and the side panel's facts as
    (label, text) pairs; a task's ``container`` indexes ``containers``."""
    names = _Names(spec)
    groups = [_group(group, names) for group in spec.groups]
    labels = {group["id"]: group["label"] for group in groups}
    containers: dict[str, int] = {}
    tasks = [_task(task, names, containers) for task in spec.tasks]
    for task in tasks:
        task["group_label"] = labels.get(task["parent"], "")
    return {"tasks": tasks, "groups": groups,
            "containers": [_container(json.loads(key)) for key in containers]}


class _Names:
    """Readable names for the channels and placeholders a condition or input refers to."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.tasks = {task.id: task.name for task in spec.tasks}
        self.groups = {group.id: group for group in spec.groups}
        self.channels: dict[str, str] = {}
        for group in spec.groups:
            for port in group.inputs:
                if port.source is not None:
                    self.channels.setdefault(port.name, self.source(port.source, short=True))

    def task(self, task_id: str) -> str:
        return self.tasks.get(task_id) or task_id

    def group(self, group_id: str) -> str:
        group = self.groups.get(group_id)
        return group.label if group else group_id

    def channel(self, name: str) -> str:
        if name in self.channels:
            return self.channels[name]
        return name.removeprefix(CHANNEL)

    def source(self, source: Source | None, short: bool = False) -> str:
        """Where an input comes from: 'pipeline parameter rate', 'train.model', '= 5'."""
        if source is None:
            return ""
        kind = source.kind
        if kind == "constant":
            return _cut(_json(source.value)) if short else f"= {_json(source.value)}"
        if kind == "pipeline_parameter":
            return source.parameter if short else f"pipeline parameter {source.parameter}"
        if kind == "task_output":
            return f"{self.task(source.task)}.{source.output}"
        if kind == "loop_item":
            item = "item" + (f".{source.selector}" if source.selector else "")
            group = self.groups.get(source.group)
            return item if short or group is None else f"{item} of {self.loop_words(group)}"
        if kind == "expression":
            return str(source.value)
        if kind == "one_of":
            return "the first that ran of " + ", ".join(
                self.source(option, short=True) for option in source.options)
        if kind == "task_final_status":
            group = self.groups.get(source.task)
            return f"final status of {group.label if group else self.task(source.task)}"
        return kind

    def condition(self, text: str) -> str:
        """A condition as written in the spec, with its placeholders named."""
        text = _V2_CAST.sub(lambda m: self.channel(m.group(1)), text)
        text = _V2_PLAIN.sub(lambda m: self.channel(m.group(1)), text)
        text = _ARGO.sub(lambda m: self._argo(m.group(1)), text)
        text = text.replace("&&", "and").replace("||", "or")
        return re.sub(r"!\s*\(", "not (", text)

    def _argo(self, path: str) -> str:
        parts = path.split(".")
        if parts[0] in ("inputs", "workflow") and len(parts) == 3 and parts[1] == "parameters":
            return parts[2]
        if parts[0] in ("tasks", "steps") and len(parts) >= 4:
            return f"{self.task(parts[1])}.{parts[-1]}"
        if parts[0] == "item":
            return path
        return "{{" + path + "}}"

    def loop_words(self, group: Group) -> str:
        if group.loop_items is not None:
            items = [_cut(_json(item), 24) for item in group.loop_items[:LIST_PREVIEW]]
            more = len(group.loop_items) - LIST_PREVIEW
            listed = ", ".join(items) + (f", … {more} more" if more > 0 else "")
            return f"[{listed}]"
        if group.loop_source is not None:
            return self.source(group.loop_source, short=True)
        return self.condition(self.channel(group.loop_parameter)) or "a list"


def _group(group: Group, names: _Names) -> dict[str, Any]:
    named = group.label and group.label != group.id  # a name the author gave (dsl.If(name=))
    facts: list[tuple[str, str]] = [("Kind", _GROUP_KINDS.get(group.kind, group.kind))]
    if group.kind == "loop":
        words = f"for each in {names.loop_words(group)}"
        if group.parallelism:
            words += f" ({group.parallelism} at a time)"
        if group.loop_items is not None:
            facts.append(("Items", _json(group.loop_items)))
        else:
            facts.append(("Items from", names.loop_words(group)))
        facts.append(("Parallelism", str(group.parallelism) if group.parallelism
                      else "unbounded"))
        if group.condition:
            words += f" if {names.condition(group.condition)}"
    elif group.kind == "condition":
        words = f"if {names.condition(group.condition)}" if group.condition else "if"
    elif group.kind == "exit_handler":
        words = "exit handler"
    elif group.id.startswith("condition-branches") and not named:
        words = "if / elif / else"
    else:
        words = group.label or group.id  # a pipeline used as a component
        named = False
    if group.condition:
        facts.append(("Condition", names.condition(group.condition)))
        facts.append(("As written", group.condition))
    label = f"{group.label}: {words}" if named else words
    return {"id": group.id, "kind": group.kind, "label": _cut(label, TEXT_MAX),
            "parent": group.parent, "deps": list(group.dependencies), "facts": facts}


_GROUP_KINDS = {"condition": "condition", "loop": "loop (ParallelFor)",
                "exit_handler": "exit handler", "dag": "sub-pipeline"}


def _task(task: Task, names: _Names, containers: dict[str, int]) -> dict[str, Any]:
    facts: list[tuple[str, str]] = [("Component", task.component or "none")]
    if task.importer:
        facts.append(("Imports", _json(task.importer.get("artifact_uri")
                                       or task.importer.get("artifactUri") or task.importer)))
    if task.condition:
        facts.append(("Runs if", names.condition(task.condition)))
    facts.append(("Retries", str(task.retries) if task.retries else "none"))
    facts.append(("Caching", "on" if task.caching else "off"))
    if task.exit_handler:
        facts.append(("Runs", "after its dependencies end, whatever their state"))
    container = None
    if task.container is not None:
        # Tasks of one component share their container: sent once, however many tasks.
        key = json.dumps(asdict(task.container), sort_keys=True)
        container = containers.setdefault(key, len(containers))
    return {
        "id": task.id, "name": task.name, "component": task.component, "parent": task.parent,
        "deps": list(task.dependencies), "after": [names.task(d) if d in names.tasks
                                                   else names.group(d) for d in task.dependencies],
        "exit_handler": task.exit_handler,
        "image": task.container.image if task.container else "", "container": container,
        "facts": facts,
        "inputs": [_port(port, names) for port in task.inputs],
        "outputs": [_port(port, names) for port in task.outputs],
    }


def _container(container: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [("Image", container["image"] or "none")]
    if container["command"]:
        facts.append(("Command", _argv(container["command"])))
    if container["args"]:
        facts.append(("Arguments", _argv(container["args"])))
    if container["env"]:
        facts.append(("Environment", "\n".join(f"{k}={v}" for k, v in container["env"].items())))
    if container["resources"]:
        facts.append(("Resources", _resources(container["resources"])))
    return facts


def _port(port: Port, names: _Names) -> dict[str, str]:
    return {"name": port.name, "kind": port.kind, "type": port.type,
            "source": names.source(port.source)}


def _resources(resources: dict[str, Any]) -> str:
    lines = []
    for what in ("requests", "limits"):
        values = resources.get(what) or {}
        if values:
            lines.append(f"{what}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    return "\n".join(lines) or _json(resources)


def _argv(words: list[str]) -> str:
    return "\n".join(str(word) for word in words)


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cut(text: str, limit: int = TEXT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
