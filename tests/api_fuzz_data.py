"""A live kfdash server for the API fuzz test (tests/test_api_fuzz.py), with a namespace
holding one object of every kind, made through the API as a client would make them.

Objects come in two sets: the kept ones every operation may read, archive or retry, and
the doomed ones only deleting operations are given (once deleted, the kept ones would
answer 404 to every later operation)."""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from kfp import compiler, dsl

from tests.servers import KfdashServer, start_kfdash

OWNER = "ada@example.com"
CONTRIBUTOR = "bob@example.com"
NAMESPACE = "team-a"
ARGO_PACKAGE = Path(__file__).parent / "pipelines" / "api" / "packages" / "demo_param.yaml"
# The fuzzer learns ids from answers (GET /api/v1/tokens lists the owner's): so
# DELETE /api/v1/tokens/{token_id} runs as a user of its own (api_fuzz.toml), who can revoke
# only their own tokens. Theirs are 1 and 2, spares for it to revoke (api_fuzz.toml names
# them), and this one, which no answer shows and which small integers do not reach.
REVOKER = "revoker@example.com"
REVOKER_TOKEN_ID = 7_340_033


@dsl.component(base_image="python:3.11")
def gate(mode: str):
    """"ok" passes, "fail" fails, "wait" runs until terminated (or the server stops)."""
    import time

    if mode == "fail":
        raise SystemExit("failing, as asked")
    if mode == "wait":
        time.sleep(600)


@dsl.component(base_image="python:3.11")
def count(n: int, table: dsl.Output[dsl.Dataset]) -> int:
    with open(table.path, "w") as out:
        out.write(f"{n}\n")
    return n


@dsl.component(base_image="python:3.11")
def show(table: dsl.Input[dsl.Dataset]):
    with open(table.path) as source:
        print(source.read())


@dsl.pipeline(name="fuzz-pipeline", description="A gate, a loop, parameters, artifacts.")
def fuzz_pipeline(mode: str = "ok"):
    opened = gate(mode=mode)
    with dsl.ParallelFor([1, 2]) as item:
        made = count(n=item).after(opened)
        show(table=made.outputs["table"])


@dataclass
class FuzzTarget:
    server: KfdashServer
    token: str  # the owner's
    revoker_token: str
    ids: dict[str, list[str]] = field(default_factory=dict)  # dictionary name -> values
    proxy: socket.socket | None = None  # see refusing_proxy

    @property
    def url(self) -> str:
        return self.server.url

    def write_dictionaries(self, directory: Path) -> None:
        """One ``<name>.dict`` per dictionary of api_fuzz.toml (libFuzzer's format)."""
        for name, values in self.ids.items():
            assert all('"' not in value and "\\" not in value for value in values), values
            (directory / f"{name}.dict").write_text("".join(f'"{v}"\n' for v in values))

    def stop(self) -> None:
        from notebooks.spawners.local import stop_all

        self.server.stop()
        stop_all(self.server.data_dir)
        if self.proxy:
            self.proxy.close()


def refusing_proxy() -> tuple[socket.socket, str]:
    """A loopback port that is bound and never listens: connecting to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def start_fuzz_target(root: Path) -> FuzzTarget:
    sock, proxy = refusing_proxy()
    server = start_kfdash(
        root / "server",
        # Fuzzed package URLs are fetched by the server: through a proxy that refuses every
        # connection, so that nothing leaves this machine; and without the check of their
        # host's addresses (local mode's default), so that no DNS lookup happens either.
        **{name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                    "http_proxy", "https_proxy", "all_proxy")},
        NO_PROXY="", no_proxy="", KFDASH_FETCH_PRIVATE_URLS="true",
        # A notebook the fuzzer creates starts a real JupyterLab: give it no time to come
        # up, so that it fails its start (the API path is the same) instead of costing a
        # few CPU-seconds each.
        KFDASH_NOTEBOOK_START_TIMEOUT="0.05",
        KFDASH_SCHEDULER="off",  # recurring runs are fuzzed as objects, never fired
        KFDASH_RUN_PARALLELISM="4",  # the run kept running for terminate holds one slot
    )
    target = FuzzTarget(server, "", "", proxy=sock)
    try:
        tokens = _make_users(server)
        target.token, target.revoker_token = tokens["owner"], tokens["revoker"]
        _seed(target, root)
    except BaseException:
        target.stop()
        raise
    return target


def _make_users(server: KfdashServer) -> dict[str, str]:
    """The users, the namespace and the tokens, in one process (each manage.py costs ~1 s)."""
    code = f"""
