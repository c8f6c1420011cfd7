"""Faults against real kfdash servers (uvicorn, its own data dir and SQLite database):

- the server killed (SIGKILL) in the middle of a run: restarted on the same data dir and
  database, every task is still there, finished ones stay finished, the interrupted one
  with a retry left runs again, the one without fails saying why, and nothing the dead
  server started (its steps and what they started, in or out of their process group)
  is left running;
- the server killed in the middle of an upload: nothing half stored, no file left in its
  data dir or temporary folder, and the next upload works;
- steps that run out of memory (over the limit their container sets, which the local
  engine enforces: a cgroup of the step's own where the host allows, else RLIMIT_AS), are
  killed (SIGKILL) or write far more than the log cap fail, or are capped, alone: their
  siblings succeed and the server stays healthy;
- the SQLite database locked by another process: requests that must write answer 503
  with ``Retry-After`` within a bound, not a 500 or a hang, and succeed once it is free;
- PostgreSQL stopped under a running server (a throwaway one of the test's, when its
  binaries are installed): API and pages answer 503, and work again once it is back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.pipelines.engine.test_restart import crash, restart
from tests.servers import KfdashServer, free_port, log_in

NAMESPACE = "team-a"
EMAIL = "ada@example.com"
PASSWORD = "a password of ada's, long enough"
ENDED = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")


# --- helpers -------------------------------------------------------------------------------

def token_session(server: KfdashServer) -> requests.Session:
    server.manage("create_user", EMAIL, "--namespace", NAMESPACE, "--password", PASSWORD)
    token = server.manage("create_token", EMAIL).stdout.strip().splitlines()[-1]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def workflow(name: str, steps: dict[str, str], after: dict[str, list[str]] | None = None,
             retries: dict[str, int] | None = None) -> str:
    """A KFP v1 (Argo) package whose steps are shell commands."""
    after, retries = after or {}, retries or {}
    templates = []
    for step, script in steps.items():
        template = {"name": step, "container": {"image": "alpine",
                                                "command": ["sh", "-c", script]}}
        if step in retries:
            template["retryStrategy"] = {"limit": retries[step]}
        templates.append(template)
    tasks = [{"name": step, "template": step, **({"dependencies": after[step]}
                                                   if step in after else {})}
             for step in steps]
    templates.append({"name": name, "dag": {"tasks": tasks}})
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": f"{name}-"},
        "spec": {"entrypoint": name, "templates": templates}})


def start_run(server: KfdashServer, api: requests.Session, manifest: str) -> str:
    response = api.post(f"{server.url}/apis/v1beta1/runs", timeout=30, json={
        "name": "faulty", "pipeline_spec": {"workflow_manifest": manifest}})
    assert response.status_code == 200, response.text
    return response.json()["run"]["id"]


def query(server: KfdashServer, sql: str, *args):
    with sqlite3.connect(f"file:{server.data_dir / 'kfdash.sqlite3'}?mode=ro", uri=True,
                         timeout=10) as db:
        return db.execute(sql, args).fetchall()


def tasks(server: KfdashServer, run_id: str) -> dict[str, tuple[str, int, str]]:
    """node id: (state, attempts, error) of every task of the run, from the database."""
    return {node: (state, attempts, error) for node, state, attempts, error in query(
        server, "SELECT node_id, state, attempts, error FROM pipelines_runtask "
                "WHERE run_id = ?", run_id.replace("-", ""))}


def run_state(server: KfdashServer, run_id: str) -> tuple[str, str]:
    return query(server, "SELECT state, error FROM pipelines_run WHERE id = ?",
                 run_id.replace("-", ""))[0]


def wait_until(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)
    return value


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended and waiting to be reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def step_processes(data_dir: Path) -> dict[int, str]:
    """pid: attempt folder of every live process started by a step of this server (each
    carries KFDASH_STEP=<attempt folder> in its environment, even after a setsid)."""
    prefix = f"KFDASH_STEP={data_dir}{os.sep}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if not alive(int(entry.name)):
            continue
        for variable in environ.split(b"\0"):
            if variable.startswith(prefix):
                found[int(entry.name)] = variable.split(b"=", 1)[1].decode()
    return found


def log_text(server: KfdashServer, api: requests.Session, run_id: str, node: str) -> str:
    """The step's log as the API serves it (its last attempt)."""
    response = api.get(f"{server.url}/apis/v1alpha1/runs/{run_id}/nodes/{node}/log",
                       timeout=30)
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    from pipelines.engines.processes import stop_all_under

    stop_all_under(tmp_path, 0)  # nothing of these servers' steps outlives the test


