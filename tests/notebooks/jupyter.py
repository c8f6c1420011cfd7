"""Real JupyterLab servers for the proxy tests, and a spawner that points at one.

``start_jupyter`` runs ``jupyter lab`` exactly as kfdash's proxy expects a
notebook server: on a free loopback port, under the notebook's base URL
(``/notebook/<namespace>/<name>/``), with a token that only the proxy knows.
``FixedEndpointSpawner`` is a real ``Spawner`` whose ``endpoint()`` reads that
port and token from ``notebook.runtime``, so the proxy is tested through the
spawner contract (``spawner_for(notebook).endpoint()``) without depending on
how a particular spawner starts processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from notebooks.choices import ServerType, Status
from notebooks.spawners import Endpoint, Observed, Spawner
from tests.servers import free_port, wait_until_answering


@dataclass
class JupyterServer:
    port: int
    token: str
    base_url: str  # "/notebook/<namespace>/<name>/"
    root_dir: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        """Where the server answers directly (no proxy), without the base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> dict:
        """What a spawner would record in ``notebook.runtime`` for this server."""
        return {"pid": self.process.pid, "port": self.port, "token": self.token}

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            # jupyter shuts its kernels down on SIGTERM; the process group catches
            # any kernel that outlives it.
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def start_jupyter(directory: Path, namespace: str, name: str, *, token: str | None = None,
                  extra_args: tuple[str, ...] = (), timeout: float = 60) -> JupyterServer:
    """Start ``jupyter lab`` for the notebook ``namespace/name``; wait until it answers
    ``/api/status``. Its files are ``directory/root``, its log ``directory/jupyter.log``."""
    root = directory / "root"
    home = directory / "home"
    root.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    token = token or secrets.token_hex(24)
    port = free_port()
    base_url = f"/notebook/{namespace}/{name}/"
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={base_url}",
        f"--ServerApp.root_dir={root}",
        "--IdentityProvider.token=" + token,
        "--ServerApp.password=",
        *extra_args,
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    env = {
        **os.environ,
        # Everything jupyter writes stays in the test's directory.
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / ".local/share/jupyter/runtime"),
        "IPYTHONDIR": str(home / ".ipython"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("JUPYTER_TOKEN", None)
    log_path = directory / "jupyter.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = JupyterServer(port, token, base_url, root, process, log_path)
    try:
        wait_until_answering(process, f"{server.url}{base_url}api/status", "jupyter lab",
                             timeout, headers={"Authorization": f"token {token}"},
                             log=server.log)
    except RuntimeError:
        server.stop()
        raise
    return server


class FixedEndpointSpawner(Spawner):
    """A spawner of servers someone else started: it only knows where they are
    (``runtime["port"]`` or ``runtime["socket"]``, and ``runtime["token"]``, while
    the status is running); the notebook's server type says how they are routed."""

    name = "fixed-endpoint"

    def start(self, progress):
        if self.notebook.status != Status.RUNNING:
            self.notebook.mark(Status.RUNNING, "")

    def stop(self, grace=10.0):
        self.notebook.mark(Status.STOPPED, "stopped")

    def delete(self, delete_volumes):
        pass

    def poll(self):
        return Observed(self.notebook.status)

    def endpoint(self):
        runtime = self.notebook.runtime or {}
        if self.notebook.status != Status.RUNNING:
            return None
        if runtime.get("socket"):
            return Endpoint.for_notebook(self.notebook, "http://localhost",
                                         runtime.get("token", ""), socket=runtime["socket"])
        if "port" not in runtime:
            return None
        host = runtime.get("host", "127.0.0.1")
        return Endpoint.for_notebook(self.notebook, f"http://{host}:{runtime['port']}",
                                     runtime.get("token", ""))

    def logs(self, tail=1000):
        return ""

    @classmethod
    def server_types(cls):
        return {t.value: "" for t in ServerType}


# --- running code in a kernel over its websocket (Jupyter's v0 JSON protocol) ----------------

def execute_request(code: str, session: str) -> dict:
    return {
        "header": {"msg_id": secrets.token_hex(16), "msg_type": "execute_request",
                   "username": "test", "session": session, "version": "5.3",
                   "date": "2026-01-01T00:00:00Z"},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }


def run_code(ws, code: str, session: str, timeout: float = 60) -> tuple[str, dict]:
    """Execute ``code`` over a kernel's channels websocket: (its stdout and stderr, the
    execute_reply's content). Output comes on iopub and the reply on shell, in no fixed
    order: done is the reply plus iopub's "idle" for this request."""
    request = execute_request(code, session)
    ws.send(json.dumps(request))
    output, reply, idle = [], None, False
    deadline = time.monotonic() + timeout
    while reply is None or not idle:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["parent_header"].get("msg_id") != request["header"]["msg_id"]:
            continue
        kind = message["msg_type"]
        if kind == "stream":
            output.append(message["content"]["text"])
        elif kind == "error":
            output.append("\n".join(message["content"]["traceback"]))
        elif kind == "status":
            idle = message["content"]["execution_state"] == "idle"
        elif kind == "execute_reply":
            reply = message["content"]
    return "".join(output), reply
