"""A load driver for a live kfdash server.

For ``seconds`` it runs ``clients`` API clients, each a loop of weighted operations that a
``kfp.Client`` user makes (lists with paging, sorting and filters, single objects, and
~10% run creations of a tiny uploaded pipeline), and ``watchers`` websocket pages held
open the whole time: run pages of runs started when the load starts, and runs lists.
Then it waits for every run to end and for every watcher to have been told so.

Everything that is not a success is an error: a non-2xx status, an exception, a timeout,
a websocket refused or closed by the server, a watcher never told that a run ended. Nothing
is retried. Latencies are recorded per operation; ``markdown`` formats them.

    result = asyncio.run(run_load(Target(url, token, session, "team-a"), seed, ...))

``tests/test_load.py`` asserts on it; ``bench/load.py`` prints it.
"""

# No ``from __future__ import annotations``: kfp reads the component's annotations as types.
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ENDED = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"}
V2 = "/apis/v2beta1"
REQUEST_TIMEOUT = 30.0  # seconds: past it a request counts as an error
WATCHER_RUNS = 20  # runs started at the start for the run pages to watch
LIST_WATCHER_SHARE = 5  # one watcher in this many watches the runs list


# --- what is driven ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A live server and who drives it: a personal API token for the REST API and a browser
    session (the ``sessionid`` cookie) for the websockets, as a browser page has."""

    url: str
    token: str
    session_cookie: str
    namespace: str


@dataclass
class Seed:
    """What the reads read: a pipeline with one version, an experiment, some runs."""

    pipeline_id: str
    version_id: str
    experiment_id: str
    run_ids: list[str]


def target_for(server, namespace: str = "team-a") -> Target:
    """A user of a fresh ``tests.servers`` server with a namespace, an API token and a
    browser session logged in through the form."""
    from tests.servers import log_in

    email, password = "load@example.com", "a password for the load test, long enough"
    server.manage("create_user", email, "--namespace", namespace, "--password", password)
    token = server.manage("create_token", email).stdout.strip().splitlines()[-1]
    session = log_in(server, email, password).cookies["sessionid"]
    return Target(server.url, token, session, namespace)


def tiny_pipeline() -> bytes:
    """A KFP v2 package compiled by the real kfp SDK: one Python component that greets.
    Each run passes its own name, so no step is answered from the cache."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def greet(name: str) -> str:
        return f"hello {name}"

    @dsl.pipeline(name="load-tiny", description="One fast step, for the load test.")
    def load_tiny(name: str = "world"):
        greet(name=name)

    with tempfile.TemporaryDirectory() as folder:
        package = Path(folder) / "load-tiny.yaml"
        compiler.Compiler().compile(load_tiny, str(package))
        return package.read_bytes()


async def seed(target: Target, runs: int = 10) -> Seed:
    """Upload the tiny pipeline, create an experiment, start ``runs`` runs and wait for them
    to end (they are what the first reads find). Fails loudly: this is set-up, not load."""
    async with _api_session(target) as http:
        form = aiohttp.FormData()
        form.add_field("uploadfile", tiny_pipeline(), filename="load-tiny.yaml")
        pipeline = await _expect_ok(http.post(
            f"{target.url}{V2}/pipelines/upload",
            params={"name": "load-tiny", "namespace": target.namespace}, data=form))
        versions = await _expect_ok(http.get(
            f"{target.url}{V2}/pipelines/{pipeline['pipeline_id']}/versions"))
        experiment = await _expect_ok(http.post(f"{target.url}{V2}/experiments", json={
            "display_name": "load", "namespace": target.namespace}))
        version = versions["pipeline_versions"][0]
        made = Seed(pipeline["pipeline_id"], version["pipeline_version_id"],
                    experiment["experiment_id"], [])
        for number in range(runs):
            run = await _expect_ok(http.post(f"{target.url}{V2}/runs",
                                             json=run_body(made, f"seed-{number}")))
            made.run_ids.append(run["run_id"])
        states = await final_states(http, target, made.run_ids, timeout=60)
        if set(states.values()) != {"SUCCEEDED"}:
            raise RuntimeError(f"the seed runs did not all succeed: {states}")
        return made


