"""Where a step's inputs come from, at its position in the run: pipeline parameters,
constants, loop items, other steps' outputs (one, or every iteration's for
``dsl.Collected``), the first branch that ran (``dsl.OneOf``), a group's final status,
Argo text with placeholders (``{{tasks.t.outputs.parameters.p}}``, a step's
``{{steps.s.outputs.parameters.p}}``, ``{{item}}``, ``{{workflow.*}}``) and Argo's
``withSequence`` with placeholders. Values get the type the component declares (KFP v2)
or become text (Argo)."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

from django.utils import timezone

from pipelines.choices import TaskKind, TaskState
from pipelines.specs import argo
from pipelines.specs.errors import SpecError
from pipelines.specs.model import Group, Source, Task

from . import argo_templates, executor_protocol, layout
from .instances import RAN, Instance, suffix


class InputError(Exception):
    """A step's input cannot be resolved; the message says which and why."""


class Inputs:
    """The input resolution of an ``Execution`` (a mixin: it reads the execution's run,
    spec, instances and failure)."""

    def _loop_chain(self, spec_id: str) -> list[str]:
        """The loops around a task or group, outermost first."""
        item = self.tasks.get(spec_id) or self.groups.get(spec_id)
        chain = []
        parent = item.parent if item else None
        while parent is not None:
            group = self.groups[parent]
            if group.kind == "loop":
                chain.append(group.id)
            parent = group.parent
        return chain[::-1]

    def resolve(self, source: Source, instance: Instance, port_kind: str) -> Any:
        kind = source.kind
        if kind == "constant":
            return copy.deepcopy(source.value)
        if kind == "pipeline_parameter":
            return copy.deepcopy(self.run.parameters.get(source.parameter))
        if kind == "loop_item":
            return self._item(source, instance)
        if kind == "task_output":
            return self._output(source.task, source.output, instance, port_kind)
        if kind == "one_of":
            for option in source.options:
                with contextlib.suppress(InputError):
                    return self.resolve(option, instance, port_kind)
            raise InputError("none of the branches of its dsl.OneOf ran")
        if kind == "task_final_status":
            return self._final_status(source.task, instance)
        if kind == "expression":
            if self.is_v2:
                raise InputError("an expression outside a task's inputs")
            return self.dag_text(str(source.value), instance)
        if kind == "sequence":
            sequence = {key: self.dag_text(value, instance) for key, value in source.value.items()}
            try:
                return argo.sequence_items(sequence, f"the loop {instance.spec.id}")
            except SpecError as exc:
                raise InputError(str(exc)) from None
        raise InputError(f"an input source kfdash does not know: {kind}")

    def _item(self, source: Source, instance: Instance) -> Any:
        positions = [loop for loop, _ in instance.loops]
        if source.group not in positions:
            raise InputError(f"it reads the item of {source.group}, which it is not inside")
        at = positions.index(source.group)
        loop = self.instances.get(source.group + suffix(instance.loops[:at]))
        if loop is None or instance.loops[at][1] >= len(loop.items):
            raise InputError(f"the loop {source.group} has no such item")
        item = copy.deepcopy(loop.items[instance.loops[at][1]])
        if source.selector:
            if isinstance(item, str):
                with contextlib.suppress(ValueError):
                    item = json.loads(item)
            if not isinstance(item, dict) or source.selector not in item:
                raise InputError(f"the loop item {item!r} has no field '{source.selector}'")
            item = item[source.selector]
        return item

    def _output(self, task_id: str, output: str, instance: Instance, port_kind: str) -> Any:
        if task_id not in self.tasks:
            raise InputError(f"it reads '{output}' of the group {task_id}, which kfdash does "
                             "not follow to a task")
        known = dict(instance.loops)
        positions: list[list[tuple[str, int]]] = [[]]
        fan_in = False
        for loop_id in self._loop_chain(task_id):
            if loop_id in known:
                positions = [[*p, (loop_id, known[loop_id])] for p in positions]
                continue
            fan_in = True
            expanded = []
            for prefix in positions:
                loop = self.instances.get(loop_id + suffix(prefix))
                if loop is None or not loop.row.runtime.get("started"):
                    raise InputError(f"its input comes from {task_id}, whose loop did not run")
                expanded += [[*prefix, (loop_id, i)] for i in range(len(loop.items))
                             if not self._skipped(f"{loop.node_id}.{i}")]  # Argo's when
            positions = expanded
        section = "artifacts" if port_kind == "artifact" else "parameters"
        values = []
        for position in positions:
            producer = self.instances.get(task_id + suffix(position))
            state = producer.state if producer is not None else "not started"
            if state not in RAN:
                if fan_in and state == TaskState.SKIPPED:
                    continue  # an iteration whose branch was not taken
                what = "was skipped" if state == TaskState.SKIPPED else "did not run"
                raise InputError(f"its input comes from {task_id}, which {what}")
            recorded = producer.row.outputs or {}
            if output == argo.RESULT:  # kept apart: a declared output may be named "result"
                produced = {output: recorded["result"]} if "result" in recorded else {}
            else:
                produced = recorded.get(section) or {}
            if output not in produced:
                raise InputError(f"{task_id} has no output '{output}'")
            values.append(copy.deepcopy(produced[output]))
        if not fan_in:
            return values[0]
        if port_kind == "artifact":
            return [entry for listed in values for entry in listed]
        return values

    def _skipped(self, node_id: str) -> bool:
        instance = self.instances.get(node_id)
        return instance is not None and instance.state == TaskState.SKIPPED

    def _final_status(self, group_id: str, instance: Instance) -> dict:
        target = self.instances.get(group_id + suffix(instance.loops))
        if target is None or not target.finished:
            raise InputError(f"the final status of {group_id} is not known yet")
        ok = target.state in RAN
        return {"state": target.state, "pipelineJobResourceName": f"run-{self.run.pk}",
                "pipelineTaskName": target.row.display_name,
                "error": {} if ok else {"code": 2, "message": target.row.error}}

    def task_inputs(self, instance: Instance, optional: set[str]) -> tuple[dict, dict]:
        """A step's parameter values (typed for v2, text for v1) and input artifacts."""
        parameters: dict[str, Any] = {}
        artifacts: dict[str, list[dict]] = {}
        expressions: dict[str, str] = {}
        types = {}
        for port in instance.spec.inputs:
            types[port.name] = port.type
            source = port.source
            if source is None:
                if port.name in optional or not self.is_v2:
                    continue
                raise InputError(f"its input '{port.name}' has no value")
            if source.kind == "expression" and self.is_v2:
                expressions[port.name] = str(source.value)
                continue
            value = self.resolve(source, instance, port.kind)
            if port.kind == "artifact":
                if source.kind == "constant":
                    value = [{"name": port.name, "raw": value}]
                artifacts[port.name] = value if isinstance(value, list) else [value]
            elif value is None and (port.name in optional or not self.is_v2):
                continue
            else:
                parameters[port.name] = value
        for name, text in expressions.items():
            parameters[name] = executor_protocol.substitute_inputs(text, parameters)
        if self.is_v2:
            return {name: coerce(value, types.get(name, "STRING"), name)
                    for name, value in parameters.items()}, artifacts
        return {name: argo_templates.argo_text(value)
                for name, value in parameters.items()}, artifacts

    def dag_text(self, text: str, instance: Instance) -> str:
        """Argo DAG-level text (a ``when``, an argument) with its placeholders resolved where
        ``instance`` stands."""
        return argo_templates.substitute(text, lambda e: self.dag_value(e, instance),
                                         f"'{instance.spec.id}'")

    def dag_value(self, expression: str, instance: Instance) -> str | None:
        """An Argo placeholder in DAG-level text where ``instance`` stands."""
        parts = expression.split(".")
        if parts[0] == "item":
            if not instance.loops:
                return None
            loop_id = instance.loops[-1][0]
            source = Source("loop_item", group=loop_id, selector=".".join(parts[1:]))
            return argo_templates.argo_text(self._item(source, instance))
        written = self._written_at(instance)
        if parts[:2] == ["inputs", "parameters"] and len(parts) == 3:
            parent = written.parent
            if parent is None:
                value = self.run.parameters.get(parts[2])
                return None if value is None else argo_templates.argo_text(value)
            port = next((p for p in parent.spec.inputs if p.name == parts[2]), None)
            if port is None or port.source is None:
                return None
            return argo_templates.argo_text(self.resolve(port.source, parent, "parameter"))
        reference = argo.output_reference(expression)
        if reference is not None:
            name, section, output = reference
            siblings = self.children_of.get(written.spec.parent, [])
            named = next((s for s in siblings if s.id == name or s.id.endswith("/" + name)),
                         None)
            if named is None:
                return None
            if isinstance(named, Group) and self._loops_over_step(named):
                named = self.children_of[named.id][0]  # its outputs, collected
            kind = "artifact" if section == "artifacts" else "parameter"
            return argo_templates.argo_text(self._output(named.id, output, instance, kind))
        return self.workflow_value(expression, instance)

    def _loops_over_step(self, group: Group) -> bool:
        """Whether the group is the loop kfdash puts around a looping step (not a DAG)."""
        inner = self.children_of.get(group.id, [])
        return group.kind == "loop" and len(inner) == 1 and isinstance(inner[0], Task)

    def _written_at(self, instance: Instance) -> Instance:
        """Where the DAG-level text ``instance`` evaluates was written: an iteration's (its
        loop's ``when``, decided for each item as Argo does) and a looping step's (its
        arguments) stand where their loop does; names and ``inputs`` are read there."""
        parent = instance.parent
        if instance.kind == TaskKind.ITERATION:
            return parent
        if parent is not None and parent.kind == TaskKind.ITERATION \
                and self._loops_over_step(parent.spec):
            return parent.parent
        return instance

    def workflow_value(self, expression: str, instance: Instance | None,
                       attempt: int = 1) -> str | None:
        """``workflow.*``, ``pod.name`` and ``retries``, as Argo fills them."""
        run = self.run
        parts = expression.split(".")
        if expression == "pod.name" and instance is not None:
            return f"{self.workflow_name}-{layout.safe(instance.node_id)}"
        if expression == "retries":
            return str(max(attempt - 1, 0))
        if parts[0] != "workflow" or len(parts) < 2:
            return None
        field = parts[1]
        if field == "parameters" and len(parts) == 3:
            value = run.parameters.get(parts[2])
            return None if value is None else argo_templates.argo_text(value)
        started = run.started_at or run.created_at
        exiting = instance is not None and isinstance(instance.spec, Task) \
            and instance.spec.exit_handler
        values = {
            "name": self.workflow_name, "uid": str(run.pk), "namespace": self.namespace,
            "serviceAccountName": run.service_account or "pipeline-runner",
            "creationTimestamp": run.created_at.isoformat().replace("+00:00", "Z"),
            "status": "Failed" if self.failure else ("Succeeded" if exiting else "Running"),
            "duration": f"{(timezone.now() - started).total_seconds():.3f}",
            "failures": json.dumps([
                {"displayName": i.row.display_name, "message": i.row.error, "phase": "Failed",
                 "templateName": getattr(i.spec, "component", "")}
                for i in self._walk() if i.state == TaskState.FAILED]),
        }
        return values.get(field) if len(parts) == 2 else None

    @property
    def workflow_name(self) -> str:
        metadata = self.run.document.get("metadata") or {}
        base = metadata.get("generateName") or f"{metadata.get('name') or self.spec.name}-"
        return f"{base}{self.run.pk.hex[:5]}"


def coerce(value: Any, kind: str, name: str) -> Any:
    """A v2 parameter value as the type its component declares (loop items and outputs
    arrive as whatever JSON they were)."""
    if value is None:
        return None
    wanted = {"NUMBER_INTEGER": "an integer", "NUMBER_DOUBLE": "a number",
              "BOOLEAN": "true or false", "LIST": "a list", "STRUCT": "an object"}
    try:
        if kind == "NUMBER_INTEGER":
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) and re.search(r"[.eE]", value) \
                else value
            number = int(number) if isinstance(number, str) else number
            if isinstance(number, float):
                if not number.is_integer():
                    raise ValueError
                number = int(number)
            return int(number)
        if kind == "NUMBER_DOUBLE":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "BOOLEAN":
            if isinstance(value, bool):
                return value
            return {"true": True, "false": False}[str(value).strip().lower()]
        if kind in ("LIST", "STRUCT"):
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, list if kind == "LIST" else dict):
                raise ValueError
            return value
        if kind == "STRING" and not isinstance(value, str):
            return json.dumps(value)
    except (ValueError, TypeError, KeyError):
        raise InputError(f"its input '{name}' should be {wanted.get(kind, kind)}, "
                         f"not {value!r}"[:500]) from None
    return value
