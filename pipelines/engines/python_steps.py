"""The commands kfp 2 compiles Python components into, recognized so that such steps start
fast and never need the network for a package that is already there.

A lightweight component's command is ``sh -c '<pip install kfp==… [packages]> && "$0" "$@"'``
followed by ``sh -ec 'program_path=$(mktemp -d) … python3 -m kfp.dsl.executor_main
--component_module_path "$program_path/ephemeral_component.py" "$@"'`` and the
component's source. kfp.local (``use_venv=False``) runs all of it, spending ~0.3 s a step
in a pip that finds everything installed (or changing the environment it runs in, when it
does not). Here:

- the preamble's requirements are checked against what the step interpreter has installed
  (asked of it at most once a minute); when all are there, the preamble is skipped. The
  kfp pin is met by any installed kfp of the same major version: the executor protocol
  is the same across kfp 2.x, and the step runs the interpreter's executor either way.
  When something is missing, the preamble runs as written, but with ``PIP_TARGET`` in
  the step's folder: a pipeline never installs into the dashboard's environment;
- the second stage is run directly: the source is written to the step's folder and
  ``kfp.dsl.executor_main`` runs on the warm Python (``warm_python.py``), or as
  ``<step python> -m kfp.dsl.executor_main`` when that is off.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field

from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

EXECUTOR_MODULE = "kfp.dsl.executor_main"
# What kfp 2 components install by default (the versions do not matter for the names).
DEFAULT_REQUIREMENTS = ("kfp==2", 'typing-extensions>=3.7.4,<5; python_version<"3.9"')
PYTHON_NAMES = ("python", "python3")
_PREAMBLE_END = re.compile(r'&&\s*"\$0"\s+"\$@"\s*$')
_PIP_INSTALL = re.compile(r"python3 -m pip install ([^\n&]*)")
_OPTIONS_WITH_VALUES = {"-i", "--index-url", "--extra-index-url", "--trusted-host", "-f",
                        "--find-links", "--prefix", "--root", "-t", "--target"}
_UNCHECKABLE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable"}
_EPHEMERAL = re.compile(
    r'\s*program_path=\$\(mktemp -d\)\s+'
    r'printf "%s" "\$0" > "\$program_path/ephemeral_component\.py"\s+'
    r'(?:_KFP_RUNTIME=true\s+)?python3 -m kfp\.dsl\.executor_main\s+'
    r'--component_module_path\s+"\$program_path/ephemeral_component\.py"\s+"\$@"\s*')
SNAPSHOT_SECONDS = 60.0
_SNAPSHOT = """
import importlib.metadata, json, os, platform, sys
def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
print(json.dumps({
    "python_version": "%d.%d" % sys.version_info[:2],
    "python_full_version": platform.python_version(),
    "implementation_name": sys.implementation.name,
    "platform_python_implementation": platform.python_implementation(),
    "sys_platform": sys.platform, "platform_machine": platform.machine(),
    "platform_system": platform.system(), "os_name": os.name,
    "distributions": {name: version(name) for name in sys.argv[1:]},
}))
"""


@dataclass
class PythonStep:
    """A step that is ``python -m <module> <args>``; ``source`` is the component's code
    to write to a file first (its path follows ``--component_module_path`` in ``args``)."""

    module: str
    args: list[str]
    source: str | None = None


@dataclass
class Recognized:
    """A step's command, understood: the requirements its preamble installs (None: no
    preamble), the command after the preamble, and the Python step it is, if it is one."""

    requirements: list[str] | None
    command: list[str]
    python: PythonStep | None = None
    uncheckable: bool = False  # the preamble installs what cannot be checked (a file, a URL)
    notes: list[str] = field(default_factory=list)


def recognize(argv: list[str]) -> Recognized:
    requirements, uncheckable, command = None, False, argv
    if len(argv) >= 3 and argv[0] == "sh" and argv[1] == "-c" and "pip install" in argv[2] \
            and _PREAMBLE_END.search(argv[2]):
        requirements, uncheckable = _requirements(argv[2])
        requirements = list(requirements)
        command = argv[3:]
    return Recognized(requirements, command, _python_step(command), uncheckable)


@functools.lru_cache(maxsize=256)
def _requirements(script: str) -> tuple[list[str], bool]:
    found, uncheckable = [], False
    for match in _PIP_INSTALL.finditer(script):
        try:
            words = shlex.split(match.group(1))
        except ValueError:
            return found, True
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in _UNCHECKABLE_OPTIONS:
                uncheckable = True
            elif word in _OPTIONS_WITH_VALUES:
                skip = True
            elif not word.startswith("-"):
                found.append(word)
    return found, uncheckable


def _python_step(command: list[str]) -> PythonStep | None:
    if len(command) >= 4 and command[0] == "sh" and command[1] in ("-ec", "-c") \
            and _EPHEMERAL.fullmatch(command[2]):
        return PythonStep(EXECUTOR_MODULE, command[4:], source=command[3])
    if len(command) >= 3 and command[0].rsplit("/", 1)[-1] in PYTHON_NAMES \
            and command[1] == "-m" and command[2] == EXECUTOR_MODULE:
        return PythonStep(EXECUTOR_MODULE, command[3:])
    return None


def missing(requirements: list[str], python: str, env: dict[str, str]) -> list[str]:
    """The requirements the step interpreter does not satisfy (all of them when its
    packages cannot be listed); the answer is kept as long as what it is based on."""
    key = (python, tuple(requirements))
    with _snapshot_lock:
        known = _answers.get(key)
    if known is not None and time.monotonic() - known[0] < SNAPSHOT_SECONDS:
        return list(known[1])
    answer = _missing(requirements, python, env)
    with _snapshot_lock:
        _answers[key] = (time.monotonic(), answer)
    return list(answer)


def _missing(requirements: list[str], python: str, env: dict[str, str]) -> list[str]:
    names = set()
    for text in requirements:
        with contextlib.suppress(InvalidRequirement):  # unreadable: missing, below
            names.add(canonicalize_name(Requirement(text).name))
    snapshot = _snapshot(python, env, tuple(sorted(names)))
    if snapshot is None:
        return list(requirements)
    installed = {canonicalize_name(name): version
                 for name, version in snapshot["distributions"].items() if version}
    environment = {k: v for k, v in snapshot.items() if k != "distributions"}
    return [text for text in requirements if not _satisfied(text, installed, environment)]


def _satisfied(text: str, installed: dict[str, str], environment: dict[str, str]) -> bool:
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return False
    if requirement.url:
        return False
    try:
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            return True  # not for this interpreter
    except InvalidMarker:
        return False
    name = canonicalize_name(requirement.name)
    version = installed.get(name)
    if version is None:
        return False
    if requirement.specifier.contains(version, prereleases=True):
        return True
    if name == "kfp":  # any kfp 2.x speaks the executor protocol of a kfp 2.y pin
        try:
            have = Version(version).major
            return all(spec.operator in ("==", "~=", ">=") and Version(
                spec.version.rstrip(".*")).major == have for spec in requirement.specifier)
        except InvalidVersion:
            return False
    return False


_snapshots: dict[tuple, tuple[float, dict | None]] = {}
_answers: dict[tuple, tuple[float, list[str]]] = {}
_snapshot_lock = threading.Lock()


def _snapshot(python: str, env: dict[str, str], names: tuple[str, ...]) -> dict | None:
    """The installed versions of ``names`` in the step interpreter and its marker
    environment, asked of the interpreter itself (~30 ms), at most once a minute."""
    with _snapshot_lock:
        taken = _snapshots.get((python, names))
        if taken is not None and time.monotonic() - taken[0] < SNAPSHOT_SECONDS:
            return taken[1]
        try:
            done = subprocess.run([python, "-c", _SNAPSHOT, *names], capture_output=True,
                                  text=True, env=env, timeout=60)
            snapshot = json.loads(done.stdout) if done.returncode == 0 else None
        except (OSError, ValueError, subprocess.TimeoutExpired):
            snapshot = None
        _snapshots[(python, names)] = (time.monotonic(), snapshot)
        return snapshot