def run_body(seeded: Seed, name: str) -> dict[str, Any]:
    """A run of the tiny pipeline's stored version, as ``kfp.Client.run_pipeline`` posts."""
    return {"display_name": name, "experiment_id": seeded.experiment_id,
            "pipeline_version_reference": {"pipeline_id": seeded.pipeline_id,
                                           "pipeline_version_id": seeded.version_id},
            "runtime_config": {"parameters": {"name": name}}}


# --- results ----------------------------------------------------------------------------------

@dataclass
class WatcherReport:
    """One websocket page: a run page (``run_id``) or a runs list (``run_id`` None)."""

    run_id: str | None
    connect_seconds: float = 0.0
    messages: int = 0
    states: dict[str, tuple[int, str]] = field(default_factory=dict)  # run: (revision, state)
    error: str = ""

    def state_of(self, run_id: str) -> str:
        return self.states.get(run_id, (0, ""))[1]

    def missed(self, finals: dict[str, str]) -> list[str]:
        """The runs whose final state (as the API gives it) this page was never sent."""
        wanted = [self.run_id] if self.run_id else list(finals)
        return [run_id for run_id in wanted if self.state_of(run_id) != finals.get(run_id)]


@dataclass
class LoadResult:
    clients: int
    watchers: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)  # operation: seconds
    errors: list[str] = field(default_factory=list)
    created_run_ids: list[str] = field(default_factory=list)
    watched_run_ids: list[str] = field(default_factory=list)
    final: dict[str, str] = field(default_factory=dict)  # run: state after the drain
    listed_total: int = -1  # the namespace's total_size after the drain
    drain_seconds: float = 0.0
    pages: list[WatcherReport] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)  # run finished -> list page told

    @property
    def requests(self) -> int:
        return sum(map(len, self.latencies.values()))

    def missed_final_states(self) -> dict[str, list[str]]:
        """Watcher (index: kind): runs it was never told had ended; empty when none was
        dropped."""
        missed = {}
        for index, page in enumerate(self.pages):
            if lost := page.missed(self.final):
                missed[f"{index}: {'run page' if page.run_id else 'runs list'}"] = lost
        return missed

    def all_errors(self) -> list[str]:
        """Every failure of the test in one list: requests, websockets, and dropped
        final states."""
        found = list(self.errors)
        found += [f"watcher {i}: {page.error}" for i, page in enumerate(self.pages)
                  if page.error]
        found += [f"watcher {key} was not told that {len(runs)} runs ended, e.g. {runs[0]}"
                  for key, runs in self.missed_final_states().items()]
        return found


# --- the API clients --------------------------------------------------------------------------

