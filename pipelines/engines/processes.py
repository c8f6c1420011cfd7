"""Step processes: start one as a process group (a fresh process, or a fork of the warm
Python), under its memory limit, pump its output into its log, enforce its deadline, and
stop it and everything it started.

A step with a memory limit gets a cgroup of its own with that limit (else RLIMIT_AS, see
``dashboard.host_limits``), entered by the step itself before it runs: a fresh process
through the launcher, a warm fork right after the fork. The cgroup goes when the step ends.

Every step process carries ``KFDASH_STEP=<its attempt folder>`` in its environment, so
what it started can be found through ``/proc`` even after leaving its process group, and
a restarted dashboard can find what a dead one left running (``notebooks.spawners.process``
does the finding and killing for notebook servers and steps alike).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import close_old_connections, connection

from dashboard import host_limits
from notebooks.spawners import process as host_process

from .logs import CHUNK, LogWriter, last_line
from .warm_python import WarmChild, WarmPython

log = logging.getLogger(__name__)

TAG = "KFDASH_STEP"
WORKER_IDLE_SECONDS = 60.0
LEFTOVER_GRACE = 1.0  # seconds the output pipe may stay open after the step's leader exits


@dataclass
class Launch:
    """What to start: ``argv`` as a fresh process, or ``warm_module`` + ``warm_args``
    on the warm Python (``request_file``: where a request too big for a message goes)."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    tag: str  # the attempt folder, the value of KFDASH_STEP
    warm_module: str = ""
    warm_args: list[str] = field(default_factory=list)
    request_file: Path | None = None
    memory_limit: str = ""  # a Kubernetes quantity ("1Gi"); "" for none
    memory_cgroups: bool = True  # False: RLIMIT_AS even where a cgroup could be made


@dataclass
class Outcome:
    exit_code: int | None  # None: it could not start
    seconds: float  # how long the process ran
    timed_out: bool = False
    stopped: bool = False  # terminated by the engine (cancel, shutdown)
    error: str = ""  # why it could not start
    out_of_memory: str = ""  # why it failed, when it ran out of its memory limit


class RunningStep:
    """A started step the engine may have to stop (terminate, shutdown, timeout)."""

    def __init__(self, pid: int, tag: str, memory: str = ""):
        self.pid, self.tag = pid, tag
        self.memory = memory  # how its memory limit is enforced, for people ("" without one)
        self.stop_requested = False
        self._stopping: threading.Thread | None = None  # set once started: join() may wait
        self._lock = threading.Lock()  # a terminate and a timeout may stop it at once

    def stop(self, grace: float) -> None:
        """SIGTERM to the group (and to what left it), SIGKILL after ``grace``; returns at
        once, the step's own thread notices the end."""
        with self._lock:
            if self._stopping is not None:
                return
            self.stop_requested = True
            stopping = threading.Thread(target=self.kill_now, args=(grace,),
                                        name=f"stop-step-{self.pid}", daemon=True)
            stopping.start()
            self._stopping = stopping

    def kill_now(self, grace: float) -> None:
        host_process.terminate(self.pid, (TAG, self.tag), grace)

    def join(self, timeout: float) -> None:
        if self._stopping is not None:
            self._stopping.join(timeout)


def run(launch: Launch, log: LogWriter, timeout: float, warm: WarmPython | None,
        on_start: Callable[[RunningStep], None], grace: float,
        recorders: StepPool) -> Outcome:
    """Start the step, pump its output into ``log`` until it ends, and return how it
    ended. ``on_start`` is called once the process exists (the engine records it), on one
    of the ``recorders``' threads while the step runs."""
    if not launch.memory_limit:
        return _run(launch, None, log, timeout, warm, on_start, grace, recorders)
    memory = host_limits.enforce_memory(launch.memory_limit, _cgroup_name(launch.tag),
                                        cgroups=launch.memory_cgroups)
    try:
        return _run(launch, memory, log, timeout, warm, on_start, grace, recorders)
    finally:
        memory.release()


def _cgroup_name(tag: str) -> str:
    return f"kfdash-step-{hashlib.sha256(tag.encode()).hexdigest()[:20]}"


def _described(memory: host_limits.MemoryLimit) -> str:
    return memory.describe("the step and what it starts",
                           "the step and of each process it starts")


def _run(launch: Launch, memory: host_limits.MemoryLimit | None, log: LogWriter,
         timeout: float, warm: WarmPython | None, on_start: Callable[[RunningStep], None],
         grace: float, recorders: StepPool) -> Outcome:
    limits = memory.child_spec() if memory is not None else {}
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    try:
        if launch.warm_module and warm is not None:
            request = {"module": launch.warm_module, "args": launch.warm_args,
                       "cwd": str(launch.cwd), "env": launch.env, "limits": limits}
            handle: subprocess.Popen | WarmChild = warm.run(request, write_fd,
                                                            launch.request_file)
        else:
            argv = host_limits.launched(sys.executable, limits, launch.argv) if limits \
                else launch.argv
            handle = subprocess.Popen(
                argv, cwd=launch.cwd, env=launch.env, stdin=subprocess.DEVNULL,
                stdout=write_fd, stderr=write_fd, start_new_session=True, close_fds=True)
    except OSError as exc:
        os.close(read_fd)
        return Outcome(None, 0.0, error=f"cannot start {launch.argv[0]}: {exc}")
    finally:
        os.close(write_fd)
    step = RunningStep(handle.pid, launch.tag, _described(memory) if memory else "")
    # Recording the start (a commit) happens while the step runs, not before its output
    # is read; it is over before the step's end is recorded.
    recorded = threading.Event()

    def record() -> None:
        try:
            on_start(step)
        finally:
            recorded.set()

    recorders.submit(record)
    try:
        timed_out = _pump(read_fd, handle, step, log, timeout, grace)
        code = handle.wait()
        ended = getattr(handle, "exited_at", None) or time.monotonic()
    finally:
        os.close(read_fd)
        recorded.wait()
    step.join(grace + 10)
    out_of_memory = ""
    if memory is not None and memory.exceeded(code, last_line(log.folder) if code else ""):
        out_of_memory = memory.out_of_memory("the step")
    return Outcome(code, max(ended - started, 0.0), timed_out=timed_out,
                   stopped=step.stop_requested, out_of_memory=out_of_memory)