# --- kill -9 in the middle of a run ---------------------------------------------------------

def test_it_loses_no_task_and_leaves_no_process_when_killed_mid_run(kfdash_server):
    server = kfdash_server()
    api = token_session(server)
    markers = server.data_dir / "markers"  # the data dir is visible to isolated steps
    markers.mkdir()
    # Both held steps start a process that leaves their group (setsid) and one that
    # stays in it, then wait. ``retried`` has a retry: its second attempt ends at once.
    manifest = workflow("crashing", {
        "first": "echo first done",
        "retried": f"[ -e {markers}/retried ] && exit 0; touch {markers}/retried; "
                   "setsid sleep 300 & sleep 301 & wait",
        "single": f"touch {markers}/single; setsid sleep 302 & sleep 303 & wait",
        "last": "echo last done",
    }, after={"retried": ["first"], "single": ["first"], "last": ["retried"]},
        retries={"retried": 1})
    run_id = start_run(server, api, manifest)
    wait_until(lambda: (markers / "retried").exists() and (markers / "single").exists(),
               "both held steps starting")
    wait_until(lambda: [tasks(server, run_id)[n][0] for n in ("retried", "single")]
               == ["RUNNING"] * 2, "both held steps recorded as running")
    wait_until(lambda: len(step_processes(server.data_dir)) >= 6,
               "the held steps' processes (shells, sleeps in and out of the group)")
    before = tasks(server, run_id)
    assert before["first"][0] == "SUCCEEDED"
    assert before["retried"][0] == before["single"][0] == "RUNNING"

    crash(server)
    # The steps outlive a SIGKILLed server: the restart has to find them.
    orphans = step_processes(server.data_dir)
    assert len(orphans) >= 6, orphans
    restart(server)

    wait_until(lambda: run_state(server, run_id)[0] in ENDED, "the run ending")
    after = tasks(server, run_id)
    assert set(after) == set(before), "a task was lost across the restart"
    assert after["first"][:2] == ("SUCCEEDED", 1)  # finished: not run again
    assert after["retried"][:2] == ("SUCCEEDED", 2)  # the lost attempt counted, then again
    # failFast, as in Argo: once a step failed no new step starts, and it says why.
    assert after["last"][0] == "SKIPPED" and "single" in after["last"][2]
    assert after["single"][:2] == ("FAILED", 1)
    assert "interrupted by restart" in after["single"][2]
    state, error = run_state(server, run_id)
    assert state == "FAILED" and error, (state, error)
    assert "interrupted by restart" in log_text(server, api, run_id, "single")
    # What the dead server started is gone: the steps, their children, their escapees.
    wait_until(lambda: not step_processes(server.data_dir),
               "the dead server's step processes ending", timeout=20)
    assert not [pid for pid in orphans if alive(pid)], "an orphan of the killed server lives"
    # The run is what the API says too.
    detail = api.get(f"{server.url}/apis/v2beta1/runs/{run_id}", timeout=10).json()
    assert detail["state"] == "FAILED"
    assert {t["display_name"] for t in detail["run_details"]["task_details"]} >= set(before)


# --- kill -9 in the middle of an upload -----------------------------------------------------

def _files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()
            and not path.name.startswith(("kfdash.sqlite3", "server.log"))}