class Reads:
    """The operations of one API client; each returns the parsed body of a 2xx answer."""

    def __init__(self, http: aiohttp.ClientSession, target: Target, seeded: Seed,
                 known_runs: list[str], created: list[str], rng: random.Random, index: int):
        self.http, self.target, self.seed = http, target, seeded
        self.known_runs, self.created, self.rng = known_runs, created, rng
        self.index, self.made = index, 0
        self.next_page = ""  # the last runs list's next_page_token

    def note(self, name: str, text: str) -> None:
        """Keep what later operations use: a page token, the id of a run created."""
        if name == "list_runs":
            self.next_page = json.loads(text).get("next_page_token") or ""
        elif name == "create_run":
            run_id = json.loads(text)["run_id"]
            self.created.append(run_id)
            self.known_runs.append(run_id)

    def _get(self, path: str, **params):
        return self.http.get(f"{self.target.url}{path}", params=params)

    def list_runs(self):
        return self._get(f"{V2}/runs", namespace=self.target.namespace, page_size="20",
                         sort_by="created_at desc")

    def list_runs_next_page(self):
        """The page after the last list's, as a client paging through runs asks for it."""
        return self._get(f"{V2}/runs", namespace=self.target.namespace, page_size="20",
                         sort_by="created_at desc", page_token=self.next_page)

    def list_experiment_runs(self):
        return self._get(f"{V2}/runs", experiment_id=self.seed.experiment_id,
                         page_size="10", sort_by="display_name")

    def list_succeeded_runs(self):
        wanted = {"predicates": [{"key": "state", "operation": "EQUALS",
                                  "string_value": "SUCCEEDED"}]}
        return self._get(f"{V2}/runs", namespace=self.target.namespace, page_size="20",
                         filter=json.dumps(wanted))

    def get_run(self):
        return self._get(f"{V2}/runs/{self.rng.choice(self.known_runs)}")

    def list_runs_v1(self):
        return self._get("/apis/v1beta1/runs", **{
            "resource_reference_key.type": "NAMESPACE",
            "resource_reference_key.id": self.target.namespace,
            "page_size": "20", "sort_by": "created_at desc"})

    def list_pipelines(self):
        return self._get(f"{V2}/pipelines", namespace=self.target.namespace, page_size="20")

    def get_pipeline(self):
        return self._get(f"{V2}/pipelines/{self.seed.pipeline_id}")

    def list_pipeline_versions(self):
        return self._get(f"{V2}/pipelines/{self.seed.pipeline_id}/versions", page_size="10")

    def get_pipeline_version(self):
        return self._get(f"{V2}/pipelines/{self.seed.pipeline_id}/versions/"
                         f"{self.seed.version_id}")

    def list_experiments(self):
        return self._get(f"{V2}/experiments", namespace=self.target.namespace,
                         page_size="20", sort_by="created_at desc")

    def get_experiment(self):
        return self._get(f"{V2}/experiments/{self.seed.experiment_id}")

    def healthz(self):
        return self._get(f"{V2}/healthz")

    def create_run(self):
        self.made += 1
        return self.http.post(f"{self.target.url}{V2}/runs", json=run_body(
            self.seed, f"load-{self.index}-{self.made}"))


# operation: weight (of 100); run creation is the one write.
OPERATIONS = {
    "list_runs": 18, "list_runs_next_page": 4, "list_experiment_runs": 6,
    "list_succeeded_runs": 4, "get_run": 20, "list_runs_v1": 3, "list_pipelines": 7,
    "get_pipeline": 4, "list_pipeline_versions": 4, "get_pipeline_version": 5,
    "list_experiments": 7, "get_experiment": 3, "healthz": 5, "create_run": 10,
}


async def api_client(index: int, target: Target, seeded: Seed, result: LoadResult,
                     known_runs: list[str], deadline: float) -> None:
    """One user's loop until ``deadline``: pick an operation, time it, note any failure."""
    rng = random.Random(index)
    names, weights = list(OPERATIONS), list(OPERATIONS.values())
    async with _api_session(target) as http:
        reads = Reads(http, target, seeded, known_runs, result.created_run_ids, rng, index)
        while time.monotonic() < deadline:
            name = rng.choices(names, weights)[0]
            began = time.perf_counter()
            try:
                async with getattr(reads, name)() as answer:
                    text = await answer.text()
                    elapsed = time.perf_counter() - began
                    if not 200 <= answer.status < 300:
                        result.errors.append(f"{name}: {answer.status} {text[:300]}")
                        continue
                    reads.note(name, text)
            except Exception as exc:  # a timeout, a reset connection, a body that is not JSON
                result.errors.append(f"{name}: {type(exc).__name__} {exc}")
                continue
            result.latencies.setdefault(name, []).append(elapsed)


def _api_session(target: Target) -> aiohttp.ClientSession:
    """A keep-alive HTTP client of one user (one connection, as a script's client has)."""
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {target.token}"},
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))


async def _expect_ok(request) -> dict[str, Any]:
    async with request as answer:
        text = await answer.text()
        if answer.status != 200:
            raise RuntimeError(f"{answer.method} {answer.url}: {answer.status} {text[:500]}")
        return json.loads(text)


# --- the websocket watchers -------------------------------------------------------------------

