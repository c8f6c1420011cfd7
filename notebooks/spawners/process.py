"""Process helpers for the local spawner: identity, process trees, CPU and GPU plans, ports
(memory limits are ``dashboard.host_limits``, shared with pipeline steps).

Nothing here knows about Django; everything reads Linux's ``/proc`` directly (no psutil
dependency), and takes its roots as arguments where a test needs to point it at a fake tree.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from dashboard.host_limits import quantity

PROC = Path("/proc")

# --- quantities ---------------------------------------------------------------------


def cpu_cores(value: str | None) -> Decimal | None:
    """CPUs of a CPU quantity ("500m" -> 0.5); None when blank."""
    return quantity(value)


# --- processes ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, Z (zombie), X (dead), ...
    ppid: int
    pgrp: int
    session: int
    start_time: int  # clock ticks after boot: with the pid, names a process uniquely

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X", "x")


def parse_stat(text: str) -> ProcStat:
    """Parse ``/proc/<pid>/stat``. The command name may hold spaces and parentheses,
    so the fields are counted from the last ')'."""
    head, _, rest = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = rest.split()
    # fields[0] is field 3 (state); starttime is field 22.
    return ProcStat(pid=pid, state=fields[0], ppid=int(fields[1]), pgrp=int(fields[2]),
                    session=int(fields[3]), start_time=int(fields[19]))


def stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """The process's stat, or None when there is no such process."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def start_time(pid: int, proc: Path = PROC) -> int | None:
    found = stat(pid, proc)
    return found.start_time if found else None


def is_same_process(pid: int | None, started: int | None, proc: Path = PROC) -> bool:
    """Whether ``pid`` is alive (not a zombie) and is the process that started at
    ``started``: a pid reused by another process after ours exited does not count."""
    if not pid or started is None:
        return False
    found = stat(int(pid), proc)
    return bool(found and found.alive and found.start_time == int(started))


def tagged(name: str, value: str, proc: Path = PROC, *, prefix: bool = False) -> list[int]:
    """Live processes whose environment holds ``name=value`` (``value`` or more with
    ``prefix``): a server and every process it started (kernels, terminals) that kept
    the environment, even those that left its process group or outlived it.
    Processes of other users are not readable and are skipped."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        variables = environ.split(b"\0")
        if needle in variables or (prefix and any(v.startswith(needle) for v in variables)):
            info = stat(int(entry.name), proc)
            if info and info.alive:
                found.append(int(entry.name))
    return found


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """Live descendants of ``pid`` (children, their children, ...) right now."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            info = stat(int(entry.name), proc)
            if info and info.alive:
                children.setdefault(info.ppid, []).append(info.pid)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate(leader: int | None, tag: tuple[str, str], grace: float, *,
              prefix: bool = False) -> str:
    """Stop a server and everything it started, politely then by force.

    ``leader`` is the server's pid when it is still the process we started (its
    process group is then signalled; pass None when it is gone or was reused);
    ``tag`` finds the rest, including orphans (see ``tagged``). Returns "" when
    nothing was running, "terminated" or "killed"."""
    def remaining() -> list[int]:
        pids = tagged(*tag, prefix=prefix)
        if leader and _alive(leader) and leader not in pids:
            pids.append(leader)
        return pids

    pids = remaining()
    if not pids:
        return ""
    if leader:
        # The server shuts its kernels and terminals down on SIGTERM.
        _signal_group(leader, signal.SIGTERM)
    else:
        _signal(pids, signal.SIGTERM)
    told = set(pids)
    deadline = time.monotonic() + max(grace, 0)
    while time.monotonic() < deadline:
        pids = remaining()
        if not pids:
            return "terminated"
        if not (leader and _alive(leader)):
            # The server is gone; anything it left behind gets its own SIGTERM.
            _signal([p for p in pids if p not in told], signal.SIGTERM)
            told.update(pids)
        time.sleep(0.05)
    for _ in range(100):  # up to ~5 s for the kernel to deliver SIGKILL
        pids = remaining()
        if not pids:
            break
        if leader:
            _signal_group(leader, signal.SIGKILL)
        _signal(pids, signal.SIGKILL)
        time.sleep(0.05)
    return "killed"


def _alive(pid: int) -> bool:
    found = stat(pid)
    return bool(found and found.alive)


def describe_exit(code: int | None) -> str:
    """'exited with code 1', 'killed by SIGKILL', ... from a Popen return code."""
    if code is None:
        return "exited (code unknown)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def clean_exit(code: int | None) -> bool:
    """Whether an exit code means the server was shut down on purpose."""
    return code in (0, -signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP)


# --- ports, files ----------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the server may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int, max_bytes: int = 4 * 1024 * 1024) -> str:
    """The last ``lines`` lines of a text file ('' when missing), reading at most
    ``max_bytes`` from its end."""
    if lines <= 0:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            block, data = 8192, b""
            while size > 0 and data.count(b"\n") <= lines and len(data) < max_bytes:
                step = min(block, size)
                size -= step
                handle.seek(size)
                data = handle.read(step) + data
                block *= 2
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


# --- CPU, GPU --------------------------------------------------------------------


def cpu_plan(request: str, limit: str, available: list[int], offset: int = 0
             ) -> tuple[list[int] | None, str]:
    """Which cores a server may run on: ceil(limit or request) of the ``available``
    ones, starting at ``offset`` (so that servers spread over the machine).
    Returns (cores or None when not restricted, a description for people)."""
    wanted_text = limit or request
    try:
        wanted = cpu_cores(wanted_text)
    except ValueError as exc:
        return None, f"not enforced: {exc}"
    if wanted is None or wanted <= 0:
        return None, f"not enforced: no CPU limit or request (all {len(available)} cores)"
    count = max(1, math.ceil(wanted))
    if count >= len(available):
        return None, (f"not enforced: {wanted_text} CPU asks for {count} cores; all "
                      f"{len(available)} available cores are used")
    start = offset % len(available)
    cores = sorted((available * 2)[start:start + count])
    note = f"CPU affinity: {count} of {len(available)} cores ({_ranges(cores)})"
    if wanted != count:
        note += f"; {wanted_text} CPU is rounded up to whole cores"
    return cores, note


def _ranges(cores: list[int]) -> str:
    parts, run = [], []
    for core in sorted(cores):
        if run and core == run[-1] + 1:
            run.append(core)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [core]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def nvidia_gpus(proc: Path = PROC) -> int:
    """How many NVIDIA GPUs the driver reports (0 without the driver)."""
    try:
        return len(list((proc / "driver" / "nvidia" / "gpus").iterdir()))
    except OSError:
        return 0


def gpu_plan(count: int, vendor: str, found: int) -> tuple[dict[str, str], str]:
    """Environment variables that pick the visible GPUs, and a description.
    These select devices for CUDA/ROCm programs; they do not isolate hardware."""
    devices = ",".join(str(i) for i in range(count))
    env = {"CUDA_VISIBLE_DEVICES": devices}
    if "amd" in (vendor or "").lower():
        env["HIP_VISIBLE_DEVICES"] = env["ROCR_VISIBLE_DEVICES"] = devices
    names = "/".join(env)
    if count == 0:
        return env, f"{names}='' (no GPU requested; hides GPUs from CUDA/ROCm programs only)"
    note = f"{names}={devices} (device selection, not isolation)"
    if "amd" not in (vendor or "").lower() and found < count:
        note += f"; only {found} NVIDIA GPU(s) found on this host"
    return env, note
