"""A real kfdash server killed (SIGKILL) in the middle of a run: after a restart the run
completes, the step that was running runs again, and the one that had finished is not
run again (its output is the one it produced)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import requests

from tests.servers import ROOT, KfdashServer

PIPELINE = '''
from kfp import dsl


@dsl.component(base_image="python:3.11")
def first(folder: str) -> int:
    with open(f"{folder}/first", "a") as handle:
        handle.write("ran\\n")
    return 7


@dsl.component(base_image="python:3.11")
def held(folder: str, value: int) -> int:
    """Runs until the test releases it."""
    import os
    import time

    with open(f"{folder}/held-started", "a") as handle:
        handle.write("started\\n")
    deadline = time.time() + 60
    while not os.path.exists(f"{folder}/release") and time.time() < deadline:
        time.sleep(0.05)
    with open(f"{folder}/held-finished", "a") as handle:
        handle.write("finished\\n")
    return value * 10


@dsl.component(base_image="python:3.11")
def last(value: int) -> int:
    return value + 1


@dsl.pipeline(name="restartable")
def restartable(folder: str):
    one = first(folder=folder)
    two = held(folder=folder, value=one.output).set_retry(num_retries=1, backoff_duration="0s")
    last(value=two.output)
'''

CREATE_RUN = '''
from dashboard.models import Profile, User
from pipelines import parameters
from pipelines.models import Experiment, Run
from pipelines.specs import load

user = User.objects.create_user("ada@example.com", "a password of ada's")
profile = Profile.register("team-a", user)
loaded = load(open({package!r}, "rb").read())
run = Run.objects.create(
    profile=profile, experiment=Experiment.default_for(profile, user), name="restarted",
    format=loaded.format, document=loaded.document, graph=loaded.spec.to_dict(),
    parameters=parameters.resolve(loaded.spec, {{"folder": {folder!r}}}), created_by=user)
print(run.pk)
'''


def restart(server: KfdashServer) -> None:
    """The same server (data dir, database, port) started again, as after a crash."""
    with open(server.log_path, "a") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "dashboard.asgi:application", "--host",
             "127.0.0.1", "--port", server.url.rsplit(":", 1)[1], "--no-server-header"],
            env=server.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"kfdash exited:\n{server.log()}"
        try:
            if requests.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"kfdash did not come back:\n{server.log()}")


def crash(server: KfdashServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)


def query(server: KfdashServer, sql: str, *args):
    with sqlite3.connect(f"file:{server.data_dir / 'kfdash.sqlite3'}?mode=ro", uri=True,
                         timeout=10) as db:
        return db.execute(sql, args).fetchall()


def wait_until(condition, what: str, timeout: float = 40):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


def test_a_run_survives_a_crash_of_the_server(tmp_path, kfdash_server):
    from kfp import compiler

    source = tmp_path / "restartable.py"
    source.write_text(PIPELINE)
    sys.path.insert(0, str(tmp_path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = __import__("restartable")
        compiler.Compiler().compile(module.restartable, str(tmp_path / "package.yaml"))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("restartable", None)
    folder = tmp_path / "markers"
    folder.mkdir()

    server = kfdash_server()
    # A run committed but not yet handed to an engine (as if the server died right then):
    # the next start picks it up.
    run_id = server.manage("shell", "-c", CREATE_RUN.format(
        package=str(tmp_path / "package.yaml"), folder=str(folder))).stdout.split()[-1]
    crash(server)
    restart(server)

    def states():
        return dict(query(server, "SELECT t.node_id, t.state FROM pipelines_runtask t "
                                  "WHERE t.run_id = ?", run_id.replace("-", "")))

    wait_until(lambda: (folder / "held-started").exists(), "the second step starting")
    assert states()["first"] == "SUCCEEDED" and states()["held"] == "RUNNING"
    crash(server)  # in the middle of the second step
    restart(server)
    wait_until(lambda: (folder / "held-started").read_text().count("started") == 2,
               "the interrupted step running again")
    (folder / "release").touch()
    wait_until(lambda: query(server, "SELECT state FROM pipelines_run WHERE id = ?",
                             run_id.replace("-", ""))[0][0] in ("SUCCEEDED", "FAILED"),
               "the run finishing")

    assert query(server, "SELECT state, error FROM pipelines_run WHERE id = ?",
                 run_id.replace("-", "")) == [("SUCCEEDED", "")]
    rows = {node: (state, attempts, outputs) for node, state, attempts, outputs in query(
        server, "SELECT node_id, state, attempts, outputs FROM pipelines_runtask "
                "WHERE run_id = ?", run_id.replace("-", ""))}
    assert rows["first"][:2] == ("SUCCEEDED", 1)
    assert rows["held"][:2] == ("SUCCEEDED", 2)
    assert '"Output": 71' in rows["last"][2]
    # The finished step ran once; the interrupted one's first attempt was killed with the
    # server (it never finished), the second finished.
    assert (folder / "first").read_text() == "ran\n"
    assert (folder / "held-finished").read_text() == "finished\n"
    log = (Path(server.data_dir) / "runs" / "team-a" / run_id / "held" / "attempt-1" / "log"
           / "head").read_text()
    assert "interrupted by restart" in log


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    from pipelines.engines.processes import stop_all_under

    stop_all_under(tmp_path, 0)  # nothing of these servers' steps outlives the test
