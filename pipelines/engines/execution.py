"""One run executing: the normalized DAG instantiated into RunTask rows, decided step by
step, every transition committed through ``Run.commit_changes``.

Instances (``instances.py``): every task and group of the spec becomes a row once its
parent group starts (top-level ones when the run starts); a loop becomes one row, plus one
``iteration`` row per item, whose children repeat the loop's body. Their inputs are
resolved by ``inputs.py``.

Deciding (``_advance``, always under the run's lock): a pending instance whose sibling
dependencies have all finished is skipped (its condition is false, its Argo ``depends``
says no, an upstream failed, or a step failed elsewhere: once one fails no new step
starts, as Argo's failFast does; exit handlers and ``ignore_upstream_failure`` steps run
whatever happened), or started: a group expands into its children (a loop resolves its
items; an iteration waits for the loop's parallelism), a step resolves its inputs and is
served from the cache, imported, or queued for a worker. A group ends when its children
have: failed if one failed, cancelled if one was. The run ends with its top level. A
failure under Argo's ``continueOn.failed`` stays where it is: what depends on it runs, its
group does not fail for it, other steps go on starting. An Argo loop's ``when`` is decided
for each item, as Argo decides it.

Commits: each decision round is one ``commit_changes`` (one revision) holding every row it
changed, plus the Artifact and RunMetric rows of the steps it finished; a step is
dispatched only after the commit that made it ready. A worker commits RUNNING once its
process exists, then its end together with what that unblocks. The lock spans commit and
publish, so events leave in revision order.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction

from notebooks.spawners.process import describe_exit
from pipelines.choices import RunState, SpecFormat, TaskKind, TaskState
from pipelines.models import Artifact, Run, RunMetric, RunTask
from pipelines.specs.model import Group, Task

from . import argo_templates, caching, executor_protocol, layout, logs, processes
from . import artifacts as artifact_store
from .base import EngineError
from .expressions import ExpressionError, evaluate
from .inputs import InputError, Inputs, coerce
from .instances import RAN, Instance, suffix
from .retries import backoff_seconds

log = logging.getLogger(__name__)

GROUP_KINDS = {"condition": TaskKind.CONDITION, "loop": TaskKind.LOOP,
               "exit_handler": TaskKind.EXIT_HANDLER, "dag": TaskKind.DAG}
BROKEN = (TaskState.FAILED, TaskState.CANCELED)
LOCKED_RETRIES = 8  # SQLite "database (table) is locked" under concurrent writers
_CONDITION_INPUT = re.compile(r"""parameter_values\[['"]([^'"]+)['"]\]""")


class Execution(Inputs):
    """One run's state machine (see the module's docstring); every method that reads or
    changes it holds ``lock``."""

    def __init__(self, engine, run: Run):
        self.engine = engine
        self.run = run
        self.namespace = run.profile.name
        self.spec = run.spec
        self.is_v2 = run.format == SpecFormat.KFP_V2
        self.tasks = {task.id: task for task in self.spec.tasks}
        self.groups = {group.id: group for group in self.spec.groups}
        self.children_of: dict[str | None, list[Task | Group]] = {}
        for item in [*self.spec.groups, *self.spec.tasks]:
            self.children_of.setdefault(item.parent, []).append(item)
        self.lock = threading.RLock()
        self.instances: dict[str, Instance] = {}
        self.rows: dict[str, RunTask] = {}
        self.top: list[Instance] = []
        self.dirty: dict[str, RunTask] = {}
        self.extra_rows: list = []
        self.to_dispatch: list[Instance] = []
        self.running: dict[str, processes.RunningStep] = {}
        self.timers: dict[str, threading.Timer] = {}
        self.canceling = run.state == RunState.CANCELING
        self.failure = ""
        self.closed = False  # finished, or forgotten: nothing more is committed
        self.stopping = False  # the dashboard is shutting down
        self.loaded = False  # nothing is decided before the rows are read
        self.idle = threading.Condition(self.lock)

    # --- building --------------------------------------------------------------------

    def load(self) -> None:
        """Instances for the rows the run already has (a resumed or retried run), and the
        top level for a new one."""
        self.rows = {row.node_id: row for row in
                     RunTask.objects.filter(run=self.run).order_by("created_at", "node_id")}
        self.instances = {}
        self.top = self._children(None, starting=False)
        self.loaded = True
        stack = list(self.top)
        while stack:
            instance = stack.pop()
            if instance.kind != TaskKind.TASK and instance.row.runtime.get("started"):
                instance.children = self._children(instance, starting=False)
                stack.extend(instance.children)
            if instance.row.state == TaskState.FAILED and not self.failure \
                    and not self._contained(instance):
                self.failure = f"{instance.row.display_name}: {instance.row.error}"

    def _children(self, parent: Instance | None, starting: bool) -> list[Instance]:
        """The instances under ``parent`` (the top level for None), with their rows: the
        stored ones, or new ones. ``starting``: the parent starts now, so rows left from a
        retried run's skipped branch are made pending again."""
        made = []
        if parent is not None and parent.kind == TaskKind.LOOP:
            for index in range(len(parent.items)):
                loops = (*parent.loops, (parent.spec.id, index))
                node_id = f"{parent.node_id}.{index}"
                made.append(self._instance(node_id, parent.spec, TaskKind.ITERATION, parent,
                                           loops, starting, index))
            return made
        loops = parent.loops if parent is not None else ()
        for item in self.children_of.get(parent.spec.id if parent else None, []):
            kind = TaskKind.TASK if isinstance(item, Task) else GROUP_KINDS[item.kind]
            made.append(self._instance(item.id + suffix(loops), item, kind, parent, loops,
                                       starting))
        return made

    def _instance(self, node_id: str, spec, kind: str, parent: Instance | None, loops,
                  starting: bool, index: int | None = None) -> Instance:
        row = self.rows.get(node_id)
        if row is None:
            label = spec.name if isinstance(spec, Task) else spec.label
            row = RunTask(
                run=self.run, node_id=node_id, spec_id=spec.id, kind=kind,
                parent=parent.row if parent else None, iteration=index,
                display_name=(f"{label} [{index}]" if index is not None else label)[:512],
                image=(spec.container.image if isinstance(spec, Task) and spec.container
                       else "")[:1000])
            self.rows[node_id] = row
            self.dirty[node_id] = row
        elif starting and row.state == TaskState.SKIPPED and \
                row.runtime.get("skip") == "upstream":
            self._reset(row)
        instance = Instance(node_id, spec, kind, parent, tuple(loops), row)
        self.instances[node_id] = instance
        return instance

    def _reset(self, row: RunTask) -> None:
        row.state = TaskState.PENDING
        row.error = ""
        row.finished_at = None
        row.runtime = {k: v for k, v in row.runtime.items() if k not in ("skip",)}
        self.dirty[row.node_id] = row

    def _walk(self, instances: list[Instance] | None = None) -> Iterator[Instance]:
        for instance in self.top if instances is None else instances:
            yield instance
            if instance.children:
                yield from self._walk(instance.children)

    # --- committing -------------------------------------------------------------------

    def _touch(self, instance: Instance) -> None:
        self.dirty[instance.node_id] = instance.row

    def commit(self, **run_fields) -> None:
        """Save every changed row and the pending Artifact/RunMetric rows in one
        transaction (one revision), published once committed. Retried when SQLite says
        another writer holds the database."""
        if self.closed:
            return
        rows, extra = list(self.dirty.values()), self.extra_rows
        if not rows and not extra and not run_fields:
            return
        remembered = {f: getattr(self.run, f) for f in
                      ("revision", "state", "error", "state_history", "started_at",
                       "finished_at")}
        for attempt in range(LOCKED_RETRIES):
            try:
                if extra:  # the artifacts and metrics of a step in its end's transaction
                    with transaction.atomic():
                        self._save_extra(extra)
                        self.run.commit_changes(rows, **run_fields)
                else:
                    self.run.commit_changes(rows, **run_fields)
                break
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == LOCKED_RETRIES - 1:
                    raise
                for field, value in remembered.items():
                    setattr(self.run, field, value)
                time.sleep(0.02 * 2 ** attempt)
        self.dirty = {}
        self.extra_rows = []

    @staticmethod
    def _save_extra(extra: list) -> None:
        Artifact.objects.bulk_create([row for row in extra if isinstance(row, Artifact)])
        metrics = [row for row in extra if isinstance(row, RunMetric)]
        if metrics:  # a retried step may report a metric again: the latest value wins
            RunMetric.objects.filter(task__in={m.task_id for m in metrics},
                                     name__in={m.name for m in metrics}).delete()
            RunMetric.objects.bulk_create(metrics)

    # --- starting, advancing ----------------------------------------------------------

    def refusal(self) -> str:
        """Why local mode can never run some step of this run ("" when it can run them all)."""
        if self.is_v2:
            return ""
        return argo_templates.unrunnable(self.run.document, self.spec.tasks)

    def start(self) -> None:
        """A new run: its top level, RUNNING; FAILED before any step starts when local mode
        can never run some of them."""
        with self.lock:
            refusal = self.refusal()
            if refusal:
                self.commit(state=RunState.FAILED, error=refusal)
                self._close()
                return
            self.load()
            self.commit(state=RunState.RUNNING, error="")
            self._advance()

    def advance(self) -> None:
        with self.lock:
            self._advance()

    def _advance(self) -> None:
        """Decide everything that can be decided now, commit it, then dispatch what it made
        ready. Caller holds the lock."""
        if self.closed or self.stopping or not self.loaded:
            return
        progress = True
        while progress:
            progress = False
            for instance in list(self._walk()):
                if instance.state == TaskState.PENDING and not instance.dispatched:
                    progress |= self._decide(instance)
                elif instance.state == TaskState.RUNNING and instance.kind != TaskKind.TASK:
                    progress |= self._maybe_end_group(instance)
        run_fields = self._run_end()
        dispatch, self.to_dispatch = self.to_dispatch, []
        self.commit(**run_fields)
        if run_fields:
            self._close()
            return
        for instance in dispatch:
            self.engine.pool.submit(partial(self._execute, instance))

    def _siblings(self, instance: Instance) -> list[Instance]:
        tail = suffix(instance.loops)
        found = []
        for dependency in instance.spec.dependencies:
            sibling = self.instances.get(dependency + tail)
            if sibling is not None:
                found.append(sibling)
        return found

    def _decide(self, instance: Instance) -> bool:
        """Skip or start a pending instance once its dependencies allow; True if it
        changed (or was queued)."""
        iteration = instance.kind == TaskKind.ITERATION  # its loop already waited
        dependencies = [] if iteration else self._siblings(instance)
        if any(not d.finished for d in dependencies):
            return False
        if self.canceling:
            self._end(instance, TaskState.CANCELED, "terminated before it started")
            return True
        spec = instance.spec
        runs_anyway = isinstance(spec, Task) and spec.exit_handler
        if spec.depends and not iteration:
            try:
                if not self._depends(instance, dependencies):
                    return self._skip(instance, "depends", f"its depends ({spec.depends}) "
                                      "is not met")
            except ExpressionError as exc:
                return self._fail(instance, f"cannot evaluate its depends: {exc}")
        elif not runs_anyway:
            broken = next((d for d in dependencies if d.state in BROKEN
                           and not _continues(d)), None)
            if broken is not None:
                return self._skip(instance, "upstream",
                                  f"not run: {broken.row.display_name} {broken.state.lower()}")
            # failFast stops new steps, not the next attempt of one that ran: a retry
            # goes on after a failure elsewhere (live ones never come back here; an
            # attempt lost to a crash does, from resume_interrupted).
            if self.failure and not instance.row.attempts:
                return self._skip(instance, "upstream", f"not run: {self.failure}")
        if iteration:
            loop = instance.parent
            limit = loop.spec.parallelism
            if limit and sum(c.state == TaskState.RUNNING for c in loop.children) >= limit:
                return False
        # Argo decides a loop's when for each item ({{item}} may be in it); KFP at the loop
        per_item = not self.is_v2 and isinstance(spec, Group) and spec.kind == "loop"
        if spec.condition and iteration == per_item:
            try:
                if not self._condition(instance):
                    return self._skip(instance, "condition",
                                      f"its condition is false: {spec.condition}")
            except (ExpressionError, InputError, argo_templates.TemplateError) as exc:
                return self._fail(instance, f"cannot evaluate its condition: {exc}")
        if instance.kind == TaskKind.TASK:
            return self._start_task(instance)
        return self._start_group(instance)

    def _start_group(self, instance: Instance) -> bool:
        row = instance.row
        if instance.kind == TaskKind.LOOP:
            try:
                items = self._loop_items(instance)
            except InputError as exc:
                return self._fail(instance, str(exc))
            row.runtime = {**row.runtime, "items": items}
        row.state = TaskState.RUNNING
        row.runtime = {**row.runtime, "started": True}
        self._touch(instance)
        instance.children = self._children(instance, starting=True)
        return True

    def _maybe_end_group(self, instance: Instance) -> bool:
        children = instance.children or []
        if any(not child.finished for child in children):
            return False
        failed = next((c for c in children if c.state == TaskState.FAILED
                       and not _continues(c)), None)
        canceled = any(c.state == TaskState.CANCELED for c in children)
        if failed is not None:
            self._end(instance, TaskState.FAILED, f"{failed.row.display_name} failed")
        elif canceled or self.canceling:
            self._end(instance, TaskState.CANCELED, "terminated")
        else:
            self._end(instance, TaskState.SUCCEEDED, "")
        return True

    def _run_end(self) -> dict[str, Any]:
        if any(not instance.finished for instance in self.top) or self.running:
            return {}
        if self.canceling:
            return {"state": RunState.CANCELED, "error": "The run was terminated."}
        failed = [i for i in self._walk() if i.state == TaskState.FAILED
                  and i.kind == TaskKind.TASK and not self._contained(i)]
        if failed or any(i.state == TaskState.FAILED and not _continues(i) for i in self.top):
            reason = self.failure or next((f"{i.row.display_name}: {i.row.error}"
                                           for i in failed), "a step failed")
            return {"state": RunState.FAILED, "error": f"The step {reason}"}
        return {"state": RunState.SUCCEEDED, "error": ""}

    def _end(self, instance: Instance, state: str, error: str) -> None:
        instance.row.state = state
        instance.row.error = error[:10000]
        self._touch(instance)

    def _skip(self, instance: Instance, why: str, message: str) -> bool:
        """SKIPPED, and so is every part of a group that never started (rows made for
        them, so the graph shows the branch as not taken)."""
        self._end(instance, TaskState.SKIPPED, message)
        instance.row.runtime = {**instance.row.runtime, "skip": why}
        if instance.kind not in (TaskKind.TASK, TaskKind.LOOP, TaskKind.ITERATION):
            for child in self._children(instance, starting=False):
                if child.state == TaskState.PENDING:
                    self._skip(child, why, message)
        return True

    def _fail(self, instance: Instance, message: str) -> bool:
        self._end(instance, TaskState.FAILED, message)
        if not self.failure and not self._contained(instance):
            self.failure = f"{instance.row.display_name}: {message}"
        return True

    @staticmethod
    def _contained(instance: Instance | None) -> bool:
        """Whether a failure of ``instance`` stays inside a ``continueOn.failed``: its own or
        a group's around it. Such a failure stops no other step and fails no run."""
        while instance is not None:
            if instance.spec.continue_on_failure:
                return True
            instance = instance.parent
        return False

    def _close(self) -> None:
        self.closed = True
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self.idle.notify_all()
        self.engine.forget_execution(self)

    # --- conditions, loops -------------------------------------------------------------

    def _condition(self, instance: Instance) -> bool:
        spec = instance.spec
        if self.is_v2:
            wanted = set(_CONDITION_INPUT.findall(spec.condition))
            values = {}
            for port in spec.inputs:
                if port.name in wanted and port.source is not None:
                    values[port.name] = coerce(self.resolve(port.source, instance, "parameter"),
                                               port.type, port.name)
            return evaluate(spec.condition, values)
        return evaluate(self.dag_text(spec.condition, instance))

    def _depends(self, instance: Instance, dependencies: list[Instance]) -> bool:
        by_name = {}
        for sibling in dependencies:
            by_name[sibling.spec.id.rsplit("/", 1)[-1]] = sibling
            by_name[sibling.spec.id] = sibling

        def name(dotted: str):
            task, _, result = dotted.partition(".")
            sibling = by_name.get(task)
            if sibling is None:
                return None
            state = sibling.state
            outcomes = {
                "Succeeded": state in RAN, "Failed": state == TaskState.FAILED,
                "Errored": False, "Skipped": state == TaskState.SKIPPED,
                "Omitted": state == TaskState.SKIPPED and
                sibling.row.runtime.get("skip") != "condition",
                "Daemoned": False, "AnySucceeded": state in RAN,
                "AllFailed": state == TaskState.FAILED,
            }
            if not result:
                return state in RAN or state == TaskState.SKIPPED
            return outcomes.get(result)

        return evaluate(instance.spec.depends, names=name)

    def _loop_items(self, instance: Instance) -> list:
        group = instance.spec
        if group.loop_items is not None:
            return list(group.loop_items)
        if group.loop_source is None:
            raise InputError(f"the loop over {group.loop_parameter} has nothing to loop over")
        items = self.resolve(group.loop_source, instance, "parameter")
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except ValueError:
                raise InputError(f"the loop over {group.loop_parameter} got {items[:100]!r}, "
                                 "which is not a JSON list") from None
        if not isinstance(items, list):
            raise InputError(f"the loop over {group.loop_parameter} got "
                             f"{type(items).__name__}, not a list")
        return items

    # --- steps -------------------------------------------------------------------------

    def caching_on(self, task: Task) -> bool:
        return self.run.caching is not False and task.caching

    def _start_task(self, instance: Instance) -> bool:
        from .step_launch import prepare_inputs

        try:
            ready = prepare_inputs(self, instance)
        except (InputError, ExpressionError, argo_templates.TemplateError,
                executor_protocol.ProtocolError) as exc:
            return self._fail(instance, str(exc))
        if ready == "done":
            return True
        if self.caching_on(instance.spec):
            source = caching.find(self.run.profile_id, instance.row.cache_key)
            if source is not None:
                self._reuse(instance, source)
                return True
        instance.dispatched = True  # its resolved inputs are saved when it starts
        self.to_dispatch.append(instance)
        return True

    def _reuse(self, instance: Instance, source: RunTask) -> None:
        """CACHED: the source's outputs, its artifacts linked into this run's store."""
        outputs = copy.deepcopy(source.outputs or {})
        for name, listed in (outputs.get("artifacts") or {}).items():
            for entry in listed:
                if not entry.get("path"):
                    continue
                origin = layout.artifacts_root() / entry["path"]
                target = layout.artifact_path(self.namespace, self.run.pk, instance.node_id,
                                              name)
                if origin.exists():
                    artifact_store.copy(origin, target, link=True)
                if entry.get("uri") == str(origin):
                    entry["uri"] = str(target)
                entry["path"] = artifact_store.store_relative(target)
        row = instance.row
        row.outputs = outputs
        row.cached_from = source
        row.runtime = {**row.runtime, "cached_from_run": str(source.run_id)}
        self._end(instance, TaskState.CACHED, "")
        self.extra_rows += artifact_store.rows(self.run, row, outputs.get("artifacts") or {})
        self.extra_rows += [RunMetric(run=self.run, task=row, name=m.name, value=m.value,
                                      format=m.format)
                            for m in RunMetric.objects.filter(task=source)]

    def allowed_attempts(self, instance: Instance) -> int:
        runtime = instance.row.runtime
        return runtime.get("attempt_base", 0) + 1 + instance.spec.retries \
            + runtime.get("free_attempts", 0)

    def _execute(self, instance: Instance) -> None:
        """A worker runs one attempt of a step, from start to committed end."""
        from .step_launch import prepare

        with self.lock:
            if self.closed or self.stopping or self.canceling or not instance.dispatched:
                instance.dispatched = False
                self.timers.pop(instance.node_id, None)
                if self.canceling:
                    self._advance()
                self.idle.notify_all()
                return
            self.timers.pop(instance.node_id, None)
            attempt = instance.row.attempts + 1
        try:
            prepared = prepare(self, instance, attempt)
        except Exception as exc:  # a step that cannot even start fails, saying why
            log.info("step %s of run %s cannot start", instance.node_id, self.run.pk,
                     exc_info=not isinstance(exc, (InputError, OSError)))
            with self.lock:
                instance.row.attempts = attempt
                self._step_ended(instance, attempt, None, None, f"cannot start: {exc}", None)
            return
        outputs, error, outcome = None, None, None
        with prepared.hold():
            try:
                prepared.before()
                outcome = processes.run(
                    prepared.launch, prepared.log, prepared.timeout, prepared.warm,
                    partial(self._started, instance, attempt, prepared),
                    settings.KFDASH_STEP_KILL_GRACE, self.engine.recorders)
                self.engine.pool.release()  # the next step may start while this one ends
                if outcome.exit_code == 0 and not (outcome.timed_out or outcome.stopped):
                    outputs = prepared.collect()
            except Exception as exc:  # outputs unreadable, inputs unplaceable: the step failed
                log.info("step %s of run %s: %s", instance.node_id, self.run.pk, exc,
                         exc_info=not isinstance(exc, (executor_protocol.ProtocolError,
                                                       argo_templates.TemplateError, OSError)))
                error = str(exc)
        with self.lock:
            self._step_ended(instance, attempt, prepared, outcome, error, outputs)

    def _started(self, instance: Instance, attempt: int, prepared, step) -> None:
        with self.lock:
            self.running[instance.node_id] = step
            row = instance.row
            row.attempts = attempt
            row.state = TaskState.RUNNING
            row.exit_code = None
            row.command = prepared.command
            row.runtime = {**row.runtime, "pid": step.pid, "folder": str(prepared.folder),
                           "mode": prepared.mode, "exec": prepared.launch.argv[:50],
                           "timeout": prepared.timeout or None,
                           "memory_limit": step.memory or None}
            self._touch(instance)
            self.commit()
            if self.canceling or self.stopping or self.closed:
                step.stop(0 if self.closed else settings.KFDASH_STEP_KILL_GRACE)

    def _step_ended(self, instance: Instance, attempt: int, prepared, outcome,
                    error: str | None, outputs) -> None:
        """Record how an attempt ended and decide what follows. Caller holds the lock."""
        self.running.pop(instance.node_id, None)
        row = instance.row
        step_log = prepared.log if prepared is not None else None
        try:
            if self.closed:
                return
            if outcome is not None:
                row.exit_code = outcome.exit_code
                row.runtime = {**row.runtime, "process_seconds": round(outcome.seconds, 4)}
            if self.stopping:
                row.state = TaskState.PENDING
                row.runtime = {**row.runtime,
                               "free_attempts": row.runtime.get("free_attempts", 0) + 1}
                if step_log:
                    step_log.note("stopped by a dashboard shutdown; it runs again when "
                                  "kfdash starts")
                    step_log.close(final=False)
                instance.dispatched = False
                self._touch(instance)
                self.commit()
                return
            succeeded = outcome is not None and outcome.exit_code == 0 and error is None \
                and not outcome.timed_out and not outcome.stopped and outputs is not None
            if succeeded:
                self._succeeded(instance, outputs, outcome, step_log)
            else:
                self._attempt_failed(instance, attempt, outcome, error, step_log)
            self._touch(instance)
            self._advance()
        finally:
            if step_log is not None:
                step_log.close(final=True)
            self.idle.notify_all()

    def _succeeded(self, instance: Instance, outputs, outcome, step_log) -> None:
        parameters, produced, result = outputs
        row = instance.row
        for name, listed in produced.items():
            for entry in listed:
                entry["fingerprint"] = f"{row.pk}:{name}"
        row.outputs = {"parameters": parameters, "artifacts": produced}
        if result is not None:  # Argo's outputs.result, captured because something reads it
            row.outputs["result"] = result
        instance.dispatched = False
        self._end(instance, TaskState.SUCCEEDED, "")
        self.extra_rows += artifact_store.rows(self.run, row, produced)
        self.extra_rows += artifact_store.metrics(self.run, row, produced)
        if step_log:
            step_log.note(f"succeeded in {outcome.seconds:.2f} s")

    def _attempt_failed(self, instance: Instance, attempt: int, outcome, error, step_log):
        row = instance.row
        if outcome is not None and outcome.timed_out:
            message = f"timed out after {row.runtime.get('timeout') or 0:g} s"
        elif outcome is not None and outcome.stopped:
            message = "terminated"
        elif outcome is not None and outcome.error:
            message = outcome.error
        elif outcome is not None and outcome.out_of_memory:
            message = outcome.out_of_memory
        elif outcome is not None and outcome.exit_code not in (0, None):
            message = describe_exit(outcome.exit_code)
            last = logs.last_line(step_log.folder) if step_log else ""
            if last:
                message = f"{message}: {last}"
        else:
            message = error or "failed"
        if outcome is not None and outcome.exit_code == 0 and error:
            message = f"its outputs cannot be read: {error}"
        if self.canceling:
            instance.dispatched = False
            self._end(instance, TaskState.CANCELED, "terminated")
            if step_log:
                step_log.note("terminated")
            return
        if attempt < self.allowed_attempts(instance):
            delay = backoff_seconds(instance.spec.retry_policy, attempt, self.is_v2)
            row.error = (f"attempt {attempt} {message}; attempt {attempt + 1} "
                         f"{'in ' + format(delay, 'g') + ' s' if delay else 'now'}")[:10000]
            if step_log:
                step_log.note(row.error)
                step_log.close(final=False)
            self._retry_later(instance, delay)
            return
        instance.dispatched = False
        self._fail(instance, message)
        if step_log:
            step_log.note(f"failed: {message}")

    def _retry_later(self, instance: Instance, delay: float) -> None:
        job = partial(self.engine.pool.submit, partial(self._execute, instance))
        if delay <= 0:
            job()
            return
        timer = threading.Timer(delay, job)
        timer.daemon = True
        self.timers[instance.node_id] = timer
        timer.start()

    # --- terminate, retry, stop ----------------------------------------------------------

    def terminate(self) -> None:
        with self.lock:
            if self.closed or self.canceling:
                return
            self.canceling = True
            for node_id in list(self.timers):  # waiting to retry: nothing runs, it ends now
                self.timers.pop(node_id).cancel()
                instance = self.instances[node_id]
                instance.dispatched = False
                self._end(instance, TaskState.CANCELED, "terminated")
            for node_id, step in self.running.items():
                row = self.instances[node_id].row
                row.state = TaskState.CANCELING
                self.dirty[node_id] = row
                step.stop(settings.KFDASH_STEP_KILL_GRACE)
            for instance in self.instances.values():  # queued for a worker: never started
                if instance.dispatched and instance.node_id not in self.running \
                        and instance.state == TaskState.PENDING:
                    instance.dispatched = False
                    self._end(instance, TaskState.CANCELED, "terminated before it started")
            self.commit(state=RunState.CANCELING)
            self._advance()

    def retry(self) -> None:
        """Failed and cancelled steps (and what they kept from running) run again; the
        others keep their outputs."""
        with self.lock:
            refusal = self.refusal()
            if refusal:
                raise EngineError(refusal)
            self.load()
            self.failure = ""
            for instance in self._walk():
                row, runtime = instance.row, instance.row.runtime
                skipped_for_failure = row.state == TaskState.SKIPPED and \
                    runtime.get("skip") == "upstream"
                if row.state in (*BROKEN, TaskState.CANCELING, TaskState.RUNNING) \
                        or skipped_for_failure:
                    self._reset(row)
                    if instance.kind == TaskKind.TASK:
                        row.runtime = {**row.runtime, "attempt_base": row.attempts}
                    elif runtime.get("started"):
                        row.state = TaskState.RUNNING
            self.commit(state=RunState.RUNNING, error="")
            self._advance()

    def resume_interrupted(self) -> None:
        """After a restart: steps that were running when the last process died count an
        attempt and run again, or fail when they have no attempt left."""
        with self.lock:
            self.load()
            for instance in self._walk():
                row = instance.row
                if instance.kind != TaskKind.TASK or row.state not in (
                        TaskState.RUNNING, TaskState.CANCELING):
                    continue
                folder = layout.log_folder(self.namespace, self.run.pk, instance.node_id,
                                           row.attempts)
                if self.canceling or row.state == TaskState.CANCELING:
                    logs.close_interrupted(folder, "interrupted by restart", final=True)
                    self._end(instance, TaskState.CANCELED, "terminated")
                elif row.attempts < self.allowed_attempts(instance):
                    logs.close_interrupted(folder, "interrupted by restart; it runs again",
                                           final=False)
                    row.state = TaskState.PENDING
                    row.error = f"attempt {row.attempts} was interrupted by restart"
                    self._touch(instance)
                else:
                    logs.close_interrupted(folder, "interrupted by restart", final=True)
                    self._fail(instance, "interrupted by restart")
            if self.run.state == RunState.PENDING:
                self.commit(state=RunState.RUNNING, error="")
            self._advance()

    def stop(self, grace: float) -> None:
        """Dashboard shutdown: running steps are stopped and go back to PENDING without
        spending an attempt; the next start runs them again."""
        with self.lock:
            if self.closed:
                return
            self.stopping = True
            for node_id in list(self.timers):
                self.timers.pop(node_id).cancel()
                instance = self.instances[node_id]
                instance.dispatched = False
                instance.row.state = TaskState.PENDING
                self._touch(instance)
            for step in self.running.values():
                step.stop(grace)
            for instance in self.instances.values():
                if instance.node_id not in self.running:
                    instance.dispatched = False
            self.commit()

    def abandon(self) -> None:
        """The run is being deleted: stop everything now, commit nothing more."""
        with self.lock:
            self.closed = True
            for timer in self.timers.values():
                timer.cancel()
            self.timers.clear()
            for step in self.running.values():
                step.stop(0)
            self.engine.forget_execution(self)

    def wait_idle(self, timeout: float) -> bool:
        """Until no step of this run is running (after stop or abandon)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True


def _continues(instance: Instance) -> bool:
    """Whether ``instance`` failed under Argo's ``continueOn.failed``: what depends on it
    runs and its group does not fail for it."""
    return instance.state == TaskState.FAILED and instance.spec.continue_on_failure