def _pump(fd: int, handle, step: RunningStep, log: LogWriter, timeout: float,
          grace: float) -> bool:
    """Copy output to the log until every writer closed the pipe; enforce the deadline.
    Returns whether the step timed out."""
    deadline = time.monotonic() + timeout if timeout else None
    timed_out = False
    leader_gone_at = None
    while True:
        wait = 1.0
        if deadline is not None and not timed_out:
            wait = max(min(wait, deadline - time.monotonic()), 0)
        readable, _, _ = select.select([fd], [], [], wait)
        if readable:
            data = os.read(fd, CHUNK)
            if not data:
                return timed_out
            log.write(data)
            continue
        if deadline is not None and not timed_out and time.monotonic() >= deadline:
            timed_out = True
            step.stop_requested = True
            threading.Thread(target=step.kill_now, args=(grace,), daemon=True).start()
        if handle.poll() is not None:
            # The leader exited but something still holds the output open: the rest of
            # its group goes now, escapees (a new session) after a short grace.
            now = time.monotonic()
            if leader_gone_at is None:
                leader_gone_at = now
                with contextlib.suppress(OSError):
                    os.killpg(step.pid, signal.SIGKILL)
            elif now - leader_gone_at > LEFTOVER_GRACE:
                host_process.terminate(None, (TAG, step.tag), 0)
                leader_gone_at = now


def kill_leftovers(step: RunningStep) -> None:
    """After a step ends, what it started in its group ends too (as in a pod)."""
    with contextlib.suppress(OSError):
        os.killpg(step.pid, signal.SIGKILL)


def stop_all_under(folder: Path, grace: float) -> str:
    """Stop every step process whose attempt folder is under ``folder`` (a run's, or all
    runs'): what a previous dashboard process left running."""
    return host_process.terminate(None, (TAG, f"{folder}{os.sep}"), grace, prefix=True)


class StepPool:
    """Runs step jobs on worker threads, in the order they came, with at most ``limit()``
    of them holding a slot: a job holds one until its process has ended (``release``), so
    recording a step's end overlaps the next step's run and the cores stay busy. Workers
    stay for the next job (each keeps its database connection) and leave after idling."""

    def __init__(self, limit: Callable[[], int]):
        self.limit = limit
        self._cond = threading.Condition()
        self._queue: deque[Callable[[], None]] = deque()
        self._busy = 0  # jobs holding a slot
        self._active: set[threading.Thread] = set()  # threads running a job
        self._holding: set[threading.Thread] = set()
        self._threads: set[threading.Thread] = set()
        self._closing = False

    @property
    def busy(self) -> int:
        return self._busy

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            self._queue.append(job)
            self._kick()

    def close(self, timeout: float = 10.0) -> None:
        """Let the idle workers go (each closes its database connection): at shutdown.
        Jobs submitted later get new workers."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        with self._cond:
            self._closing = False

    def release(self) -> None:
        """The calling job's process has ended: its slot can start the next step."""
        me = threading.current_thread()
        with self._cond:
            if me in self._holding:
                self._holding.discard(me)
                self._busy -= 1
                self._kick()

    def _kick(self) -> None:
        """Enough threads for the queued jobs that may start now. Caller holds the lock."""
        need = min(len(self._queue), max(self.limit() - self._busy, 0))
        while len(self._threads) - len(self._active) < need:
            thread = threading.Thread(target=self._work, name="kfdash-step", daemon=True)
            self._threads.add(thread)
            thread.start()
        self._cond.notify_all()

    def _work(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                with self._cond:
                    while not (self._queue and self._busy < self.limit()):
                        if self._closing and not self._queue:
                            self._threads.discard(me)
                            return
                        if not self._cond.wait(WORKER_IDLE_SECONDS) and not self._queue:
                            self._threads.discard(me)  # under the lock: _kick counts right
                            return
                    job = self._queue.popleft()
                    self._busy += 1
                    self._active.add(me)
                    self._holding.add(me)
                try:
                    close_old_connections()
                    job()
                except Exception:
                    log.exception("a step job failed")
                finally:
                    with self._cond:
                        self._active.discard(me)
                        if me in self._holding:
                            self._holding.discard(me)
                            self._busy -= 1
                        self._kick()
        finally:
            with self._cond:
                self._threads.discard(me)
            connection.close()
