"""A warm Python for KFP v2 Python components: one server process of the step interpreter
that has already imported the KFP executor and forks a child per step
(``warm_python_server.py``).

A fresh interpreter spends ~15 ms starting and ~60 ms importing ``kfp.dsl.executor_main``
before a trivial component runs; a fork of the warm server starts in about a millisecond,
with the same modules and a clean state (the server never runs user code). The child is a
process group of its own with the step's folder, environment, arguments and output
descriptor, so everything else (logs, timeouts, terminate) treats it like any step; a
step with a memory limit enters it in the child, before it runs anything of the step.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dashboard.host_limits import ENTER_SOURCE

SERVER_SOURCE = (Path(__file__).with_name("warm_python_server.py")).read_text()
START_TIMEOUT = 30.0
INLINE_REQUEST_BYTES = 48 * 1024  # below the socket's buffer: larger requests go by file


@dataclass
class WarmChild:
    """A step forked by the warm server: its pid once known, its exit code once reaped."""

    request_id: int
    pid: int | None = None
    returncode: int | None = None
    exited_at: float | None = None  # time.monotonic() when the server reported the exit
    _started: threading.Event = field(default_factory=threading.Event)
    _exited: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> int | None:
        self._exited.wait(timeout)
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode


class WarmPython:
    """The server for one interpreter; ``run`` forks a step, ``stop`` ends them all."""

    def __init__(self, python: str, env: dict[str, str], cwd: Path):
        self.python, self.env, self.cwd = python, env, cwd
        self._lock = threading.Lock()
        self._children: dict[int, WarmChild] = {}
        self._next_id = 0
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen | None = None
        self.error = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._sock is not None and self._process is not None \
            and self._process.poll() is None

    def start(self) -> bool:
        """Start the server and wait until it has imported the executor; False (with
        ``error``) when this interpreter cannot (no kfp)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.cwd.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.cwd / "warm-python.log", "ab") as errors:
                self._process = subprocess.Popen(
                    [self.python, "-c", SERVER_SOURCE, str(theirs.fileno()), ENTER_SOURCE],
                    pass_fds=[theirs.fileno()], env=self.env, cwd=self.cwd,
                    stdin=subprocess.DEVNULL, stdout=errors, stderr=errors)
        except OSError as exc:
            ours.close()
            self.error = f"cannot start {self.python}: {exc}"
            return False
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT)
        try:
            hello = json.loads(ours.recv(65536) or b"{}")
        except (OSError, ValueError) as exc:
            hello = {"ready": False, "error": f"no answer ({exc})"}
        if not hello.get("ready"):
            self.error = hello.get("error") or self._stderr()
            ours.close()
            self._stop_process()
            return False
        ours.settimeout(None)
        self._sock = ours
        threading.Thread(target=self._read, args=(ours,), name="warm-python-reader",
                         daemon=True).start()
        return True

    def run(self, request: dict, stdout_fd: int, spill: Path) -> WarmChild:
        """Fork a step described by ``request`` (module, args, cwd, env, and the
        ``limits`` it enters: ``MemoryLimit.child_spec``), its output going to
        ``stdout_fd``; a request too big for one message goes through the file ``spill``.
        Raises OSError when the server is gone."""
        with self._lock:
            self._next_id += 1
            child = WarmChild(self._next_id)
            self._children[child.request_id] = child
            sock = self._sock
        if sock is None:
            raise OSError("the warm Python is not running")
        message = json.dumps({"id": child.request_id, "request": request}).encode()
        if len(message) > INLINE_REQUEST_BYTES:
            spill.write_text(json.dumps(request))
            message = json.dumps({"id": child.request_id, "request": str(spill)}).encode()
        socket.send_fds(sock, [message], [stdout_fd])
        if not child._started.wait(START_TIMEOUT) or child.pid is None:
            raise OSError("the warm Python did not start the step")
        return child

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._lock:
                child = self._children.get(message["id"])
                if "exit" in message:
                    self._children.pop(message["id"], None)
            if child is None:
                continue
            if "pid" in message:
                child.pid = message["pid"]
                child._started.set()
            if "exit" in message:
                child.exited_at = time.monotonic()
                child.returncode = message["exit"]
                child._started.set()
                child._exited.set()
        # The server is gone: its children were killed with it.
        with self._lock:
            orphans = list(self._children.values())
            self._children.clear()
            if self._sock is sock:
                self._sock = None
        for child in orphans:
            if child.returncode is None:
                child.returncode = -9
            child._started.set()
            child._exited.set()

    def stop(self) -> None:
        """End the server; it kills the steps it still runs."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            # shutdown first: the reader thread blocked in recv keeps the socket open
            # (and the server waiting) until something wakes it.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._stop_process()

    def _stop_process(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _stderr(self) -> str:
        try:
            return (self.cwd / "warm-python.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def interpreter_env(base: dict[str, str]) -> dict[str, str]:
    """The server's own environment: the steps' base one, plus what the KFP executor
    module reads when it is imported."""
    return {**base, "_KFP_RUNTIME": "true", "PYTHONUNBUFFERED": "1"}

