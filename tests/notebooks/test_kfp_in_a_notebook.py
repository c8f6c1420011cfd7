"""Pipelines from inside a notebook: in a real JupyterLab spawned by a real kfdash server,
a kernel cell runs ``kfp.Client()`` with no arguments, compiles a pipeline, uploads it,
creates an experiment and runs the pipeline to the end, all as the notebook's creator,
in the notebook's namespace."""

from __future__ import annotations

import secrets
import time

import pytest
import websockets.sync.client as ws_client

from tests.notebooks.jupyter import run_code
from tests.servers import log_in

EMAIL = "ana@example.com"
NAMESPACE = "ana-lab"
PASSWORD = "a-long-enough-password-4711"

CELL = """
import kfp
from kfp import compiler, dsl

@dsl.component(base_image="python:3.11")
def greet(name: str) -> str:
    return f"hello {name}"

@dsl.pipeline(name="from-a-notebook")
def greeting(name: str = "world"):
    greet(name=name)

compiler.Compiler().compile(greeting, "greeting.yaml")
client = kfp.Client()
pipeline = client.upload_pipeline("greeting.yaml", pipeline_name="greeting")
experiment = client.create_experiment("notebook-experiment")
again = client.create_experiment("notebook-experiment")
run = client.create_run_from_pipeline_func(greeting, arguments={"name": "kfdash"},
                                           experiment_name="notebook-experiment")
finished = client.wait_for_run_completion(run.run_id, timeout=120, sleep_duration=0.5)
print(client.get_user_namespace(), experiment.experiment_id == again.experiment_id,
      experiment.namespace, finished.state, finished.experiment_id == experiment.experiment_id)
"""


def wait_until_running(browser, server, name: str, timeout: float = 90) -> dict:
    url = f"{server.url}/api/v1/namespaces/{NAMESPACE}/notebooks/{name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notebook = browser.get(url, timeout=10).json()
        if notebook["status"] == "running":
            return notebook
        assert notebook["status"] in ("waiting", "starting"), notebook
        time.sleep(0.3)
    raise AssertionError(f"the notebook did not start:\n{server.log()}")


@pytest.mark.timeout(240)
def test_kfp_client_in_a_kernel_reaches_kfdash_as_the_notebooks_creator(kfdash_server):
    server = kfdash_server()
    server.manage("create_user", EMAIL, "--password", PASSWORD, "--namespace", NAMESPACE)
    browser = log_in(server, EMAIL, PASSWORD)
    csrf = {"X-CSRFToken": browser.cookies["csrftoken"], "Referer": server.url}
    created = browser.post(f"{server.url}/api/v1/namespaces/{NAMESPACE}/notebooks",
                           json={"name": "lab", "memory": "2Gi"}, headers=csrf, timeout=30)
    assert created.status_code == 201, created.text
    wait_until_running(browser, server, "lab")

    lab = f"{server.url}/notebook/{NAMESPACE}/lab/"
    kernel = browser.post(lab + "api/kernels", json={"name": "python3"}, headers=csrf,
                          timeout=60)
    assert kernel.status_code == 201, kernel.text
    session = secrets.token_hex(16)
    cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    channels = (lab.replace("http", "ws", 1)
                + f"api/kernels/{kernel.json()['id']}/channels?session_id={session}")
    with ws_client.connect(channels, additional_headers={"Cookie": cookies},
                           origin=server.url, open_timeout=10) as ws:
        output, reply = run_code(ws, CELL, session, timeout=120)
    assert reply["status"] == "ok", output
    assert output.splitlines()[-1].split() == [NAMESPACE, "True", NAMESPACE, "SUCCEEDED",
                                               "True"], output

    # What the cell did is there, in the namespace, made by the notebook's creator.
    experiments = browser.get(f"{server.url}/apis/v2beta1/experiments",
                              params={"namespace": NAMESPACE}, timeout=10).json()
    assert [e["display_name"] for e in experiments["experiments"]] == ["notebook-experiment"]
    pipelines = browser.get(f"{server.url}/apis/v2beta1/pipelines",
                            params={"namespace": NAMESPACE}, timeout=10).json()
    assert [p["display_name"] for p in pipelines["pipelines"]] == ["greeting"]
    runs = browser.get(f"{server.url}/apis/v2beta1/runs", params={"namespace": NAMESPACE},
                       timeout=10).json()["runs"]
    assert [r["state"] for r in runs] == ["SUCCEEDED"]
    activity = browser.get(f"{server.url}/ns/{NAMESPACE}/", timeout=10).text
    assert f"{EMAIL} uploaded the pipeline greeting" in activity
    assert f"{EMAIL} started the run" in activity