def spooling(pid: int, folder: Path) -> bool:
    """Whether the process holds a file of ``folder`` open (deleted or not)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith(f"{folder}{os.sep}"):
                return True
        except OSError:
            continue  # closed meanwhile
    return False


def test_it_stores_nothing_of_an_upload_cut_by_a_crash(kfdash_server):
    server = kfdash_server()
    api = token_session(server)
    temp = server.data_dir / "tmp"  # the server's TMPDIR, so its spool files can be seen
    temp.mkdir()
    server.env["TMPDIR"] = str(temp)
    crash(server)
    restart(server)  # now with TMPDIR in the data dir
    before_files = _files(server.data_dir)
    # Over FILE_UPLOAD_MAX_MEMORY_SIZE (2 MB): the body goes to a temporary file.
    package = (workflow("uploaded", {"only": "echo hi"}) + "# " + "x" * (3 * 1024 * 1024)
               + "\n").encode()
    boundary = "kfdash-fault-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; "
            f"filename=\"cut.yaml\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + package + f"\r\n--{boundary}--\r\n".encode()
    port = int(server.url.rsplit(":", 1)[1])
    head = (f"POST /apis/v2beta1/pipelines/upload?name=cut HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: {api.headers['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body[: len(body) * 3 // 4])  # past 2 MB, not the end
        # Killed while it holds the part received in its spool file (unlinked at once).
        wait_until(lambda: spooling(server.process.pid, temp), "the body being spooled",
                   timeout=20)
        crash(server)
    restart(server)

    listed = api.get(f"{server.url}/apis/v2beta1/pipelines", timeout=10).json()
    assert listed.get("total_size", 0) == 0 and not listed.get("pipelines"), listed
    assert _files(server.data_dir) == before_files, "the cut upload left files behind"
    assert not list(temp.iterdir()), "the cut upload left a temporary file"
    # The same upload, whole, works.
    done = api.post(f"{server.url}/apis/v2beta1/pipelines/upload?name=whole", timeout=30,
                    files={"uploadfile": ("whole.yaml", package)})
    assert done.status_code == 200, done.text
    listed = api.get(f"{server.url}/apis/v2beta1/pipelines", timeout=10).json()
    assert [p["display_name"] for p in listed["pipelines"]] == ["whole"]


# --- steps exhausting memory or writing too much ---------------------------------------------

def test_steps_that_exhaust_memory_or_flood_the_log_fail_or_are_capped_alone(kfdash_server):
    cap = 64 * 1024
    server = kfdash_server(KFDASH_MAX_LOG_BYTES=str(cap))
    api = token_session(server)
    python = sys.executable
    manifest = yaml.safe_load(workflow("exhausting", {
        # A 1 GB allocation under a 200M limit: killed in its cgroup, or MemoryError.
        "hungry": f"exec {python} -c 'x = bytearray(1 << 30)'",
        # Killed from outside, with no limit: a failure, but not for memory.
        "killed": "kill -9 $$",
        # 8 MB of output against a 64 kB log cap.
        "loud": "head -c 8000000 /dev/zero | tr '\\0' x; echo; echo the end",
        "fine": "echo fine",
    }))
    hungry = next(t for t in manifest["spec"]["templates"] if t["name"] == "hungry")
    hungry["container"]["resources"] = {"limits": {"memory": "200M"}}
    run_id = start_run(server, api, yaml.safe_dump(manifest))
    wait_until(lambda: run_state(server, run_id)[0] in ENDED, "the run ending")
    found = tasks(server, run_id)
    assert found["fine"][0] == "SUCCEEDED"
    assert found["loud"][0] == "SUCCEEDED"
    assert found["hungry"][0] == "FAILED"
    assert found["hungry"][2].startswith(
        "out of memory: the step exceeded its memory limit of 200M ("), found["hungry"][2]
    assert "out of memory" in log_text(server, api, run_id, "hungry")
    assert found["killed"][0] == "FAILED"
    assert found["killed"][2].startswith("was killed by SIGKILL"), found["killed"][2]
    assert run_state(server, run_id)[0] == "FAILED"
    # The flood kept only its head and tail, and said so.
    folder = server.data_dir / "runs" / NAMESPACE / run_id / "loud" / "attempt-1" / "log"
    kept = sum(part.stat().st_size for part in folder.rglob("*") if part.is_file())
    assert kept < cap + 4096, kept
    text = log_text(server, api, run_id, "loud")
    assert "KFDASH_MAX_LOG_BYTES" in text and "the end" in text
    assert requests.get(f"{server.url}/healthz", timeout=10).text == "ok\n"
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200


# --- the database locked ----------------------------------------------------------------------

def test_a_locked_database_answers_503_then_recovers(kfdash_server):
    server = kfdash_server(KFDASH_SQLITE_BUSY_TIMEOUT="1")
    api = token_session(server)
    browser = log_in(server, EMAIL, PASSWORD)
    experiments = f"{server.url}/apis/v2beta1/experiments"

    def create(name: str) -> requests.Response:
        return api.post(experiments, json={"display_name": name, "namespace": NAMESPACE},
                        timeout=30)

    def login_form() -> requests.Response:
        form = requests.Session()
        page = form.get(f"{server.url}/login/", timeout=30)
        token = form.cookies.get("csrftoken")
        return form.post(f"{server.url}/login/", timeout=30, allow_redirects=False, data={
            "csrfmiddlewaretoken": token, "username": EMAIL, "password": PASSWORD},
            headers={"Referer": f"{server.url}/login/"}) if page.ok else page

    lock = sqlite3.connect(server.data_dir / "kfdash.sqlite3", isolation_level=None,
                           timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        for answer in (create("while-locked"), login_form()):
            assert answer.status_code == 503, (answer.status_code, answer.text[:300])
            assert answer.headers["Retry-After"].isdigit()
            assert answer.elapsed.total_seconds() < 15  # the busy timeout, not a hang
        answer = create("while-locked")
        assert answer.json()["code"] == 14  # the KFP error body: UNAVAILABLE
        assert "database is busy" in answer.json()["message"]
        assert "try again" in login_form().text.lower()
        # In WAL mode readers are not blocked by a writer: pages still render.
        assert browser.get(f"{server.url}/ns/{NAMESPACE}/pipelines/", timeout=30).ok
        assert requests.get(f"{server.url}/healthz", timeout=10).ok
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert create("after-the-lock").status_code == 200
    assert login_form().status_code == 302
    names = [e["display_name"] for e in api.get(experiments, timeout=10, params={
        "namespace": NAMESPACE}).json()["experiments"]]
    assert "after-the-lock" in names and "while-locked" not in names



# --- PostgreSQL unreachable -----------------------------------------------------------------

class Postgres:
    """A throwaway PostgreSQL server of the test's own (stopping the one CI gives the
    whole suite would break the tests running beside): initdb, start, stop, start."""

    def __init__(self, folder: Path):
        self.bin = postgres_bin()
        self.data, self.port = folder / "pgdata", free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        if os.getuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(folder, "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", "postgres")

    def _as_postgres(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                          str(self.data / "log"), "-o",
                          f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                          "-c fsync=off", "start")

    def stop(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")


def postgres_bin() -> Path:
    """PostgreSQL's programs: Debian's newest (`make test` installs it, .ci/system-deps),
    else whatever initdb is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda path: int(path.parent.parent.name)
                   if path.parent.parent.name.isdigit() else 0)
    initdb = found[-1] if found else Path(shutil.which("initdb") or "")
    assert initdb.is_file(), "PostgreSQL is not installed: sh .ci/system-deps installs it"
    return initdb.parent