class Watcher:
    """A page held open: it applies each run event newer than what it has (by revision),
    as the pages' scripts do, and notes when a runs list learns that a run ended."""

    def __init__(self, target: Target, run_id: str | None, result: LoadResult):
        self.target, self.result = target, result
        self.report = WatcherReport(run_id)
        self.socket = None
        self.closing = False
        path = f"runs/{run_id}/" if run_id else "runs/"
        self.url = f"{target.url.replace('http', 'ws', 1)}/ws/ns/{target.namespace}/{path}"

    async def open(self) -> None:
        began = time.perf_counter()
        try:
            self.socket = await connect(
                self.url, origin=self.target.url, open_timeout=REQUEST_TIMEOUT,
                additional_headers={"Cookie": f"sessionid={self.target.session_cookie}"},
                compression=None, max_size=None)
            if self.report.run_id:  # a run page's first message is its snapshot
                snapshot = json.loads(await asyncio.wait_for(self.socket.recv(),
                                                             REQUEST_TIMEOUT))
                self._apply(snapshot["run"], snapshot["revision"])
                self.report.messages += 1
        except Exception as exc:
            self.report.error = f"could not connect: {type(exc).__name__} {exc}"
            return
        self.report.connect_seconds = time.perf_counter() - began

    async def listen(self) -> None:
        if self.socket is None:
            return
        try:
            async for text in self.socket:
                self.report.messages += 1
                event = json.loads(text)
                if event.get("type") == "run":
                    self._apply(event, event["revision"])
        except ConnectionClosed as closed:
            if not self.closing:
                self.report.error = f"closed by the server: {closed}"
            return
        if not self.closing:
            self.report.error = "closed by the server"

    def _apply(self, run: dict[str, Any], revision: int) -> None:
        run_id = run["run_id"]
        if revision <= self.report.states.get(run_id, (-1, ""))[0]:
            return
        ended_before = self.report.state_of(run_id) in ENDED
        self.report.states[run_id] = (revision, run["state"])
        if self.report.run_id is None and run["state"] in ENDED and not ended_before \
                and run.get("finished_at"):
            finished = datetime.fromisoformat(run["finished_at"]).timestamp()
            self.result.delivery.append(time.time() - finished)

    async def close(self) -> None:
        self.closing = True
        if self.socket is not None:
            await self.socket.close()


async def open_watchers(target: Target, result: LoadResult, watched_runs: list[str],
                        count: int, kind: str) -> list[Watcher]:
    """``count`` run pages spread over ``watched_runs`` (kind "run"), or runs lists."""
    watchers = [Watcher(target, watched_runs[i % len(watched_runs)] if kind == "run" else None,
                        result) for i in range(count)]
    for batch in range(0, count, 25):  # as pages open: not all in the same millisecond
        await asyncio.gather(*(w.open() for w in watchers[batch:batch + 25]))
    return watchers


# --- the whole load ---------------------------------------------------------------------------

async def run_load(target: Target, seeded: Seed, clients: int = 50, watchers: int = 100,
                   seconds: float = 60, drain_timeout: float = 60,
                   told_timeout: float = 10) -> LoadResult:
    """Runs lists open first, then runs start for the run pages, the pages open, the API
    clients run for ``seconds``; then every run is waited for (``drain_timeout``) and every
    page for the news of each run's end (``told_timeout``), and the pages are closed."""
    result = LoadResult(clients=clients, watchers=watchers, seconds=seconds)
    list_count = watchers // LIST_WATCHER_SHARE if watchers > 1 else 0
    pages = await open_watchers(target, result, [], list_count, "list")
    async with _api_session(target) as http:
        result.watched_run_ids = [
            (await _expect_ok(http.post(f"{target.url}{V2}/runs", json=run_body(
                seeded, f"watched-{number}"))))["run_id"] for number in range(WATCHER_RUNS)]
    pages += await open_watchers(target, result, result.watched_run_ids,
                                 watchers - list_count, "run")
    result.pages = [page.report for page in pages]
    listening = [asyncio.create_task(page.listen()) for page in pages]

    known_runs = [*seeded.run_ids, *result.watched_run_ids]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(api_client(index, target, seeded, result, known_runs, deadline)
                           for index in range(clients)))

    began = time.monotonic()
    async with _api_session(target) as http:
        every = [*result.watched_run_ids, *result.created_run_ids]
        result.final = await final_states(http, target, every, drain_timeout)
        result.listed_total = await listed_total(http, target)
    result.drain_seconds = time.monotonic() - began
    await _until_told(pages, result.final, told_timeout)
    for page in pages:
        await page.close()
    await asyncio.gather(*listening)
    return result


