"""kfdash against an MLflow tracking server: the same 10,000 runs (three parameters and
three metrics each), listed and fetched over HTTP on loopback.

    .venv/bin/python bench/vs_mlflow.py [-n 50] [--runs 10000]

The servers are started here, each on a free port of 127.0.0.1, with SQLite databases in
one temporary folder, and stopped at the end (the folder is removed):

* **kfdash** as ``make run`` starts it (uvicorn, one process, ``tests/servers.py``),
  seeded with ``manage.py seed_demo --runs N`` (finished runs only, so its engine has
  nothing to run) and called with a token from ``manage.py create_token``.
* **MLflow** from a virtualenv of its own (its pins clash with kfp's), created on the
  first run under ``~/.cache/kfdash-bench/mlflow-venv`` and reused. It holds the same
  runs: kfdash's are read back from its database and written into MLflow's with
  MLflow's own SQLAlchemy models in one transaction (its per-run API takes ~35 ms a run),
  in one experiment: the same ids, names, parameters, metrics, start (kfdash's creation)
  and end times, states as MLflow names them, and the tags ``mlflow.start_run`` sets.
  Two ``mlflow server --backend-store-uri sqlite:///…`` serve that database: one with
  its default server settings (uvicorn, 4 worker processes), one with ``--workers 1``:
  uvicorn leaves TCP_NODELAY off when it runs several workers, so a keep-alive client
  waits ~40 ms for some small responses of the first (uvicorn issue 3149); the second
  shows MLflow's own cost. Both run with job execution off
  (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: its seven huey consumers per server
  poll at ~4% of a core each and have nothing to do with tracking).

Both databases are ``ANALYZE``d after seeding. Measured with ``requests``, one keep-alive
session per server, the servers taking turns request by request, after 5 warm-ups each:

* the first page of 100 runs, newest first: kfdash ``GET /apis/v2beta1/runs?namespace=…
  &page_size=100&sort_by=created_at desc``; MLflow ``POST /api/2.0/mlflow/runs/search``
  with ``max_results`` 100 and ``order_by`` ``attributes.start_time DESC``;
* one run by id, the same random ids on every server: kfdash
  ``GET /apis/v2beta1/runs/{id}``; MLflow ``GET /api/2.0/mlflow/runs/get?run_id=…``.

Prints p50, p95, min and max per server, the response sizes, and the ratios kfdash /
MLflow of the p50s (the goal: at most 1/3 of MLflow's), and a markdown table for
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measure import ms, quantile  # noqa: E402  (bench/measure.py)

from tests.servers import (  # noqa: E402
    KfdashServer,
    free_port,
    start_kfdash,
    wait_until_answering,
)

# MLflow 3.18.0 is on PyPI, but its mlflow-skinny 3.18.0 is not on this machine's package
# index: pip settles on the newest release it can install whole.
MLFLOW = "mlflow>=3.17,<4"
MLFLOW_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) \
    / "kfdash-bench" / "mlflow-venv"
NAMESPACE, OWNER = "bench", "bench@example.com"
PAGE = 100
WARMUP = 5
# kfdash's finished run states, as MLflow names them (seed_demo makes finished runs only).
MLFLOW_STATUS = {"SUCCEEDED": "FINISHED", "SKIPPED": "FINISHED", "FAILED": "FAILED",
                 "CANCELED": "KILLED"}

# Run by the MLflow virtualenv's Python: argv = database, artifact root, runs (JSON).
MLFLOW_SEED = r"""
import json, sys, time
from importlib.metadata import version

began = time.perf_counter()
from mlflow.store.tracking.dbmodels.models import (SqlLatestMetric, SqlMetric, SqlParam,
                                                    SqlRun, SqlTag)
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy import insert, text

database, artifacts, runs_file = sys.argv[1:4]
store = SqlAlchemyStore(f"sqlite:///{database}", artifacts)  # creates MLflow's schema
experiment_id = store.create_experiment("bench")
location = store.get_experiment(experiment_id).artifact_location
with open(runs_file) as file:
    runs = json.load(file)
