"""Memory limits on this host, for notebook servers and pipeline steps alike.

A limit is enforced on a whole process tree by a child cgroup of the dashboard's own
memory cgroup (v2 when its hierarchy offers the memory controller, else v1): the kernel's
OOM killer then picks within the tree, never the dashboard. Where that hierarchy is not
ours to change, RLIMIT_AS bounds the address space of each process of the tree (not their
total). Either way the child enters the limit itself before it runs its program (the
``LAUNCHER``, or a fork of the warm Python running ``ENTER_SOURCE``), so nothing it
allocates escapes it.

Nothing here knows about Django (the settings check a quantity with it at start-up), and
quantities are read here rather than by the kubernetes client, whose import takes a second.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

PROC = Path("/proc")

# --- quantities ---------------------------------------------------------------------

# Kubernetes' suffixes, as the kubernetes client reads them ("K" too).
_SUFFIXES = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5,
             "Ei": 1024**6, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
             "": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
             "E": 10**18}
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(|[KMGTPE]i|[numkKMGTPE])")


def quantity(value: str | int | float | None) -> Decimal | None:
    """A Kubernetes quantity ("2Gi", "500M", "1.5", "250m") as a number; None when blank.
    Raises ValueError for anything else."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    found = _QUANTITY.fullmatch(text)
    try:
        number = Decimal(found.group(1)) * _SUFFIXES[found.group(2)] if found else None
    except InvalidOperation:
        number = None
    if number is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    if number < 0:
        raise ValueError(f"{text!r} is negative")
    return number


def memory_bytes(value: str | None) -> int | None:
    """Bytes of a memory quantity, rounded up ("1Gi" -> 1073741824); None when blank."""
    number = quantity(value)
    return None if number is None else math.ceil(number)


# --- cgroups ------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryCgroup:
    version: int  # 1 or 2 (0: not known, for one found again by its path)
    path: Path

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this cgroup for want of memory."""
        for name in ("memory.events", "memory.oom_control"):  # v2, v1
            try:
                for line in (self.path / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
            except (OSError, ValueError):
                continue
        return 0

    def remove(self) -> bool:
        """Remove the cgroup, killing what is still in it: what a server or a step started
        ends with it, as in a pod. True when it is gone."""
        for _ in range(40):
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:
                self._kill_members()
                time.sleep(0.05)
        return False

    def _kill_members(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for pid in self.procs.read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(root, mount point, fs type, super options) of each mount in mountinfo."""
    mounts = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, extra = left.split(), right.split()
        if len(fields) < 5 or len(extra) < 3:
            continue
        unescape = lambda s: s.replace("\\040", " ")  # noqa: E731
        mounts.append((unescape(fields[3]), unescape(fields[4]), extra[0],
                       set(extra[2].split(","))))
    return mounts


def own_memory_cgroup(self_cgroup: str, mountinfo: str) -> tuple[int, Path] | None:
    """Where this process's memory cgroup lives: (version, directory), from the text
    of /proc/self/cgroup and /proc/self/mountinfo; None without a memory cgroup.
    Version 2 is used when its hierarchy offers the memory controller."""
    paths: dict[str, str] = {}
    for line in self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    mounts = _mounts(mountinfo)
    for version, key, fstype in ((2, "", "cgroup2"), (1, "memory", "cgroup")):
        if key not in paths:
            continue
        for root, point, kind, options in mounts:
            if kind != fstype or (version == 1 and "memory" not in options):
                continue
            own = paths[key]
            if root != "/" and not (own == root or own.startswith(root.rstrip("/") + "/")):
                continue
            rel = own[len(root):] if root != "/" else own
            directory = Path(point) / rel.lstrip("/")
            if version == 2:
                try:
                    controllers = (directory / "cgroup.controllers").read_text().split()
                except OSError:
                    continue
                if "memory" not in controllers:
                    continue
            return version, directory
    return None


def find_memory_cgroup(proc: Path = PROC) -> tuple[int, Path] | None:
    try:
        return own_memory_cgroup((proc / "self" / "cgroup").read_text(),
                                 (proc / "self" / "mountinfo").read_text())
    except OSError:
        return None


def create_memory_cgroup(parent: tuple[int, Path], name: str, limit: int) -> MemoryCgroup:
    """Make (or reuse) the child cgroup ``name`` under ``parent`` with a memory limit
    (swap included where the kernel offers it). Raises OSError when the hierarchy is
    not ours to change."""
    version, directory = parent
    if version == 2:
        control = directory / "cgroup.subtree_control"
        if "memory" not in control.read_text().split():
            # Refused (EBUSY) when our cgroup holds processes and is not a root.
            control.write_text("+memory")
    child = directory / name
    child.mkdir(exist_ok=True)
    try:
        if version == 2:
            (child / "memory.max").write_text(str(limit))
            with contextlib.suppress(OSError):
                (child / "memory.swap.max").write_text("0")
        else:
            (child / "memory.limit_in_bytes").write_text(str(limit))
            with contextlib.suppress(OSError):
                (child / "memory.memsw.limit_in_bytes").write_text(str(limit))
    except OSError:
        with contextlib.suppress(OSError):
            child.rmdir()
        raise
    return MemoryCgroup(version, child)


