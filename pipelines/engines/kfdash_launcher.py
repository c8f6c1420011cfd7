#!/usr/bin/env python3
"""kfdash's launcher: runs one KFP v2 step in its Argo pod, speaking the KFP executor protocol.

kfdash compiles a KFP v2 run into an Argo Workflow (``argo_compile.py``). A step that needs the
executor input (``{{$}}``, which every lightweight Python component passes to
``kfp.dsl.executor_main``) or the executor output runs through this script: an init container
copies it from kfdash's image into an emptyDir mounted at /kfdash, and the step's main
container runs

    python3 /kfdash/kfdash_launcher.py [OPTIONS] -- COMMAND [ARG ...]

COMMAND and ARGs are the component's command and arguments as the IR writes them, placeholders
and all. The launcher then

1. builds the executor input: typed ``parameterValues``; input artifacts with their URI, their
   producer's metadata and schema; a file per output parameter; a URI per output artifact; the
   executor output file;
2. lines the artifacts' container-local paths up with Argo's: the KFP executor finds an
   artifact at the path its URI names (``s3://b/k`` → ``/s3/b/k``, ``minio://`` → ``/minio/``,
   ``gs://`` → ``/gcs/``), so an input's mount path becomes a symlink to the file Argo placed,
   and an output written at its mount path is moved to where Argo collects it afterwards.
   Where a mount path cannot be made (a read-only root, a non-root user) the artifact's URI
   given to the program is its container-local path instead (as kfp.local does) and the
   remote URI is still what gets reported;
3. expands IfPresent/Concat structures and substitutes every ``{{$...}}`` placeholder (in the
   arguments, and in string parameter values, as the KFP driver does);
4. runs the program, forwarding SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it;
5. reads ``executor_output.json``: each output parameter goes to its Argo output file (a
   STRING as is, other types as JSON) unless the program wrote that file itself; every output
   artifact's URI and metadata go to the ``kfdash-executor-output`` file (JSON
   ``{"<output name>": [{"name": ..., "uri": ..., "metadata": {...}}]}``, ``{}`` when the step
   has no output artifacts), which the Workflow reports as an output parameter so metrics
   reach the dashboard and consumers get their inputs' metadata.

Options (fixed arity; every value is its own argument, so the raw text Argo substitutes into
it needs no quoting):

--parameter NAME TYPE VALUE
    an input parameter: its KFP name, its KFP type (STRING, NUMBER_INTEGER, NUMBER_DOUBLE,
    BOOLEAN, LIST, STRUCT, TASK_FINAL_STATUS) and its value as text (a STRING as is, others
    JSON; a TASK_FINAL_STATUS's ``state`` may be an Argo phase, made a KFP state here).
--input-artifact NAME FILE SCHEMA OUTPUT REPORT
    an input artifact: its KFP name; FILE, its file under ``<root>/inputs/artifacts/`` (Argo
    places it there); SCHEMA, ``<schemaTitle>@<schemaVersion>``; REPORT, its producer's
    executor-output text (as above) and OUTPUT, the producer's output name in it, which give
    the artifact's URI and metadata (``{}`` when unknown: the URI is then the local path).
--output-parameter NAME FILE TYPE
    an output parameter, read by Argo from ``<root>/outputs/parameters/FILE``.
--output-artifact NAME FILE SCHEMA URI
    an output artifact, collected by Argo from ``<root>/outputs/artifacts/FILE`` and stored
    at URI.
--context KEY VALUE
    the value of ``{{$.KEY}}`` (pipeline_job_name, pipeline_task_uuid, ...).
--cache-key-of COMPONENT
    run nothing: write the step's cache key to ``outputs/parameters/kfdash-cache-key`` and
    exit. COMPONENT is ``{"component": ..., "executor": ...}`` as JSON; the key is
    ``cache_key`` of it, the typed ``--parameter`` values and the ``--input-artifact``
    URIs their reports give (a step that runs before a cached step, so Argo can memoize it
    by the key; no program follows ``--``).
--
    the end of the options: the program's command and arguments follow.

Files, under the root ``/tmp/kfdash``: ``inputs/artifacts/``, ``outputs/parameters/``,
``outputs/artifacts/`` as above, ``outputs/parameters/kfdash-executor-output``, and
``executor/executor_output.json`` (the executor output file).

Exit status: the program's (128 + N when a signal N killed it); 1 when the program succeeded
but a declared output parameter is missing or unreadable; 2 for bad launcher arguments; 127
when the program cannot be started. Every launcher message on stderr starts with
``kfdash_launcher:``. KFP lets a component leave an output artifact unwritten (its metadata,
e.g. a Metrics artifact's, is what counts): the launcher then notes it and leaves an empty file
for Argo to collect.

Environment, for kfdash's tests only: ``KFDASH_LAUNCHER_ROOT`` replaces /tmp/kfdash;
``KFDASH_LAUNCHER_MOUNTS`` replaces ``/`` as the directory where the mount paths of remote
URIs are made, and, set to an empty string, turns them off (the program gets local paths).

A single file for Python 3.8+ and the standard library only: it runs in whatever image the
component names. kfdash's compiler imports its placeholder helpers, so both read placeholders
the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys

ROOT = "/tmp/kfdash"
EXECUTOR_OUTPUT = "kfdash-executor-output"  # argo_names.EXECUTOR_OUTPUT
EXECUTOR_OUTPUT_FILE = "executor_output.json"
PARAMETER_TYPES = ("STRING", "NUMBER_INTEGER", "NUMBER_DOUBLE", "BOOLEAN", "LIST", "STRUCT",
                   "TASK_FINAL_STATUS")
# The KFP executor's rule from a URI to the local path it reads and writes (kfp.dsl.types).
MOUNT_PREFIXES = (("gs://", "gcs"), ("minio://", "minio"), ("s3://", "s3"))
ARITY = {"--parameter": 3, "--input-artifact": 5, "--output-parameter": 3,
         "--output-artifact": 4, "--context": 2, "--cache-key-of": 1}
CACHE_KEY = "kfdash-cache-key"  # the output parameter file of --cache-key-of
FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
# An Argo node phase → the state KFP's PipelineTaskFinalStatus reports.
FINAL_STATES = {"Succeeded": "SUCCEEDED", "Failed": "FAILED", "Error": "FAILED",
                "Skipped": "SKIPPED", "Omitted": "SKIPPED"}
DEFAULT_SCHEMA_VERSION = "0.0.1"

PLACEHOLDER = re.compile(r"\{\{\$(?P<expr>[^{}]*)\}\}")
IO = re.compile(r"""\.(?P<side>inputs|outputs)\.(?P<kind>parameters|artifacts)"""
                r"""\[(?P<quote>['"])(?P<name>.+?)(?P=quote)\](?:\.(?P<field>\w+))?""")


class UsageError(Exception):
    """The launcher's arguments are wrong (exit status 2)."""


class StepError(Exception):
    """The step's outputs are not what it declared (exit status 1)."""


# --- placeholder structures, shared with the compiler -----------------------------------


def expand_structures(argv, provided):
    """``argv`` with KFP's IfPresent and Concat structures (JSON text in one argument)
    expanded, as the KFP launcher does: IfPresent takes its Then branch when its input is in
    ``provided``. ValueError for a structure KFP does not define."""
    flat = []
    for part in argv:
        flat.extend(_flatten(_structure(part, provided)))
    return flat


def _structure(part, provided):
    if not (part.startswith('{"Concat":') or part.startswith('{"IfPresent":')):
        return part
    try:
        structure = json.loads(part)
    except ValueError:
        return part
    return _resolve(structure, provided)


def _resolve(node, provided):
    if isinstance(node, str) or node is None:
        return node
    if isinstance(node, list):
        return [_resolve(item, provided) for item in node]
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError("unknown placeholder structure " + json.dumps(node)[:200])
    kind, body = next(iter(node.items()))
    if kind == "Concat":
        return "".join(_flatten(_resolve(body, provided)))
    if kind == "IfPresent" and isinstance(body, dict):
        branch = body.get("Then") if body.get("InputName") in provided else body.get("Else")
        return _resolve(branch, provided)
    raise ValueError("unknown placeholder structure " + str(kind))


def _flatten(value):
    if value is None:
        return []
    if isinstance(value, list):
        return [item for element in value for item in _flatten(element)]
    return [str(value)]


def text_of(value):
    """A parameter value as text in a command line: a string as is, anything else JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def mount_path(uri, mounts):
    """Where the KFP executor reads or writes the artifact at ``uri`` (None: at ``uri``)."""
    for prefix, folder in MOUNT_PREFIXES:
        if uri.startswith(prefix):
            return os.path.join(mounts, folder, uri[len(prefix):])
    return None


# --- arguments ----------------------------------------------------------------------------


class Options:
    def __init__(self):
        self.parameters = []  # (name, type, text)
        self.input_artifacts = []  # (name, file, schema, output, report)
        self.output_parameters = []  # (name, file, type)
        self.output_artifacts = []  # (name, file, schema, uri)
        self.context = {}
        self.program = []
        self.cache_component = None  # --cache-key-of: the component and executor, as JSON


def parse_args(argv):
    options = Options()
    position = 0
    while position < len(argv):
        flag = argv[position]
        if flag == "--":
            options.program = list(argv[position + 1:])
            break
        if flag not in ARITY:
            raise UsageError(f"unknown option {flag!r} (the options end with --)")
        values = argv[position + 1:position + 1 + ARITY[flag]]
        if len(values) < ARITY[flag]:
            raise UsageError(f"{flag} takes {ARITY[flag]} values, got {len(values)}")
        position += 1 + ARITY[flag]
        if flag == "--parameter":
            if values[1] not in PARAMETER_TYPES:
                raise UsageError("--parameter {}: unknown type {!r} (one of {})".format(
                    values[0], values[1], ", ".join(PARAMETER_TYPES)))
            options.parameters.append(tuple(values))
        elif flag == "--input-artifact":
            _check_file(flag, values[1])
            options.input_artifacts.append(tuple(values))
        elif flag == "--output-parameter":
            _check_file(flag, values[1])
            if values[2] not in PARAMETER_TYPES:
                raise UsageError(f"--output-parameter {values[0]}: unknown type {values[2]!r}")
            options.output_parameters.append(tuple(values))
        elif flag == "--output-artifact":
            _check_file(flag, values[1])
            options.output_artifacts.append(tuple(values))
        elif flag == "--cache-key-of":
            try:
                options.cache_component = json.loads(values[0])
            except ValueError:
                raise UsageError("--cache-key-of takes the component as JSON") from None
        else:
            options.context[values[0]] = values[1]
    else:
        if options.cache_component is None:
            raise UsageError("no program: the options end with -- and the command follows")
    if not options.program and options.cache_component is None:
        raise UsageError("no program after --")
    return options


def cache_key(component, parameters, artifacts):
    """KFP's cache key as kfdash computes it everywhere (``caching.key`` is this): the
    component and executor, the typed input parameters, and each input artifact by
    fingerprint (the entry's ``fingerprint``, else its URI)."""
    payload = {
        "component": component,
        "parameters": parameters,
        "artifacts": {name: [entry.get("fingerprint") or entry.get("uri") for entry in listed]
                      for name, listed in artifacts.items()},
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_cache_key(options, root):
    """``--cache-key-of``: the step's cache key, written for Argo to memoize the step by.
    An input artifact is known by the URI its producer reported."""
    parameters = {name: typed_value(text, kind, name) for name, kind, text in options.parameters}
    artifacts = {}
    for name, _file, _schema_text, output, report in options.input_artifacts:
        entry = _reported(name, output, report)
        if not entry.get("uri"):
            raise UsageError(f"--input-artifact {name}: its producer reported no URI")
        artifacts[name] = [entry]
    key = cache_key(options.cache_component, parameters, artifacts)
    _write(os.path.join(root, "outputs", "parameters", CACHE_KEY), key)
    note(f"cache key {key}")
    return key


def _reported(name, output, report):
    """The entry of ``output`` in a producer's executor-output report (``{}`` if none)."""
    try:
        reported = json.loads(report) if report.strip() else {}
    except ValueError:
        raise UsageError(f"--input-artifact {name}: its report is not JSON: "
                         f"{report[:200]!r}") from None
    entries = reported.get(output) if isinstance(reported, dict) else None
    return entries[0] if isinstance(entries, list) and entries and \
        isinstance(entries[0], dict) else {}


def _check_file(flag, name):
    if not name or name in (".", "..") or "/" in name:
        raise UsageError(f"{flag}: {name!r} is not a file name")


def _schema(text):
    title, _, version = text.partition("@")
    return {"schemaTitle": title or "system.Artifact",
            "schemaVersion": version or DEFAULT_SCHEMA_VERSION}


def typed_value(text, kind, name):
    """A parameter's text as its KFP type (UsageError when it is not one)."""
    try:
        if kind == "STRING":
            return text
        if kind == "NUMBER_INTEGER":
            stripped = text.strip()
            if re.fullmatch(r"[-+]?\d+", stripped):
                return int(stripped)
            number = float(stripped)
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        if kind == "NUMBER_DOUBLE":
            return float(text)
        if kind == "BOOLEAN":
            return {"true": True, "false": False}[text.strip().lower()]
        value = json.loads(text)
        if kind == "LIST" and not isinstance(value, list):
            raise ValueError(text)
        if kind in ("STRUCT", "TASK_FINAL_STATUS") and not isinstance(value, dict):
            raise ValueError(text)
        if kind == "TASK_FINAL_STATUS":
            return _final_status(value)
        return value
    except (ValueError, KeyError):
        raise UsageError(f"the parameter {name!r} should be {kind}, not {text[:200]!r}") from None


def _final_status(status):
    phase = status.get("state", "")
    state = FINAL_STATES.get(phase, phase)
    status["state"] = state
    if state == "FAILED" and not status.get("error"):
        status["error"] = {"code": 2, "message": "{} ended {}".format(
            status.get("pipelineTaskName") or "the task", phase)}
    return status


# --- the step -----------------------------------------------------------------------------


class Step:
    """One run of the program: its executor input, and where its artifacts live."""

    def __init__(self, options, root, mounts):
        self.options, self.root, self.mounts = options, root, mounts
        self.executor_output = os.path.join(root, "executor", EXECUTOR_OUTPUT_FILE)
        self.local_paths = {}  # ("inputs" | "outputs", name) → path given to the program
        self.remote = {}  # output name → (uri reported, uri given to the program)
        self.moves = {}  # output name → mount path to move to Argo's path afterwards
        self.executor_input = self._executor_input()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def _executor_input(self):
        values = {}
        for name, kind, text in self.options.parameters:
            values[name] = typed_value(text, kind, name)
        artifacts = {}
        for name, file, schema, output, report in self.options.input_artifacts:
            artifacts[name] = {"artifacts": [self._input_artifact(name, file, schema, output,
                                                                  report)]}
        parameters = {name: {"outputFile": self.path("outputs", "parameters", file)}
                      for name, file, _ in self.options.output_parameters}
        outputs = {}
        for name, file, schema, uri in self.options.output_artifacts:
            outputs[name] = {"artifacts": [{"name": name, "type": _schema(schema),
                                            "uri": self._output_uri(name, file, uri),
                                            "metadata": {}}]}
        return {"inputs": {"parameterValues": values, "artifacts": artifacts},
                "outputs": {"parameters": parameters, "artifacts": outputs,
                            "outputFile": self.executor_output}}

    def _input_artifact(self, name, file, schema, output, report):
        entry = _reported(name, output, report)
        local = self.path("inputs", "artifacts", file)
        uri = entry.get("uri") or ""
        given = local
        target = mount_path(uri, self.mounts) if uri and self.mounts else None
        if target is not None:
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.lexists(target):
                    _remove(target)
                os.symlink(local, target)
                given = uri
            except OSError as exc:
                note(f"input artifact {name!r}: cannot link {target} "
                     f"({exc.strerror or exc}); the program reads it at {local}")
        self.local_paths[("inputs", name)] = local if given == local else target
        return {"name": entry.get("name") or name, "type": _schema(schema), "uri": given,
                "metadata": entry.get("metadata") or {}}

    def _output_uri(self, name, file, uri):
        local = self.path("outputs", "artifacts", file)
        given = local
        target = mount_path(uri, self.mounts) if self.mounts else None
        if target is not None:
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.lexists(target):
                    _remove(target)
                given = uri
                self.moves[name] = target
            except OSError as exc:
                note(f"output artifact {name!r}: cannot make {target} "
                     f"({exc.strerror or exc}); the program writes it at {local}")
        self.local_paths[("outputs", name)] = target if given == uri and target else local
        self.remote[name] = (uri, given)
        return given

    # -- placeholders

    def substitute(self):
        """The program's argv, and string parameter values, with placeholders replaced."""
        values = self.executor_input["inputs"]["parameterValues"]
        for name, value in values.items():
            if isinstance(value, str) and "{{$." in value:
                values[name] = PLACEHOLDER.sub(lambda m: self.value(m.group("expr")), value)
        provided = {name for name, value in values.items() if value is not None}
        provided |= set(self.executor_input["inputs"]["artifacts"])
        try:
            argv = expand_structures(self.options.program, provided)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return [PLACEHOLDER.sub(lambda m: self.value(m.group("expr")), part) for part in argv]

    def value(self, expr):
        if expr == "":
            return json.dumps(self.executor_input)
        if expr in (".outputs.output_file", ".outputMetadataUri"):
            return self.executor_output
        key = expr.lstrip(".")
        if key in self.options.context:
            return self.options.context[key]
        io = IO.fullmatch(expr)
        if io is None:
            raise UsageError(f"no value for the placeholder {{{{${expr}}}}}")
        side, kind, name, field = io.group("side", "kind", "name", "field")
        section = self.executor_input[side]
        if kind == "parameters":
            if side == "inputs" and not field:
                return text_of(section["parameterValues"].get(name))
            if side == "outputs" and field == "output_file" and name in section["parameters"]:
                return section["parameters"][name]["outputFile"]
            raise UsageError(f"no value for the placeholder {{{{${expr}}}}}")
        listed = (section["artifacts"].get(name) or {}).get("artifacts") or []
        if not listed:
            raise UsageError(f"the placeholder {{{{${expr}}}}} names no artifact")
        if field == "path":
            return self.local_paths[(side, name)]
        if field == "uri":
            return listed[0]["uri"]
        if field == "metadata":
            return json.dumps(listed[0].get("metadata") or {})
        raise UsageError(f"no value for the placeholder {{{{${expr}}}}}")

    # -- outputs

    def collect(self, succeeded):
        """Move outputs where Argo reads them; write the executor output's artifact metadata.
        StepError when the program succeeded without writing a declared output parameter."""
        written = self._read_executor_output()
        reported = written.get("artifacts") or {}
        metadata = {}
        for name, file, _, _ in self.options.output_artifacts:
            entry = ((reported.get(name) or {}).get("artifacts") or [{}])[0]
            local = self.path("outputs", "artifacts", file)
            self._gather(name, entry.get("custom_path") or self.moves.get(name), local,
                         succeeded)
            uri, given = self.remote[name]
            told = entry.get("uri") or given
            metadata[name] = [{"name": entry.get("name") or name,
                               "uri": uri if told == given else told,
                               "metadata": entry.get("metadata") or {}}]
        _write(self.path("outputs", "parameters", EXECUTOR_OUTPUT), json.dumps(metadata))
        missing = []
        values = written.get("parameterValues") or {}
        for name, file, kind in self.options.output_parameters:
            target = self.path("outputs", "parameters", file)
            if name in values:
                value = values[name]
                _write(target, value if kind == "STRING" and isinstance(value, str)
                       else json.dumps(value))
            elif not os.path.isfile(target):
                missing.append(name)
        if missing and succeeded:
            raise StepError("the program did not write its output parameter{} {}".format(
                "s" if len(missing) > 1 else "", ", ".join(repr(n) for n in missing)))

    def _read_executor_output(self):
        if not os.path.exists(self.executor_output):
            return {}
        try:
            with open(self.executor_output) as handle:
                written = json.load(handle)
        except (OSError, ValueError) as exc:
            raise StepError(f"its {EXECUTOR_OUTPUT_FILE} cannot be read: {exc}") \
                from None
        return written if isinstance(written, dict) else {}

    def _gather(self, name, source, local, succeeded):
        if source and os.path.lexists(source) and os.path.abspath(source) != local:
            if os.path.lexists(local):
                _remove(local)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            shutil.move(source, local)
        if not os.path.lexists(local):
            if succeeded:
                note(f"the program wrote nothing for its output artifact {name!r}: an empty file "
                     "is stored (KFP allows it; its metadata still counts)")
            _write(local, "")

    def prepare(self):
        for folder in (("outputs", "parameters"), ("outputs", "artifacts"), ("executor",)):
            os.makedirs(self.path(*folder), exist_ok=True)
        if os.path.exists(self.executor_output):
            os.remove(self.executor_output)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def note(message):
    sys.stderr.write(f"kfdash_launcher: {message}\n")
    sys.stderr.flush()


def run(argv):
    """Start the program, forward signals to it, and return its exit status."""
    try:
        process = subprocess.Popen(argv)
    except OSError as exc:
        note(f"cannot start {argv[0]!r}: {exc.strerror or exc}")
        return 127

    def forward(signum, _frame):
        with contextlib.suppress(OSError):  # it has just ended
            process.send_signal(signum)

    for name in FORWARDED_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), forward)
    code = process.wait()
    return 128 - code if code < 0 else code


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = os.environ.get("KFDASH_LAUNCHER_ROOT") or ROOT
    mounts = os.environ.get("KFDASH_LAUNCHER_MOUNTS", "/")
    try:
        options = parse_args(argv)
        if options.cache_component is not None:
            write_cache_key(options, root)
            return 0
        step = Step(options, root, mounts)
        step.prepare()
        program = step.substitute()
    except UsageError as exc:
        note(f"error: {exc}")
        return 2
    except OSError as exc:
        note(f"error: cannot prepare the step's files: {exc}")
        return 1
    code = run(program)
    try:
        step.collect(code == 0)
    except (StepError, OSError) as exc:
        note(f"error: {exc}")
        return code or 1
    if code != 0:
        note(f"the program exited with status {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
