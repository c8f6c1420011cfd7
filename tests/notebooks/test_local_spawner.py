"""The local spawner runs real JupyterLab servers: these tests start them, talk to them
over HTTP, stop and kill them, and check that nothing is left running."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from dashboard import host_limits
from notebooks.choices import Status
from notebooks.models import Notebook, Volume
from notebooks.spawners import Endpoint, SpawnError, local, process
from notebooks.spawners.local import LocalProcessSpawner

pytestmark = pytest.mark.django_db

STEPS = ["creating workspace", "starting server", "waiting for server to answer", "ready"]


def http() -> requests.Session:
    """A client without cookies from earlier calls (Jupyter sets a login cookie once a
    token is accepted) that never goes through a configured HTTP proxy."""
    session = requests.Session()
    session.trust_env = False
    return session


def call(notebook: Notebook, method: str, path: str, token: str | None = "", **kwargs):
    """A request to the notebook's server directly (as the proxy makes them): with its
    token unless ``token`` is None, or with the ``token`` given."""
    runtime = notebook.runtime
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"token {token or runtime['token']}"
    url = f"http://127.0.0.1:{runtime['port']}{notebook.base_url}{path}"
    return http().request(method, url, headers=headers, timeout=30, **kwargs)


def gone(pid: int) -> bool:
    """True when the process no longer exists (a zombie counts as gone)."""
    found = process.stat(pid)
    return found is None or not found.alive


def wait_until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


@pytest.fixture(autouse=True)
def data_dir(settings):
    """A fresh data folder per test, inside the test run's (volumes are files that
    outlive the database rows a test rolls back)."""
    base = Path(settings.DATA_DIR)
    fresh = Path(tempfile.mkdtemp(prefix="local-spawner-", dir=base))
    settings.DATA_DIR = fresh
    yield fresh
    shutil.rmtree(fresh, ignore_errors=True)


@pytest.fixture
def make_notebook(profile, owner):
    def make(name: str = "nb", workspace: str | None = "ws", **fields) -> Notebook:
        volume = None
        if workspace:
            volume = Volume.objects.create(profile=profile, name=workspace, created_by=owner)
        return Notebook.objects.create(profile=profile, name=name, image="jupyter",
                                       workspace=volume, created_by=owner, **fields)

    return make


@pytest.fixture
def spawners():
    """Spawners of the test; whatever they started is stopped afterwards, even when the
    test failed half-way."""
    made: list[LocalProcessSpawner] = []

    def make(notebook: Notebook, cls=LocalProcessSpawner) -> LocalProcessSpawner:
        spawner = cls(notebook)
        made.append(spawner)
        return spawner

    yield make
    for spawner in made:
        runtime = spawner.notebook.runtime
        with contextlib.suppress(Exception):
            spawner.stop(grace=2)
        process.terminate(None, spawner._tag(), 1.0)
        if runtime.get("pid") and process.is_same_process(runtime["pid"],
                                                          runtime.get("proc_start")):
            os.killpg(runtime["pid"], signal.SIGKILL)


def started(spawners, notebook: Notebook, cls=LocalProcessSpawner) -> LocalProcessSpawner:
    spawner = spawners(notebook, cls)
    steps: list[str] = []
    spawner.start(steps.append)
    assert steps == STEPS
    return spawner


# --- a running server ---------------------------------------------------------------


def test_it_starts_a_jupyterlab_that_answers_only_with_its_token(
        make_notebook, spawners, profile, owner, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://kfdash:secret@db/kfdash")  # the dashboard's
    datasets = Volume.objects.create(profile=profile, name="datasets", created_by=owner)
    datasets.local_path.mkdir(parents=True)
    (datasets.local_path / "readme.txt").write_text("shared data")
    notebook = make_notebook(environment={"GREETING": "hello"})
    notebook.data_mounts.create(volume=datasets, mount_path="/home/jovyan/data")

    spawner = started(spawners, notebook)

    notebook.refresh_from_db()
    runtime = notebook.runtime
    assert (notebook.status, notebook.status_message) == (Status.RUNNING, "")
    assert {"pid", "port", "token", "log", "started_at", "proc_start", "limits"} <= set(runtime)
    assert runtime["proc_start"] == process.start_time(runtime["pid"])
    assert spawner.endpoint() == Endpoint(f"http://127.0.0.1:{runtime['port']}", runtime["token"])
    assert LocalProcessSpawner(notebook).poll().status == Status.RUNNING

    assert call(notebook, "GET", "api/status").status_code == 200
    assert call(notebook, "GET", "api/status", token=None).status_code == 403
    assert call(notebook, "GET", "api/status", token="not-the-token").status_code == 403

    # A write as the proxy sends it: token, a foreign Origin, no XSRF cookie.
    written = call(notebook, "PUT", "api/contents/hello.txt",
                   headers={"Origin": "https://kfdash.example.com"},
                   json={"type": "file", "format": "text", "content": "hi there"})
    assert written.status_code == 201, written.text
    assert (notebook.workspace.local_path / "hello.txt").read_text() == "hi there"
    # The data volume is in the workspace at its mount path.
    listing = call(notebook, "GET", "api/contents/data").json()
    assert [entry["name"] for entry in listing["content"]] == ["readme.txt"]

    pid = runtime["pid"]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert "jupyterlab" in cmdline and runtime["token"] not in cmdline  # ps shows no token
    environ = dict(item.split("=", 1) for item in
                   Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in item)
    home = str(notebook.workspace.local_path)
    private = Path(settings.DATA_DIR) / "notebooks" / "team-a" / "nb"
    assert environ["HOME"] == home and os.readlink(f"/proc/{pid}/cwd") == home
    assert environ["JUPYTER_CONFIG_DIR"] == str(private / "config")
    assert environ["JUPYTER_RUNTIME_DIR"] == str(private / "runtime")
    assert environ["GREETING"] == "hello"
    assert "DATABASE_URL" not in environ
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # its own session
    assert (private / "config" / "jupyter_server_config.json").stat().st_mode & 0o077 == 0

    # Starting a running server changes nothing.
    steps: list[str] = []
    LocalProcessSpawner(Notebook.objects.get(pk=notebook.pk)).start(steps.append)
    notebook.refresh_from_db()
    assert notebook.runtime["pid"] == pid and steps == []

    assert "----- kfdash: starting /notebook/team-a/nb/" in spawner.logs()
    assert "Jupyter Server" in spawner.logs()
    assert len(spawner.logs(tail=3).splitlines()) == 3
    assert [event["reason"] for event in spawner.events()] == ["Started"]


def test_it_stops_the_server_and_all_it_started_and_restarts_on_the_same_workspace(
        make_notebook, spawners):
    notebook = make_notebook()
    spawner = started(spawners, notebook)
    pid = notebook.runtime["pid"]
    assert call(notebook, "PUT", "api/contents/hello.txt",
                json={"type": "file", "format": "text", "content": "kept"}).status_code == 201
    assert call(notebook, "POST", "api/kernels", json={"name": "python3"}).status_code == 201
    assert call(notebook, "POST", "api/terminals").status_code == 200
    family = wait_until(lambda: len(process.descendants(pid)) >= 2 and process.descendants(pid))
    assert family, "the kernel and the terminal did not start"

    spawner.stop(grace=10)

    notebook.refresh_from_db()
    assert (notebook.status, notebook.status_message) == (Status.STOPPED, "")
    assert not {"pid", "port", "token", "proc_start"} & set(notebook.runtime)
    for each in [pid, *family]:
        assert gone(each), f"{each} survived"
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert process.tagged(*spawner._tag()) == []
    assert spawner.poll().status == Status.STOPPED and spawner.endpoint() is None
    assert [event["reason"] for event in spawner.events()] == ["Started", "Stopped"]
    spawner.stop()  # stopping a stopped server is a no-op
    assert [event["reason"] for event in spawner.events()] == ["Started", "Stopped"]

    steps: list[str] = []
    spawner.start(steps.append)
    assert steps == STEPS
    assert notebook.runtime["pid"] != pid
    again = call(notebook, "GET", "api/contents/hello.txt")
    assert again.status_code == 200 and again.json()["content"] == "kept"
    assert spawner.logs().count("----- kfdash: starting") == 2


def test_it_readopts_a_live_server_and_notices_when_it_dies_behind_its_back(
        make_notebook, spawners):
    notebook = make_notebook()
    started(spawners, notebook)
    pid = notebook.runtime["pid"]
    # The dashboard restarts: a new spawner, knowing only what the database holds.
    local._children.pop(pid)
    adopted = spawners(Notebook.objects.get(pk=notebook.pk))
    assert adopted.poll().status == Status.RUNNING
    endpoint = adopted.endpoint()
    status = http().get(f"{endpoint.url}{notebook.base_url}api/status",
                      headers={"Authorization": f"token {endpoint.token}"}, timeout=10)
    assert status.status_code == 200

    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: gone(pid))
    seen = wait_until(lambda: (lambda s: s if "SIGKILL" in s.message else None)(adopted.poll()))

    assert seen.status == Status.ERROR, seen
    assert seen.message == "the server was killed by SIGKILL"  # read from the log's exit line
    assert adopted.endpoint() is None
    assert adopted.events()[-1]["reason"] == "Exited"
    # Something it left behind (tagged with its environment) is stopped too.
    leftover = subprocess.Popen(["sleep", "300"], env={local.TAG: str(adopted.directory)},
                                start_new_session=True)
    try:
        assert wait_until(lambda: process.tagged(*adopted._tag()) == [leftover.pid])
        adopted.stop(grace=2)
        assert leftover.wait(timeout=10) == -signal.SIGTERM
    finally:
        leftover.kill()
        leftover.wait()
    notebook.refresh_from_db()
    assert notebook.status == Status.STOPPED
    assert [e["reason"] for e in notebook.runtime["events"]] == ["Started", "Exited", "Stopped"]


def test_it_does_not_mistake_a_reused_pid_for_its_server(make_notebook):
    notebook = make_notebook()
    me = process.start_time(os.getpid())
    notebook.mark(Status.RUNNING, "", pid=os.getpid(), proc_start=me - 1, port=1, token="t")
    spawner = LocalProcessSpawner(notebook)

    seen = spawner.poll()
    assert seen.status == Status.STOPPED
    assert seen.message == "the server exited (code/signal unknown after a dashboard restart)"
    assert spawner.endpoint() is None
    spawner.stop(grace=0.5)  # must not signal this process (the pid's present owner)
    notebook.refresh_from_db()
    assert notebook.status == Status.STOPPED and "pid" not in notebook.runtime


def test_it_reports_a_server_gone_after_a_restart_as_stopped(make_notebook):
    short = subprocess.Popen(["true"])
    short_start = process.start_time(short.pid)
    short.wait()
    notebook = make_notebook()
    notebook.mark(Status.RUNNING, "", pid=short.pid, proc_start=short_start, port=1, token="t")
    seen = LocalProcessSpawner(notebook).poll()
    assert seen.status == Status.STOPPED and "unknown" in seen.message


# --- failures -------------------------------------------------------------------------


class BadOptionSpawner(LocalProcessSpawner):
    def server_command(self, port, token_file, workspace):
        return [*super().server_command(port, token_file, workspace),
                "--ServerApp.port_retries=many"]


def test_it_reports_a_server_that_fails_to_start_with_its_log(make_notebook, spawners):
    notebook = make_notebook()
    spawner = spawners(notebook, BadOptionSpawner)
    steps: list[str] = []

    with pytest.raises(SpawnError) as failure:
        spawner.start(steps.append)

    assert steps == STEPS[:3]
    message = str(failure.value)
    assert message.startswith("The server exited with code 1 while starting.")
    assert "Last lines of its log:" in message and "'many'" in message
    notebook.refresh_from_db()
    assert notebook.status == Status.ERROR
    assert notebook.status_message.startswith("The server exited with code 1")
    assert not {"pid", "port", "token"} & set(notebook.runtime)
    assert notebook.runtime["events"][-1]["reason"] == "Failed"
    assert process.tagged(*spawner._tag()) == []
    assert spawner.poll().status == Status.ERROR


def test_it_kills_a_server_that_does_not_answer_in_time(make_notebook, spawners, settings):
    settings.KFDASH_NOTEBOOK_START_TIMEOUT = 0.5
    notebook = make_notebook()
    spawner = spawners(notebook)

    with pytest.raises(SpawnError, match=r"did not answer within 0.5 s"):
        spawner.start(lambda message: None)

    assert process.tagged(*spawner._tag()) == []
    notebook.refresh_from_db()
    assert notebook.status == Status.ERROR


class TakenPortFirstSpawner(LocalProcessSpawner):
    taken: int = 0
    ports: list[int] = []

    def find_port(self):
        port = self.taken if not self.ports else super().find_port()
        self.ports.append(port)
        return port


def test_it_tries_another_port_when_its_port_was_taken_meanwhile(make_notebook, spawners):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        TakenPortFirstSpawner.taken = squatter.getsockname()[1]
        TakenPortFirstSpawner.ports = []
        notebook = make_notebook()
        started(spawners, notebook, TakenPortFirstSpawner)

    ports = TakenPortFirstSpawner.ports
    assert len(ports) == 2 and ports[0] == TakenPortFirstSpawner.taken
    assert notebook.runtime["port"] == ports[1]
    assert "is not available" in LocalProcessSpawner(notebook).logs()
    assert call(notebook, "GET", "api/status").status_code == 200


# --- resource limits --------------------------------------------------------------------


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def _max_address_space(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            return line.split()[3]
    raise AssertionError("no address space line")


def test_it_applies_limits_where_this_host_allows_and_says_which(make_notebook, spawners):
    notebook = make_notebook(cpu="0.5", cpu_limit="1", memory="1Gi", memory_limit="1Gi")
    started(spawners, notebook)
    pid, limits = notebook.runtime["pid"], notebook.runtime["limits"]

    cores = len(os.sched_getaffinity(0))
    if cores > 1:
        assert len(os.sched_getaffinity(pid)) == 1
        assert limits["cpu"].startswith("CPU affinity: 1 of")
    else:
        assert limits["cpu"].startswith("not enforced")

    memory = limits["memory"]
    if memory.startswith("cgroup v"):
        cgroup = Path(notebook.runtime["cgroup"])
        name = "memory.max" if memory.startswith("cgroup v2") else "memory.limit_in_bytes"
        assert int((cgroup / name).read_text()) == 1024**3
        assert int(pid) in [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
        assert re.fullmatch(r"cgroup v[12]: 1Gi for the server and its kernels", memory)
    else:
        assert memory.startswith("RLIMIT_AS 1Gi per process")
        assert _max_address_space(pid) == str(1024**3)

    assert _environ(pid)["CUDA_VISIBLE_DEVICES"] == ""
    assert limits["gpu"].startswith("CUDA_VISIBLE_DEVICES='' (no GPU requested")
    cgroup_dir = notebook.runtime.get("cgroup")
    LocalProcessSpawner(notebook).stop(grace=5)
    if cgroup_dir:
        assert not Path(cgroup_dir).exists()  # removed with the server


class NoCgroupSpawner(LocalProcessSpawner):
    memory_cgroups = False


def test_it_falls_back_to_an_address_space_limit_and_selects_gpus(make_notebook, spawners):
    notebook = make_notebook(memory_limit="2Gi", gpu_count=2, gpu_vendor="nvidia.com/gpu")
    spawner = started(spawners, notebook, NoCgroupSpawner)
    pid, limits = notebook.runtime["pid"], notebook.runtime["limits"]

    assert limits["memory"].startswith("RLIMIT_AS 2Gi per process")
    assert "cgroups are turned off" in limits["memory"]
    assert _max_address_space(pid) == str(2 * 1024**3)
    assert _environ(pid)["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert limits["gpu"].startswith("CUDA_VISIBLE_DEVICES=0,1 (device selection")
    if process.nvidia_gpus() < 2:
        assert "NVIDIA GPU(s) found on this host" in limits["gpu"]

    os.kill(pid, signal.SIGKILL)
    seen = wait_until(lambda: (lambda s: s if s.status != Status.RUNNING else None)(
        spawner.poll()))
    assert (seen.status, seen.message) == (Status.ERROR, "the server was killed by SIGKILL")


def test_it_enforces_no_memory_limit_when_none_is_set(make_notebook):
    spawner = LocalProcessSpawner(make_notebook(memory="1Gi", memory_limit=""))
    limits, spec, _ = spawner._limits()
    assert limits["memory"] == "not enforced: no memory limit set"
    assert "rlimit_as" not in spec and "cgroup" not in spec


# --- the workspace and its volumes --------------------------------------------------------


def test_it_links_data_volumes_at_their_mount_paths(make_notebook, profile, owner):
    notebook = make_notebook()
    for name, path in (("datasets", "/home/jovyan/data"), ("models", "shared/models")):
        volume = Volume.objects.create(profile=profile, name=name, created_by=owner)
        notebook.data_mounts.create(volume=volume, mount_path=path)
    spawner = LocalProcessSpawner(notebook)

    workspace = spawner.prepare_workspace()
    spawner.prepare_workspace()  # again: the links are kept

    assert workspace == notebook.workspace.local_path
    data_root = Path(settings.DATA_DIR) / "volumes" / "team-a"
    assert (workspace / "data").resolve() == data_root / "datasets"
    assert (workspace / "shared" / "models").resolve() == data_root / "models"
    (workspace / "data" / "x.csv").write_text("1,2")
    assert (data_root / "datasets" / "x.csv").read_text() == "1,2"


@pytest.mark.parametrize("mount_path", ["/data", "/home/jovyan", "/home/jovyan/../etc",
                                        "../outside", "data/../../outside", "."])
def test_it_refuses_mount_paths_that_leave_the_workspace(mount_path):
    with pytest.raises(SpawnError):
        LocalProcessSpawner.mount_location(mount_path)


def test_it_maps_mount_paths_into_the_workspace():
    assert str(LocalProcessSpawner.mount_location("/home/jovyan/data")) == "data"
    assert str(LocalProcessSpawner.mount_location("data/raw")) == "data/raw"
    assert str(LocalProcessSpawner.mount_location("/home/jovyan/a/b/")) == "a/b"


def test_it_refuses_a_mount_through_a_link_that_leaves_the_workspace(
        make_notebook, profile, owner, tmp_path, spawners):
    notebook = make_notebook()
    volume = Volume.objects.create(profile=profile, name="datasets", created_by=owner)
    notebook.data_mounts.create(volume=volume, mount_path="/home/jovyan/elsewhere/data")
    workspace = notebook.workspace.local_path
    workspace.mkdir(parents=True)
    (workspace / "elsewhere").symlink_to(tmp_path)

    with pytest.raises(SpawnError, match="leads out of the workspace"):
        spawners(notebook).start(lambda message: None)

    assert list(tmp_path.iterdir()) == []
    notebook.refresh_from_db()
    assert notebook.status == Status.ERROR


def test_it_does_not_mount_over_the_users_files(make_notebook, profile, owner):
    notebook = make_notebook()
    volume = Volume.objects.create(profile=profile, name="datasets", created_by=owner)
    notebook.data_mounts.create(volume=volume, mount_path="data")
    (notebook.workspace.local_path / "data").mkdir(parents=True)
    (notebook.workspace.local_path / "data" / "mine.txt").write_text("mine")

    with pytest.raises(SpawnError, match="already has a file there"):
        LocalProcessSpawner(notebook).prepare_workspace()


def test_it_gives_a_notebook_without_a_workspace_a_scratch_folder(make_notebook):
    notebook = make_notebook(workspace=None)
    spawner = LocalProcessSpawner(notebook)
    scratch = Path(settings.DATA_DIR) / "notebooks" / "team-a" / "nb" / "scratch"
    assert spawner.prepare_workspace() == scratch and scratch.is_dir()
    spawner.delete(delete_volumes=True)
    assert not scratch.exists()


# --- deleting ---------------------------------------------------------------------------------


def test_it_deletes_a_running_server_and_keeps_its_workspace(make_notebook, spawners):
    notebook = make_notebook()
    spawner = started(spawners, notebook)
    pid = notebook.runtime["pid"]
    (notebook.workspace.local_path / "work.ipynb").write_text("{}")

    spawner.delete(delete_volumes=False)

    assert gone(pid)
    assert not spawner.directory.exists()  # config, runtime, log
    assert (notebook.workspace.local_path / "work.ipynb").exists()


def test_it_deletes_the_workspace_when_asked_but_never_data_volumes(
        make_notebook, profile, owner):
    notebook = make_notebook()
    datasets = Volume.objects.create(profile=profile, name="datasets", created_by=owner)
    notebook.data_mounts.create(volume=datasets, mount_path="/home/jovyan/data")
    spawner = LocalProcessSpawner(notebook)
    workspace = spawner.prepare_workspace()
    (workspace / "data" / "keep.csv").write_text("1")
    spawner.directory.mkdir(parents=True, exist_ok=True)

    spawner.delete(delete_volumes=True)

    assert not workspace.exists() and not spawner.directory.exists()
    assert (datasets.local_path / "keep.csv").read_text() == "1"


def test_it_keeps_a_workspace_another_notebook_uses(make_notebook, profile, owner):
    notebook = make_notebook()
    Notebook.objects.create(profile=profile, name="other", image="jupyter",
                            workspace=notebook.workspace, created_by=owner)
    workspace = LocalProcessSpawner(notebook).prepare_workspace()

    LocalProcessSpawner(notebook).delete(delete_volumes=True)

    assert workspace.is_dir()


# --- helpers (no servers) -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2Gi", 2 * 1024**3), ("512Mi", 512 * 1024**2), ("1G", 10**9), ("1.5Gi", 1610612736),
    ("100M", 10**8), ("1e3", 1000), ("", None), ("  ", None),
])
def test_it_reads_memory_quantities(text, expected):
    assert host_limits.memory_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "2GB", "-1Gi", "1..5"])
def test_it_refuses_what_is_not_a_quantity(text):
    with pytest.raises(ValueError):
        host_limits.memory_bytes(text)


@pytest.mark.parametrize(("request_", "limit", "cores", "description"), [
    ("0.5", "", [0], "CPU affinity: 1 of 4 cores (0); 0.5 CPU is rounded up to whole cores"),
    ("500m", "1500m", [0, 1], "CPU affinity: 2 of 4 cores (0-1); 1500m CPU is rounded up"
                              " to whole cores"),
    ("2", "", [0, 1], "CPU affinity: 2 of 4 cores (0-1)"),
    ("8", "", None, "not enforced: 8 CPU asks for 8 cores; all 4 available cores are used"),
    ("", "", None, "not enforced: no CPU limit or request (all 4 cores)"),
    ("many", "", None, "not enforced: 'many' is not a Kubernetes quantity"),
])
def test_it_plans_cpu_affinity_from_the_limit_or_the_request(request_, limit, cores,
                                                              description):
    assert process.cpu_plan(request_, limit, [0, 1, 2, 3]) == (cores, description)


def test_it_spreads_servers_over_the_cores():
    assert process.cpu_plan("2", "", [0, 1, 2, 3], offset=3)[0] == [0, 3]
    assert process.cpu_plan("1", "", [2, 5, 7], offset=4)[0] == [5]


def test_it_sets_the_visible_gpus():
    assert process.gpu_plan(0, "", 0)[0] == {"CUDA_VISIBLE_DEVICES": ""}
    env, note = process.gpu_plan(2, "amd.com/gpu", 0)
    assert env == {"CUDA_VISIBLE_DEVICES": "0,1", "HIP_VISIBLE_DEVICES": "0,1",
                   "ROCR_VISIBLE_DEVICES": "0,1"}
    assert "found" not in note
    assert process.gpu_plan(1, "nvidia.com/gpu", 1)[1] == \
        "CUDA_VISIBLE_DEVICES=0 (device selection, not isolation)"


def test_it_reads_proc_stat_even_with_odd_command_names():
    text = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0"
    found = process.parse_stat(text)
    assert (found.pid, found.state, found.ppid, found.pgrp, found.session, found.start_time) \
        == (4242, "S", 1, 4242, 4242, 987654)
    assert not process.parse_stat(text.replace(" S ", " Z ")).alive


def test_it_names_exits():
    assert process.describe_exit(0) == "exited with code 0"
    assert process.describe_exit(-9) == "was killed by SIGKILL"
    assert process.describe_exit(None) == "exited (code unknown)"
    assert process.clean_exit(-signal.SIGTERM) and not process.clean_exit(1)


def test_it_tails_files(tmp_path):
    path = tmp_path / "log"
    path.write_text("".join(f"line {i}\n" for i in range(10000)))
    assert process.tail(path, 2) == "line 9998\nline 9999"
    assert process.tail(tmp_path / "missing", 5) == ""
    assert process.tail(path, 0) == ""


def test_it_finds_its_memory_cgroup_in_either_hierarchy(tmp_path):
    v2 = tmp_path / "unified"
    (v2 / "user.slice" / "app").mkdir(parents=True)
    (v2 / "user.slice" / "app" / "cgroup.controllers").write_text("cpu io memory pids\n")
    v1 = tmp_path / "memory"
    (v1 / "docker" / "abc").mkdir(parents=True)
    mountinfo = (f"41 31 0:38 / {v2} rw,relatime - cgroup2 cgroup2 rw\n"
                 f"35 31 0:32 /docker {v1} rw,relatime - cgroup cgroup rw,memory\n")
    assert host_limits.own_memory_cgroup("0::/user.slice/app\n", mountinfo) == \
        (2, v2 / "user.slice" / "app")
    # Hybrid: memory is on the v1 hierarchy (v2 lacks the controller here).
    (v2 / "user.slice" / "app" / "cgroup.controllers").write_text("hugetlb\n")
    hybrid = "4:memory:/docker/abc\n0::/user.slice/app\n"
    assert host_limits.own_memory_cgroup(hybrid, mountinfo) == (1, v1 / "abc")
    assert host_limits.own_memory_cgroup("0::/\n", "") is None


def test_it_makes_a_v2_memory_cgroup(tmp_path):
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    cgroup = host_limits.create_memory_cgroup((2, tmp_path), "kfdash-x", 2 * 1024**3)
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory"
    assert (cgroup.path / "memory.max").read_text() == str(2 * 1024**3)
    assert cgroup.procs == tmp_path / "kfdash-x" / "cgroup.procs"
    (cgroup.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cgroup.oom_kills() == 1


def test_it_terminates_tagged_processes_and_their_group(tmp_path):
    env = {"PATH": os.environ["PATH"], "KFDASH_TEST_TAG": str(tmp_path)}
    ignoring = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                                env=env, start_new_session=True, stdout=subprocess.PIPE)
    polite = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        assert ignoring.stdout.readline() == b"ready\n"
        tag = ("KFDASH_TEST_TAG", str(tmp_path))
        assert sorted(process.tagged(*tag)) == sorted([ignoring.pid, polite.pid])
        assert process.terminate(None, tag, grace=0.5) == "killed"
        assert polite.wait(timeout=5) == -signal.SIGTERM
        assert ignoring.wait(timeout=5) == -signal.SIGKILL
        assert process.terminate(None, tag, grace=0.5) == ""
    finally:
        for each in (ignoring, polite):
            each.kill()
            each.wait()


def test_it_stops_every_server_of_a_data_folder(data_dir):
    mine = subprocess.Popen(["sleep", "60"], start_new_session=True,
                            env={local.TAG: str(data_dir / "notebooks" / "team-a" / "nb")})
    other = subprocess.Popen(["sleep", "60"], start_new_session=True,
                             env={local.TAG: f"{data_dir}-other/notebooks/team-a/nb"})
    try:
        wait_until(lambda: len(process.tagged(local.TAG, str(data_dir), prefix=True)) == 2)
        assert local.stop_all(data_dir, grace=2) == "terminated"
        assert mine.wait(timeout=5) == -signal.SIGTERM
        assert other.poll() is None
    finally:
        for each in (mine, other):
            each.kill()
            each.wait()


def test_it_keeps_the_last_fifty_events():
    events: list[dict] = []
    for i in range(60):
        events = LocalProcessSpawner._event(events, "Normal", "Started", f"start {i}")
    assert len(events) == 50 and events[0]["message"] == "start 10"
    assert set(events[-1]) == {"time", "type", "reason", "message"}


# --- VS Code (code-server) on a private unix socket ----------------------------------------

FAKE_CODE_SERVER = '''#!{python}
"""A stand-in for code-server's command line, for hosts without it (a real code-server
is started in tests/notebooks/test_proxy.py where one is found): HTTP on --socket."""
import http.server, json, socketserver, sys
options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
print("fake code-server", *sys.argv[1:], flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"path": self.path, "headers": dict(self.headers)}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.UnixStreamServer):
    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


Server(options["socket"], Handler).serve_forever()
'''


def test_it_runs_vscode_on_a_socket_only_its_account_can_reach(make_notebook, spawners,
                                                               settings, tmp_path):
    import stat

    from notebooks.spawners import programs

    fake = tmp_path / "code-server"
    fake.write_text(FAKE_CODE_SERVER.format(python=sys.executable))
    fake.chmod(0o755)
    settings.KFDASH_CODE_SERVER = str(fake)
    notebook = make_notebook("code", server_type="group-one")
    spawner = spawners(notebook)
    steps: list[str] = []
    spawner.start(steps.append)
    assert steps == STEPS
    assert notebook.status == Status.RUNNING
    runtime = notebook.runtime
    assert "port" not in runtime and "token" not in runtime
    sock = Path(runtime["socket"])
    assert sock.parent == Path(settings.DATA_DIR) / "run"
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    command = Path(f"/proc/{runtime['pid']}/cmdline").read_bytes().decode().split("\0")
    assert f"--socket={sock}" in command and "--auth=none" in command
    assert command[-2] == str(notebook.workspace.local_path)  # the folder it opens
    assert spawner.endpoint() == Endpoint(url="http://localhost", socket=str(sock),
                                          strip_prefix="/notebook/team-a/code")
    assert programs.http_status(str(sock), "/healthz") == 200
    assert "VS Code (pid" in notebook.runtime["events"][-1]["message"]

    pid = runtime["pid"]
    spawner.stop(grace=2)
    assert wait_until(lambda: gone(pid))
    assert not sock.exists()
    assert notebook.status == Status.STOPPED and spawner.endpoint() is None


def test_it_refuses_to_start_vscode_without_code_server(make_notebook, spawners, settings,
                                                        tmp_path, monkeypatch):
    settings.KFDASH_CODE_SERVER = str(tmp_path / "missing")
    notebook = make_notebook("code", server_type="group-one")
    with pytest.raises(SpawnError, match="VS Code cannot run here: KFDASH_CODE_SERVER names"):
        spawners(notebook).start(lambda step: None)
    assert notebook.status == Status.ERROR