rows = {SqlRun: [], SqlTag: [], SqlParam: [], SqlMetric: [], SqlLatestMetric: []}
for run in runs:
    rows[SqlRun].append(dict(
        run_uuid=run["id"], name=run["name"], experiment_id=int(experiment_id),
        artifact_uri=f"{location}/{run['id']}/artifacts", source_type="LOCAL",
        source_name="train.py", entry_point_name="", user_id=run["user"],
        status=run["status"], start_time=run["start"], end_time=run["end"],
        deleted_time=None, source_version="", lifecycle_stage="active"))
    tags = {"mlflow.runName": run["name"], "mlflow.user": run["user"],
            "mlflow.source.type": "LOCAL", "mlflow.source.name": "train.py"}
    rows[SqlTag] += [dict(run_uuid=run["id"], key=k, value=v) for k, v in tags.items()]
    rows[SqlParam] += [dict(run_uuid=run["id"], key=k, value=str(v))
                       for k, v in run["params"].items()]
    for key, value in run["metrics"].items():
        metric = dict(run_uuid=run["id"], key=key, value=value, step=0, is_nan=False,
                      timestamp=run["end"] or run["start"])
        rows[SqlMetric].append(metric)
        rows[SqlLatestMetric].append(metric)
with store.ManagedSessionMaker() as session:
    for model, values in rows.items():
        session.execute(insert(model), values)
with store.engine.begin() as connection:
    connection.execute(text("ANALYZE"))
print(json.dumps({"experiment_id": experiment_id, "seconds": time.perf_counter() - began,
                  "versions": {name: version(name) for name in (
                      "mlflow", "sqlalchemy", "uvicorn", "fastapi", "flask")},
                  "python": sys.version.split()[0]}))
"""


# --- the two servers ----------------------------------------------------------------------

def mlflow_python() -> Path:
    """The MLflow virtualenv's Python, the virtualenv made (once) if missing."""
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        print(f"installing {MLFLOW} into {MLFLOW_VENV} (once; a few minutes)", flush=True)
        shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
        MLFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True,
                       timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", MLFLOW], check=True,
                       timeout=1800)
    return python


def seed_kfdash(server: KfdashServer, runs: int) -> tuple[str, str]:
    """Seed kfdash through its management commands: (what seed_demo said, an API token)."""
    seeded = server.manage("seed_demo", "--runs", str(runs), "--namespace", NAMESPACE,
                           "--owner", OWNER).stdout.strip()
    token = server.manage("create_token", OWNER, "--name", "bench").stdout.strip()
    return seeded, token.splitlines()[-1]


