"""Stopping steps and reading their logs: terminate (with children that hide and ignore
SIGTERM), timeouts, a step printing 100 MB, following a log while the step runs."""

import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync

from notebooks.spawners import process
from tests.pipelines.engine.conftest import retrying, tasks_of, wait_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def alive(pid: int) -> bool:
    found = process.stat(pid)
    return bool(found and found.alive)


def test_terminate_kills_the_step_and_everything_it_started(start_run, kfp2_package,
                                                            tmp_path, settings):
    pids, ready = tmp_path / "pids", tmp_path / "ready"
    script = f"""
        trap '' TERM
        sleep 300 & echo $! >> {pids}
        (trap '' TERM; sleep 300) & echo $! >> {pids}
        setsid sh -c 'echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; wait' &
        echo $$ >> {pids}
        sleep 0.2; touch {ready}
        wait
    """
    run = start_run(kfp2_package("shell_step"), script=script)
    wait_until(ready.exists, what="the step starting its children")
    started = [int(line) for line in pids.read_text().split()]
    assert len(started) == 5 and all(alive(pid) for pid in started)
    began = time.monotonic()
    run.terminate(run.created_by)
    assert retrying(lambda: type(run).objects.get(pk=run.pk).state) in ("CANCELING",
                                                                        "CANCELED")
    wait_for(run)
    assert run.state == "CANCELED" and run.error == "The run was terminated."
    assert [h["state"] for h in run.state_history][-2:] == ["CANCELING", "CANCELED"]
    # SIGTERM was ignored: SIGKILL came after the grace period (1 s in these tests).
    assert 0.9 < time.monotonic() - began < 10
    wait_until(lambda: not any(alive(pid) for pid in started), timeout=5,
               what="every process of the step ending")
    task = tasks_of(run)["shell"]
    assert task.state == "CANCELED" and task.error == "terminated"


def test_terminating_a_finished_run_says_so(start_run, kfp2_package):
    from django.core.exceptions import ValidationError

    run = wait_for(start_run(kfp2_package("shell_step"), script="true"))
    with pytest.raises(ValidationError, match="already ended"):
        run.terminate(run.created_by)


def test_a_step_that_never_ends_times_out(start_run, kfp2_package, settings):
    settings.KFDASH_STEP_TIMEOUT = 1
    began = time.monotonic()
    run = wait_for(start_run(kfp2_package("shell_step"), script="echo waiting; sleep 300"))
    assert time.monotonic() - began < 15
    assert run.state == "FAILED" and run.error == "The step shell: timed out after 1 s"
    task = tasks_of(run)["shell"]
    assert task.state == "FAILED" and task.exit_code == -15