# --- one tree's limit -----------------------------------------------------------------

# What a process under RLIMIT_AS says last when an allocation fails (Python, C, C++).
_ALLOCATION_FAILED = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|"
                                r"[Oo]ut of memory")


@dataclass(frozen=True)
class MemoryLimit:
    """A memory limit as this host enforces it for one process tree: by ``cgroup``, else
    by RLIMIT_AS (``limit`` set), else not at all (``limit`` None); ``why`` says why not
    by a cgroup, or why not at all."""

    text: str  # as written: "1Gi"
    limit: int | None = None
    cgroup: MemoryCgroup | None = None
    why: str = ""

    @property
    def method(self) -> str:
        if self.cgroup is not None:
            return f"cgroup v{self.cgroup.version}"
        return "address space" if self.limit is not None else ""

    def child_spec(self) -> dict:
        """What the child enters (see ``ENTER_SOURCE``)."""
        if self.cgroup is not None:
            return {"cgroup_procs": str(self.cgroup.procs)}
        return {"rlimit_as": self.limit} if self.limit is not None else {}

    def describe(self, whole: str, each: str) -> str:
        """For people: ``whole`` names the tree ("the server and its kernels"), ``each``
        its processes one by one ("the server and of each kernel")."""
        if self.cgroup is not None:
            return f"cgroup v{self.cgroup.version}: {self.text} for {whole}"
        if self.limit is not None:
            return (f"RLIMIT_AS {self.text} per process (address space of {each}, not their "
                    f"total; {self.why})")
        return f"not enforced: {self.why}"

    def exceeded(self, exit_code: int | None, last_line: str) -> bool:
        """Whether a tree that ended with ``exit_code`` (its last words ``last_line``) did
        for want of memory: the kernel killed in its cgroup, or an allocation failed
        against its address-space limit."""
        if exit_code in (0, None) or self.limit is None:
            return False
        if self.cgroup is not None:
            return self.cgroup.oom_kills() > 0
        return bool(_ALLOCATION_FAILED.search(last_line))

    def out_of_memory(self, subject: str) -> str:
        """'out of memory: the step exceeded its memory limit of 1Gi (cgroup v2)'."""
        return f"out of memory: {subject} exceeded its memory limit of {self.text} ({self.method})"

    def release(self) -> None:
        """Remove the cgroup (with anything left in it) once the tree has ended."""
        if self.cgroup is not None:
            self.cgroup.remove()


def enforce_memory(text: str | None, cgroup_name: str, *, cgroups: bool = True) -> MemoryLimit:
    """How this host will hold a tree about to start to the limit ``text`` ("1Gi"): the
    cgroup ``cgroup_name`` under our own (made now) when ``cgroups`` and we may, else
    RLIMIT_AS; not at all when ``text`` is blank or not a quantity."""
    text = (text or "").strip()
    try:
        limit = memory_bytes(text)
    except ValueError as exc:
        return MemoryLimit(text, why=str(exc))
    if not limit:
        return MemoryLimit(text, why="no memory limit set")
    why = "cgroups are turned off"
    if cgroups:
        parent = find_memory_cgroup()
        if parent is None:
            why = "no memory cgroup is available"
        else:
            try:
                return MemoryLimit(text, limit, create_memory_cgroup(parent, cgroup_name, limit))
            except OSError as exc:
                why = f"cannot make a cgroup under {parent[1]} ({exc.strerror or exc})"
    return MemoryLimit(text, limit, why=why)


# --- in the child ---------------------------------------------------------------------

# Run by the child before its program, in an interpreter that may not have kfdash: joins
# its cgroup, takes its address-space limit (and, for notebook servers, its CPU cores).
ENTER_SOURCE = """\
def enter_limits(spec):
    import os, resource
    if spec.get("cgroup_procs"):
        with open(spec["cgroup_procs"], "w") as handle:
            handle.write(str(os.getpid()))
    if spec.get("rlimit_as"):
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = spec["rlimit_as"]
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
"""

# Run as ``python -I -S -c LAUNCHER <spec json> <program> <args...>``: the child enters its
# limits, then becomes the program (same pid). A separate interpreter rather than a
# preexec_fn keeps this safe in a threaded dashboard; it costs ~10 ms, paid only by what
# has limits.
# The end of every launcher (this one, and the step isolation's): become the program.
EXEC_PROGRAM = """\
argv = sys.argv[2:]
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    sys.stderr.write(f"kfdash: cannot run {argv[0]}: {exc}\\n")
    os._exit(127)
"""

LAUNCHER = ENTER_SOURCE + """\
import json, os, sys
enter_limits(json.loads(sys.argv[1]))
""" + EXEC_PROGRAM


def launched(python: str, spec: dict, argv: list[str], launcher: str = LAUNCHER) -> list[str]:
    """``argv`` started by ``python`` (an absolute path) through ``launcher``, a script
    that is given ``spec`` and ends with ``EXEC_PROGRAM``."""
    return [python, "-I", "-S", "-c", launcher, json.dumps(spec), *argv]
