"""The one normalized description of a pipeline, whatever format it came in.

The graph view, the local engine and the Argo compiler all read this model; the
parsers (``kfp_v2.py``, ``argo.py``) are the only code that knows the formats.
Everything here is plain data that round-trips through JSON (``to_dict`` /
``from_dict``), because a version stores its normalized DAG in the database.

Identifiers: every task and group has an ``id`` unique in the whole pipeline
(nested tasks of the KFP v2 IR keep their task key when it is unique, else get
their group's id as a prefix, ``for-loop-2/train``). ``parent`` is the id of the
enclosing group, ``None`` at the top level. A dependency names a task or group
with the same parent; a task inside a group also waits for whatever its group
waits for.

Inputs are resolved to where the data really comes from: a task inside a loop
inside a condition that reads a pipeline parameter has a ``pipeline_parameter``
source, not a chain of group inputs; an output that a sub-DAG passes up is
traced to the task that writes it (a consumer outside a loop that reads a task
inside the loop is a fan-in, KFP's ``dsl.Collected``). Groups keep their own
resolved ``inputs`` too, because v2 conditions are written against them
(``inputs.parameter_values['pipelinechannel--num-Output']``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Parameter types, named as the KFP v2 IR names them; a v1 parameter is a STRING (Argo
# passes strings), its declared type is kept in ``declared_type``.
PARAMETER_TYPES = ("STRING", "NUMBER_INTEGER", "NUMBER_DOUBLE", "BOOLEAN", "LIST", "STRUCT")


@dataclass
class Parameter:
    """A pipeline input parameter."""

    name: str
    type: str = "STRING"  # one of PARAMETER_TYPES
    default: Any = None  # a native JSON value; meaningful only when has_default
    has_default: bool = False
    optional: bool = False
    description: str = ""
    declared_type: str = ""  # v1: the type the pipeline_spec annotation declares ("Integer")


@dataclass
class Source:
    """Where a task input comes from."""

    # "constant" | "pipeline_parameter" | "task_output" | "loop_item" | "expression"
    # | "one_of" (the first of ``options`` that ran: KFP's dsl.OneOf)
    # | "task_final_status" (the final state of the group ``task``: PipelineTaskFinalStatus)
    # | "sequence" (Argo withSequence whose bounds are placeholders, worked out at the loop)
    kind: str
    value: Any = None  # the constant, or the expression text (placeholders as written)
    parameter: str = ""  # the pipeline parameter (or loop item) name
    task: str = ""  # the producing task's id
    output: str = ""  # the producing task's output name
    group: str = ""  # loop_item: the id of the loop group whose item this is
    selector: str = ""  # a key into a dict item ("a" for {{item.a}}), or v2's expression as written
    options: list[Source] = field(default_factory=list)  # one_of: the candidates, in order


@dataclass
class Port:
    """A task input or output: a parameter or an artifact."""

    name: str
    kind: str = "parameter"  # "parameter" | "artifact"
    # a parameter type, or an artifact schema title ("system.Model"; v1 artifacts are
    # "system.Artifact", told apart by name: mlpipeline-ui-metadata, mlpipeline-metrics)
    type: str = "STRING"
    source: Source | None = None  # inputs only
    path: str = ""  # v1: where the step reads/writes it inside the container


@dataclass
class Container:
    image: str = ""
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Kubernetes-shaped: {"limits": {"cpu": "2", "memory": "1G", "nvidia.com/gpu": "1"},
    # "requests": {...}}, whichever format the pipeline came in
    resources: dict[str, Any] = field(default_factory=dict)


@dataclass
class Task:
    """One step: a component run in a container."""

    id: str
    name: str  # what the graph shows
    component: str = ""  # the component's name (v2 ``comp-…`` key, v1 template name)
    container: Container | None = None
    inputs: list[Port] = field(default_factory=list)
    outputs: list[Port] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)  # ids of tasks or groups
    parent: str | None = None  # id of the enclosing group
    condition: str = ""  # the trigger condition on this task itself, as written
    retries: int = 0
    retry_policy: dict[str, Any] = field(default_factory=dict)  # backoff etc. as given
    caching: bool = False  # KFP: a missing enableCache means off
    # runs once its dependencies end, whatever happened: an exit handler's task (after its
    # exit-handler group), or a v2 task with ignore_upstream_failure()
    exit_handler: bool = False
    importer: dict[str, Any] = field(default_factory=dict)  # v2 dsl.importer: no container
    depends: str = ""  # Argo's ``depends`` expression as written; its tasks are in dependencies
    # Argo's continueOn.failed: its failure fails neither its group nor the run, and what
    # depends on it still runs
    continue_on_failure: bool = False


@dataclass
class Group:
    """A set of tasks drawn together: a condition branch, a loop, an exit handler or a sub-DAG
    (a pipeline used as a component, or the wrapper KFP puts around If/Elif/Else branches)."""

    id: str
    kind: str  # "condition" | "loop" | "exit_handler" | "dag"
    label: str
    parent: str | None = None
    dependencies: list[str] = field(default_factory=list)
    condition: str = ""  # as written: v2 triggerPolicy.condition, Argo when (a loop may have one)
    loop_items: list[Any] | None = None  # loop over a literal list
    loop_parameter: str = ""  # loop over a parameter or task output, as written
    loop_source: Source | None = None  # ... and where that list comes from
    loop_item_name: str = ""
    parallelism: int = 0  # 0 = unbounded
    inputs: list[Port] = field(default_factory=list)  # what the group's DAG receives, resolved
    depends: str = ""  # Argo's ``depends`` expression as written
    continue_on_failure: bool = False  # Argo's continueOn.failed, as on a Task


@dataclass
class PipelineSpec:
    format: str  # pipelines.choices.SpecFormat value
    name: str
    description: str = ""
    parameters: list[Parameter] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    schema_version: str = ""
    sdk_version: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PipelineSpec:
        return _build(cls, data)

    def task(self, task_id: str) -> Task:
        return next(t for t in self.tasks if t.id == task_id)


_NESTED = {
    (Port, "source"): Source,
    (Source, "options"): Source,
    (Group, "inputs"): Port,
    (Group, "loop_source"): Source,
    (Task, "container"): Container,
    (Task, "inputs"): Port,
    (Task, "outputs"): Port,
    (PipelineSpec, "parameters"): Parameter,
    (PipelineSpec, "tasks"): Task,
    (PipelineSpec, "groups"): Group,
}


def _build(cls, data: dict):
    values = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        inner = _NESTED.get((cls, f.name))
        if inner is not None and value is not None:
            value = [_build(inner, v) for v in value] if isinstance(value, list) \
                else _build(inner, value)
        values[f.name] = value
    return cls(**values)
