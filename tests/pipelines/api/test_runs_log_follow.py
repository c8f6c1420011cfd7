"""``GET /apis/v1alpha1/runs/{run}/nodes/{node}/log?follow=true`` against a live kfdash
server (uvicorn, ASGI) whose local engine really runs a step that prints a line every
0.3 s: the client reads the first lines while the step still runs, the stream ends once
the step has ended, and it holds what the stored log holds."""

# No "from __future__ import annotations": kfp reads the component's annotations as types.

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from kfp import compiler, dsl

LINES = 6
ENDED = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED", "CACHED")


@dsl.component(base_image="python:3.11")
def chatty(lines: int):
    import time

    for number in range(lines):
        print(f"line {number}", flush=True)
        time.sleep(0.3)


@dsl.pipeline(name="chatty-pipeline")
def chatty_pipeline(lines: int = LINES):
    chatty(lines=lines)


@dataclass
class Live:
    url: str
    owner: requests.Session  # ada, who owns team-a
    stranger: requests.Session  # eve, who owns team-b only
    spec: dict


def token_session(server, email: str, namespace: str) -> requests.Session:
    server.manage("create_user", email, "--namespace", namespace)
    token = server.manage("create_token", email).stdout.strip().splitlines()[-1]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.servers import start_kfdash

    root: Path = tmp_path_factory.mktemp("log-follow")
    compiler.Compiler().compile(chatty_pipeline, str(root / "chatty.yaml"))
    server = start_kfdash(root / "server")
    try:
        yield Live(server.url, token_session(server, "ada@example.com", "team-a"),
                   token_session(server, "eve@example.com", "team-b"),
                   yaml.safe_load((root / "chatty.yaml").read_text()))
    finally:
        server.stop()


def start_run(live: Live) -> str:
    response = live.owner.post(f"{live.url}/apis/v2beta1/runs", timeout=30, json={
        "display_name": "chatty", "pipeline_spec": live.spec})
    assert response.status_code == 200, response.text
    return response.json()["run_id"]


def task_state(live: Live, run_id: str, node_id: str) -> str | None:
    run = live.owner.get(f"{live.url}/apis/v2beta1/runs/{run_id}", timeout=10).json()
    for task in run["run_details"]["task_details"]:
        if task["pod_name"] == node_id:
            return task["state"]
    return None


def wait_for(condition, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)
    return value


def log_url(live: Live, run_id: str, node_id: str = "chatty") -> str:
    return f"{live.url}/apis/v1alpha1/runs/{run_id}/nodes/{node_id}/log"


def test_it_streams_a_running_steps_log_until_the_step_ends(live):
    run_id = start_run(live)
    wait_for(lambda: task_state(live, run_id, "chatty"))
    received = b""
    seen_going = None  # the text received by when the step was seen not to have ended
    with live.owner.get(log_url(live, run_id), params={"follow": "true"}, stream=True,
                        timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers.get("Transfer-Encoding") == "chunked"
        for chunk in response.iter_content(chunk_size=None):
            received += chunk
            if seen_going is None and b"line 0" in received:
                seen_going = received if task_state(live, run_id, "chatty") not in ENDED \
                    else b""
    assert seen_going, "the first line came only once the step had ended"
    assert f"line {LINES - 1}".encode() not in seen_going
    assert all(f"line {n}\n".encode() in received for n in range(LINES))
    # The stream ended with the step: its log is complete, and the step is done.
    assert wait_for(lambda: task_state(live, run_id, "chatty") in ENDED, timeout=10)
    stored = live.owner.get(log_url(live, run_id), timeout=10)
    assert stored.status_code == 200 and stored.content == received
    # Following a step that has ended answers its stored log at once.
    again = live.owner.get(log_url(live, run_id), params={"follow": "true"}, timeout=10)
    assert again.status_code == 200 and again.content == received


def test_it_answers_404_to_a_stranger_before_streaming(live):
    run_id = start_run(live)
    wait_for(lambda: task_state(live, run_id, "chatty"))
    for session, node_id in ((live.stranger, "chatty"), (live.owner, "nope")):
        response = session.get(log_url(live, run_id, node_id), params={"follow": "true"},
                               timeout=10)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/json")
