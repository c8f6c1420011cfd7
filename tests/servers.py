"""Real kfdash processes for end-to-end tests: uvicorn serving dashboard.asgi,
with its own data dir and SQLite database, configured only through the
environment, exactly as `make run` starts it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
_migrated_template: Path | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_answering(process: subprocess.Popen, url: str, what: str, timeout: float = 30,
                         headers: dict | None = None, log=lambda: "") -> None:
    """Poll ``url`` until it answers 200, as servers started for tests and benchmarks come
    up. RuntimeError, with ``log()``, when ``process`` exits first or the time runs out;
    stopping it is the caller's (each kind stops differently)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start:\n{log()}")
        try:
            if requests.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening or not answering yet
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:g} s:\n{log()}")


def server_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFDASH_", "OIDC_"))}
    env.pop("DATABASE_URL", None)  # each server gets its own SQLite file
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        KFDASH_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class KfdashServer:
    url: str
    env: dict[str, str]
    data_dir: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a management command against this server's database."""
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env, cwd=ROOT, capture_output=True, text=True, check=check, timeout=120,
        )

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)


def _migrate_template() -> Path:
    """Migrate one SQLite database per test session and copy it for each server:
    migrating from scratch for every server would dominate the e2e run time."""
    global _migrated_template
    if _migrated_template is None or not _migrated_template.exists():
        base = Path(os.environ.get("TMPDIR", "/tmp")) / f"kfdash-template-{os.getpid()}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
            env=server_env(base), cwd=ROOT, capture_output=True, text=True, check=True,
            timeout=300,
        )
        _migrated_template = base / "kfdash.sqlite3"
    return _migrated_template


def start_kfdash(data_dir: Path, **env: str) -> KfdashServer:
    """Start a kfdash server on a free loopback port and wait until it is ready."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(_migrate_template(), data_dir / "kfdash.sqlite3")
    port = free_port()
    server = KfdashServer(
        url=f"http://127.0.0.1:{port}",
        env=server_env(data_dir, HOST="127.0.0.1", PORT=str(port), **env),
        data_dir=data_dir,
        log_path=data_dir / "server.log",
    )
    with open(server.log_path, "w") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "dashboard.asgi:application",
             "--host", "127.0.0.1", "--port", str(port), "--no-server-header"],
            env=server.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answering(server.process, f"{server.url}/readyz", "kfdash", log=server.log)
    except RuntimeError:
        server.stop()
        raise
    return server


def log_in(server: KfdashServer, email: str, password: str) -> requests.Session:
    """A requests session logged in through the login form, as a browser would be."""
    browser = requests.Session()
    form = browser.get(f"{server.url}/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert csrf, "no CSRF token on the login page"
    done = browser.post(f"{server.url}/login/", allow_redirects=False, timeout=10, data={
        "csrfmiddlewaretoken": csrf.group(1), "username": email, "password": password},
        headers={"Referer": f"{server.url}/login/"})
    assert done.status_code == 302, f"the login failed: {done.status_code}"
    return browser
