"""Local mode: each notebook is a real server process on this machine: JupyterLab,
or VS Code (code-server) and RStudio (rserver) where this host has them
(notebooks/spawners/programs.py says how each is found, started and reached).

Layout under ``DATA_DIR``::

    volumes/<ns>/<volume>/              a volume's files (the workspace is one: HOME)
    notebooks/<ns>/<name>/server.log    the server's output, appended across starts
    notebooks/<ns>/<name>/config/       JUPYTER_CONFIG_DIR (holds the token, mode 0600)
    notebooks/<ns>/<name>/data/         JUPYTER_DATA_DIR
    notebooks/<ns>/<name>/runtime/      JUPYTER_RUNTIME_DIR
    notebooks/<ns>/<name>/scratch/      the workspace of a notebook without a workspace volume

JupyterLab is ``<this python> -m jupyterlab`` on a free loopback port, under the
notebook's base URL; code-server and rserver listen on a unix socket in a private
folder (``DATA_DIR/run/``, mode 0700) and serve at "/". Each server runs in its own session
(it outlives a dashboard restart and is re-adopted from ``notebook.runtime``).
JupyterLab's token travels in the private config file, not on the command line,
where any local user could read it (``ps``).

Jupyter needs no XSRF or origin relaxation behind kfdash's proxy: jupyter_server
skips both checks for token-authenticated requests, and the proxy injects the
token on every request (and does those checks itself). ``trust_xheaders`` lets
the server log the real client from the proxy's X-Forwarded-For.

Every process of a server carries ``KFDASH_NOTEBOOK=<its notebooks/ dir>`` in its
environment: stopping finds kernels and terminals by it even when they left the
server's process group or outlived the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.utils import timezone

from dashboard import host_limits
from notebooks.choices import ServerType, Status
from notebooks.spawners import process, programs
from notebooks.spawners.base import Endpoint, Observed, Progress, Spawner, SpawnError

TAG = "KFDASH_NOTEBOOK"
# Where Kubeflow mounts the workspace volume (unless the admin's spawner config says
# otherwise): data volumes' mount paths under it land in the workspace.
KUBEFLOW_HOME = PurePosixPath("/home/jovyan")
MAX_EVENTS = 50
FOLLOW_INTERVAL = 0.25  # seconds between looks at a followed log file
LOG_ROTATE_BYTES = 10 * 1024 * 1024
# Variables of the dashboard's own environment a server inherits (the rest, such as
# the dashboard's secrets and database URL, stay out).
INHERITED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "SHELL", "USER", "LOGNAME", "TMPDIR",
                 "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "HTTP_PROXY",
                 "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
RUNTIME_KEYS = ("pid", "port", "token", "socket", "proc_start", "cgroup")



@dataclass
class _Child:
    popen: subprocess.Popen
    started: int | None  # /proc start time: a pid alone may name a later process
    waiter: threading.Thread


# Servers started by this dashboard process, by pid. A waiter thread per server reaps
# it when it exits (no zombies) and writes the exit code to its log; after a dashboard
# restart the servers are found through /proc instead.
_children: dict[int, _Child] = {}
_children_lock = threading.Lock()
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _child(pid: int | None, started: int | None) -> _Child | None:
    with _children_lock:
        child = _children.get(pid) if pid else None
    return child if child is not None and child.started == started else None


def _now() -> str:
    return timezone.now().isoformat()


class LocalProcessSpawner(Spawner):
    name = "local"
    # Seconds to wait for a new server to answer (KFDASH_NOTEBOOK_START_TIMEOUT overrides).
    start_timeout = 60.0
    # Attempts at a start that lost its free port to another process meanwhile.
    port_attempts = 2
    # Whether memory limits may use cgroups (else RLIMIT_AS is the fallback).
    memory_cgroups = True

    @classmethod
    def server_types(cls) -> dict[str, str]:
        return programs.unavailable_types()

    # --- where things are --------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The spawner's own folder for this notebook (never the user's files)."""
        return (Path(settings.DATA_DIR) / "notebooks" / self.notebook.profile.name
                / self.notebook.name)

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def workspace_path(self) -> Path:
        if self.notebook.workspace_id:
            return self.notebook.workspace.local_path
        return self.directory / "scratch"

    def _tag(self) -> tuple[str, str]:
        return TAG, str(self.directory)

    # --- the contract ---------------------------------------------------------------

    def start(self, progress: Progress) -> None:
        notebook = self.notebook
        with self._lock():
            self._reload()
            if self._running():
                if notebook.status != Status.RUNNING:
                    progress("ready")
                    notebook.mark(Status.RUNNING, "")
                return
            events = self._forget_server()
            try:
                progress("creating workspace")
                workspace = self.prepare_workspace()
                progress("starting server")
                popen, runtime = self._launch(workspace, progress)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, SpawnError) else \
                    f"The server could not be started: {exc}"
                self._cleanup_failed()
                notebook.runtime = self._without_server(notebook.runtime)
                notebook.mark(Status.ERROR, reason,
                              events=self._event(events, "Warning", "Failed", reason))
                if isinstance(exc, SpawnError):
                    raise
                raise SpawnError(reason) from exc
            where = f"port {runtime['port']}" if "port" in runtime else "its private socket"
            events = self._event(events, "Normal", "Started",
                                 f"{ServerType(notebook.server_type).label} (pid {popen.pid}) "
                                 f"answers on {where}")
            if type(notebook).objects.filter(pk=notebook.pk, stopped=True).exists():
                # Stopped by its user while it was starting.
                self._terminate(popen.pid, runtime["proc_start"], 5.0, runtime.get("cgroup"))
                notebook.runtime = self._without_server(notebook.runtime)
                notebook.mark(Status.STOPPED, "", events=self._event(
                    events, "Normal", "Stopped", "stopped while starting"))
                return
            progress("ready")
            notebook.mark(Status.RUNNING, "", events=events, **runtime)

    def stop(self, grace: float = 10.0) -> None:
        notebook = self.notebook
        with self._lock():
            self._reload()
            runtime = notebook.runtime
            pid, started = runtime.get("pid"), runtime.get("proc_start")
            alive = process.is_same_process(pid, started)
            events = runtime.get("events", [])
            if pid and not alive:
                events = self._record_exit(events)
            how = self._terminate(pid if alive else None, started, grace, runtime.get("cgroup"))
            if not pid and not how:
                return  # nothing was running
            if how == "killed":
                events = self._event(events, "Warning", "Killed",
                                     f"the server did not stop within {grace:g} s and was killed")
            elif how:
                events = self._event(events, "Normal", "Stopped", "the server was stopped")
            notebook.runtime = self._without_server(runtime)
            notebook.mark(Status.STOPPED, "", events=events)

    def delete(self, delete_volumes: bool) -> None:
        self.stop(grace=5.0)
        data = Path(settings.DATA_DIR).resolve()
        directory = self.directory
        if directory.resolve().is_relative_to(data / "notebooks"):
            shutil.rmtree(directory, ignore_errors=True)
        workspace = self.notebook.workspace if self.notebook.workspace_id else None
        if delete_volumes and workspace is not None:
            shared = (workspace.workspace_of.exclude(pk=self.notebook.pk).exists()
                      or workspace.data_mounts.exists())
            path = workspace.local_path
            # Only the workspace (data volumes are shared things), only when no other
            # notebook uses it; rmtree removes the symlinks to data volumes, not their files.
            if not shared and path.resolve().is_relative_to(data / "volumes"):
                shutil.rmtree(path, ignore_errors=True)

    def poll(self) -> Observed:
        notebook = self.notebook
        runtime = notebook.runtime
        pid = runtime.get("pid")
        if not pid:
            if notebook.status in (Status.WAITING, Status.ERROR, Status.TERMINATING):
                return Observed(notebook.status, notebook.status_message)
            return Observed(Status.STOPPED, "")
        if process.is_same_process(pid, runtime.get("proc_start")):
            return Observed(Status.RUNNING, "")
        return self._exit_observed()

    def endpoint(self) -> Endpoint | None:
        if self.poll().status != Status.RUNNING:
            return None
        runtime = self.notebook.runtime
        if runtime.get("socket"):
            return Endpoint.for_notebook(self.notebook, "http://localhost",
                                         socket=runtime["socket"])
        return Endpoint.for_notebook(self.notebook, f"http://127.0.0.1:{runtime['port']}",
                                     token=runtime["token"])

    def logs(self, tail: int = 1000) -> str:
        return process.tail(Path(self.notebook.runtime.get("log") or self.log_path), tail)

    async def follow_logs(self, tail: int = 1000) -> AsyncIterator[str]:
        """Follow the server's log file (as ``tail -f``), picking up the file a restart
        begins anew. Checks for new output a few times a second; sends only news."""
        path = Path(self.notebook.runtime.get("log") or self.log_path)
        recent = process.tail(path, tail)
        yield recent + "\n" if recent and not recent.endswith("\n") else recent
        position = path.stat().st_size if path.exists() else 0
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL)
            size = path.stat().st_size if path.exists() else 0
            if size < position:  # truncated or replaced: start over
                position = 0
            if size > position:
                with open(path, "rb") as handle:
                    handle.seek(position)
                    chunk = handle.read(size - position)
                position = size
                yield chunk.decode("utf-8", errors="replace")

    def events(self) -> list[dict]:
        events = list(self.notebook.runtime.get("events", []))
        if self.notebook.runtime.get("pid"):
            seen = self.poll()
            if seen.status != Status.RUNNING:
                events = self._event(events, "Warning" if seen.status == Status.ERROR
                                     else "Normal", "Exited", seen.message, self._exit_time())
        return events

    # --- hooks for later work and for tests ----------------------------------------

    def extra_environment(self) -> dict[str, str]:
        """kfp.Client() in the notebook reaches kfdash as its creator: the endpoint, and a
        token in kfp's context file in HOME (notebooks/pipelines_access.py)."""
        if self.notebook.created_by_id is None:
            return {}
        from notebooks import pipelines_access

        return pipelines_access.grant(self.notebook, self.workspace_path)

    def server_command(self, port: int, token_file: Path, workspace: Path) -> list[str]:
        """The command that starts JupyterLab (the token is in ``token_file``'s config)."""
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            # Fail instead of silently moving to another port nobody knows about.
            "--ServerApp.port_retries=0",
            f"--ServerApp.base_url={self.notebook.base_url}",
            f"--ServerApp.root_dir={workspace}",
            # The proxy is the only client: log the real client it reports.
            "--ServerApp.trust_xheaders=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        return command

    def find_port(self) -> int:
        return process.free_port()

    def prepare_workspace(self) -> Path:
        """Make the workspace folder and the data volumes' links in it; returns it."""
        workspace = self.workspace_path
        workspace.mkdir(parents=True, exist_ok=True)
        root = workspace.resolve()
        home = self.workspace_mount()
        for mount in self.notebook.data_mounts.select_related("volume", "volume__profile"):
            relative = self.mount_location(mount.mount_path, home)
            link = root / relative
            # Checked before making folders: a link the user made in the workspace
            # must not lead the mount (or the folders) elsewhere.
            if not link.parent.resolve().is_relative_to(root):
                raise SpawnError(f"The mount path {mount.mount_path} leads out of the workspace.")
            link.parent.mkdir(parents=True, exist_ok=True)
            target = mount.volume.local_path
            target.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                if Path(os.readlink(link)) == target:
                    continue
                link.unlink()
            elif link.is_dir() and not any(link.iterdir()):
                link.rmdir()
            elif link.exists():
                raise SpawnError(f"Cannot mount the volume {mount.volume.name} at "
                                 f"{mount.mount_path}: the workspace already has a file there.")
            link.symlink_to(target, target_is_directory=True)
        return workspace

    @staticmethod
    def workspace_mount() -> PurePosixPath:
        """Where the workspace is mounted in Kubeflow (the admin's spawner config)."""
        from notebooks.config import spawner_config

        try:
            mount = (spawner_config()["workspace"].value or {}).get("mount")
        except Exception:  # a broken config is reported by the form, not here
            mount = None
        path = PurePosixPath(str(mount or KUBEFLOW_HOME))
        return path if path.is_absolute() else KUBEFLOW_HOME

    @staticmethod
    def mount_location(mount_path: str, home: PurePosixPath = KUBEFLOW_HOME) -> PurePosixPath:
        """Where a data volume's mount path lands, relative to the workspace:
        /home/jovyan/data and data both give data. Paths outside the workspace are
        refused (a local server sees only its workspace)."""
        path = PurePosixPath(mount_path.strip())
        if path.is_absolute():
            if not path.is_relative_to(home):
                raise SpawnError(f"The mount path {mount_path} is outside the workspace "
                                 f"({home}); local notebooks can mount volumes only "
                                 f"inside it, e.g. {home}/data.")
            path = path.relative_to(home)
        if ".." in path.parts or str(path) in ("", "."):
            raise SpawnError(f"The mount path {mount_path} leads out of the workspace.")
        return path

    # --- starting ------------------------------------------------------------------

    def _launch(self, workspace: Path, progress: Progress) -> tuple[subprocess.Popen, dict]:
        directory = self.directory
        for sub in ("config", "data", "runtime"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        limits, spec, env = self._limits()
        env = {**self._environment(workspace), **env}
        timeout = float(settings.KFDASH_NOTEBOOK_START_TIMEOUT or self.start_timeout)
        if self.notebook.server_type != ServerType.JUPYTER:
            return self._launch_on_socket(workspace, progress, limits, spec, env, timeout)
        token = secrets.token_urlsafe(32)
        config_file = self._write_token(token)
        waiting_said = False
        for attempt in range(1, self.port_attempts + 1):
            port = self.find_port()
            popen = self._spawn(self.server_command(port, config_file, workspace), spec, env,
                                workspace)
            child = _child(popen.pid, process.start_time(popen.pid))
            runtime = {"pid": popen.pid, "port": port, "token": token,
                       "log": str(self.log_path), "started_at": _now(),
                       "proc_start": child.started if child else None, "limits": limits}
            if spec.get("cgroup"):
                runtime["cgroup"] = spec["cgroup"]
            if not waiting_said:
                progress("waiting for server to answer")
                waiting_said = True
            failure = self._wait_until_answering(
                popen, self._jupyter_answers(port, token), timeout)
            if failure is None:
                if runtime["proc_start"] is None:
                    raise SpawnError("The server answered but its process cannot be found.")
                return popen, runtime
            lost_port = popen.returncode is not None and (
                "is not available" in failure or "already in use" in failure)
            if not (lost_port and attempt < self.port_attempts):
                raise SpawnError(failure, retryable=lost_port)
        raise AssertionError("unreachable")

    def _launch_on_socket(self, workspace: Path, progress: Progress, limits: dict, spec: dict,
                          env: dict[str, str], timeout: float) -> tuple[subprocess.Popen, dict]:
        """Start code-server or rserver on the server's private socket."""
        server_type = self.notebook.server_type
        program = programs.PROGRAMS[server_type]
        reason = program.unavailable()
        if reason:
            raise SpawnError(f"{ServerType(server_type).label} cannot run here: {reason}.")
        executable = program.executable()
        sock = programs.socket_path(self.directory)
        programs.prepare_socket(sock)
        if server_type == ServerType.VSCODE:
            command = programs.code_server_command(executable, sock, self.directory, workspace)
        else:
            command = programs.rserver_command(executable, sock, self.directory)
        popen = self._spawn(command, spec, env, workspace)
        child = _child(popen.pid, process.start_time(popen.pid))
        runtime = {"pid": popen.pid, "socket": str(sock), "log": str(self.log_path),
                   "started_at": _now(), "proc_start": child.started if child else None,
                   "limits": limits}
        if spec.get("cgroup"):
            runtime["cgroup"] = spec["cgroup"]
        progress("waiting for server to answer")
        endpoint = Endpoint.for_notebook(self.notebook, "http://localhost", socket=str(sock))
        failure = self._wait_until_answering(
            popen, lambda: programs.http_status(str(sock), programs.PROBE_PATHS[server_type],
                                                dict(endpoint.request_headers)) < 500,
            timeout)
        if failure is not None:
            raise SpawnError(failure)
        if runtime["proc_start"] is None:
            raise SpawnError("The server answered but its process cannot be found.")
        return popen, runtime

    def _spawn(self, command: list[str], spec: dict, env: dict[str, str],
               workspace: Path) -> subprocess.Popen:
        self._rotate_log()
        with open(self.log_path, "ab") as log:
            log.write(f"----- kfdash: starting {self.notebook.base_url} at {_now()}: "
                      f"{' '.join(command)}\n".encode())
            log.flush()
            launcher = host_limits.launched(sys.executable, spec, command)
            popen = subprocess.Popen(launcher, cwd=workspace, env=env,
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        waiter = threading.Thread(target=_wait_for, args=(popen, self.log_path),
                                  name=f"notebook-server-{popen.pid}", daemon=True)
        with _children_lock:
            _children[popen.pid] = _Child(popen, process.start_time(popen.pid), waiter)
        waiter.start()
        return popen

    def _jupyter_answers(self, port: int, token: str) -> Callable[[], bool]:
        """Whether JupyterLab answers its status URL with the token."""
        url = f"http://127.0.0.1:{port}{self.notebook.base_url}api/status"
        request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})

        def answers() -> bool:
            with _no_proxy.open(request, timeout=2) as response:
                return response.status == 200

        return answers

    def _wait_until_answering(self, popen: subprocess.Popen, answers: Callable[[], bool],
                              timeout: float) -> str | None:
        """None once ``answers()`` says the server is up; else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if popen.returncode is not None:  # set by its waiter thread
                return self._failure(f"The server {process.describe_exit(popen.returncode)} "
                                     "while starting.")
            try:
                if answers():
                    return None
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            time.sleep(0.1)
        return self._failure(f"The server did not answer within {timeout:g} s.")

    def _failure(self, reason: str) -> str:
        lines = [line for line in process.tail(self.log_path, 200).splitlines()
                 if not line.startswith("-----")][-15:]
        return reason + ("\nLast lines of its log:\n" + "\n".join(lines) if lines else "")

    def _cleanup_failed(self) -> None:
        """After a failed start, nothing of it may keep running."""
        process.terminate(None, self._tag(), 2.0)
        self._remove_cgroups()
        programs.remove_socket(programs.socket_path(self.directory))

    def _write_token(self, token: str) -> Path:
        """Put the token in the server's private config (kept: other settings there)."""
        path = self.directory / "config" / "jupyter_server_config.json"
        try:
            config = json.loads(path.read_text())
            if not isinstance(config, dict):
                config = {}
        except (OSError, ValueError):
            config = {}
        config.setdefault("IdentityProvider", {})["token"] = token
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(config, handle, indent=1)
        os.chmod(path, 0o600)
        return path

    def _environment(self, workspace: Path) -> dict[str, str]:
        env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
        env.update({key: value for key, value in os.environ.items() if key.startswith("LC_")})
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
        env.update({str(k): str(v) for k, v in (self.notebook.environment or {}).items()})
        env.update(self.extra_environment())
        directory = self.directory
        env.update({
            "HOME": str(workspace),
            "JUPYTER_CONFIG_DIR": str(directory / "config"),
            "JUPYTER_DATA_DIR": str(directory / "data"),
            "JUPYTER_RUNTIME_DIR": str(directory / "runtime"),
            "NB_PREFIX": self.notebook.base_url.rstrip("/"),
            "PYTHONUNBUFFERED": "1",
            TAG: str(directory),
        })
        env.pop("JUPYTER_TOKEN", None)
        return env

    def _limits(self) -> tuple[dict[str, str], dict, dict[str, str]]:
        """What will be enforced: (descriptions for runtime["limits"], launcher spec,
        environment variables)."""
        notebook = self.notebook
        limits: dict[str, str] = {}
        spec: dict = {}
        # CPU: affinity to whole cores.
        available = sorted(os.sched_getaffinity(0))
        cores, limits["cpu"] = process.cpu_plan(notebook.cpu, notebook.cpu_limit, available,
                                                offset=notebook.pk or 0)
        spec["cpus"] = cores
        # Memory: the limit (a request alone limits nothing, as in Kubernetes).
        memory = host_limits.enforce_memory(notebook.memory_limit, self._cgroup_name(),
                                            cgroups=self.memory_cgroups)
        spec.update(memory.child_spec())
        if memory.cgroup is not None:
            spec["cgroup"] = str(memory.cgroup.path)
        limits["memory"] = memory.describe("the server and its kernels",
                                           "the server and of each kernel")
        # GPUs: which devices CUDA/ROCm programs see.
        env, limits["gpu"] = process.gpu_plan(notebook.gpu_count, notebook.gpu_vendor,
                                              process.nvidia_gpus())
        return limits, spec, env

    def _cgroup_name(self) -> str:
        import hashlib

        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        return f"kfdash-{self.notebook.profile.name}-{self.notebook.name}-{digest}"[:120]

    def _remove_cgroups(self, path: str | None = None) -> None:
        paths = {path} if path else set()
        parent = host_limits.find_memory_cgroup()
        if parent is not None:
            paths.add(str(parent[1] / self._cgroup_name()))
        for each in paths:
            if each and Path(each).is_dir():
                host_limits.MemoryCgroup(0, Path(each)).remove()

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_suffix(".log.1"))

    # --- stopping, observing -----------------------------------------------------------

    def _running(self) -> bool:
        runtime = self.notebook.runtime
        return process.is_same_process(runtime.get("pid"), runtime.get("proc_start"))

    def _terminate(self, leader: int | None, started: int | None, grace: float,
                   cgroup: str | None) -> str:
        child = _child(leader, started)
        if leader and not process.is_same_process(leader, started):
            leader = None
        how = process.terminate(leader, self._tag(), grace)
        if child is not None:
            child.waiter.join(timeout=5)  # reaped, and its exit noted in the log
        self._remove_cgroups(cgroup)
        programs.remove_socket(programs.socket_path(self.directory))
        return how

    def _forget_server(self) -> list[dict]:
        """Before a start: record how the previous server ended, clear its traces and
        stop anything it left behind. Returns the events."""
        notebook = self.notebook
        events = notebook.runtime.get("events", [])
        if notebook.runtime.get("pid"):
            events = self._record_exit(events)
        process.terminate(None, self._tag(), 2.0)
        self._remove_cgroups(notebook.runtime.get("cgroup"))
        programs.remove_socket(programs.socket_path(self.directory))
        notebook.runtime = self._without_server(notebook.runtime)
        return events

    def _record_exit(self, events: list[dict]) -> list[dict]:
        seen = self._exit_observed()
        return self._event(events, "Warning" if seen.status == Status.ERROR else "Normal",
                           "Exited", seen.message, self._exit_time())

    def _exit_observed(self) -> Observed:
        """Why the recorded server is not running."""
        runtime = self.notebook.runtime
        pid = runtime.get("pid")
        code, known = None, False
        child = _child(pid, runtime.get("proc_start"))
        if child is not None:
            # Its waiter thread records the code just after the exit.
            child.waiter.join(timeout=0.5)
            code, known = child.popen.returncode, child.popen.returncode is not None
        if not known:
            code, known = self._exit_from_log(pid)
        oom = False
        if runtime.get("cgroup"):
            oom = host_limits.MemoryCgroup(0, Path(runtime["cgroup"])).oom_kills() > 0 and \
                (not known or code == -9)
        if oom:
            return Observed(Status.ERROR, "the server was killed for using more memory than its "
                            f"limit ({self.notebook.memory_limit})")
        if not known:
            return Observed(Status.STOPPED, "the server exited (code/signal unknown after a "
                                            "dashboard restart)")
        message = f"the server {process.describe_exit(code)}"
        if process.clean_exit(code):
            return Observed(Status.STOPPED, message)
        if code and code > 0:
            last = self._last_log_line()
            if last:
                message = f"{message}: {last}"
        return Observed(Status.ERROR, message[:500])

    def _exit_from_log(self, pid: int) -> tuple[int | None, bool]:
        """The exit code a waiter thread wrote to the log (before a dashboard restart)."""
        pattern = re.compile(rf"^----- kfdash: the server \(pid {int(pid)}\) exited: (-?\d+)")
        for line in reversed(process.tail(self.log_path, 50).splitlines()):
            found = pattern.match(line)
            if found:
                return int(found.group(1)), True
            if line.startswith("----- kfdash: starting"):
                break
        return None, False

    def _last_log_line(self) -> str:
        for line in reversed(process.tail(self.log_path, 50).splitlines()):
            if line.strip() and not line.startswith("-----"):
                return line.strip()[:300]
        return ""

    def _exit_time(self) -> str:
        try:
            return datetime.fromtimestamp(self.log_path.stat().st_mtime, UTC).isoformat()
        except OSError:
            return _now()

    # --- bookkeeping ------------------------------------------------------------------

    @staticmethod
    def _event(events: list[dict], kind: str, reason: str, message: str,
               when: str | None = None) -> list[dict]:
        entry = {"time": when or _now(), "type": kind, "reason": reason, "message": message}
        return [*events, entry][-MAX_EVENTS:]

    @staticmethod
    def _without_server(runtime: dict) -> dict:
        return {key: value for key, value in runtime.items() if key not in RUNTIME_KEYS}

    def _reload(self) -> None:
        """Another worker may have started or stopped the server meanwhile."""
        notebook = self.notebook
        if notebook.pk:
            with contextlib.suppress(type(notebook).DoesNotExist):
                notebook.refresh_from_db(fields=["runtime", "status", "status_message"])

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One start/stop/delete at a time per notebook, across threads and processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def stop_all(data_dir: Path | str | None = None, grace: float = 5.0) -> str:
    """Stop every server of a kfdash data folder (settings.DATA_DIR by default), and
    all they started, whatever the database says: servers outlive the dashboard by
    design, so tests that run a real kfdash, and uninstalls, sweep with this.
    Returns "" when nothing was running, "terminated" or "killed"."""
    base = Path(data_dir or settings.DATA_DIR) / "notebooks"
    return process.terminate(None, (TAG, f"{base}{os.sep}"), grace, prefix=True)


def _wait_for(popen: subprocess.Popen, log_path: Path) -> None:
    """Reap a server of ours when it exits and note its exit code in its log."""
    code = popen.wait()
    with contextlib.suppress(OSError), open(log_path, "a") as log:
        log.write(f"----- kfdash: the server (pid {popen.pid}) exited: {code} "
                  f"({process.describe_exit(code)}) at {_now()}\n")
