"""Load against a real kfdash server (uvicorn, its own data dir and SQLite database, the local
engine really running every step): 50 API clients for 60 s, reading as ``kfp.Client``
users do and starting runs of a tiny pipeline (~10% of their requests), while 100 pages
stay connected: run pages of runs started as the load starts, and runs lists.

Not one error of any kind: every answer is a 2xx, every page connects and stays
connected, every run started is listed and succeeds, and every page is told of the end of
each run it shows, not one event dropped. The server is healthy after it and logged no
traceback. The latencies are printed (``pytest -s``), never asserted:
``bench/load.py`` measures them.
"""

from __future__ import annotations

import asyncio

import pytest
import requests

from tests.load_driver import markdown, run_load, seed, target_for

pytestmark = pytest.mark.slow

CLIENTS, WATCHERS, SECONDS = 50, 100, 60
DRAIN_SECONDS = 30  # for the runs started last to end, once the load stops


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    from pipelines.engines.processes import stop_all_under

    stop_all_under(tmp_path, 0)  # nothing of the server's steps outlives the test


def test_it_serves_50_clients_and_100_live_pages_for_a_minute_without_an_error(
        kfdash_server):
    server = kfdash_server()
    target = target_for(server)
    seeded = asyncio.run(seed(target))

    result = asyncio.run(run_load(target, seeded, CLIENTS, WATCHERS, SECONDS,
                                  drain_timeout=DRAIN_SECONDS))
    print(f"\n{markdown(result)}\n")

    errors = result.all_errors()
    assert not errors, f"{len(errors)} errors, e.g.:\n" + "\n".join(errors[:20])
    started = [*result.watched_run_ids, *result.created_run_ids]
    assert result.created_run_ids and len(set(started)) == len(started)
    # Every run started is in the API's list, and ended well.
    assert result.final == dict.fromkeys(started, "SUCCEEDED")
    assert result.listed_total == len(seeded.run_ids) + len(started)
    # Every page was told of the end of each run it shows (all_errors says which not).
    assert not result.missed_final_states()
    assert {page.run_id for page in result.pages if page.run_id} == set(
        result.watched_run_ids)
    assert server.process.poll() is None
    assert requests.get(f"{server.url}/healthz", timeout=10).text == "ok\n"
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert "Traceback" not in server.log()