def export_runs(database: Path, into: Path) -> list[str]:
    """kfdash's runs of the namespace as the MLflow seeder reads them; their ids (32 hex
    digits, as MLflow writes them and kfdash's SQLite stores them)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        runs = {}
        for run_id, name, parameters, state, created, finished, email in db.execute(
                "SELECT r.id, r.name, r.parameters, r.state, r.created_at, r.finished_at, "
                "u.email FROM pipelines_run r JOIN dashboard_profile p ON p.id = r.profile_id "
                "JOIN dashboard_user u ON u.id = r.created_by_id WHERE p.name = ?",
                (NAMESPACE,)):
            runs[run_id] = {"id": run_id, "name": name, "params": json.loads(parameters),
                            "status": MLFLOW_STATUS[state], "start": _millis(created),
                            "end": _millis(finished), "user": email, "metrics": {}}
        for run_id, name, value in db.execute(
                "SELECT run_id, name, value FROM pipelines_runmetric"):
            if run_id in runs:
                runs[run_id]["metrics"][name] = value
    into.write_text(json.dumps(list(runs.values())))
    return list(runs)


def _millis(stored: str | None) -> int | None:
    """Milliseconds since the epoch of a datetime as Django stores it in SQLite (UTC)."""
    if stored is None:
        return None
    return round(datetime.fromisoformat(stored).replace(tzinfo=UTC).timestamp() * 1000)


def seed_mlflow(python: Path, folder: Path, runs_file: Path) -> dict:
    result = subprocess.run(
        [str(python), "-c", MLFLOW_SEED, str(folder / "mlflow.db"),
         str(folder / "mlartifacts"), str(runs_file)],
        cwd=folder, capture_output=True, text=True, timeout=600)
    if result.returncode:
        raise SystemExit(f"seeding MLflow failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen
    log: Path

    def workers(self) -> int:
        return self.log.read_text().count("Started server process")

    def stop(self) -> None:
        """SIGTERM to its process group, then SIGKILL to whatever is left of it after 10 s
        (the CLI may outlive its uvicorn)."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
        with contextlib.suppress(ProcessLookupError):  # else all gone
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_mlflow(python: Path, folder: Path, workers: int | None) -> MlflowServer:
    """``mlflow server`` on a free port (its default workers unless ``workers``), ready, in
    a process group of its own (the CLI starts uvicorn, which starts the workers). Job
    execution is off: its seven huey consumers poll at ~4% of a core each, unrelated to
    tracking, and leave a folder in /dev/shm."""
    port = free_port()
    command = [str(python.parent / "mlflow"), "server", "--backend-store-uri",
               f"sqlite:///{folder / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    log = folder / f"mlflow-server-{port}.log"
    with open(log, "w") as file:
        process = subprocess.Popen(
            command, cwd=folder, stdout=file, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    server = MlflowServer(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_answering(process, f"{server.url}/health", "mlflow server", 120,
                             log=lambda: log.read_text()[-3000:])
    except RuntimeError as exc:
        server.stop()
        raise SystemExit(str(exc)) from None
    return server


# --- measuring ----------------------------------------------------------------------------

class Side:
    """One server's two requests, timed on one keep-alive session."""

    def __init__(self, name: str, list_page, get_run) -> None:
        self.name = name
        self.list_page = list_page  # () -> Response
        self.get_run = get_run  # (run id, 32 hex digits) -> Response
        self.times: dict[str, list[float]] = {"list": [], "get": []}
        self.sizes: dict[str, list[int]] = {"list": [], "get": []}

    def timed(self, what: str, *args) -> None:
        request = self.list_page if what == "list" else self.get_run
        began = time.perf_counter()
        response = request(*args)
        elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise SystemExit(f"{self.name} {what}: {response.status_code} {response.text[:500]}")
        self.times[what].append(elapsed)
        self.sizes[what].append(len(response.content))


def kfdash_side(url: str, token: str) -> Side:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    runs = f"{url}/apis/v2beta1/runs"
    query = {"namespace": NAMESPACE, "page_size": PAGE, "sort_by": "created_at desc"}
    return Side("kfdash", lambda: session.get(runs, params=query, timeout=30),
                lambda run_id: session.get(f"{runs}/{uuid.UUID(run_id)}", timeout=30))


def mlflow_side(name: str, url: str, experiment_id: str) -> Side:
    session = requests.Session()
    search = {"experiment_ids": [experiment_id], "max_results": PAGE,
              "order_by": ["attributes.start_time DESC"]}
    return Side(name,
                lambda: session.post(f"{url}/api/2.0/mlflow/runs/search", json=search,
                                     timeout=30),
                lambda run_id: session.get(f"{url}/api/2.0/mlflow/runs/get",
                                           params={"run_id": run_id}, timeout=30))


def check_same_runs(sides: list[Side], ids: list[str]) -> None:
    """Every side answers the same first page, and one run with 3 params and 3 metrics."""
    pages = [[uuid.UUID(run["run_id"] if "run_id" in run else run["info"]["run_id"]).hex
              for run in side.list_page().json()["runs"]] for side in sides]
    if any(page != pages[0] for page in pages) or len(pages[0]) != PAGE:
        raise SystemExit(f"the first pages differ: {[page[:2] for page in pages]}")
    for side in sides[1:]:
        data = side.get_run(ids[0]).json()["run"]["data"]
        if len(data["params"]) != 3 or len(data["metrics"]) != 3:
            raise SystemExit(f"{side.name}'s run has not 3 params and 3 metrics: {data}")


def measure(sides: list[Side], ids: list[str], n: int) -> None:
    """Warm-ups, then ``n`` of each request per side, the sides taking turns to go first."""
    rng = random.Random(9)
    sample = [rng.choice(ids) for _ in range(WARMUP + n)]
    for what in ("list", "get"):
        for i in range(WARMUP + n):
            for side in sides[i % len(sides):] + sides[:i % len(sides)]:
                side.timed(what, *([] if what == "list" else [sample[i]]))
        for side in sides:  # the warm-ups are not counted
            del side.times[what][:WARMUP]
            del side.sizes[what][:WARMUP]


def report(kfdash: Side, mlflows: list[Side]) -> str:
    """Prints each side's numbers and the ratios of the p50s; returns a markdown table."""
    labels = {"list": f"first page of {PAGE} runs, newest first",
              "get": "one run by id (random ids)"}
    lines = ["| request | server | n | p50 ms | p95 ms | min-max ms | response |",
             "|---|---|---|---|---|---|---|"]
    for what, label in labels.items():
        print(f"  {label}:")
        for side in [*mlflows, kfdash]:
            times = side.times[what]
            p50, p95 = ms(statistics.median(times)), ms(quantile(times, 0.95))
            spread = f"{ms(min(times))}-{ms(max(times))}"
            size = f"{statistics.median(side.sizes[what]) / 1024:.1f} KiB"
            print(f"    {side.name}: p50 {p50} ms, p95 {p95} ms, min-max {spread} ms "
                  f"(of {len(times)}), {size}")
            lines.append(f"| {label} | {side.name} | {len(times)} | {p50} | {p95} | {spread} "
                         f"| {size} |")
        for mlflow in mlflows:
            ratio = statistics.median(kfdash.times[what]) / statistics.median(mlflow.times[what])
            print(f"    kfdash / {mlflow.name}, p50: {ratio:.2f}"
                  f" ({'meets' if ratio <= 1 / 3 else 'misses'} <= 1/3)")
            lines.append(f"| {label} | kfdash / {mlflow.name}, p50 | | **{ratio:.2f}** | | | |")
    return "\n".join(lines)


def kfdash_commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return commit + (" + uncommitted changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="requests of each kind (default 50)")
    parser.add_argument("--runs", type=int, default=10_000, help="runs (default 10,000)")
    args = parser.parse_args()
    if not 1 <= args.n <= 10_000:
        raise SystemExit("-n: from 1 to 10,000")

    python = mlflow_python()
    folder = Path(tempfile.mkdtemp(prefix="kfdash-bench-mlflow-"))
    os.environ["TMPDIR"] = str(folder)  # the servers' temporary files (and kfdash's migrated
    # template database, tests/servers.py) go there too, and so are removed with it
    servers: list = []
    try:
        print(f"kfdash: starting a server and seeding {args.runs:,} runs", flush=True)
        kfdash_server = start_kfdash(folder / "kfdash")
        servers.append(kfdash_server)
        began = time.perf_counter()
        said, token = seed_kfdash(kfdash_server, args.runs)
        print(f"  manage.py seed_demo ({time.perf_counter() - began:.1f} s with start-up): "
              f"{said}", flush=True)
        runs_file = folder / "runs.json"
        ids = export_runs(folder / "kfdash" / "kfdash.sqlite3", runs_file)

        print(f"MLflow: seeding the same {len(ids):,} runs, starting its servers", flush=True)
        mlflow_info = seed_mlflow(python, folder, runs_file)
        print(f"  seeded in {mlflow_info['seconds']:.1f} s (with imports)", flush=True)
        default = start_mlflow(python, folder, None)
        servers.append(default)
        one = start_mlflow(python, folder, 1)
        servers.append(one)

        experiment = mlflow_info["experiment_id"]
        kfdash = kfdash_side(kfdash_server.url, token)
        mlflows = [mlflow_side(f"MLflow ({default.workers()} workers, its default)",
                               default.url, experiment),
                   mlflow_side("MLflow (--workers 1)", one.url, experiment)]
        check_same_runs([kfdash, *mlflows], ids)
        print(f"measuring: {WARMUP} warm-ups, then {args.n} of each, interleaved", flush=True)
        measure([kfdash, *mlflows], ids, args.n)
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print()
        table = report(kfdash, mlflows)
        versions = mlflow_info["versions"]
        print()
        print(f"{datetime.now().date()}, {os.cpu_count()} CPUs, {platform.platform()}; load "
              f"average at the end {load}")
        print(f"kfdash {kfdash_commit()}, Python {platform.python_version()}, SQLite "
              f"{sqlite3.sqlite_version}; MLflow {versions['mlflow']} (Python "
              f"{mlflow_info['python']}, SQLAlchemy {versions['sqlalchemy']}, uvicorn "
              f"{versions['uvicorn']}, FastAPI {versions['fastapi']}, Flask "
              f"{versions['flask']})")
        print()
        print(table)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