import json
from dashboard.models import ApiToken, Profile, User
owner = User.objects.create_user({OWNER!r}, None)
Profile.register({NAMESPACE!r}, owner)
User.objects.create_user({CONTRIBUTOR!r}, None)
revoker = User.objects.create_user({REVOKER!r}, None)
spares = [ApiToken.issue(revoker, "spare")[0].id for _ in range(2)]
assert spares == [1, 2], spares  # api_fuzz.toml names them
token, revoker_secret = ApiToken.issue(revoker, "revoker")
ApiToken.objects.filter(id=token.id).update(id={REVOKER_TOKEN_ID})
print(json.dumps({{"owner": ApiToken.issue(owner, "fuzz")[1], "revoker": revoker_secret}}))
"""
    return json.loads(server.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


class _Client:
    def __init__(self, target: FuzzTarget):
        self.url = target.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {target.token}"

    def status(self, method: str, path: str) -> int:
        return self.session.request(method, self.url + path, timeout=30).status_code

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        response = self.session.request(method, self.url + path, timeout=30, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else {}


def _seed(target: FuzzTarget, root: Path) -> None:
    api = _Client(target)
    package = root / "fuzz-pipeline.yaml"
    compiler.Compiler().compile(fuzz_pipeline, str(package))

    def upload(version: str, name: str, path: Path) -> dict:
        return api("POST", f"/apis/{version}/pipelines/upload",
                   params={"name": name, "namespace": NAMESPACE},
                   files={"uploadfile": (path.name, path.read_bytes())})

    def first_version(pipeline_id: str) -> str:
        versions = api("GET", f"/apis/v2beta1/pipelines/{pipeline_id}/versions")
        return versions["pipeline_versions"][0]["pipeline_version_id"]

    def experiment(name: str) -> str:
        return api("POST", "/apis/v2beta1/experiments",
                   json={"display_name": name, "namespace": NAMESPACE})["experiment_id"]

    def recurring(name: str, body: dict) -> str:
        body = {**body, "display_name": name, "mode": "ENABLE",
                "trigger": {"cron_schedule": {"cron": "0 0 0 1 1 *"}}}
        return api("POST", "/apis/v2beta1/recurringruns", json=body)["recurring_run_id"]

    def notebook(name: str, **extra) -> str:
        api("POST", f"/api/v1/namespaces/{NAMESPACE}/notebooks", expect=201,
            json={"name": name, **extra})
        return name

    def pipeline_with_version(version: str, name: str, path: Path) -> tuple[str, str]:
        answer = upload(version, name, path)
        pipeline_id = answer.get("pipeline_id") or answer["id"]
        return pipeline_id, first_version(pipeline_id)

    def extra_version(pipeline_id: str, name: str) -> str:
        return api("POST", "/apis/v2beta1/pipelines/upload_version",
                   params={"pipelineid": pipeline_id, "name": name},
                   files={"uploadfile": (package.name, package.read_bytes())},
                   )["pipeline_version_id"]

    def freed_volume(name: str) -> str:
        """A volume no notebook uses: the workspace of a notebook since deleted."""
        path = f"/api/v1/namespaces/{NAMESPACE}/notebooks/{notebook(name + '-maker')}"
        api("DELETE", path, expect=202)
        _wait(lambda: api.status("GET", path) == 404, f"{path} was not deleted")
        return name + "-maker-workspace"

    v2, v2_version = pipeline_with_version("v2beta1", "fuzz-pipeline", package)
    v1, v1_version = pipeline_with_version("v1beta1", "demo-param", ARGO_PACKAGE)
    kept_experiment = experiment("fuzz")
    body = {"display_name": "fuzz-run", "experiment_id": kept_experiment,
            "pipeline_version_reference": {"pipeline_id": v2, "pipeline_version_id": v2_version},
            "runtime_config": {"parameters": {"mode": "ok"}}}
    run = _started(api, body, "SUCCEEDED")
    # A failed run for :retry to act on, and a running one for :terminate.
    failed = _started(api, {**body, "runtime_config": {"parameters": {"mode": "fail"}}},
                      "FAILED")
    running = _started(api, {**body, "runtime_config": {"parameters": {"mode": "wait"}}},
                       "RUNNING")
    tasks = run["run_details"]["task_details"]
    artifacts = api("GET", "/apis/v2beta1/artifacts", params={"namespace": NAMESPACE})
    api("POST", f"/api/v1/namespaces/{NAMESPACE}/contributors", expect=201,
        json={"email": CONTRIBUTOR, "role": "view"})
    target.ids = {
        "namespaces": [NAMESPACE],
        "pipelines": [v2, v1], "versions": [v2_version, v1_version],
        "pipeline_names": ["fuzz-pipeline", "demo-param"],
        "experiments": [kept_experiment],
        "runs": [run["run_id"], failed["run_id"], running["run_id"]],
        "recurring_runs": [recurring("fuzz-schedule", body)],
        "nodes": sorted({task["pod_name"] for task in tasks}),
        "artifact_names": ["table"],
        "artifacts": [artifact["artifact_id"] for artifact in artifacts["artifacts"]],
        "notebooks": [notebook("fuzz-notebook")],
        "volumes": ["fuzz-notebook-workspace"],
        # Versions to delete are extra versions of the kept pipeline: a doomed pipeline,
        # deleted first with cascade=true, would take its versions along.
        "v1_doomed_versions": [extra_version(v2, "doomed-v1")],
        "v2_doomed_versions": [extra_version(v2, "doomed-v2")],
        "doomed_notebooks": [notebook("doomed-notebook")],
        "doomed_volumes": [freed_volume("doomed")],
        "doomed_contributors": [CONTRIBUTOR],
    }
    for version in ("v1", "v2"):  # each version deletes objects of its own
        # Runs and schedules in the kept experiment: deleting the doomed one deletes them.
        doomed_run = api("POST", "/apis/v2beta1/runs", json={
            **body, "display_name": f"doomed-{version}"})
        target.ids.update({
            f"{version}_doomed_pipelines": [upload("v2beta1", f"doomed-{version}",
                                                   package)["pipeline_id"]],
            f"{version}_doomed_experiments": [experiment(f"doomed-{version}")],
            f"{version}_doomed_runs": [doomed_run["run_id"]],
            f"{version}_doomed_recurring_runs": [recurring(f"doomed-{version}", body)],
        })


def _wait(condition, message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def _started(api: _Client, body: dict, state: str) -> dict:
    """Start a run and wait until it is in ``state``."""
    run_id = api("POST", "/apis/v2beta1/runs", json=body)["run_id"]

    def now() -> str:
        return api("GET", f"/apis/v2beta1/runs/{run_id}")["state"]

    _wait(lambda: now() in (state, "SUCCEEDED", "FAILED", "CANCELED"),
          f"the run {run_id} never got {state}", timeout=60)
    run = api("GET", f"/apis/v2beta1/runs/{run_id}")
    assert run["state"] == state, run
    return run