def test_a_step_printing_100_mb_keeps_a_capped_log_in_bounded_memory(
        start_run, kfp2_package, settings, engine):
    settings.KFDASH_MAX_LOG_BYTES = 1024 * 1024
    lines = 100 * 1024  # of 1 KiB: 100 MiB
    script = ("python3 -c \"import sys; w = sys.stdout.buffer.write\n"
              f"for i in range({lines}): w(b'line %07d ' % i + b'x' * 1010 + b'\\n')\"")
    tracemalloc.start()
    try:
        run = wait_for(start_run(kfp2_package("shell_step"), script=script), timeout=60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert run.state == "SUCCEEDED", run.error
    assert peak < 20 * 1024 * 1024
    task = tasks_of(run)["shell"]
    text = engine.read_log(task)
    assert len(text) < 1024 * 1024 + 4096
    assert "line 0000000 " in text and f"line {lines - 1:07d} " in text
    assert "bytes of output were dropped here" in text
    dropped = int(text.split("----- kfdash: ")[2].split(" bytes")[0])
    assert 100 * 1024 * 1024 - dropped < 1024 * 1024 + 4096
    tail = engine.read_log(task, tail_bytes=2000)
    assert len(tail) <= 2000 and "succeeded in" in tail and f"line {lines - 1:07d}" in tail


def test_following_a_log_streams_it_while_the_step_runs(start_run, kfp2_package, engine):
    script = "echo first; sleep 0.6; echo second; sleep 0.6; echo third"
    run = start_run(kfp2_package("shell_step"), script=script)
    wait_until(lambda: "shell" in tasks_of(run), what="the step's row")
    task = tasks_of(run)["shell"]

    async def follow():
        received = []
        async for text in engine.follow_log(task):
            received.append((time.monotonic(), text))
        return received

    received = async_to_sync(follow)()
    ended = time.monotonic()
    whole = "".join(text for _, text in received)
    assert whole.index("first") < whole.index("second") < whole.index("third")
    assert "succeeded in" in whole  # followed to the end of the step
    first_seen = next(at for at, text in received if "first" in text)
    assert ended - first_seen > 0.8  # it came while the step was still running
    wait_for(run)
    assert engine.read_log(tasks_of(run)["shell"]) == whole


def test_a_dashboard_shutdown_stops_steps_without_spending_their_attempts(
        start_run, kfp2_package, engine, tmp_path):
    marker = tmp_path / "first-attempt"
    script = f"if [ -e {marker} ]; then echo second; else touch {marker}; sleep 300; fi"
    run = start_run(kfp2_package("shell_step"), script=script)
    wait_until(marker.exists, what="the first attempt starting")
    engine.stop_runs(grace=2)
    task = tasks_of(run)["shell"]
    assert task.state == "PENDING" and task.attempts == 1
    assert task.runtime["free_attempts"] == 1
    assert retrying(lambda: type(run).objects.get(pk=run.pk).state) == "RUNNING"
    engine.resume()  # what the next start does
    wait_for(run)
    assert run.state == "SUCCEEDED"
    task = tasks_of(run)["shell"]
    assert task.attempts == 2  # its one allowed attempt, plus the one the shutdown took
    text = engine.read_log(task)
    assert "stopped by a dashboard shutdown" in text and "second" in text


def test_a_step_stopped_by_a_shutdown_after_a_sibling_failed_still_runs_again(
        start_run, kfp2_package, engine, tmp_path):
    """failFast keeps new steps from starting once one failed; a step that was already
    running when the dashboard stopped is not new, and runs again at the next start."""
    marker = tmp_path / "second-attempt"
    run = start_run(kfp2_package("two_shell_steps"), first="exit 3",
                    second=f"if [ -e {marker} ]; then echo again; else touch {marker}; "
                           "sleep 300; fi")
    wait_until(marker.exists, what="the second step starting")
    wait_until(lambda: {t.display_name: t.state for t in tasks_of(run).values()}.get(
        "first") == "FAILED", what="the first step failing")
    engine.stop_runs(grace=2)
    engine.resume()  # what the next start does
    wait_for(run)
    states = {t.display_name: (t.state, t.attempts) for t in tasks_of(run).values()}
    assert states == {"first": ("FAILED", 1), "second": ("SUCCEEDED", 2)}
    assert run.state == "FAILED"
    second = next(t for t in tasks_of(run).values() if t.display_name == "second")
    assert "again" in engine.read_log(second)


def test_python_in_a_command_means_the_step_interpreter(start_run, kfp2_package, settings,
                                                        engine):
    # Another name of this virtualenv's interpreter (a venv has python, python3 and
    # python3.X): a step interpreter that is not the dashboard's, with kfp importable.
    here = Path(sys.executable)
    other = next(str(here.with_name(name)) for name in ("python3", "python3.11", "python")
                 if name != here.name and here.with_name(name).exists())
    settings.KFDASH_STEP_PYTHON = other
    run = wait_for(start_run(kfp2_package("pythons")))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    assert tasks["which-python"].runtime["exec"][0] == other
    assert f"python is {other}" in engine.read_log(tasks["which-python"])
    assert f"shell python is {other}" in engine.read_log(tasks["shell"])