async def final_states(http: aiohttp.ClientSession, target: Target, run_ids: list[str],
                       timeout: float) -> dict[str, str]:
    """The state of each run in the namespace's list once all have ended (or at the
    timeout); a run missing from the list has the state "MISSING"."""
    deadline = time.monotonic() + timeout
    while True:
        states = await listed_states(http, target)
        found = {run_id: states.get(run_id, "MISSING") for run_id in run_ids}
        if all(state in ENDED for state in found.values()) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def listed_states(http: aiohttp.ClientSession, target: Target) -> dict[str, str]:
    """Every run of the namespace: its state, read page by page through the API."""
    states, token = {}, ""
    while True:
        page = await _expect_ok(http.get(f"{target.url}{V2}/runs", params={
            "namespace": target.namespace, "page_size": "200", "page_token": token}))
        states.update({run["run_id"]: run["state"] for run in page.get("runs", [])})
        token = page.get("next_page_token") or ""
        if not token:
            return states


async def listed_total(http: aiohttp.ClientSession, target: Target) -> int:
    page = await _expect_ok(http.get(f"{target.url}{V2}/runs", params={
        "namespace": target.namespace, "page_size": "1"}))
    return int(page.get("total_size") or 0)


async def _until_told(pages: list[Watcher], finals: dict[str, str], timeout: float) -> None:
    """Wait until every page has been sent the final state of each run it shows (an event
    is published just after its commit, so the API may show an end a moment before the
    pages are told), or the timeout."""
    deadline = time.monotonic() + timeout
    while any(page.report.missed(finals) for page in pages if not page.report.error) \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


# --- the table --------------------------------------------------------------------------------

def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _row(what: str, values: list[float], errors: int) -> str:
    return (f"| {what} | {len(values)} | {errors} | {quantile(values, 0.5) * 1000:.1f} | "
            f"{quantile(values, 0.95) * 1000:.1f} | {max(values, default=0) * 1000:.1f} |")


def markdown(result: LoadResult) -> str:
    """The latency table and the counts that go with it, in markdown."""
    failed = Counter(error.split(":", 1)[0] for error in result.errors)
    lines = ["| operation | count | errors | p50 ms | p95 ms | max ms |",
             "|---|---|---|---|---|---|"]
    for name in sorted(result.latencies, key=lambda n: -len(result.latencies[n])):
        lines.append(_row(name, result.latencies[name], failed[name]))
    lines.append(_row("**all requests**", [v for values in result.latencies.values()
                                           for v in values], len(result.errors)))
    run_pages = [p for p in result.pages if p.run_id]
    lists = [p for p in result.pages if not p.run_id]
    for what, group in (("ws connect + snapshot (run page)", run_pages),
                        ("ws connect (runs list)", lists)):
        lines.append(_row(what, [p.connect_seconds for p in group if not p.error],
                          sum(1 for p in group if p.error)))
    lines.append(_row("ws run finished → runs list told", result.delivery,
                      len(result.missed_final_states())))
    succeeded = sum(1 for state in result.final.values() if state == "SUCCEEDED")
    lines += ["", f"{result.clients} API clients and {result.watchers} websocket pages "
              f"({len(run_pages)} run pages over {len(result.watched_run_ids)} runs, "
              f"{len(lists)} runs lists) for {result.seconds:.0f} s: "
              f"{result.requests} requests ({result.requests / result.seconds:.0f}/s), "
              f"{len(result.all_errors())} errors; {len(result.created_run_ids)} runs created, "
              f"{succeeded} of {len(result.final)} runs SUCCEEDED, the last "
              f"{result.drain_seconds:.1f} s after the load; "
              f"{sum(p.messages for p in result.pages)} websocket messages received, "
              f"{sum(map(len, result.missed_final_states().values()))} final states missed."]
    return "\n".join(lines)