@pytest.fixture
def postgres():
    # Not under tmp_path: pytest's folder is private to root, PostgreSQL runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="kfdash-pg-"))
    try:
        server = Postgres(folder)
        server.start()
        yield server
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_unreachable_postgresql_answers_503_then_recovers(kfdash_server, postgres):
    server = kfdash_server(DATABASE_URL=postgres.url)
    server.manage("migrate", "--noinput")
    api = token_session(server)
    browser = log_in(server, EMAIL, PASSWORD)
    experiments = f"{server.url}/apis/v2beta1/experiments"
    pipelines_page = f"{server.url}/ns/{NAMESPACE}/pipelines/"
    assert api.get(experiments, timeout=30).status_code == 200
    assert browser.get(pipelines_page, timeout=30).status_code == 200

    postgres.stop()
    answer = api.post(experiments, json={"display_name": "while-down"}, timeout=30)
    assert answer.status_code == 503, (answer.status_code, answer.text[:300])
    assert answer.headers["Retry-After"].isdigit() and answer.json()["code"] == 14
    assert answer.elapsed.total_seconds() < 15
    page = browser.get(pipelines_page, timeout=30)
    assert page.status_code == 503 and "try again" in page.text.lower()
    assert requests.get(f"{server.url}/readyz", timeout=30).status_code == 503
    assert requests.get(f"{server.url}/healthz", timeout=30).text == "ok\n"

    postgres.start()
    answer = wait_until(lambda: (r := api.post(experiments, json={
        "display_name": "after-the-outage"}, timeout=30)).status_code != 503 and r,
        "a request after PostgreSQL came back", timeout=30)
    assert answer.status_code == 200, answer.text
    assert browser.get(pipelines_page, timeout=30).status_code == 200
    assert requests.get(f"{server.url}/readyz", timeout=30).status_code == 200
