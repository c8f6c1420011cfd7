"""The local engine: runs each pipeline step as a process on this host.

What happens to a run (``execution.py`` has the details, with ``instances.py``,
``inputs.py`` and ``retries.py``; ``expressions.py`` evaluates conditions):

- ``submit``: the run's execution starts on a background thread; steps that are ready
  are queued for a shared pool of workers, at most ``KFDASH_RUN_PARALLELISM`` at once
  across all runs (default: the number of cores). Every transition (a task starting,
  ending, being skipped or cached; a group expanding; the run ending) is committed through
  ``Run.commit_changes`` before anything depends on it, and published after the commit.
- A step is a process group of its own (``processes.py``; ``step_launch.py`` prepares
  each attempt) with its own folder under
  ``DATA_DIR/runs`` (``layout.py``), the environment its spec declares, and its output in
  a capped log (``logs.py``). KFP v2 steps speak the executor protocol
  (``executor_protocol.py``); Python components skip a pip install that would change
  nothing and run on a warm Python (``python_steps.py``, ``warm_python.py``). KFP v1
  steps are Argo container, script and timed suspend templates (``argo_templates.py``;
  templates only a cluster can run fail the run before it starts) whose absolute paths are
  private to each step (``isolation.py``: a user and mount namespace where the host
  allows it unprivileged, else rewritten paths). A step's memory limit is enforced (a
  cgroup of its own, else RLIMIT_AS: ``dashboard.host_limits``). Output artifacts go to
  ``DATA_DIR/artifacts`` with Artifact and RunMetric rows (``artifacts.py``); a task
  whose component and inputs match an earlier success reuses its outputs
  (``caching.py``).
- ``terminate``: SIGTERM to every running step's group (and what left it), SIGKILL after
  ``KFDASH_STEP_KILL_GRACE``; CANCELING, then CANCELED once they are gone.
- ``retry``: failed and cancelled steps run again; succeeded ones keep their outputs.
- Restarts: steps are children of the dashboard (their output pipes end with it), so
  ``shutdown`` stops them and puts them back to PENDING without spending an attempt;
  after a crash, ``resume`` (at start-up) kills what the dead process left running, and
  each step that was running counts the lost attempt: it runs again, or fails with
  "interrupted by restart" when it has no retries left. Finished steps and their outputs
  are never run again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from pipelines.choices import FINISHED, RunState
from pipelines.engines.base import Engine, EngineError
from pipelines.models import Run, RunTask

from . import isolation, layout, logs, processes, python_steps
from .execution import Execution
from .warm_python import WarmPython, interpreter_env

log = logging.getLogger(__name__)

# What steps inherit of the dashboard's environment (as notebook servers do, plus HOME):
# never its secrets or database URL.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TERM", "SHELL", "USER", "LOGNAME",
                 "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "HTTP_PROXY",
                 "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
WARM_RETRY_SECONDS = 60.0  # after the warm Python could not start, try again this late
SHUTDOWN_GRACE = 5.0
RECORDERS = 64


class LocalEngine(Engine):
    # Whether steps' memory limits may use cgroups (else RLIMIT_AS is the fallback).
    memory_cgroups = True

    def __init__(self):
        self._lock = threading.Lock()
        self._executions: dict = {}
        self.pool = processes.StepPool(lambda: settings.KFDASH_RUN_PARALLELISM)
        # Threads that record steps starting while they run (each with its own database
        # connection, kept for the next).
        self.recorders = processes.StepPool(lambda: RECORDERS)
        self._warm: WarmPython | None = None
        self._warm_lock = threading.Lock()
        self._warm_failed_at = -WARM_RETRY_SECONDS
        self._isolation_said = False
        self._shims_lock = threading.Lock()
        self._shims_made: set[Path] = set()
        self._base_envs: dict[str, dict[str, str]] = {}

    # --- what steps get ----------------------------------------------------------------

    @property
    def step_python(self) -> str:
        return settings.KFDASH_STEP_PYTHON or sys.executable

    def base_env(self) -> dict[str, str]:
        """What every step inherits: the dashboard's harmless variables (not its secrets or
        database URL), and a PATH where ``python``/``python3`` are the step interpreter."""
        python = self.step_python
        env = self._base_envs.get(python)
        if env is None:
            env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
            env.update({k: v for k, v in os.environ.items() if k.startswith("LC_")})
            env["PATH"] = os.pathsep.join([str(self._shims()), os.path.dirname(python),
                                           env.get("PATH", os.defpath)])
            self._base_envs[python] = env
        return dict(env)

    def _shims(self) -> Path:
        """``python`` and ``python3`` scripts for commands that name them inside a shell
        script (a symlink would lose a virtualenv's site-packages)."""
        python = self.step_python
        folder = layout.engine_folder() / "bin" / hashlib.sha256(python.encode()).hexdigest()[:16]
        with self._shims_lock:
            if folder in self._shims_made:
                return folder
            script = f'#!/bin/sh\nexec "{python}" "$@"\n'
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("python", "python3"):
                path = folder / name
                if not path.exists() or path.read_text() != script:
                    temporary = folder / f".{name}.{os.getpid()}"
                    temporary.write_text(script)
                    temporary.chmod(0o755)
                    temporary.replace(path)
            self._shims_made.add(folder)
        return folder

    def warm_python(self) -> WarmPython | None:
        """The warm Python, started on first use; None when it cannot run (no kfp in the
        step interpreter), tried again a minute later."""
        with self._warm_lock:
            if self._warm is not None and self._warm.python != self.step_python:
                self._warm.stop()  # KFDASH_STEP_PYTHON changed (tests do that)
                self._warm, self._warm_failed_at = None, -WARM_RETRY_SECONDS
            if self._warm is not None and self._warm.alive:
                return self._warm
            if time.monotonic() - self._warm_failed_at < WARM_RETRY_SECONDS:
                return None
            warm = WarmPython(self.step_python, interpreter_env(self.base_env()),
                              layout.engine_folder() / "warm")
            if warm.start():
                self._warm = warm
                return warm
            self._warm_failed_at = time.monotonic()
            log.warning("KFP v2 Python steps start fresh interpreters: the warm Python "
                        "cannot run (%s)", warm.error)
            return None

    def isolation_mode(self) -> str:
        wanted = settings.KFDASH_STEP_ISOLATION
        if wanted == "rewrite":
            return "rewrite"
        ok, why = isolation.namespaces_available(self.step_python,
                                                 layout.engine_folder() / "probe")
        if ok:
            return "namespace"
        if wanted == "namespace":
            raise EngineError(f"KFDASH_STEP_ISOLATION=namespace, but this host does not "
                              f"allow it: {why}")
        if not self._isolation_said:
            self._isolation_said = True
            log.warning("v1 steps get rewritten paths: no unprivileged namespaces (%s)", why)
        return "rewrite"

    # --- executions ----------------------------------------------------------------------

    def _register(self, run: Run) -> Execution | None:
        """A new execution for ``run``; None while another one still executes it."""
        with self._lock:
            existing = self._executions.get(run.pk)
        if existing is not None:
            with existing.lock:  # an ending run commits its end, then closes, holding it
                if not existing.closed:
                    return None
        with self._lock:
            if self._executions.get(run.pk) not in (None, existing):
                return None
            execution = Execution(self, run)
            self._executions[run.pk] = execution
            return execution

    def forget_execution(self, execution: Execution) -> None:
        with self._lock:
            if self._executions.get(execution.run.pk) is execution:
                del self._executions[execution.run.pk]

    def _in_background(self, work, *args) -> None:
        def run() -> None:
            close_old_connections()
            try:
                work(*args)
            except Exception:
                log.exception("the local engine failed at %s%s", work.__name__, args)
            finally:
                connection.close()

        threading.Thread(target=run, name=f"engine-{work.__name__}", daemon=True).start()

    @staticmethod
    def _fresh(run: Run) -> Run:
        return Run.objects.select_related("profile").get(pk=run.pk)

    # --- the contract ----------------------------------------------------------------------

    def submit(self, run: Run) -> None:
        execution = self._register(self._fresh(run))
        if execution is not None:
            self._in_background(execution.start)

    def terminate(self, run: Run) -> None:
        with self._lock:
            execution = self._executions.get(run.pk)
        if execution is not None:
            execution.terminate()
            return
        # Not running in this process (its process died before resume): settle it here.
        fresh = self._fresh(run)
        if fresh.is_finished:
            return
        execution = Execution(self, fresh)
        with execution.lock:
            execution.canceling = True
            execution.commit(state=RunState.CANCELING)
        processes.stop_all_under(layout.run_folder(fresh.namespace, fresh.pk),
                                 settings.KFDASH_STEP_KILL_GRACE)
        execution.resume_interrupted()

    def retry(self, run: Run) -> None:
        execution = self._register(self._fresh(run))
        if execution is None:
            raise EngineError(f"The run {run.name} is still being executed.")
        try:  # here, so that the run is RUNNING when the caller looks
            execution.retry()
        except Exception:
            self.forget_execution(execution)
            raise

    def forget(self, run: Run) -> None:
        with self._lock:
            execution = self._executions.pop(run.pk, None)
        if execution is not None:
            execution.abandon()
            execution.wait_idle(10)
        namespace = run.profile.name
        if execution is not None or not run.is_finished:  # else nothing of it can run
            processes.stop_all_under(layout.run_folder(namespace, run.pk), 0)
        shutil.rmtree(layout.run_folder(namespace, run.pk), ignore_errors=True)
        shutil.rmtree(layout.run_artifacts(namespace, run.pk), ignore_errors=True)

    def resume(self) -> None:
        """At server start, in the background: stop what a previous process left running,
        then pick up every unfinished run."""
        self._in_background(self._resume)

    def _resume(self) -> None:
        self._warm_up()
        runs = list(Run.objects.unfinished().select_related("profile"))
        # Steps are left running only by a process that died during a run.
        if runs and processes.stop_all_under(layout.runs_root(), 2.0):
            log.info("stopped the steps a previous dashboard process left running")
        for run in runs:
            execution = self._register(run)
            if execution is None:
                continue
            try:
                execution.resume_interrupted()
            except Exception:
                log.exception("cannot resume the run %s", run.pk)
                self.forget_execution(execution)

    def stop_runs(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop every run this process executes: their running steps are stopped and go
        back to PENDING without spending an attempt (``resume`` runs them again)."""
        with self._lock:
            executions = list(self._executions.values())
            self._executions.clear()
        for execution in executions:
            execution.stop(min(grace, settings.KFDASH_STEP_KILL_GRACE))
        for execution in executions:
            if not execution.wait_idle(grace + 10):
                log.warning("steps of the run %s did not stop", execution.run.pk)

    def _warm_up(self) -> None:
        """Start the warm Python and learn whether the kfp a default component pins is
        installed, in parallel, so the first step after start-up does not wait for them."""
        if settings.KFDASH_STEP_WARM_PYTHON:
            threading.Thread(target=self.warm_python, name="engine-warm-python",
                             daemon=True).start()
        python_steps.missing(list(python_steps.DEFAULT_REQUIREMENTS), self.step_python,
                             self.base_env())

    def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Server shutdown: ``stop_runs``, then the warm Python; the engine can be used
        again afterwards."""
        self.stop_runs(grace)
        with self._warm_lock:
            if self._warm is not None:
                self._warm.stop()
                self._warm = None
        self.pool.close()
        self.recorders.close()
        connection.close()

    # --- logs ------------------------------------------------------------------------------

    def read_log(self, task: RunTask, tail_bytes: int | None = None) -> str:
        folders = layout.attempt_logs(task.run.profile.name, task.run_id, task.node_id)
        return logs.read([f for f in folders if f.is_dir()], tail_bytes)

    async def follow_log(self, task: RunTask) -> AsyncIterator[str]:
        namespace = await sync_to_async(lambda: task.run.profile.name)()
        run_id, node_id, task_id = task.run_id, task.node_id, task.pk

        @sync_to_async
        def finished() -> bool:
            state = RunTask.objects.filter(pk=task_id).values_list("state", flat=True).first()
            return state is None or state in FINISHED

        async for text in logs.follow(
                lambda n: layout.log_folder(namespace, run_id, node_id, n), finished):
            yield text
