"""The programs a local notebook server can run: JupyterLab, VS Code (code-server) or
RStudio (rserver), and how each is found, started and reached.

JupyterLab listens on a loopback port and requires the token that only the proxy
knows. code-server and rserver offer nothing the proxy could inject instead:
code-server's password is typed into a login form that answers with a cookie, and
rserver authenticates against PAM. A loopback port with their authentication off
(``--auth none``) would let every local account in, so they listen on a unix socket
in a folder with mode 0700 (``DATA_DIR/run/``), authentication off: only the account
kfdash runs as (and root) can connect, which leaves kfdash's proxy, with its access
checks, the only way in. (The sockets' own modes are not relied on: code-server
makes its socket 0755 and rserver does not let it be chosen; the folder decides.)

Neither program is a dependency of kfdash: each is offered when found on this host,
at the path its setting names (``KFDASH_CODE_SERVER``, ``KFDASH_RSERVER``) or on PATH.
"""

from __future__ import annotations

import getpass
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings

from notebooks.choices import ServerType

# The longest path a unix socket may have on Linux (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class Program:
    """A server program found by a setting or on PATH."""

    server_type: ServerType
    command: str  # the executable's name on PATH
    setting: str  # the setting that names its path instead
    places: tuple[str, ...] = ()  # where its packages install it, off PATH

    def configured(self) -> str:
        return getattr(settings, self.setting)

    def executable(self) -> str | None:
        """The program's absolute path, or None when this host has none."""
        configured = self.configured()
        if configured:
            return configured if _is_executable(configured) else None
        found = shutil.which(self.command)
        if found:
            return os.path.abspath(found)
        return next((place for place in self.places if _is_executable(place)), None)

    def unavailable(self) -> str:
        """Why servers of this type cannot run here ("" when they can)."""
        configured = self.configured()
        executable = self.executable()
        if executable is None:
            if configured:
                return f"{self.setting} names {configured}, which is not an executable file"
            return f"no {self.command} found on this host; install it or set {self.setting}"
        if self.server_type == ServerType.RSTUDIO and not _rserver_has_socket_option(
                executable, os.stat(executable).st_mtime_ns):
            return (f"{executable} is too old: kfdash needs an rserver that can listen on a "
                    "private unix socket (--www-socket)")
        return ""


CODE_SERVER = Program(ServerType.VSCODE, "code-server", "KFDASH_CODE_SERVER",
                      ("/usr/lib/code-server/bin/code-server",))
RSERVER = Program(ServerType.RSTUDIO, "rserver", "KFDASH_RSERVER",
                  ("/usr/lib/rstudio-server/bin/rserver",))
PROGRAMS = {program.server_type.value: program for program in (CODE_SERVER, RSERVER)}


def unavailable_types() -> dict[str, str]:
    """Each server type: "" when it can run on this host, else why not."""
    reasons = {ServerType.JUPYTER.value: ""}  # jupyterlab is a dependency of kfdash
    for value, program in PROGRAMS.items():
        reasons[value] = program.unavailable()
    return reasons


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


@cache
def _rserver_has_socket_option(path: str, mtime_ns: int) -> bool:
    """Whether this rserver knows --www-socket (asked once per binary and version)."""
    try:
        result = subprocess.run([path, "--help"], capture_output=True, timeout=10,
                                stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return b"--www-socket" in result.stdout + result.stderr


# --- where a socket server listens ------------------------------------------------------

def socket_path(server_directory: Path) -> Path:
    """The socket of the server whose private folder is ``server_directory``.

    Not inside that folder: a notebook's folder path (namespace and name, up to 115
    characters) is longer than a socket path may be. ``DATA_DIR/run/<hash>.sock``
    instead, named by a hash of the server's folder."""
    digest = hashlib.sha256(str(server_directory).encode()).hexdigest()[:16]
    return Path(settings.DATA_DIR) / "run" / f"{digest}.sock"


def prepare_socket(path: Path) -> None:
    """Make the sockets' folder private (0700, ours) and remove a stale socket."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        from notebooks.spawners.base import SpawnError

        raise SpawnError(f"The server's socket path {path} is longer than the "
                         f"{MAX_SOCKET_PATH} bytes Linux allows; use a shorter KFDASH_DATA_DIR.")
    path.parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path.parent, 0o700)  # (mkdir's mode is filtered by the umask)
    path.unlink(missing_ok=True)


def remove_socket(path: Path) -> None:
    path.unlink(missing_ok=True)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def http_status(path: str, url_path: str, headers: dict[str, str] | None = None,
                timeout: float = 2.0) -> int:
    """The status of a GET of ``url_path`` over the unix socket ``path``; OSError when
    nothing answers there."""
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", url_path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        connection.close()


# --- commands -----------------------------------------------------------------------------

def code_server_command(executable: str, sock: Path, directory: Path,
                        workspace: Path) -> list[str]:
    """code-server on ``sock`` with its state in the server's private ``directory``."""
    config = directory / "config" / "code-server.yaml"
    # A config of kfdash's: else code-server writes one with a password into
    # ~/.config (the workspace) on first start. (An empty file is refused.)
    config.write_text("# Written by kfdash at each start; the command line says the same.\n"
                      "auth: none\ncert: false\n")
    return [
        executable,
        f"--socket={sock}",
        # Safe only behind the private socket folder (see the module docstring).
        "--auth=none",
        f"--config={config}",
        f"--user-data-dir={directory / 'data' / 'code-server'}",
        f"--extensions-dir={directory / 'data' / 'code-server-extensions'}",
        "--disable-telemetry",
        "--disable-update-check",
        str(workspace),
    ]


def rserver_command(executable: str, sock: Path, directory: Path) -> list[str]:
    """rserver on ``sock``, as this account, in the foreground, its state in the
    server's private ``directory``. Its root path comes from the proxy's
    X-RStudio-Root-Path header, as in Kubeflow."""
    data = directory / "data" / "rstudio"
    data.mkdir(parents=True, exist_ok=True)
    database = directory / "config" / "rstudio-database.conf"
    database.write_text(f"provider=sqlite\ndirectory={data}\n")
    return [
        executable,
        f"--www-socket={sock}",
        "--auth-none=1",  # safe only behind the private socket folder
        f"--server-user={getpass.getuser()}",
        "--server-daemonize=0",
        f"--server-data-dir={directory / 'runtime' / 'rstudio'}",
        f"--database-config-file={database}",
        f"--secure-cookie-key-file={directory / 'config' / 'rstudio-cookie-key'}",
        "--www-frame-origin=same",
        "--www-verify-user-agent=0",
    ]


# Where each program says it is up (any answer below 500 counts).
PROBE_PATHS = {ServerType.VSCODE.value: "/healthz", ServerType.RSTUDIO.value: "/"}
