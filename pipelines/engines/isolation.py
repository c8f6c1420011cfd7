"""Private copies of the absolute paths KFP v1 (Argo) steps declare.

A v1 step reads and writes fixed absolute paths (``/tmp/outputs/Output/data``,
``/tmp/inputs/x/data``, ``/mlpipeline-ui-metadata.json``): in a pod each has its own
filesystem; on one host, two steps running at once would share those files. Two methods,
chosen by ``KFDASH_STEP_ISOLATION``:

``namespace`` (``auto`` picks it when this host allows it unprivileged, probed once): the
step starts in a new user namespace (mapping the dashboard's own uid and gid, so it has
no more rights than the dashboard) with a private mount namespace, chrooted into a root
of its own, ``<attempt>/root``: every top-level entry of the host's ``/`` is bind-mounted
there, except ``/tmp``, which is an empty folder of the step's (when the dashboard's data
dir or the step interpreter live under ``/tmp``, they are bound at their place in it). A
declared path under ``/tmp`` or under a new top-level name
(``/mlpipeline-ui-metadata.json``, ``/outputs``) is then a file in the step's root; under
an existing host folder (``/var/out``) that folder is an overlay whose upper layer is the
step's (``<attempt>/overlay/var``): the step sees the host's files and writes its own.
Everything else (the dashboard's data, the Python environment, ``/proc``) is the host's,
as in process mode generally.

``rewrite`` (the fallback): each declared path is replaced in the step's command and
arguments by a path in the step's folder (``<attempt>/root/tmp/outputs/...``), which
covers what kfp 1.x's components do (their paths are arguments). A path the command does
not mention (a ContainerOp writing ``/mlpipeline-ui-metadata.json`` by convention) stays
as it is, and steps declaring the same such path run one at a time (a lock per path),
the file removed before each; a step that cannot write there fails, saying so.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dashboard import host_limits

# Runs in the step interpreter (``python -I -S -c``): namespaces, mounts, chroot, exec.
LAUNCHER = r'''
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        sys.stderr.write(f"kfdash: cannot isolate the step ({what}: {os.strerror(errno)})\n")
        os._exit(126)
uid, gid = os.getuid(), os.getgid()
check(libc.unshare(0x10000000 | 0x20000), "unshare a user and mount namespace")
for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                   ("gid_map", f"{gid} {gid} 1")):
    with open(f"/proc/self/{name}", "w") as handle:
        handle.write(text)
check(libc.mount(b"none", b"/", None, 16384 | (1 << 18), None), "make mounts private")
for source, target in spec["binds"]:
    check(libc.mount(source.encode(), target.encode(), None, 4096 | 16384, None),
          f"bind {source}")
for lower, upper, work, target in spec["overlays"]:
    options = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    check(libc.mount(b"overlay", target.encode(), b"overlay", 0, options),
          f"overlay {lower}")
check(libc.chroot(spec["root"].encode()), "chroot")
os.chdir(spec["cwd"])
''' + host_limits.EXEC_PROGRAM

_probe_lock = threading.Lock()
_probed: dict[str, tuple[bool, str]] = {}
_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


@dataclass(frozen=True)
class HostEntry:
    name: str
    kind: str  # "dir" | "file" | "symlink"
    target: str = ""


def host_entries() -> list[HostEntry]:
    entries = []
    for entry in os.scandir("/"):
        if entry.is_symlink():
            entries.append(HostEntry(entry.name, "symlink", os.readlink(entry.path)))
        elif entry.is_dir():
            entries.append(HostEntry(entry.name, "dir"))
        elif entry.is_file():
            entries.append(HostEntry(entry.name, "file"))
    return entries


def interpreter_roots(python: str) -> list[str]:
    """The folders an interpreter needs: its virtualenv as named (``.venv/bin/python`` is a
    link out of it, but its packages are in it) and the installation the link leads to."""
    named = Path(python).absolute()
    return [str(named.parent.parent), str(named.resolve().parent.parent)]


def namespaces_available(python: str, scratch: Path) -> tuple[bool, str]:
    """Whether steps can get a private root here (tried once per interpreter): (yes, "")
    or (no, why)."""
    with _probe_lock:
        if python not in _probed:
            _probed[python] = _probe(python, scratch)
        return _probed[python]


def _probe(python: str, scratch: Path) -> tuple[bool, str]:
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        attempt = Path(folder)
        (attempt / "work").mkdir()
        plan = PathPlan("namespace", attempt, [], keep=[str(scratch)])
        argv = plan.command(python, ["true"])
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
        if done.returncode != 0:
            return False, (done.stderr.strip() or f"exit code {done.returncode}")[-500:]
    return True, ""


@dataclass
class PathPlan:
    """Where one step attempt's declared paths live, and how its command gets there."""

    mode: str  # "namespace" | "rewrite"
    attempt: Path
    declared: list[str]
    # Host folders under /tmp the step still needs there (the data dir holding its working
    # folder, the interpreter): bound at the same place inside its private /tmp.
    keep: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # rewrite: paths used as they are

    @property
    def root(self) -> Path:
        return self.attempt / "root"

    @property
    def cwd(self) -> Path:
        return self.attempt / "work"

    def _overlays(self) -> dict[str, Path]:
        """Host folders holding a declared path (other than /tmp): name -> overlay folder."""
        dirs = {entry.name for entry in host_entries() if entry.kind == "dir"}
        tops = {PurePosixPath(path).parts[1] for path in self.declared
                if PurePosixPath(path).is_absolute() and len(PurePosixPath(path).parts) > 2}
        return {name: self.attempt / "overlay" / name for name in sorted(tops & dirs)
                if name != "tmp"}

    def host_path(self, declared: str) -> Path:
        """Where the step's ``declared`` path is, seen from outside the step."""
        path = PurePosixPath(declared)
        if not path.is_absolute():
            return self.cwd / path
        if self.mode == "rewrite":
            return Path(declared) if declared in self.unmapped else \
                self.root / path.relative_to("/")
        overlays = self._overlays()
        if len(path.parts) > 2 and path.parts[1] in overlays:
            return overlays[path.parts[1]] / "upper" / PurePosixPath(*path.parts[2:])
        return self.root / path.relative_to("/")

    def command(self, python: str, argv: list[str]) -> list[str]:
        """The command that runs ``argv`` with the plan in place (prepares the root)."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        if self.mode == "rewrite":
            return self._rewritten(argv)
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(exist_ok=True)
        overlays = self._overlays()
        binds, layers = [], []
        for entry in host_entries():
            target = root / entry.name
            if entry.name == "tmp":
                continue
            if entry.name in overlays:
                upper, work = overlays[entry.name] / "upper", overlays[entry.name] / "work"
                for folder in (target, upper, work):
                    folder.mkdir(parents=True, exist_ok=True)
                layers.append([f"/{entry.name}", str(upper), str(work), str(target)])
            elif entry.kind == "symlink":
                if not target.is_symlink():
                    target.symlink_to(entry.target)
            elif entry.kind == "dir":
                target.mkdir(exist_ok=True)
                binds.append([f"/{entry.name}", str(target)])
            else:
                target.touch(exist_ok=True)
                binds.append([f"/{entry.name}", str(target)])
        # The folder holding the step's own root first: later binds then do not reappear
        # inside it.
        data_top = Path(self.attempt).resolve().parts[1]
        binds.sort(key=lambda bind: bind[0] != f"/{data_top}")
        for kept in sorted({str(Path(p).resolve()) for p in self.keep}):
            if PurePosixPath(kept).is_relative_to("/tmp") and Path(kept).is_dir():
                target = root / kept.lstrip("/")
                target.mkdir(parents=True, exist_ok=True)
                binds.append([kept, str(target)])
        spec = {"root": str(root), "binds": binds, "overlays": layers, "cwd": str(self.cwd)}
        return host_limits.launched(python, spec, argv, LAUNCHER)

    def _rewritten(self, argv: list[str]) -> list[str]:
        absolute = sorted({p for p in self.declared if p.startswith("/")}, key=len, reverse=True)
        if not absolute:
            return list(argv)
        pattern = re.compile("|".join(re.escape(p) for p in absolute))
        seen: set[str] = set()

        def replace(match: re.Match) -> str:
            seen.add(match.group(0))
            return str(self.root / match.group(0).lstrip("/"))

        result = [pattern.sub(replace, part) for part in argv]
        self.unmapped = [p for p in absolute if p not in seen]
        return result

    def prepare_outputs(self, output_paths: list[str]) -> None:
        """Make the folders that will hold declared outputs (Argo's executor expects the
        step to, but a pod's image often has them; here nothing would)."""
        for declared in output_paths:
            where = self.host_path(declared)
            if declared in self.unmapped:
                # A file a previous step left there is not this step's output; a folder
                # is never removed by the engine (it may be anything of the host's).
                if where.is_symlink() or where.is_file():
                    with contextlib.suppress(OSError):
                        where.unlink()
                continue
            where.parent.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """While the step runs and its outputs are read: the unmapped paths are ours."""
        locks = []
        for path in sorted(self.unmapped):
            with _path_locks_guard:
                locks.append(_path_locks.setdefault(path, threading.Lock()))
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()
