"""How long the local spawner takes to start a notebook, against a bare ``jupyter lab``.

Measures, N times each and interleaved so that drift hits both alike:

* spawner: ``LocalProcessSpawner.start()`` called -> returned (the server answers
  ``/api/status`` with its token): workspace, private Jupyter dirs, limits, the
  launcher, the wait;
* bare: ``python -m jupyterlab`` started by hand with the same base URL, token and
  loopback port -> its ``/api/status`` answers 200 (polled as often as the spawner
  polls, every 0.1 s).

Each server is stopped before the next one starts. Prints the medians and their
ratio, and the spawner's median stop time.

    .venv/bin/python bench/notebook_spawn.py [-n 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.mkdtemp(prefix="kfdash-bench-spawn-"))
os.environ["KFDASH_DATA_DIR"] = str(DATA)
os.environ["KFDASH_PLATFORM"] = "local"
os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import jupyter_server  # noqa: E402
import jupyterlab  # noqa: E402
import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402

from notebooks.spawners import process  # noqa: E402
from notebooks.spawners.local import LocalProcessSpawner  # noqa: E402

POLL = 0.1


def bare_start(directory: Path) -> tuple[float, subprocess.Popen]:
    """Seconds from launching ``jupyter lab`` to its first 200 on /api/status."""
    home = directory / "home"
    root = directory / "root"
    for path in (home, root):
        path.mkdir(parents=True, exist_ok=True)
    token, port, base_url = secrets.token_urlsafe(32), process.free_port(), "/notebook/b/bare/"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.base_url={base_url}",
               f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "run")}
    session = requests.Session()
    session.trust_env = False
    began = time.perf_counter()
    with open(directory / "bare.log", "ab") as log:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}{base_url}api/status"
    while True:
        if server.poll() is not None:
            raise SystemExit(f"bare jupyter lab exited; see {directory / 'bare.log'}")
        try:
            if session.get(url, headers={"Authorization": f"token {token}"},
                           timeout=2).status_code == 200:
                return time.perf_counter() - began, server
        except requests.RequestException:
            pass
        time.sleep(POLL)


def bare_stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="starts of each kind (default 5)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    from dashboard.models import Profile, User
    from notebooks.models import Notebook, Volume

    user = User.objects.create_user("bench@example.com", "bench-password-0123456789")
    profile = Profile.register("bench", user)
    notebook = Notebook.objects.create(
        profile=profile, name="lab", image="jupyter", cpu="1", memory="1Gi",
        memory_limit="2Gi", created_by=user,
        workspace=Volume.objects.create(profile=profile, name="lab-workspace", created_by=user))

    spawner_times, bare_times, stop_times = [], [], []
    limits = {}
    try:
        for round_ in range(args.n):
            spawner = LocalProcessSpawner(Notebook.objects.get(pk=notebook.pk))
            began = time.perf_counter()
            spawner.start(lambda message: None)
            spawner_times.append(time.perf_counter() - began)
            limits = spawner.notebook.runtime["limits"]
            began = time.perf_counter()
            spawner.stop()
            stop_times.append(time.perf_counter() - began)

            seconds, server = bare_start(DATA / f"bare-{round_}")
            bare_times.append(seconds)
            bare_stop(server)
            print(f"round {round_ + 1}: spawner {spawner_times[-1]:.2f} s, "
                  f"bare {bare_times[-1]:.2f} s", flush=True)
    finally:
        LocalProcessSpawner(Notebook.objects.get(pk=notebook.pk)).stop(grace=2)

    spawner_median = statistics.median(spawner_times)
    bare_median = statistics.median(bare_times)
    print()
    print(f"host: {os.cpu_count()} CPUs, {platform.platform()}, Python "
          f"{platform.python_version()}, jupyterlab {jupyterlab.__version__}, "
          f"jupyter_server {jupyter_server.__version__}")
    print(f"limits applied: {limits}")
    print(f"spawner start -> ready, median of {args.n}: {spawner_median:.2f} s "
          f"(min {min(spawner_times):.2f}, max {max(spawner_times):.2f})")
    print(f"bare jupyter lab -> 200, median of {args.n}: {bare_median:.2f} s "
          f"(min {min(bare_times):.2f}, max {max(bare_times):.2f})")
    print(f"ratio spawner / bare: {spawner_median / bare_median:.2f}")
    print(f"spawner stop, median: {statistics.median(stop_times):.2f} s")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
